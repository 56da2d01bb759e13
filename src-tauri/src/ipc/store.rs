//! The progress file through tauri-plugin-store: the app's [`Persist`]. The plugin's own `save` (and
//! its auto-save) is a plain `fs::write`, which a crash leaves truncated. Here a change is written
//! with the store's other entries to a temporary file, fsynced and renamed over the file (keeping
//! the last good copy, `uspslink_core::durable`), and only then set in the plugin's store, so a
//! failed write changes nothing.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tauri::Runtime;
use tauri_plugin_store::StoreExt;
use uspslink_core::durable;
use uspslink_core::usps::unix_now;

use crate::state::{io_words, lock, AppState, Persist, StorageNotice, VaultSource, STORE_FILE};

/// Beside the progress file: this run's token for the in-app sandbox's `/sandbox/*` helpers (what the
/// end-to-end tests use to approve a contract or reset a password), readable by the user only.
pub const SANDBOX_TOKEN_FILE: &str = "sandbox-helpers.token";

pub struct DurableStore<R: Runtime> {
    store: Arc<tauri_plugin_store::Store<R>>,
    path: PathBuf,
    /// One write at a time: each write is the whole file.
    writing: Mutex<()>,
}

impl<R: Runtime> Persist for DurableStore<R> {
    fn load(&self, key: &str) -> Option<serde_json::Value> {
        self.store.get(key).filter(|v| !v.is_null())
    }

    fn save(&self, key: &str, value: serde_json::Value) -> Result<(), String> {
        let _one_at_a_time = lock(&self.writing);
        let mut entries: serde_json::Map<String, serde_json::Value> = self.store.entries().into_iter().collect();
        entries.insert(key.to_string(), value.clone());
        let bytes = serde_json::to_vec_pretty(&entries).map_err(|e| e.to_string())?;
        durable::write_atomic(&self.path, &bytes).map_err(|e| io_words(&e))?;
        self.store.set(key, value);
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
) -> Result<AppState, Box<dyn std::error::Error>> {
    let path = tauri_plugin_store::resolve_store_path(app, STORE_FILE)?;
    // The user's only: folders and files an older version made readable by others are fixed here.
    if let Some(dir) = path.parent().filter(|d| d.exists()) {
        if let Err(e) = durable::make_private_folder(dir) {
            tracing::warn!("could not make the data folder private: {e}");
        }
    }
    let notice = StorageNotice::from_recovery(durable::recover(&path, unix_now()));
    if let Some(n) = &notice {
        tracing::warn!("progress file: {}", n.message);
    }
    // The plugin never writes the file by itself: every write goes through DurableStore.
    let store = app.store_builder(STORE_FILE).disable_auto_save().build()?;
    let token_file = path.with_file_name(SANDBOX_TOKEN_FILE);
    let persist = Arc::new(DurableStore { store, path, writing: Mutex::new(()) });
    let state = AppState::open(persist, AppState::environment_override(), started, VaultSource::default(), notice);
    state.set_sandbox_token_file(token_file);
    Ok(state)
}
