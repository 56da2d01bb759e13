//! The app's state: preferences and progress (persisted through tauri-plugin-store after every
//! change, atomically, so a crash loses nothing), the vault, the in-process sandbox and the recent
//! callbacks.
//!
//! Everything a user does in one environment (Sandbox, USPS test, Production) is filed under that
//! environment: the store keys are `<environment>/<record>` and the keyring names
//! `<environment>/<secret>` (docs/DESIGN.md, "Environments are apart"). A flow takes the environment
//! once when it starts and reads and writes only that environment's records and secrets, so a
//! switch in Settings while it runs cannot send one environment's token to another.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uspslink_core::approval::{ApprovalRecord, ApprovalView};
use uspslink_core::callback::{self, CallbackSummary};
use uspslink_core::clock::Clock;
use uspslink_core::durable::Recovery;
use uspslink_core::error::HasKind;
use uspslink_core::http::{Retry, RetryObserver};
use uspslink_core::onboarding::{DashboardView, OnboardingEvent, Progress};
use uspslink_core::payments::{IdentifiersRecord, IdentifiersView};
use uspslink_core::savings::{SavingsRecord, SavingsView};
use uspslink_core::settings::{Endpoints, Environment, Preferences, SignInMethod};
use uspslink_core::shipengine::StampsRecord;
use uspslink_core::usps::{unix_now, AttemptStore, LinkRecord, LinkStatus, ATTEMPT_TTL};
use uspslink_core::vault::Vault;
use uspslink_core::{ErrorKind, IpcError};
use uspslink_sandbox::Sandbox;

pub use crate::config::AppConfig;

/// The store file (in the app's data dir). Holds preferences and progress; never a secret.
pub const STORE_FILE: &str = "uspslink.json";
const KEY_PREFERENCES: &str = "preferences";
/// The environment whose keyring entries still have the names of before environments existed.
const KEY_LEGACY_KEYRING: &str = "legacy_keyring_environment";
/// Sign-ins open in the browser (fingerprints of their states), so a callback that arrives after a
/// restart can be told apart from a forged one.
const KEY_SIGN_INS: &str = "sign_ins_in_browser";
/// What was said once about running in the background (the tray note, the open-at-login offer).
const KEY_BACKGROUND: &str = "background";

/// Said once, kept across runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct BackgroundRecord {
    /// The note "uspslink keeps watching in the tray" went out (the first close into the tray).
    pub tray_note_shown: bool,
    /// The owner answered the offer to open uspslink at login (yes or not now): not offered again.
    pub login_offer_answered: bool,
}
const NAME_PROGRESS: &str = "progress";
const NAME_USPS_LINK: &str = "usps_link";
const NAME_STAMPS: &str = "stamps";
const NAME_IDENTIFIERS: &str = "identifiers";
/// The approval watch's record (newer than environments: never a top-level key).
const NAME_APPROVAL: &str = "approval";
/// What the NSA rates save, as last priced (newer than environments too).
const NAME_SAVINGS: &str = "savings";
/// The per-environment records; before environments they were top-level keys of these names.
const ENV_RECORDS: [&str; 4] = [NAME_PROGRESS, NAME_USPS_LINK, NAME_STAMPS, NAME_IDENTIFIERS];
const RECENT_LINKS: usize = 10;
/// What the link says once USPS no longer takes it (a status and an error say the same).
pub const NEEDS_RECONNECTING: &str =
    "Your USPS connection has expired or was revoked. A USPS password reset breaks every \
                                      connection: reconnect to continue.";

/// Run a blocking call (the keyring's D-Bus calls) on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, IpcError> + Send + 'static,
) -> Result<T, IpcError> {
    // A panic on the blocking pool comes back as a JoinError, whose text may quote the panic
    // message: it is not passed on.
    tokio::task::spawn_blocking(f).await.map_err(|_| internal("a keyring call"))?
}

/// A bug inside uspslink (a panic), as the UI is told of it: `what` says where, never what it said.
pub(crate) fn internal(what: &str) -> IpcError {
    IpcError::new(
        ErrorKind::Internal,
        format!("Something went wrong inside uspslink ({what}). Nothing was changed; please try again. The details are in the log."),
    )
}

/// The store key of an environment's record.
pub fn env_key(env: Environment, name: &str) -> String {
    format!("{}/{name}", env.key())
}

/// A mutex whose holder panicked still holds valid data here (every update is replace-on-success),
/// so a caught panic in one command must not turn every later command into another panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A valid callback the app received.
#[derive(Debug, Clone, Serialize, TS)]
pub struct DeepLinkNotice {
    pub callback: CallbackSummary,
    /// Milliseconds since the app started (for ordering and the latency benchmark).
    pub received_at_ms: u32,
}

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

