//! The app's state: preferences and progress (persisted through tauri-plugin-store after every
//! change, so a crash loses nothing), the vault, the in-process sandbox and the recent callbacks.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use tauri::Runtime;
use tauri_plugin_store::StoreExt;
use ts_rs::TS;
use uspslink_core::callback::{self, CallbackSummary};
use uspslink_core::error::HasKind;
use uspslink_core::onboarding::{DashboardView, OnboardingEvent, Progress};
use uspslink_core::payments::{IdentifiersRecord, IdentifiersView};
use uspslink_core::settings::{Endpoints, Environment, Preferences};
use uspslink_core::shipengine::StampsRecord;
use uspslink_core::usps::{AttemptStore, LinkRecord, LinkStatus};
use uspslink_core::vault::Vault;
use uspslink_core::{ErrorKind, IpcError};
use uspslink_sandbox::Sandbox;

/// The store file (in the app's data dir). Holds preferences and progress; never a secret.
pub const STORE_FILE: &str = "uspslink.json";
const KEY_PREFERENCES: &str = "preferences";
const KEY_PROGRESS: &str = "progress";
const KEY_USPS_LINK: &str = "usps_link";
const KEY_STAMPS: &str = "stamps";
const KEY_IDENTIFIERS: &str = "identifiers";
const RECENT_LINKS: usize = 10;
/// Forces the environment for this run (tests, demos) without touching the stored preference.
pub const ENV_ENVIRONMENT: &str = "USPSLINK_ENVIRONMENT";

/// A valid callback the app received.
#[derive(Debug, Clone, Serialize, TS)]
pub struct DeepLinkNotice {
    pub callback: CallbackSummary,
    /// Milliseconds since the app started (for ordering and the latency benchmark).
    pub received_at_ms: u32,
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
}

/// Writes a JSON value under a key and flushes it to disk. A trait so the state is not generic over
/// the Tauri runtime.
pub trait Persist: Send + Sync {
    fn save(&self, key: &str, value: serde_json::Value) -> Result<(), String>;
}

impl<R: Runtime> Persist for tauri_plugin_store::Store<R> {
    fn save(&self, key: &str, value: serde_json::Value) -> Result<(), String> {
        self.set(key, value);
        tauri_plugin_store::Store::save(self).map_err(|e| e.to_string())
    }
}

/// Opens the platform keyring on demand and keeps it once it connected; a failed connection is tried
/// again next time, so starting gnome-keyring after the app works without a restart.
#[derive(Clone, Default)]
pub struct VaultSource(Arc<Mutex<Option<Vault>>>);

