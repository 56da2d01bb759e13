//! The progress file as the state sees it: values by key ([`Persist`]), why a save failed
//! ([`PersistError`]), whether saving works ([`StorageHealth`], told to the window at every change)
//! and what was found wrong with the file at start ([`StorageNotice`]).

use std::sync::{Arc, Mutex};

use serde::Serialize;
use ts_rs::TS;
use uspslink_core::durable::Recovery;
use uspslink_core::IpcError;

use super::lock;

/// What the app found when it opened the progress file, said once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum StorageNoticeKind {
    /// The file was damaged; the last good copy was put back.
    Restored,
    /// The file was damaged and no good copy existed: the app started fresh.
    StartedFresh,
    /// The file could not be read at all (permissions): nothing could be checked or restored.
    Unreadable,
    /// A record in it could not be read by this version (another version wrote it, or it was
    /// edited): kept aside under its own key, that part started fresh.
    SetAside,
    /// A newer uspslink wrote the file (or its format is not one this version knows): nothing is
    /// read from it or written to it until the owner starts over here
    /// (`start_over_in_this_version`), which keeps the file aside.
    NewerFile,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct StorageNotice {
    pub kind: StorageNoticeKind,
    pub message: String,
}

impl StorageNotice {
    /// What a newer version's file (or one of an unknown format) means to the owner.
    pub(crate) fn newer_file(format: uspslink_core::progress_format::FileFormat) -> Option<Self> {
        use uspslink_core::progress_format::{FileFormat, CURRENT_FORMAT};
        let which = match format {
            FileFormat::Readable => return None,
            FileFormat::Newer(n) => {
                format!("a newer version of uspslink (format {n}; this version reads up to format {CURRENT_FORMAT})")
            }
            FileFormat::Unrecognised => {
                "another program, or by hand (its format entry is not one uspslink knows)".into()
            }
        };
        Some(Self {
            kind: StorageNoticeKind::NewerFile,
            message: format!(
                "Your progress was saved by {which}. To keep it safe, this version neither reads nor changes it, \
                 and saves nothing until you choose: open the newer uspslink to go on with it, or start over here. \
                 Starting over keeps that progress file aside, untouched; until then, your keys and USPS \
                 connection in the keyring are not changed either."
            ),
        })
    }

    pub(crate) fn from_recovery(r: std::io::Result<Recovery>) -> Option<Self> {
        let name = |p: &std::path::Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        match r {
            Ok(Recovery::Clean) => None,
            Ok(Recovery::Restored { set_aside }) if set_aside.as_os_str().is_empty() => Some(Self {
                kind: StorageNoticeKind::Restored,
                message: "Your progress file was missing. uspslink restored the last good copy of your progress."
                    .into(),
            }),
            Ok(Recovery::Restored { set_aside }) => Some(Self {
                kind: StorageNoticeKind::Restored,
                message: format!(
                    "Your progress file was damaged (the app or the computer stopped while it was being written). \
                     uspslink restored the last good copy: the most recent change may need to be made again. \
                     The damaged file was kept as {}.",
                    name(&set_aside)
                ),
            }),
            Ok(Recovery::StartedFresh { set_aside }) => Some(Self {
                kind: StorageNoticeKind::StartedFresh,
                message: format!(
                    "Your progress file was damaged and there was no earlier copy to restore, so uspslink starts \
                     fresh. The damaged file was kept as {}. Your saved keys and USPS connection in the keyring \
                     are untouched.",
                    name(&set_aside)
                ),
            }),
            Err(e) => Some(Self {
                kind: StorageNoticeKind::Unreadable,
                message: format!(
                    "uspslink could not read your progress file ({}). Progress cannot be saved until this is fixed.",
                    io_words(&e)
                ),
            }),
        }
    }
}

/// Why progress was not saved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersistError {
    /// The disk or the file refused; the words say how (full, read-only, held by another program).
    #[error("{0}")]
    Io(String),
    /// A newer uspslink's progress file is open: it is never written over (see [`StorageNoticeKind::NewerFile`]).
    #[error("{}", uspslink_core::progress_format::NEWER_FILE_REFUSAL)]
    NewerFile,
    /// The business was removed while this ran: nothing of it is written again.
    #[error("that business was removed from uspslink; nothing was saved for it")]
    BusinessRemoved,
}

impl From<std::io::Error> for PersistError {
    fn from(e: std::io::Error) -> Self {
        PersistError::Io(io_words(&e))
    }
}

/// Reads and writes JSON values by key. A trait so the state is not generic over the Tauri runtime
/// and the flows can be tested with an in-memory store.
pub trait Persist: Send + Sync {
    fn load(&self, key: &str) -> Option<serde_json::Value>;
    /// Persist `value` under `key`. On error nothing changed, on disk or in memory.
    fn save(&self, key: &str, value: serde_json::Value) -> Result<(), PersistError>;
    /// Persist several values in one write: all of them or, on error, none.
    fn save_all(&self, values: Vec<(String, serde_json::Value)>) -> Result<(), PersistError> {
        // Stores without a whole-file write (the tests' memory) save one by one.
        for (key, value) in values {
            self.save(&key, value)?;
        }
        Ok(())
    }
    /// The owner chose to start over in this version while a newer version's file is open: keep
    /// that file aside as it is (its name is returned) and start an empty one of this version.
    /// `None`: no such file was open, nothing to do.
    fn set_newer_file_aside(&self) -> Result<Option<String>, PersistError> {
        Ok(None)
    }
    /// A newer version's file is open (nothing is written, its keyring entries neither).
    fn is_newer_file(&self) -> bool {
        false
    }
}