/// Everything the UI needs to draw its first screen.
#[derive(Debug, Clone, Serialize, TS)]
pub struct AppSnapshot {
    pub view: DashboardView,
    pub preferences: Preferences,
    /// The environment in force (a test run may override the stored preference).
    pub environment: Environment,
    pub environment_label: String,
    /// None while the sandbox is still starting.
    pub endpoints: Option<Endpoints>,
    pub recent_deep_links: Vec<DeepLinkNotice>,
    pub usps_link: LinkStatus,
    pub stamps: StampsRecord,
    pub identifiers: IdentifiersView,
    /// Whether USPS approved the NSA rates yet, as the watch last found.
    pub approval: ApprovalView,
    /// What the NSA rates save, and whether Stamps.com quotes them.
    pub savings: SavingsView,
    /// Said once: what was found wrong with the progress file at start.
    pub storage_notice: Option<StorageNotice>,
    /// The sign-in service this environment's link came through, when Settings now name another
    /// way: the link's tokens still go only there; the UI asks the owner to reconnect.
    pub sign_in_moved_from: Option<String>,
    /// The screen to open on (a notification was clicked while the window was closed); once.
    pub open_on: Option<crate::flows::background::Route>,
    /// Whether to offer opening uspslink at login (once, at the waiting-for-approval step).
    pub offer_open_at_login: bool,
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

pub type StorageObserver = Arc<dyn Fn(&StorageHealth) + Send + Sync>;

/// The state's persistence, telling an observer when saving stops or starts working again.
struct ReportingPersist {
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
    /// Tell the observer when saving stopped or started working again.
    fn report(&self, result: Result<(), &PersistError>) {
        use std::sync::atomic::Ordering::SeqCst;
        let health = match &result {
            Ok(()) if self.failing.swap(false, SeqCst) => Some(StorageHealth { problem: None }),
            Ok(()) => None,
            Err(e) => {
                self.failing.store(true, SeqCst);
                Some(StorageHealth { problem: Some(storage_error(e)) })
            }
        };
        // Cloned out first: the observer runs without this lock held.
        let observer = lock(&self.observer).clone();
        if let (Some(health), Some(observer)) = (health, observer) {
            observer(&health);
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

/// Opens the platform keyring on demand and keeps it once it connected; a failed connection is tried
/// again next time, so starting gnome-keyring after the app works without a restart.
#[derive(Clone, Default)]
pub struct VaultSource {
    cached: Arc<Mutex<Option<Vault>>>,
    /// A store given by a test (the mock keyring), used instead of the platform's.
    fixed: Option<Vault>,
}

impl VaultSource {
    pub fn fixed(vault: Vault) -> Self {
        Self { cached: Arc::default(), fixed: Some(vault) }
    }

    /// Blocking.
    pub fn open(&self) -> Vault {
        if let Some(v) = &self.fixed {
            return v.clone();
        }
        let mut cached = lock(&self.cached);
        if let Some(v) = cached.as_ref() {
            return v.clone();
        }
        let v = Vault::platform();
        if v.is_connected() {
            *cached = Some(v.clone());
        }
        v
    }
}

/// One environment's records.
#[derive(Debug, Clone, Default)]
struct EnvRecords {
    progress: Progress,
    link: LinkRecord,
    stamps: StampsRecord,
    identifiers: IdentifiersRecord,
    approval: ApprovalRecord,
    savings: SavingsRecord,
}

/// A sign-in open in the browser, as remembered across a restart: never the state itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SignInInBrowser {
    state_hash: String,
    started_at: u64,
}

/// Tokens USPS issued that the keyring did not take yet (a refresh rotates the refresh token: losing
/// the new one would break the link), kept in memory and written again until the keyring takes them.
#[derive(Clone)]
pub struct UnsavedTokens {
    pub access: SecretString,
    pub refresh: Option<SecretString>,
}

/// The keyring as the flows use it: owned, so it goes to the blocking pool (every keyring call is a
/// D-Bus round trip). Opening an environment's entries for the first time after an upgrade moves
/// the entries of the older version under that environment's names.
#[derive(Clone)]
pub struct VaultAccess {
    source: VaultSource,
    legacy: Arc<Mutex<Option<Environment>>>,
    persist: Arc<dyn Persist>,
}

impl VaultAccess {
    /// The keyring entries of one environment. Blocking.
    pub fn open(&self, env: Environment) -> Vault {
        let vault = self.source.open().scoped(env.key());
        if self.persist.is_newer_file() {
            return vault.read_only();
        }
        let mut legacy = lock(&self.legacy);
        if *legacy == Some(env) && vault.is_connected() {
            match vault.adopt_unscoped() {
                Ok(moved) => {
                    tracing::info!(
                        "moved {moved} keyring entries of an older version to the {} environment",
                        env.label()
                    );
                    if self.persist.save(KEY_LEGACY_KEYRING, serde_json::Value::Null).is_ok() {
                        *legacy = None;
                    }
                }
                Err(e) => tracing::warn!("could not move the older keyring entries yet: {e}"),
            }
        }
        vault
    }

    /// The keyring itself, for its status.
    pub fn keyring(&self) -> Vault {
        self.source.open()
    }
}

/// The sandbox's own USPS developer app: the Sandbox signs in with it when the owner named no app
/// of their own, and its sign-in service holds it.
pub struct SandboxApp {
    pub client_id: String,
    pub secret: SecretString,
}

impl SandboxApp {
    /// The app the in-process sandbox accepts (its crate's, in one place here).
    fn of_the_sandbox() -> Self {
        Self {
            client_id: uspslink_sandbox::usps::CLIENT_ID.into(),
            secret: SecretString::from(uspslink_sandbox::usps::CLIENT_SECRET),
        }
    }
}

/// The Sandbox environment's servers, in this process: the fake USPS and ShipEngine, and the real
/// sign-in service (`uspslink-broker`) in front of it with the sandbox's USPS app, so the default
/// first run signs in exactly the way a live one does.
struct SandboxServices {
    sandbox: Sandbox,
    sign_in_service: uspslink_broker::Broker,
    /// The per-run token the sandbox's `/sandbox/*` helpers require.
    #[cfg_attr(not(test), allow(dead_code))]
    helper_token: String,
}

impl SandboxServices {
    /// The sandbox and the sign-in service in front of it, both answering only this computer's
    /// loopback names (no DNS rebinding) and the sandbox's helpers only with this run's token,
    /// which `token_file` (private to the user) hands to whoever drives the Sandbox (the tests).
    async fn start(
        token_file: Option<std::path::PathBuf>,
        pkce: uspslink_sandbox::Pkce,
    ) -> std::io::Result<SandboxServices> {
        let helper_token = uspslink_core::usps::random_token();
        let options = uspslink_sandbox::SandboxOptions { pkce, helper_token: Some(helper_token.clone()) };
        let sandbox = Sandbox::start_with("127.0.0.1:0", options).await?;
        if let Some(file) = token_file {
            if let Err(e) = uspslink_core::durable::write_atomic(&file, helper_token.as_bytes()) {
                tracing::warn!("could not write the sandbox helpers' token to {}: {e}", file.display());
            }
        }
        let (api, authorize) = (sandbox.base_url(), format!("{}/cop-navigator", sandbox.base_url()));
        let sign_in_service = uspslink_broker::Broker::start("127.0.0.1:0", |addr| {
            let app = SandboxApp::of_the_sandbox();
            let mut config = uspslink_broker::Config::new(
                &api,
                &authorize,
                &app.client_id,
                app.secret,
                &format!("http://{addr}"),
                uspslink_broker::seal::Keys::random(),
            )
            .expect("the sandbox's addresses are URLs");
            config.require_loopback_host = true;
            config
        })
        .await?;
        tracing::info!(
            "sandbox listening on {}, its sign-in service on {}",
            sandbox.base_url(),
            sign_in_service.base_url()
        );
        Ok(SandboxServices { sandbox, sign_in_service, helper_token })
    }
}

pub struct AppState {
    started: Instant,
    persist: Arc<ReportingPersist>,
    preferences: Mutex<Preferences>,
    /// The run's configuration, read once at start.
    pub(crate) config: AppConfig,
    clock: Clock,
    records: Mutex<HashMap<Environment, EnvRecords>>,
    vault: VaultAccess,
    sandbox: tokio::sync::OnceCell<SandboxServices>,
    /// Where the in-app sandbox's helper token is written (the data folder); none in unit tests.
    sandbox_token_file: std::sync::OnceLock<std::path::PathBuf>,
    deep_links: Mutex<VecDeque<DeepLinkNotice>>,
    pub(crate) attempts: Mutex<AttemptStore>,
    /// Fingerprints of this run's open sign-ins and of the last run's (still within 10 minutes).
    sign_ins: Mutex<Vec<SignInInBrowser>>,
    /// The last run's, as loaded at start: a callback for one of these gets "started before a restart".
    sign_ins_before_restart: Vec<SignInInBrowser>,
    /// The last attempt's failure, until the next attempt (not persisted: a restart starts clean).
    link_failure: Mutex<Option<IpcError>>,
    storage_notice: Mutex<Option<StorageNotice>>,
    unsaved_tokens: Mutex<HashMap<Environment, UnsavedTokens>>,
    retry_observer: Mutex<Option<RetryObserver>>,
    pub(crate) refresh_lock: tokio::sync::Mutex<()>,
    /// One Stamps.com registration and one SMS request at a time, whatever the UI sends.
    pub(crate) register_in_flight: tokio::sync::Mutex<()>,
    pub(crate) sms_in_flight: tokio::sync::Mutex<()>,
    /// One approval check at a time (the watch's and *Check now*), so two never spend the quota
    /// twice or race on the record.
    pub(crate) approval_in_flight: tokio::sync::Mutex<()>,
    /// Wakes the background watch early: the link completed, the environment changed.
    pub(crate) watch_wake: tokio::sync::Notify,
    /// Held by the watch for each tick; taken for good (set to true) by *Quit*, which then waits
    /// for a tick in progress to end, so no save is cut short.
    pub(crate) watch_gate: tokio::sync::Mutex<bool>,
    background: Mutex<BackgroundRecord>,
    /// The screen the window opens on next (a notification was clicked while it was closed).
    open_on: Mutex<Option<crate::flows::background::Route>>,
    /// The window was closed into the tray: the app keeps running without one.
    in_tray: std::sync::atomic::AtomicBool,
}

fn storage_error(e: impl std::fmt::Display) -> IpcError {
    IpcError::new(
        ErrorKind::Storage,
        format!("Could not save your progress: {e}. Nothing was changed; what you typed is still on screen. Try again once this is fixed."),
    )
}

/// Where a record this version cannot read is kept: under its own key, so the next save of that
/// record (starting from defaults) never takes it with it.
pub const SET_ASIDE_PREFIX: &str = "set-aside/";

/// A stored record, or the defaults when there is none. One this version cannot read is first
/// copied aside (`set-aside/<key>@<unix seconds>`) and named in the second value.
fn read_or_set_aside<T: serde::de::DeserializeOwned + Default>(
    persist: &dyn Persist,
    key: &str,
) -> (T, Option<String>) {
    let Some(raw) = persist.load(key) else { return (T::default(), None) };
    match serde_json::from_value(raw.clone()) {
        Ok(t) => (t, None),
        Err(e) => {
            let aside = format!("{SET_ASIDE_PREFIX}{key}@{}", unix_now());
            match persist.save(&aside, raw) {
                Ok(()) => tracing::warn!("stored {key} unreadable ({e}); kept as {aside}, that part starts fresh"),
                Err(save) => tracing::error!("stored {key} unreadable ({e}) and could not be kept aside ({save})"),
            }
            (T::default(), Some(aside))
        }
    }
}

fn read<T: serde::de::DeserializeOwned + Default>(persist: &dyn Persist, key: &str) -> T {
    read_or_set_aside(persist, key).0
}

impl AppState {
    /// The state over any persistence (tests use an in-memory one and the mock keyring).
    pub fn open(
        persist: Arc<dyn Persist>,
        config: AppConfig,
        started: Instant,
        vault: VaultSource,
        storage_notice: Option<StorageNotice>,
    ) -> Self {
        let persist = Arc::new(ReportingPersist {
            inner: persist,
            failing: std::sync::atomic::AtomicBool::new(false),
            observer: Mutex::new(None),
        });
        let mut preferences: Preferences = read(&*persist, KEY_PREFERENCES);
        // Settings shows the method in force; files from before the choice get it decided here.
        preferences.usps_sign_in = Some(preferences.sign_in_method());
        let legacy_keyring = migrate_to_environments(&*persist, preferences.environment);
        let now = unix_now();
        let before: Vec<SignInInBrowser> = read::<Vec<SignInInBrowser>>(&*persist, KEY_SIGN_INS)
            .into_iter()
            .filter(|s| now.saturating_sub(s.started_at) <= ATTEMPT_TTL.as_secs())
            .collect();
        Self {
            started,
            persist: persist.clone(),
            preferences: Mutex::new(preferences),
            config,
            clock: Clock::system(),
            records: Mutex::new(HashMap::new()),
            vault: VaultAccess {
                source: vault,
                legacy: Arc::new(Mutex::new(legacy_keyring)),
                persist: persist.clone(),
            },
            sandbox: tokio::sync::OnceCell::new(),
            sandbox_token_file: std::sync::OnceLock::new(),
            deep_links: Mutex::new(VecDeque::new()),
            attempts: Mutex::new(AttemptStore::default()),
            sign_ins: Mutex::new(before.clone()),
            sign_ins_before_restart: before,
            link_failure: Mutex::new(None),
            storage_notice: Mutex::new(storage_notice),
            unsaved_tokens: Mutex::new(HashMap::new()),
            retry_observer: Mutex::new(None),
            refresh_lock: tokio::sync::Mutex::new(()),
            register_in_flight: tokio::sync::Mutex::new(()),
            sms_in_flight: tokio::sync::Mutex::new(()),
            approval_in_flight: tokio::sync::Mutex::new(()),
            watch_wake: tokio::sync::Notify::new(),
            watch_gate: tokio::sync::Mutex::new(false),
            background: Mutex::new(read(&*persist, KEY_BACKGROUND)),
            open_on: Mutex::new(None),
            in_tray: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn background_record(&self) -> BackgroundRecord {
        lock(&self.background).clone()
    }

    /// Change what was said once, saved before it counts.
    pub fn update_background(&self, change: impl FnOnce(&mut BackgroundRecord)) -> Result<(), IpcError> {
        let mut current = lock(&self.background);
        let mut next = current.clone();
        change(&mut next);
        if next != *current {
            self.persist
                .save(KEY_BACKGROUND, serde_json::to_value(&next).map_err(storage_error)?)
                .map_err(storage_error)?;
            *current = next;
        }
        Ok(())
    }

    /// A notification was clicked: the window opens on `route` (read once by the window).
    pub fn set_open_on(&self, route: crate::flows::background::Route) {
        *lock(&self.open_on) = Some(route);
    }

    pub fn take_open_on(&self) -> Option<crate::flows::background::Route> {
        lock(&self.open_on).take()
    }

    pub fn in_tray(&self) -> bool {
        self.in_tray.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn set_in_tray(&self, on: bool) {
        self.in_tray.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Unix seconds by the state's clock (the system's; a test's in tests).
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// The same state reading `clock` (tests move time without sleeping).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn elapsed_ms(&self) -> u32 {
        self.started.elapsed().as_millis().min(u32::MAX as u128) as u32
    }

    /// The keyring entries of one environment. Blocking (D-Bus): async code uses [`Self::vault_access`]
    /// on the blocking pool.
    pub fn vault(&self, env: Environment) -> Vault {
        self.vault.open(env)
    }

    pub fn vault_access(&self) -> VaultAccess {
        self.vault.clone()
    }

    /// Where every save reports whether saving works (the window shows a problem until it does).
    pub fn set_storage_observer(&self, observer: StorageObserver) {
        *lock(&self.persist.observer) = Some(observer);
    }

    /// Where retried calls report their waits (the UI counts them down).
    pub fn set_retry_observer(&self, observer: RetryObserver) {
        *lock(&self.retry_observer) = Some(observer);
    }

    /// The retry policy for API clients, with the UI's observer.
    pub fn retry(&self) -> Retry {
        match lock(&self.retry_observer).clone() {
            Some(o) => Retry::default().with_observer(o),
            None => Retry::default(),
        }
    }

    pub fn preferences(&self) -> Preferences {
        lock(&self.preferences).clone()
    }

    pub fn environment(&self) -> Environment {
        self.config.environment_override.unwrap_or_else(|| lock(&self.preferences).environment)
    }

    /// Start the in-process sandbox, and the sign-in service in front of it, if the Sandbox
    /// environment is in force. Idempotent.
    pub async fn ensure_sandbox(&self) -> Result<Option<String>, IpcError> {
        if self.environment() != Environment::Sandbox {
            return Ok(None);
        }
        let services = self
            .sandbox
            .get_or_try_init(|| {
                SandboxServices::start(self.sandbox_token_file.get().cloned(), self.config.sandbox_pkce)
            })
            .await
            .map_err(|e| IpcError::new(ErrorKind::Internal, format!("the sandbox could not start: {e}")))?;
        Ok(Some(services.sandbox.base_url()))
    }

    /// The Sandbox's own USPS app (the sandbox started first).
    pub async fn sandbox_app(&self) -> Result<SandboxApp, IpcError> {
        self.ensure_sandbox().await?;
        Ok(SandboxApp::of_the_sandbox())
    }

    /// The in-process sandbox, for tests that make it misbehave.
    #[cfg(test)]
    pub(crate) fn sandbox(&self) -> &Sandbox {
        &self.sandbox.get().expect("the sandbox was started (endpoints_ready)").sandbox
    }

    /// POST to one of the in-process sandbox's `/sandbox/*` helpers, with this run's token.
    #[cfg(test)]
    pub(crate) async fn sandbox_helper(&self, path: &str, body: serde_json::Value) -> u16 {
        let services = self.sandbox.get().expect("the sandbox was started (endpoints_ready)");
        let url = format!("{}{path}", services.sandbox.base_url());
        let r = reqwest::Client::new().post(url).bearer_auth(&services.helper_token).json(&body).send().await;
        r.expect("the sandbox answers").status().as_u16()
    }

    /// Write the in-app sandbox's helper token to `file` when it starts (see [`SandboxServices::start`]).
    pub fn set_sandbox_token_file(&self, file: std::path::PathBuf) {
        let _ = self.sandbox_token_file.set(file);
    }

    /// The endpoints of an environment; None for the Sandbox while it has not started yet.
    pub fn endpoints_of(&self, env: Environment) -> Option<Endpoints> {
        match (env, self.sandbox.get()) {
            (Environment::Sandbox, None) => None,
            (Environment::Sandbox, Some(s)) => {
                let service = s.sign_in_service.base_url();
                Some(Endpoints::for_environment(env, &s.sandbox.base_url(), Some(&service), &self.config.endpoints))
            }
            _ => Some(Endpoints::for_environment(env, "", None, &self.config.endpoints)),
        }
    }

    pub fn endpoints(&self) -> Option<Endpoints> {
        self.endpoints_of(self.environment())
    }

    /// The endpoints of `env`, starting the sandbox first where it is needed.
    pub async fn endpoints_ready(&self, env: Environment) -> Result<Endpoints, IpcError> {
        if env == Environment::Sandbox {
            self.ensure_sandbox().await?;
        }
        self.endpoints_of(env)
            .ok_or_else(|| IpcError::new(ErrorKind::Internal, "the sandbox is still starting; try again"))
    }

    /// One record of `env`; one this version cannot read is kept aside and said (never replaced
    /// silently by the defaults' next save).
    fn read_record<T: serde::de::DeserializeOwned + Default>(&self, env: Environment, name: &str) -> T {
        let (value, set_aside) = read_or_set_aside(&*self.persist, &env_key(env, name));
        if let Some(aside) = set_aside {
            *lock(&self.storage_notice) = Some(StorageNotice {
                kind: StorageNoticeKind::SetAside,
                message: format!(
                    "Part of your progress ({}: {name}) could not be read by this version of uspslink. It was kept \
                     in the progress file as \"{aside}\" and that part starts fresh; nothing else changed.",
                    env.label()
                ),
            });
        }
        value
    }

    /// Read one environment's records, loading them from the store on first use.
    fn with_records<T>(&self, env: Environment, f: impl FnOnce(&mut EnvRecords) -> T) -> T {
        let mut all = lock(&self.records);
        let records = all.entry(env).or_insert_with(|| EnvRecords {
            progress: self.read_record(env, NAME_PROGRESS),
            link: self.read_record(env, NAME_USPS_LINK),
            stamps: self.read_record(env, NAME_STAMPS),
            identifiers: self.read_record(env, NAME_IDENTIFIERS),
            approval: self.read_record(env, NAME_APPROVAL),
            savings: self.read_record(env, NAME_SAVINGS),
        });
        f(records)
    }

    /// Persist a record first, then make it current: a failed save changes nothing.
    fn replace<T: Serialize>(
        &self,
        env: Environment,
        name: &str,
        field: impl FnOnce(&mut EnvRecords) -> &mut T,
        value: T,
    ) -> Result<(), IpcError> {
        self.with_records(env, |r| {
            let json = serde_json::to_value(&value).map_err(storage_error)?;
            self.persist.save(&env_key(env, name), json).map_err(storage_error)?;
            *field(r) = value;
            Ok(())
        })
    }

    pub fn view(&self, env: Environment) -> DashboardView {
        self.with_records(env, |r| r.progress.view())
    }

    pub fn snapshot(&self) -> AppSnapshot {
        // Each lock in its own statement: a guard inside the struct literal would live to its end
        // and deadlock with endpoints() -> environment().
        let environment = self.environment();
        let view = self.view(environment);
        let preferences = self.preferences();
        AppSnapshot {
            view,
            sign_in_moved_from: self.sign_in_moved_from(environment, &preferences),
            open_on: self.take_open_on(),
            offer_open_at_login: !self.background_record().login_offer_answered,
            preferences,
            environment,
            environment_label: environment.label().to_string(),
            endpoints: self.endpoints(),
            recent_deep_links: self.recent_deep_links(),
            usps_link: self.link_status(environment),
            stamps: self.stamps_record(environment),
            identifiers: self.identifiers_view(environment),
            approval: self.approval_view(environment),
            savings: self.savings_view(environment),
            storage_notice: lock(&self.storage_notice).clone(),
        }
    }

    /// See [`AppSnapshot::sign_in_moved_from`]. The Sandbox has one service only, the app's own.
    fn sign_in_moved_from(&self, env: Environment, preferences: &Preferences) -> Option<String> {
        if env == Environment::Sandbox {
            return None;
        }
        let endpoints = self.endpoints_of(env)?;
        let named_now = match preferences.sign_in_method() {
            SignInMethod::Service => preferences.sign_in_service(env, &endpoints),
            SignInMethod::OwnApp => None,
        };
        self.link_record(env).moved_from(named_now.as_deref()).map(str::to_string)
    }

    /// The user read the storage notice: it is not shown again. A newer version's file stays said
    /// until the owner chooses what to do with it ([`Self::start_over_in_this_version`]).
    pub fn dismiss_storage_notice(&self) {
        let mut notice = lock(&self.storage_notice);
        if notice.as_ref().is_some_and(|n| n.kind != StorageNoticeKind::NewerFile) {
            *notice = None;
        }
    }

    /// The owner chose to start over in this version while a newer version's progress file is open:
    /// that file is kept aside as it is, and from now on progress is saved (the records in memory
    /// are already the fresh ones: nothing was read from that file). Returns the name it was kept as.
    pub fn start_over_in_this_version(&self) -> Result<Option<String>, IpcError> {
        let kept_as = self.persist.set_newer_file_aside().map_err(|e| storage_error(&e))?;
        let mut notice = lock(&self.storage_notice);
        if notice.as_ref().is_some_and(|n| n.kind == StorageNoticeKind::NewerFile) {
            *notice = None;
        }
        if let Some(name) = &kept_as {
            tracing::warn!("started over in this version; the newer version's progress was kept as {name}");
        }
        Ok(kept_as)
    }

    pub fn progress(&self, env: Environment) -> Progress {
        self.with_records(env, |r| r.progress.clone())
    }

    /// An event from the UI: only those a user may claim (see `OnboardingEvent::is_user_event`).
    pub fn apply_from_user(&self, env: Environment, event: OnboardingEvent) -> Result<DashboardView, IpcError> {
        if !event.is_user_event() {
            return Err(uspslink_core::onboarding::OnboardingError::NotAUserEvent.to_ipc());
        }
        self.apply(env, event)
    }

    /// Apply an onboarding event; persisted before it is visible, and unchanged on any error.
    pub fn apply(&self, env: Environment, event: OnboardingEvent) -> Result<DashboardView, IpcError> {
        self.with_records(env, |r| {
            let mut next = r.progress.clone();
            next.apply(event)?;
            if next != r.progress {
                let json = serde_json::to_value(&next).map_err(storage_error)?;
                self.persist.save(&env_key(env, NAME_PROGRESS), json).map_err(storage_error)?;
                r.progress = next;
            }
            Ok(r.progress.view())
        })
    }

    pub fn link_record(&self, env: Environment) -> LinkRecord {
        self.with_records(env, |r| r.link.clone())
    }

    pub fn set_link_record(&self, env: Environment, record: LinkRecord) -> Result<(), IpcError> {
        self.replace(env, NAME_USPS_LINK, |r| &mut r.link, record)
    }

    pub fn stamps_record(&self, env: Environment) -> StampsRecord {
        self.with_records(env, |r| r.stamps.clone())
    }

    pub fn set_stamps_record(&self, env: Environment, record: StampsRecord) -> Result<(), IpcError> {
        self.replace(env, NAME_STAMPS, |r| &mut r.stamps, record)
    }

    pub fn identifiers_record(&self, env: Environment) -> IdentifiersRecord {
        self.with_records(env, |r| r.identifiers.clone())
    }

    pub fn set_identifiers_record(&self, env: Environment, record: IdentifiersRecord) -> Result<(), IpcError> {
        self.replace(env, NAME_IDENTIFIERS, |r| &mut r.identifiers, record)
    }

    /// The identifiers step as shown: the draft, pre-filled from the USPS sign-in where empty.
    pub fn identifiers_view(&self, env: Environment) -> IdentifiersView {
        self.with_records(env, |r| {
            r.identifiers.view(&r.link.hints, &r.savings.summary_lines(r.approval.is_approved()))
        })
    }

    pub fn savings_record(&self, env: Environment) -> SavingsRecord {
        self.with_records(env, |r| r.savings.clone())
    }

    pub fn set_savings_record(&self, env: Environment, record: SavingsRecord) -> Result<(), IpcError> {
        self.replace(env, NAME_SAVINGS, |r| &mut r.savings, record)
    }

    /// What the NSA rates save, as the dashboard shows it.
    pub fn savings_view(&self, env: Environment) -> SavingsView {
        self.with_records(env, |r| r.savings.view(r.approval.is_approved()))
    }

    /// The savings' lines for the summary and the diagnostics.
    pub fn savings_lines(&self, env: Environment) -> Vec<String> {
        self.with_records(env, |r| r.savings.summary_lines(r.approval.is_approved()))
    }

    pub fn approval_record(&self, env: Environment) -> ApprovalRecord {
        self.with_records(env, |r| r.approval.clone())
    }

    pub fn set_approval_record(&self, env: Environment, record: ApprovalRecord) -> Result<(), IpcError> {
        self.replace(env, NAME_APPROVAL, |r| &mut r.approval, record)
    }

    /// The approval watch as the dashboard shows it.
    pub fn approval_view(&self, env: Environment) -> ApprovalView {
        self.with_records(env, |r| {
            r.approval.view(&self.config.approval.schedule, r.progress.link_complete, self.now())
        })
    }

    pub fn set_link_failure(&self, failure: Option<IpcError>) {
        *lock(&self.link_failure) = failure;
    }

    /// The link as the UI shows it: waiting > failed > stored record. A sign-in open longer than its
    /// 10 minutes is not "Waiting" any more.
    pub fn link_status(&self, env: Environment) -> LinkStatus {
        if lock(&self.attempts).is_waiting_at(Instant::now()) {
            return LinkStatus::Waiting;
        }
        if let Some(f) = lock(&self.link_failure).clone() {
            return LinkStatus::Failed { kind: f.kind, message: f.message };
        }
        let record = self.link_record(env);
        if record.needs_reconnecting {
            LinkStatus::NeedsReconnecting { message: NEEDS_RECONNECTING.into() }
        } else if record.linked {
            LinkStatus::Linked { record }
        } else {
            LinkStatus::NotLinked
        }
    }

    /// Save Settings. A change of environment ends any sign-in of the old one: its answer must not
    /// complete in the new one.
    pub fn save_preferences(&self, new: Preferences) -> Result<(), IpcError> {
        new.validate()?;
        let mut current = lock(&self.preferences);
        let json = serde_json::to_value(&new).map_err(storage_error)?;
        self.persist.save(KEY_PREFERENCES, json).map_err(storage_error)?;
        if current.environment != new.environment {
            lock(&self.attempts).cancel_all();
            self.set_link_failure(None);
            let _ = self.forget_sign_ins(|_| true);
            // The watch looks at the new environment's link and approval now, not at its next tick.
            self.watch_wake.notify_one();
        }
        *current = new;
        Ok(())
    }

    /// A sign-in opened in the browser: remembered (by fingerprint) across a restart.
    pub fn remember_sign_in(&self, state: &str) -> Result<(), IpcError> {
        let mut list = lock(&self.sign_ins);
        let mut next = list.clone();
        next.push(SignInInBrowser { state_hash: callback::state_fingerprint(state), started_at: self.now() });
        let now = self.now();
        next.retain(|s| now.saturating_sub(s.started_at) <= ATTEMPT_TTL.as_secs());
        self.persist.save(KEY_SIGN_INS, serde_json::to_value(&next).map_err(storage_error)?).map_err(storage_error)?;
        *list = next;
        Ok(())
    }

    /// Forget the remembered sign-ins that `which` picks (answered, cancelled), and save that.
    pub fn forget_sign_ins(&self, which: impl Fn(&str) -> bool) -> Result<(), IpcError> {
        self.forget_sign_ins_in_memory(which);
        self.save_sign_ins()
    }

    /// The same without touching the disk, for the deep-link path: the window is told first, and
    /// [`Self::save_sign_ins`] follows (an fsync costs more than the whole rest of that path).
    pub fn forget_sign_ins_in_memory(&self, which: impl Fn(&str) -> bool) {
        lock(&self.sign_ins).retain(|s| !which(&s.state_hash));
    }

    /// Write the remembered sign-ins as they are in memory.
    pub fn save_sign_ins(&self) -> Result<(), IpcError> {
        let list = lock(&self.sign_ins);
        let json = serde_json::to_value(&*list).map_err(storage_error)?;
        if self.persist.load(KEY_SIGN_INS).as_ref() == Some(&json) {
            return Ok(());
        }
        self.persist.save(KEY_SIGN_INS, json).map_err(storage_error)
    }

    /// Whether a state belongs to a sign-in the previous run opened (within its 10 minutes).
    pub fn started_before_restart(&self, state: &str) -> bool {
        let hash = callback::state_fingerprint(state);
        self.sign_ins_before_restart.iter().any(|s| s.state_hash == hash)
            && lock(&self.sign_ins).iter().any(|s| s.state_hash == hash)
    }

    /// Remember a callback the app accepted, for a UI that mounts later (cold start).
    pub fn remember_deep_link(&self, summary: CallbackSummary) -> DeepLinkNotice {
        let notice = DeepLinkNotice { callback: summary, received_at_ms: self.elapsed_ms() };
        let mut links = lock(&self.deep_links);
        if links.len() == RECENT_LINKS {
            links.pop_front();
        }
        links.push_back(notice.clone());
        notice
    }

    pub fn recent_deep_links(&self) -> Vec<DeepLinkNotice> {
        lock(&self.deep_links).iter().cloned().collect()
    }

    /// Tokens the keyring did not take: kept for the next try, and used meanwhile.
    pub fn keep_unsaved_tokens(&self, env: Environment, tokens: UnsavedTokens) {
        lock(&self.unsaved_tokens).insert(env, tokens);
    }

    pub fn unsaved_tokens(&self, env: Environment) -> Option<UnsavedTokens> {
        lock(&self.unsaved_tokens).get(&env).cloned()
    }

    pub fn clear_unsaved_tokens(&self, env: Environment) {
        lock(&self.unsaved_tokens).remove(&env);
    }
}

/// Move the records of a store written before environments existed (top-level `progress`,
/// `usps_link`, …) under the environment the stored preferences named: those records were made
/// there. Each step is its own atomic save, new keys first, so a crash halfway is finished next
/// start. Returns the environment whose keyring entries still need their new names.
///
/// Behind the format number: only a file from before it (no `format` entry), or one whose move
/// began (the marker is its first save, and that save wrote the number), is migrated; otherwise a
/// format-1 file's top-level keys are never read as old records.
fn migrate_to_environments(persist: &dyn Persist, env: Environment) -> Option<Environment> {
    let marker: Option<Environment> = persist.load(KEY_LEGACY_KEYRING).and_then(|v| serde_json::from_value(v).ok());
    if marker.is_none() && persist.load(uspslink_core::progress_format::FORMAT_KEY).is_some() {
        return marker;
    }
    let legacy: Vec<(&str, serde_json::Value)> =
        ENV_RECORDS.iter().filter_map(|n| persist.load(n).map(|v| (*n, v))).collect();
    if legacy.is_empty() {
        return marker;
    }
    let result = (|| {
        let marker = serde_json::to_value(env).map_err(|e| PersistError::Io(e.to_string()))?;
        persist.save(KEY_LEGACY_KEYRING, marker)?;
        for (name, value) in &legacy {
            if persist.load(&env_key(env, name)).is_none() {
                persist.save(&env_key(env, name), value.clone())?;
            }
        }
        for (name, _) in &legacy {
            persist.save(name, serde_json::Value::Null)?;
        }
        Ok::<_, PersistError>(())
    })();
    match result {
        Ok(()) => tracing::info!("progress of an older version filed under the {} environment", env.label()),
        Err(e) => tracing::warn!("could not file the older progress under {} yet: {e}", env.label()),
    }
    Some(env)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use uspslink_core::onboarding::Step;

    #[tokio::test]
    async fn the_in_app_servers_answer_this_computer_only_and_their_helpers_this_runs_token_only() {
        let s = state_over(Arc::new(MemoryPersist::default()));
        let dir = std::env::temp_dir().join(format!("uspslink-sandbox-token-{}", std::process::id()));
        let file = dir.join("sandbox-helpers.token");
        s.set_sandbox_token_file(file.clone());
        let endpoints = s.endpoints_ready(Environment::Sandbox).await.unwrap();
        let token = std::fs::read_to_string(&file).unwrap();
        assert!(token.len() >= 40, "a fresh random token: {}", token.len());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let http = reqwest::Client::new();
        let status = |r: reqwest::RequestBuilder| async move { r.send().await.unwrap().status().as_u16() };
        let helper = format!("{}/sandbox/usps/payment-authorizations", endpoints.usps_api);
        assert_eq!(status(http.get(&helper)).await, 401, "no token");
        assert_eq!(status(http.get(&helper).bearer_auth("not-this-runs-token")).await, 401);
        assert_eq!(status(http.get(&helper).bearer_auth(&token)).await, 200);
        // A web page that reaches them through DNS rebinding names its own host: refused.
        let port = url::Url::parse(&endpoints.usps_api).unwrap().port().unwrap();
        let rebound = http.get(&helper).bearer_auth(&token).header("Host", format!("attacker.example:{port}"));
        assert_eq!(status(rebound).await, 421);
        let service = endpoints.sign_in_service.unwrap();
        let port = url::Url::parse(&service).unwrap().port().unwrap();
        let authorize = format!("{service}/v1/usps/authorize");
        let body = serde_json::json!({"code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"});
        let rebound = http.post(&authorize).json(&body).header("Host", format!("attacker.example:{port}"));
        assert_eq!(status(rebound).await, 421);
        assert_eq!(status(http.post(&authorize).json(&body)).await, 200, "the app itself is answered");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A store over a newer version's file: refuses every save until it is set aside.
    #[derive(Default)]
    struct NewerFilePersist {
        newer: std::sync::atomic::AtomicBool,
        saved: Mutex<Vec<String>>,
    }

    impl Persist for NewerFilePersist {
        fn load(&self, _key: &str) -> Option<serde_json::Value> {
            None
        }

        fn save(&self, key: &str, _value: serde_json::Value) -> Result<(), PersistError> {
            if self.newer.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(PersistError::NewerFile);
            }
            lock(&self.saved).push(key.into());
            Ok(())
        }

        fn is_newer_file(&self) -> bool {
            self.newer.load(std::sync::atomic::Ordering::SeqCst)
        }

        fn set_newer_file_aside(&self) -> Result<Option<String>, PersistError> {
            let was = self.newer.swap(false, std::sync::atomic::Ordering::SeqCst);
            Ok(was.then(|| "uspslink.json.newer-5".into()))
        }
    }

    #[test]
    fn a_newer_versions_file_stays_said_and_unwritten_until_the_owner_starts_over() {
        use uspslink_core::progress_format::FileFormat;
        let persist = Arc::new(NewerFilePersist::default());
        persist.newer.store(true, std::sync::atomic::Ordering::SeqCst);
        let notice = StorageNotice::newer_file(FileFormat::Newer(2));
        assert!(StorageNotice::newer_file(FileFormat::Readable).is_none());
        let s = AppState::open(
            persist.clone(),
            AppConfig::default(),
            Instant::now(),
            VaultSource::fixed(Vault::mock()),
            notice,
        );
        let health = Arc::new(Mutex::new(Vec::new()));
        let seen = health.clone();
        s.set_storage_observer(Arc::new(move |h: &StorageHealth| lock(&seen).push(h.problem.is_some())));

        let refused = s.apply_from_user(SB, OnboardingEvent::DismissPopup).unwrap_err();
        assert_eq!(refused.kind, ErrorKind::Storage);
        assert!(refused.message.contains("newer version of uspslink"), "{}", refused.message);
        s.dismiss_storage_notice();
        let kept = s.snapshot().storage_notice.expect("said until the owner chooses");
        assert_eq!(kept.kind, StorageNoticeKind::NewerFile);
        assert!(kept.message.contains("format 2"), "{}", kept.message);
        assert!(lock(&persist.saved).is_empty());
        let key = SecretString::from("newer-versions-key");
        let refused = s.vault(SB).set(uspslink_core::vault::SecretSlot::ShipEngineApiKey, &key).unwrap_err();
        assert!(matches!(refused, uspslink_core::vault::VaultError::ReadOnly), "its keys are not changed either");

        assert_eq!(s.start_over_in_this_version().unwrap().as_deref(), Some("uspslink.json.newer-5"));
        assert!(s.snapshot().storage_notice.is_none());
        s.apply_from_user(SB, OnboardingEvent::DismissPopup).unwrap();
        assert_eq!(*lock(&persist.saved), vec![env_key(SB, NAME_PROGRESS)]);
        assert_eq!(*lock(&health), vec![true, false], "a problem, then saving works again");
        assert_eq!(s.start_over_in_this_version().unwrap(), None, "nothing more to set aside");
        s.vault(SB).set(uspslink_core::vault::SecretSlot::ShipEngineApiKey, &key).unwrap();
    }

    #[test]
    fn a_record_this_version_cannot_read_is_kept_aside_and_said_never_overwritten() {
        let persist = Arc::new(MemoryPersist::default());
        let other_shape = serde_json::json!({"carrier_id": 42, "verified": "a newer version's words"});
        lock(&persist.values).insert("sandbox/stamps".into(), other_shape.clone());
        let s = state_over(persist.clone());
        assert_eq!(s.stamps_record(Environment::Sandbox), StampsRecord::default(), "that part starts fresh");
        let aside: Vec<(String, serde_json::Value)> = lock(&persist.values)
            .iter()
            .filter(|(k, _)| k.starts_with("set-aside/sandbox/stamps@"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        assert_eq!(aside[0].1, other_shape);
        let notice = s.snapshot().storage_notice.expect("said");
        assert_eq!(notice.kind, StorageNoticeKind::SetAside);
        assert!(notice.message.contains(&aside[0].0), "{}", notice.message);
        // The next save of that record keeps the copy; the other records are untouched.
        s.set_stamps_record(Environment::Sandbox, StampsRecord { key_checked: true, ..StampsRecord::default() })
            .unwrap();
        assert_eq!(lock(&persist.values)[&aside[0].0], other_shape);
        assert_eq!(s.progress(Environment::Sandbox), Progress::default());
    }

    /// The store in memory, with a switch that makes every save fail (a full disk).
    #[derive(Default)]
    pub(crate) struct MemoryPersist {
        pub(crate) values: Mutex<HashMap<String, serde_json::Value>>,
        pub(crate) saved: Mutex<Vec<(String, serde_json::Value)>>,
        pub(crate) fail: std::sync::atomic::AtomicBool,
    }

    impl Persist for MemoryPersist {
        fn load(&self, key: &str) -> Option<serde_json::Value> {
            lock(&self.values).get(key).cloned().filter(|v| !v.is_null())
        }

        fn save(&self, key: &str, value: serde_json::Value) -> Result<(), PersistError> {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(PersistError::Io("the disk is full".into()));
            }
            lock(&self.values).insert(key.into(), value.clone());
            lock(&self.saved).push((key.into(), value));
            Ok(())
        }
    }

    pub(crate) fn state_over(persist: Arc<MemoryPersist>) -> AppState {
        state_with_keyring(persist, Vault::mock())
    }

    pub(crate) fn state_with_keyring(persist: Arc<MemoryPersist>, keyring: Vault) -> AppState {
        AppState::open(persist, AppConfig::default(), Instant::now(), VaultSource::fixed(keyring), None)
    }

    fn state(persist: Arc<MemoryPersist>) -> AppState {
        state_over(persist)
    }

    const SB: Environment = Environment::Sandbox;

    #[test]
    fn events_are_persisted_before_they_show() {
        let p = Arc::new(MemoryPersist::default());
        let s = state(p.clone());
        let view = s.apply(SB, OnboardingEvent::OpenGuidelines).unwrap();
        assert!(!view.show_popup);
        let saved = lock(&p.saved);
        assert_eq!(saved.len(), 1);
        assert_eq!(saved[0].0, "sandbox/progress");
        assert_eq!(saved[0].1["popup_dismissed"], true);
    }

    #[test]
    fn a_failed_save_changes_nothing() {
        let p = Arc::new(MemoryPersist::default());
        let s = state(p.clone());
        p.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let e = s.apply(SB, OnboardingEvent::Complete(Step::BeforeYouStart)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Storage);
        assert!(e.message.contains("the disk is full") && e.message.contains("Nothing was changed"), "{}", e.message);
        assert_eq!(s.snapshot().view.current_step, Step::BeforeYouStart);
        let e = s.set_stamps_record(SB, StampsRecord { key_checked: true, ..StampsRecord::default() }).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Storage);
        assert!(!s.stamps_record(SB).key_checked);
        assert!(s
            .save_preferences(Preferences { environment: Environment::Production, ..Preferences::default() })
            .is_err());
        assert_eq!(s.environment(), SB);
    }

    #[test]
    fn every_save_reports_when_saving_stops_and_starts_working() {
        use std::sync::atomic::Ordering::SeqCst;
        let p = Arc::new(MemoryPersist::default());
        let s = state(p.clone());
        let seen: Arc<Mutex<Vec<Option<ErrorKind>>>> = Arc::default();
        let log = seen.clone();
        s.set_storage_observer(Arc::new(move |h: &StorageHealth| {
            lock(&log).push(h.problem.as_ref().map(|e| e.kind));
        }));
        s.apply(SB, OnboardingEvent::OpenGuidelines).unwrap();
        assert!(lock(&seen).is_empty(), "a save that works while all is well says nothing");
        p.fail.store(true, SeqCst);
        // Not only the commands' saves: a record the watch writes in the background reports too.
        s.set_approval_record(SB, ApprovalRecord { notified: true, ..ApprovalRecord::default() }).unwrap_err();
        s.set_stamps_record(SB, StampsRecord { key_checked: true, ..StampsRecord::default() }).unwrap_err();
        assert_eq!(*lock(&seen), vec![Some(ErrorKind::Storage), Some(ErrorKind::Storage)]);
        p.fail.store(false, SeqCst);
        s.set_stamps_record(SB, StampsRecord { key_checked: true, ..StampsRecord::default() }).unwrap();
        s.apply(SB, OnboardingEvent::Complete(Step::BeforeYouStart)).unwrap();
        assert_eq!(*lock(&seen), vec![Some(ErrorKind::Storage), Some(ErrorKind::Storage), None], "cleared once");
    }

    #[test]
    fn the_ui_cannot_complete_the_link_itself() {
        let p = Arc::new(MemoryPersist::default());
        let s = state(p.clone());
        let e = s.apply_from_user(SB, OnboardingEvent::LinkCompleted).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert!(lock(&p.saved).is_empty());
        assert!(s.apply_from_user(SB, OnboardingEvent::Complete(Step::BeforeYouStart)).is_ok());
    }

    #[test]
    fn invalid_preferences_are_refused_and_change_nothing() {
        let p = Arc::new(MemoryPersist::default());
        let s = state(p.clone());
        let before = s.snapshot().preferences;
        let bad = Preferences { redirect_uri: "http://evil.example/cb".into(), ..Preferences::default() };
        assert_eq!(s.save_preferences(bad).unwrap_err().kind, ErrorKind::InvalidInput);
        assert!(lock(&p.saved).is_empty());
        assert_eq!(s.snapshot().preferences, before);
        assert_eq!(before.usps_sign_in, Some(uspslink_core::settings::SignInMethod::Service), "decided at load");
    }

    #[test]
    fn environments_keep_their_own_progress() {
        let p = Arc::new(MemoryPersist::default());
        let s = state(p.clone());
        s.set_stamps_record(
            SB,
            StampsRecord {
                key_checked: true,
                carrier_id: Some("se-100001".into()),
                verified: true,
                ..StampsRecord::default()
            },
        )
        .unwrap();
        s.apply(SB, OnboardingEvent::OpenGuidelines).unwrap();
        s.save_preferences(Preferences { environment: Environment::Production, ..Preferences::default() }).unwrap();
        let snap = s.snapshot();
        assert_eq!(snap.environment, Environment::Production);
        assert_eq!(snap.stamps, StampsRecord::default(), "nothing from the Sandbox is shown as real");
        assert!(snap.view.show_popup, "Production has its own progress");
        s.save_preferences(Preferences::default()).unwrap();
        assert_eq!(s.snapshot().stamps.carrier_id.as_deref(), Some("se-100001"), "and the Sandbox keeps its own");
        // After a restart, too.
        let again = state(p.clone());
        assert_eq!(again.stamps_record(SB).carrier_id.as_deref(), Some("se-100001"));
        assert_eq!(again.stamps_record(Environment::Production), StampsRecord::default());
    }

    #[test]
    fn an_older_store_is_filed_under_its_environment_once() {
        let p = Arc::new(MemoryPersist::default());
        {
            let mut v = lock(&p.values);
            v.insert("preferences".into(), serde_json::json!({"environment": "sandbox"}));
            v.insert("stamps".into(), serde_json::json!({"key_checked": true, "carrier_id": "se-100001"}));
            v.insert("progress".into(), serde_json::json!({"popup_dismissed": true}));
        }
        let s = state(p.clone());
        assert_eq!(s.stamps_record(SB).carrier_id.as_deref(), Some("se-100001"));
        assert!(!s.view(SB).show_popup);
        assert_eq!(s.stamps_record(Environment::Production), StampsRecord::default());
        assert!(p.load("stamps").is_none(), "the old key is emptied");
        assert_eq!(p.load(KEY_LEGACY_KEYRING), Some(serde_json::json!("sandbox")));
        let writes = lock(&p.saved).len();
        drop(state(p.clone()));
        assert_eq!(lock(&p.saved).len(), writes, "a second start has nothing to move");
    }

    #[test]
    fn a_move_cut_short_after_its_first_save_is_finished_next_start() {
        // The marker was saved (and with it the format number), then the disk filled or the app
        // stopped before the records moved.
        let p = Arc::new(MemoryPersist::default());
        {
            let mut v = lock(&p.values);
            v.insert("format".into(), serde_json::json!(1));
            v.insert(KEY_LEGACY_KEYRING.into(), serde_json::json!("sandbox"));
            v.insert("stamps".into(), serde_json::json!({"key_checked": true, "carrier_id": "se-100001"}));
        }
        let s = state(p.clone());
        assert_eq!(s.stamps_record(SB).carrier_id.as_deref(), Some("se-100001"));
        assert!(p.load("stamps").is_none(), "moved");
    }

    #[test]
    fn a_file_of_this_format_is_never_migrated() {
        let p = Arc::new(MemoryPersist::default());
        {
            let mut v = lock(&p.values);
            v.insert("format".into(), serde_json::json!(1));
            v.insert("stamps".into(), serde_json::json!({"key_checked": true, "carrier_id": "se-100001"}));
        }
        let s = state(p.clone());
        assert_eq!(s.stamps_record(SB), StampsRecord::default(), "a top-level key of a format-1 file is no record");
        assert!(lock(&p.saved).is_empty(), "nothing moved or written");
        assert!(p.load("stamps").is_some());
    }

    #[test]
    fn older_keyring_entries_move_to_their_environment_on_first_use() {
        use secrecy::ExposeSecret;
        use uspslink_core::vault::SecretSlot;
        let p = Arc::new(MemoryPersist::default());
        lock(&p.values).insert("usps_link".into(), serde_json::json!({"linked": true}));
        let keyring = Vault::mock();
        keyring.set(SecretSlot::UspsRefreshToken, &SecretString::from("old-refresh")).unwrap();
        let s =
            AppState::open(p.clone(), AppConfig::default(), Instant::now(), VaultSource::fixed(keyring.clone()), None);
        assert!(s.vault(Environment::Production).get(SecretSlot::UspsRefreshToken).unwrap().is_none());
        let sandbox = s.vault(SB);
        assert_eq!(sandbox.get(SecretSlot::UspsRefreshToken).unwrap().unwrap().expose_secret(), "old-refresh");
        assert!(keyring.get(SecretSlot::UspsRefreshToken).unwrap().is_none());
        assert!(p.load(KEY_LEGACY_KEYRING).is_none(), "moved once");
    }

    #[test]
    fn sign_ins_are_remembered_across_a_restart_by_fingerprint_only() {
        let p = Arc::new(MemoryPersist::default());
        let s = state(p.clone());
        s.remember_sign_in("theRealState0123456789").unwrap();
        let stored = serde_json::to_string(&p.load(KEY_SIGN_INS)).unwrap();
        assert!(!stored.contains("theRealState0123456789"), "the state itself is never stored: {stored}");
        assert!(!s.started_before_restart("theRealState0123456789"), "this run's own sign-in");
        let after = state(p.clone());
        assert!(after.started_before_restart("theRealState0123456789"));
        assert!(!after.started_before_restart("someOtherState012345"));
        after.forget_sign_ins(|_| true).unwrap();
        assert!(!after.started_before_restart("theRealState0123456789"), "said once");
    }

    #[test]
    fn a_poisoned_lock_does_not_take_the_app_down() {
        let s = Arc::new(state(Arc::new(MemoryPersist::default())));
        let s2 = s.clone();
        let _ = std::thread::spawn(move || {
            let _g = s2.deep_links.lock().unwrap();
            panic!("a command panicked while holding a lock");
        })
        .join();
        assert!(s.deep_links.is_poisoned());
        assert!(s.snapshot().recent_deep_links.is_empty(), "later commands still work");
    }
}