impl VaultSource {
    /// Blocking.
    pub fn open(&self) -> Vault {
        let mut cached = self.0.lock().expect("vault");
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

pub struct AppState {
    started: Instant,
    persist: Arc<dyn Persist>,
    preferences: Mutex<Preferences>,
    progress: Mutex<Progress>,
    env_override: Option<Environment>,
    vault: VaultSource,
    sandbox: tokio::sync::OnceCell<Sandbox>,
    deep_links: Mutex<VecDeque<DeepLinkNotice>>,
    pub(crate) attempts: Mutex<AttemptStore>,
    link_record: Mutex<LinkRecord>,
    stamps: Mutex<StampsRecord>,
    identifiers: Mutex<IdentifiersRecord>,
    /// The last attempt's failure, until the next attempt (not persisted: a restart starts clean).
    link_failure: Mutex<Option<IpcError>>,
    pub(crate) refresh_lock: tokio::sync::Mutex<()>,
}

fn storage_error(e: impl std::fmt::Display) -> IpcError {
    IpcError::new(ErrorKind::Storage, format!("could not save your progress: {e}"))
}

impl AppState {
    pub fn load<R: Runtime>(app: &tauri::AppHandle<R>, started: Instant) -> Result<Self, Box<dyn std::error::Error>> {
        let store = app.store(STORE_FILE)?;
        fn read<T: serde::de::DeserializeOwned + Default>(v: Option<serde_json::Value>, key: &str) -> T {
            match v.map(serde_json::from_value) {
                Some(Ok(t)) => t,
                Some(Err(e)) => {
                    tracing::warn!("stored {key} unreadable ({e}); starting from defaults");
                    T::default()
                }
                None => T::default(),
            }
        }
        let preferences: Preferences = read(store.get(KEY_PREFERENCES), KEY_PREFERENCES);
        let progress: Progress = read(store.get(KEY_PROGRESS), KEY_PROGRESS);
        let link: LinkRecord = read(store.get(KEY_USPS_LINK), KEY_USPS_LINK);
        let stamps: StampsRecord = read(store.get(KEY_STAMPS), KEY_STAMPS);
        let identifiers: IdentifiersRecord = read(store.get(KEY_IDENTIFIERS), KEY_IDENTIFIERS);
        let env_override = std::env::var(ENV_ENVIRONMENT).ok().and_then(|v| {
            serde_json::from_value(serde_json::Value::String(v.clone()))
                .map_err(|_| tracing::warn!("{ENV_ENVIRONMENT}={v:?} is not sandbox, usps_test or production; ignored"))
                .ok()
        });
        let state = Self::new(store, preferences, progress, env_override, started);
        *state.link_record.lock().expect("link") = link;
        *state.stamps.lock().expect("stamps") = stamps;
        *state.identifiers.lock().expect("identifiers") = identifiers;
        Ok(state)
    }

    pub fn new(
        persist: Arc<dyn Persist>,
        preferences: Preferences,
        progress: Progress,
        env_override: Option<Environment>,
        started: Instant,
    ) -> Self {
        Self {
            started,
            persist,
            preferences: Mutex::new(preferences),
            progress: Mutex::new(progress),
            env_override,
            vault: VaultSource::default(),
            sandbox: tokio::sync::OnceCell::new(),
            deep_links: Mutex::new(VecDeque::new()),
            attempts: Mutex::new(AttemptStore::default()),
            link_record: Mutex::new(LinkRecord::default()),
            stamps: Mutex::new(StampsRecord::default()),
            identifiers: Mutex::new(IdentifiersRecord::default()),
            link_failure: Mutex::new(None),
            refresh_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn elapsed_ms(&self) -> u32 {
        self.started.elapsed().as_millis().min(u32::MAX as u128) as u32
    }

    /// The OS keyring, opened on first use (off the startup path). Opening and every call block on
    /// D-Bus, so commands use it on the blocking pool.
    pub fn vault_source(&self) -> VaultSource {
        self.vault.clone()
    }

    pub fn preferences(&self) -> Preferences {
        self.preferences.lock().expect("preferences").clone()
    }

    pub fn environment(&self) -> Environment {
        self.env_override.unwrap_or_else(|| self.preferences.lock().expect("preferences").environment)
    }

    /// Start the in-process sandbox if the Sandbox environment is in force. Idempotent.
    pub async fn ensure_sandbox(&self) -> Result<Option<String>, IpcError> {
        if self.environment() != Environment::Sandbox {
            return Ok(None);
        }
        let sb = self
            .sandbox
            .get_or_try_init(|| async {
                let sb = Sandbox::start("127.0.0.1:0").await?;
                tracing::info!("sandbox listening on {}", sb.base_url());
                Ok::<_, std::io::Error>(sb)
            })
            .await
            .map_err(|e| IpcError::new(ErrorKind::Internal, format!("the sandbox could not start: {e}")))?;
        Ok(Some(sb.base_url()))
    }

    /// The endpoints in force; None while the sandbox has not started yet.
    pub fn endpoints(&self) -> Option<Endpoints> {
        let env = self.environment();
        match (env, self.sandbox.get()) {
            (Environment::Sandbox, None) => None,
            (Environment::Sandbox, Some(sb)) => Some(Endpoints::for_environment(env, &sb.base_url())),
            _ => Some(Endpoints::for_environment(env, "")),
        }
    }

    /// The endpoints in force, starting the sandbox first where it is needed.
    pub async fn endpoints_ready(&self) -> Result<Endpoints, IpcError> {
        self.ensure_sandbox().await?;
        self.endpoints().ok_or_else(|| IpcError::new(ErrorKind::Internal, "the sandbox is still starting; try again"))
    }

    pub fn view(&self) -> DashboardView {
        self.progress.lock().expect("progress").view()
    }

    pub fn snapshot(&self) -> AppSnapshot {
        // Each lock in its own statement: a guard inside the struct literal would live to its end
        // and deadlock with endpoints() -> environment().
        let environment = self.environment();
        let view = self.view();
        let preferences = self.preferences.lock().expect("preferences").clone();
        AppSnapshot {
            view,
            preferences,
            environment,
            environment_label: environment.label().to_string(),
            endpoints: self.endpoints(),
            recent_deep_links: self.recent_deep_links(),
            usps_link: self.link_status(),
            stamps: self.stamps_record(),
            identifiers: self.identifiers_view(),
        }
    }

    pub fn progress(&self) -> Progress {
        self.progress.lock().expect("progress").clone()
    }

    /// An event from the UI: only those a user may claim (see `OnboardingEvent::is_user_event`).
    pub fn apply_from_user(&self, event: OnboardingEvent) -> Result<DashboardView, IpcError> {
        if !event.is_user_event() {
            return Err(uspslink_core::onboarding::OnboardingError::NotAUserEvent.to_ipc());
        }
        self.apply(event)
    }

    /// Apply an onboarding event; persisted before it is visible, and unchanged on any error.
    pub fn apply(&self, event: OnboardingEvent) -> Result<DashboardView, IpcError> {
        let mut progress = self.progress.lock().expect("progress");
        let mut next = progress.clone();
        next.apply(event).map_err(|e| e.to_ipc())?;
        if next != *progress {
            self.persist
                .save(KEY_PROGRESS, serde_json::to_value(&next).map_err(storage_error)?)
                .map_err(storage_error)?;
            *progress = next;
        }
        Ok(progress.view())
    }

    pub fn link_record(&self) -> LinkRecord {
        self.link_record.lock().expect("link").clone()
    }

    /// Persist a value first, then make it current: a failed save changes nothing.
    fn replace_persisted<T: Serialize>(&self, key: &str, cell: &Mutex<T>, value: T) -> Result<(), IpcError> {
        let mut current = cell.lock().expect("persisted value");
        self.persist.save(key, serde_json::to_value(&value).map_err(storage_error)?).map_err(storage_error)?;
        *current = value;
        Ok(())
    }

    pub fn set_link_record(&self, record: LinkRecord) -> Result<(), IpcError> {
        self.replace_persisted(KEY_USPS_LINK, &self.link_record, record)
    }

    pub fn stamps_record(&self) -> StampsRecord {
        self.stamps.lock().expect("stamps").clone()
    }

    pub fn set_stamps_record(&self, record: StampsRecord) -> Result<(), IpcError> {
        self.replace_persisted(KEY_STAMPS, &self.stamps, record)
    }

    pub fn identifiers_record(&self) -> IdentifiersRecord {
        self.identifiers.lock().expect("identifiers").clone()
    }

    pub fn set_identifiers_record(&self, record: IdentifiersRecord) -> Result<(), IpcError> {
        self.replace_persisted(KEY_IDENTIFIERS, &self.identifiers, record)
    }

    /// The identifiers step as shown: the draft, pre-filled from the USPS sign-in where empty.
    pub fn identifiers_view(&self) -> IdentifiersView {
        let hints = self.link_record().hints;
        self.identifiers_record().view(&hints)
    }

    pub fn set_link_failure(&self, failure: Option<IpcError>) {
        *self.link_failure.lock().expect("link failure") = failure;
    }

    /// The link as the UI shows it: waiting > failed > stored record.
    pub fn link_status(&self) -> LinkStatus {
        if self.attempts.lock().expect("attempts").is_waiting() {
            return LinkStatus::Waiting;
        }
        if let Some(f) = self.link_failure.lock().expect("link failure").clone() {
            return LinkStatus::Failed { kind: f.kind, message: f.message };
        }
        let record = self.link_record();
        if record.needs_reconnecting {
            LinkStatus::NeedsReconnecting {
                message: "Your USPS connection has expired or was revoked. A USPS password reset breaks every \
                          connection: reconnect to continue."
                    .into(),
            }
        } else if record.linked {
            LinkStatus::Linked { record }
        } else {
            LinkStatus::NotLinked
        }
    }

    pub fn save_preferences(&self, new: Preferences) -> Result<(), IpcError> {
        new.validate().map_err(|e| e.to_ipc())?;
        self.replace_persisted(KEY_PREFERENCES, &self.preferences, new)
    }

    /// Validate a deep link and remember it for a UI that mounts later (cold start).
    pub fn accept_deep_link(&self, raw: &str) -> Result<(DeepLinkNotice, callback::OAuthCallback), IpcError> {
        let cb = callback::parse(raw).map_err(|e| e.to_ipc())?;
        let notice = DeepLinkNotice { callback: cb.summary(), received_at_ms: self.elapsed_ms() };
        let mut links = self.deep_links.lock().expect("deep links");
        if links.len() == RECENT_LINKS {
            links.pop_front();
        }
        links.push_back(notice.clone());
        Ok((notice, cb))
    }

    pub fn recent_deep_links(&self) -> Vec<DeepLinkNotice> {
        self.deep_links.lock().expect("deep links").iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uspslink_core::onboarding::Step;

    #[derive(Default)]
    struct MemoryPersist {
        saved: Mutex<Vec<(String, serde_json::Value)>>,
        fail: bool,
    }

    impl Persist for MemoryPersist {
        fn save(&self, key: &str, value: serde_json::Value) -> Result<(), String> {
            if self.fail {
                return Err("disk full".into());
            }
            self.saved.lock().unwrap().push((key.into(), value));
            Ok(())
        }
    }

    fn state(persist: Arc<MemoryPersist>) -> AppState {
        AppState::new(persist, Preferences::default(), Progress::default(), None, Instant::now())
    }

    #[test]
    fn events_are_persisted_before_they_show() {
        let p = Arc::new(MemoryPersist::default());
        let s = state(p.clone());
        let view = s.apply(OnboardingEvent::OpenGuidelines).unwrap();
        assert!(!view.show_popup);
        let saved = p.saved.lock().unwrap();
        assert_eq!(saved.len(), 1);
        assert_eq!(saved[0].0, "progress");
        assert_eq!(saved[0].1["popup_dismissed"], true);
    }

    #[test]
    fn a_failed_save_changes_nothing() {
        let p = Arc::new(MemoryPersist { fail: true, ..Default::default() });
        let s = state(p);
        let e = s.apply(OnboardingEvent::Complete(Step::BeforeYouStart)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Storage);
        assert_eq!(s.snapshot().view.current_step, Step::BeforeYouStart);
    }

    #[test]
    fn the_ui_cannot_complete_the_link_itself() {
        let p = Arc::new(MemoryPersist::default());
        let s = state(p.clone());
        let e = s.apply_from_user(OnboardingEvent::LinkCompleted).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert!(p.saved.lock().unwrap().is_empty());
        assert!(s.apply_from_user(OnboardingEvent::Complete(Step::BeforeYouStart)).is_ok());
    }

    #[test]
    fn the_identifiers_draft_is_saved_when_it_changes_and_prefilled_from_the_link() {
        use uspslink_core::payments::IdentifiersForm;
        use uspslink_core::usps::AccountHints;
        let p = Arc::new(MemoryPersist::default());
        let s = state(p.clone());
        let hints = AccountHints { crids: vec!["20538353".into()], mids: vec![], eps_accounts: vec!["1000000001".into()] };
        s.set_link_record(LinkRecord { linked: true, hints, ..LinkRecord::default() }).unwrap();
        let typed = IdentifiersForm { mid: "123456".into(), ..IdentifiersForm::default() };
        let view = crate::identifiers::save_draft(&s, typed.clone()).unwrap();
        assert_eq!((view.form.crid.as_str(), view.form.mid.as_str(), view.form.eps_account.as_str()), ("20538353", "123456", "1000000001"));
        assert_eq!(view.prefilled, ["crid", "eps_account"]);
        crate::identifiers::save_draft(&s, typed).unwrap();
        let saved = p.saved.lock().unwrap();
        let keys: Vec<&str> = saved.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["usps_link", "identifiers"], "an unchanged draft is not written again");
        assert_eq!(saved[1].1["draft"]["mid"], "123456");
        assert_eq!(saved[1].1["draft"]["crid"], "", "the store keeps what was typed; pre-fill is only shown");
    }

    #[test]
    fn the_stamps_draft_is_kept_until_the_account_exists() {
        use uspslink_core::shipengine::StampsDraft;
        let p = Arc::new(MemoryPersist::default());
        let s = state(p.clone());
        let draft = StampsDraft { email: "john.doe@example.com".into(), ..StampsDraft::default() };
        crate::stamps::save_draft(&s, draft.clone()).unwrap();
        crate::stamps::save_draft(&s, draft.clone()).unwrap();
        assert_eq!(p.saved.lock().unwrap().len(), 1, "an unchanged draft is not written again");
        assert_eq!(s.stamps_record().draft, Some(draft.clone()));
        s.set_stamps_record(StampsRecord { carrier_id: Some("se-1".into()), draft: None, ..s.stamps_record() }).unwrap();
        crate::stamps::save_draft(&s, draft).unwrap();
        assert_eq!(s.stamps_record().draft, None, "no draft once registered");
    }

    #[test]
    fn invalid_preferences_are_refused_and_change_nothing() {
        let p = Arc::new(MemoryPersist::default());
        let s = state(p.clone());
        let bad = Preferences { redirect_uri: "http://evil.example/cb".into(), ..Preferences::default() };
        assert_eq!(s.save_preferences(bad).unwrap_err().kind, ErrorKind::InvalidInput);
        assert!(p.saved.lock().unwrap().is_empty());
        assert_eq!(s.snapshot().preferences, Preferences::default());
    }

    #[test]
    fn deep_links_are_validated_and_bounded() {
        let s = state(Arc::new(MemoryPersist::default()));
        assert_eq!(s.accept_deep_link("uspslink://evil/x").unwrap_err().kind, ErrorKind::InvalidDeepLink);
        assert!(s.recent_deep_links().is_empty());
        for i in 0..15 {
            s.accept_deep_link(&format!("uspslink://oauth/callback?code=c{i}&state=abcdefghijklmnop")).unwrap();
        }
        let links = s.recent_deep_links();
        assert_eq!(links.len(), RECENT_LINKS);
        assert_eq!(links.last().unwrap().callback.code_length, 3);
    }
}