/// Whether progress can be saved right now, as the window is told (the `storage` event): a problem
/// at every save that fails, and none at the first save that works after one. Every write reports
/// here (the watch's in the background too), so the UI needs no list of the commands that write.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct StorageHealth {
    pub problem: Option<IpcError>,
}

/// Told at every save that fails (`Some`), and at the first that works after one (`None`).
pub type StorageObserver = Arc<dyn Fn(Option<&SaveError>) + Send + Sync>;

/// Progress was not saved; nothing changed, on disk or in memory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "Could not save your progress: {0}. Nothing was changed; what you typed is still on screen. Try again once \
     this is fixed."
)]
pub struct SaveError(pub PersistError);

impl From<PersistError> for SaveError {
    fn from(e: PersistError) -> Self {
        SaveError(e)
    }
}

impl From<serde_json::Error> for SaveError {
    fn from(e: serde_json::Error) -> Self {
        SaveError(PersistError::Io(e.to_string()))
    }
}

/// The state's persistence, telling an observer when saving stops or starts working again.
pub(crate) struct ReportingPersist {
    inner: Arc<dyn Persist>,
    failing: std::sync::atomic::AtomicBool,
    observer: Mutex<Option<StorageObserver>>,
}

impl Persist for ReportingPersist {
    fn load(&self, key: &str) -> Option<serde_json::Value> {
        self.inner.load(key)
    }

    fn save(&self, key: &str, value: serde_json::Value) -> Result<(), PersistError> {
        let result = self.inner.save(key, value);
        self.report(result.as_ref().map(|_| ()));
        result
    }

    fn save_all(&self, values: Vec<(String, serde_json::Value)>) -> Result<(), PersistError> {
        let result = self.inner.save_all(values);
        self.report(result.as_ref().map(|_| ()));
        result
    }

    fn is_newer_file(&self) -> bool {
        self.inner.is_newer_file()
    }

    fn set_newer_file_aside(&self) -> Result<Option<String>, PersistError> {
        let result = self.inner.set_newer_file_aside();
        self.report(result.as_ref().map(|_| ()));
        result
    }
}

impl ReportingPersist {
    pub(crate) fn new(inner: Arc<dyn Persist>) -> Self {
        Self { inner, failing: std::sync::atomic::AtomicBool::new(false), observer: Mutex::new(None) }
    }

    pub(crate) fn set_observer(&self, observer: StorageObserver) {
        *lock(&self.observer) = Some(observer);
    }

    /// Tell the observer when saving stopped or started working again.
    fn report(&self, result: Result<(), &PersistError>) {
        use std::sync::atomic::Ordering::SeqCst;
        let health = match result {
            Ok(()) if self.failing.swap(false, SeqCst) => Some(None),
            Ok(()) => None,
            Err(e) => {
                self.failing.store(true, SeqCst);
                Some(Some(SaveError(e.clone())))
            }
        };
        // Cloned out first: the observer runs without this lock held.
        let observer = lock(&self.observer).clone();
        if let (Some(health), Some(observer)) = (health, observer) {
            observer(health.as_ref());
        }
    }
}

pub(crate) fn io_words(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    if uspslink_core::durable::held_by_another_program(e) {
        return "another program has uspslink's progress file open (a backup, sync or virus scan); \
                close it or wait a moment"
            .into();
    }
    match e.kind() {
        K::StorageFull => "the disk is full".into(),
        K::ReadOnlyFilesystem => "the disk is read-only".into(),
        K::PermissionDenied => "uspslink may not write to its data folder".into(),
        K::QuotaExceeded => "your disk quota is used up".into(),
        _ => e.to_string(),
    }
}

/// Where a record this version cannot read is kept: under its own key, so the next save of that
/// record (starting from defaults) never takes it with it.
pub const SET_ASIDE_PREFIX: &str = "set-aside/";

/// A stored record, or the defaults when there is none. One this version cannot read is first
/// copied aside (`set-aside/<key>@<unix seconds>`) and named in the second value.
pub(crate) fn read_or_set_aside<T: serde::de::DeserializeOwned + Default>(
    persist: &dyn Persist,
    key: &str,
) -> (T, Option<String>) {
    let Some(raw) = persist.load(key) else { return (T::default(), None) };
    match serde_json::from_value(raw.clone()) {
        Ok(t) => (t, None),
        Err(e) => {
            let aside = format!("{SET_ASIDE_PREFIX}{key}@{}", uspslink_core::usps::unix_now());
            // The copy and the emptied key in one write: the record is not set aside again at the
            // next start, whether or not its defaults are ever saved.
            match persist.save_all(vec![(aside.clone(), raw), (key.to_string(), serde_json::Value::Null)]) {
                Ok(()) => tracing::warn!("stored {key} unreadable ({e}); kept as {aside}, that part starts fresh"),
                Err(save) => tracing::error!("stored {key} unreadable ({e}) and could not be kept aside ({save})"),
            }
            (T::default(), Some(aside))
        }
    }
}

pub(crate) fn read<T: serde::de::DeserializeOwned + Default>(persist: &dyn Persist, key: &str) -> T {
    read_or_set_aside(persist, key).0
}
