//! The progress file through tauri-plugin-store: the app's [`Persist`]. The plugin's own `save` (and
//! its auto-save) is a plain `fs::write`, which a crash leaves truncated. Here a change is written
//! with the store's other entries to a temporary file, fsynced and renamed over the file (keeping
//! the last good copy, `uspslink_core::durable`), and only then set in the plugin's store, so a
//! failed write changes nothing.
//!
//! Every write carries the file's format number (`uspslink_core::progress_format`). A file a newer
//! version wrote is neither read nor written: the state starts from defaults and every save is
//! refused until the owner chooses to start over here, which keeps that file aside.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tauri::Runtime;
use tauri_plugin_store::StoreExt;
use uspslink_core::durable;
use uspslink_core::progress_format::{self, FileFormat, CURRENT_FORMAT, FORMAT_KEY};
use uspslink_core::usps::unix_now;

use crate::state::{lock, AppState, Persist, PersistError, StorageNotice, VaultSource, STORE_FILE};

/// Beside the progress file: this run's token for the in-app sandbox's `/sandbox/*` helpers (what the
/// end-to-end tests use to approve a contract or reset a password), readable by the user only.
pub const SANDBOX_TOKEN_FILE: &str = "sandbox-helpers.token";

pub struct DurableStore<R: Runtime> {
    store: Arc<tauri_plugin_store::Store<R>>,
    path: PathBuf,
    /// One write at a time: each write is the whole file.
    writing: Mutex<()>,
    /// The file is a newer version's: nothing is read from it or written to it.
    newer_file: AtomicBool,
}

impl<R: Runtime> Persist for DurableStore<R> {
    fn load(&self, key: &str) -> Option<serde_json::Value> {
        if self.newer_file.load(Ordering::SeqCst) {
            return None;
        }
        self.store.get(key).filter(|v| !v.is_null())
    }

    fn save(&self, key: &str, value: serde_json::Value) -> Result<(), PersistError> {
        self.save_all(vec![(key.to_string(), value)])
    }

    fn save_all(&self, values: Vec<(String, serde_json::Value)>) -> Result<(), PersistError> {
        let _one_at_a_time = lock(&self.writing);
        if self.newer_file.load(Ordering::SeqCst) {
            return Err(PersistError::NewerFile);
        }
        let mut entries: serde_json::Map<String, serde_json::Value> = self.store.entries().into_iter().collect();
        entries.extend(values.iter().cloned());
        self.write_whole(entries)?;
        for (key, value) in values {
            self.store.set(key, value);
        }
        Ok(())
    }

    fn is_newer_file(&self) -> bool {
        self.newer_file.load(Ordering::SeqCst)
    }

    fn set_newer_file_aside(&self) -> Result<Option<String>, PersistError> {
        let _one_at_a_time = lock(&self.writing);
        if !self.newer_file.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let now = unix_now();
        // Nothing writes the file meanwhile, so a missing one was moved by an earlier try whose
        // write below failed: this try only writes.
        let aside = if self.path.exists() { Some(durable::set_aside(&self.path, "newer", now)?) } else { None };
        // Its last good copy too: a damaged fresh file must not bring the newer one back.
        let last_good = durable::last_good_path(&self.path);
        if last_good.exists() {
            durable::set_aside(&last_good, "newer", now)?;
        }
        self.store.clear();
        // From here the file is this version's, even if nothing else is saved before the next start.
        self.write_whole(serde_json::Map::new())?;
        self.newer_file.store(false, Ordering::SeqCst);
        Ok(aside.and_then(|a| a.file_name().map(|n| n.to_string_lossy().into_owned())))
    }
}

impl<R: Runtime> DurableStore<R> {
    /// Write `entries` as the whole file, with this version's format number.
    fn write_whole(&self, mut entries: serde_json::Map<String, serde_json::Value>) -> Result<(), PersistError> {
        entries.insert(FORMAT_KEY.into(), CURRENT_FORMAT.into());
        let bytes = serde_json::to_vec_pretty(&entries).map_err(|e| PersistError::Io(e.to_string()))?;
        durable::write_atomic(&self.path, &bytes)?;
        if !self.store.has(FORMAT_KEY) {
            self.store.set(FORMAT_KEY, CURRENT_FORMAT);
        }
        Ok(())
    }
}

/// Take the progress file's store away from tauri-plugin-store before the app exits: at its Exit
/// event the plugin writes every store it holds with a plain `fs::write` over the file (a power cut
/// then truncates it). Every change was written atomically when it was made.
pub fn close_progress_store<R: Runtime>(app: &tauri::AppHandle<R>) {
    if let Some(store) = app.get_store(STORE_FILE) {
        store.close_resource();
    }
}

/// Open the progress file (repairing it first if a crash damaged it) and the state over it.
pub fn load_state<R: Runtime>(
    app: &tauri::AppHandle<R>,
    started: Instant,
    config: crate::AppConfig,
) -> Result<AppState, Box<dyn std::error::Error>> {
    let path = tauri_plugin_store::resolve_store_path(app, STORE_FILE)?;
    // The user's only: folders and files an older version made readable by others are fixed here.
    if let Some(dir) = path.parent().filter(|d| d.exists()) {
        if let Err(e) = durable::make_private_folder(dir) {
            tracing::warn!("could not make the data folder private: {e}");
        }
    }
    let mut notice = StorageNotice::from_recovery(durable::recover(&path, unix_now()));
    // The plugin never writes the file by itself: every write goes through DurableStore.
    let store = app.store_builder(STORE_FILE).disable_auto_save().build()?;
    let format = progress_format::judge(store.get(FORMAT_KEY).as_ref());
    if let Some(n) = &notice {
        tracing::warn!("progress file: {}", n.message);
    }
    if format != FileFormat::Readable {
        // Said together with what recovery found (a damaged file set aside), which would be lost.
        let recovered = notice.take();
        notice = StorageNotice::newer_file(format).map(|mut n| {
            if let Some(r) = recovered {
                n.message = format!("{} {}", r.message, n.message);
            }
            n
        });
        tracing::warn!("progress file of another format ({format:?}): not read, not written until the owner chooses");
    }
    let token_file = path.with_file_name(SANDBOX_TOKEN_FILE);
    let newer_file = AtomicBool::new(format != FileFormat::Readable);
    let persist = Arc::new(DurableStore { store, path, writing: Mutex::new(()), newer_file });
    let state = AppState::open(persist, config, started, VaultSource::default(), notice);
    state.servers.set_sandbox_token_file(token_file);
    Ok(state)
}
