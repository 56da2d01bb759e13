//! The app's state, in parts that each own their data (docs/DESIGN.md, "Architecture"):
//!
//! - [`ProgressStore`]: the progress document (preferences and each scope's records), persisted
//!   through tauri-plugin-store after every change, atomically, so a crash loses nothing;
//! - [`Secrets`]: the OS keyring, per scope;
//! - [`Servers`]: where each environment's services are (the Sandbox's, in this process);
//! - [`Clients`]: one HTTP client per environment;
//! - [`LinkSessions`]: the USPS sign-ins open in the browser (the link flow's);
//! - [`Watch`] and [`InFlight`]: the approval watch's wake-up and gate, and the calls that run one at a time;
//! - [`WindowPlace`]: open, or in the tray.
//!
//! Everything a user does in one environment (Sandbox, USPS test, Production) is filed under that
//! environment's [`Scope`]: the store keys are `<environment>/<record>` and the keyring names
//! `<environment>/<secret>` (docs/DESIGN.md, "Environments are apart"). A flow takes the scope once
//! when it starts and reads and writes only that scope's records and secrets, so a switch in
//! Settings while it runs cannot send one environment's token to another.

mod clients;
mod persist;
mod progress;
mod secrets;
mod servers;
mod sessions;
#[cfg(test)]
pub(crate) mod tests;
mod watch;
mod window;

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use serde::Serialize;
use ts_rs::TS;
use uspslink_core::approval::ApprovalView;
use uspslink_core::business::{Business, BusinessId};
use uspslink_core::clock::Clock;
use uspslink_core::onboarding::{DashboardView, Step};
use uspslink_core::payments::IdentifiersView;
use uspslink_core::savings::SavingsView;
use uspslink_core::settings::{Endpoints, Environment, Preferences, SignInMethod};
use uspslink_core::shipengine::StampsRecord;
use uspslink_core::usps::LinkStatus;
use uspslink_core::vault::SecretSlot;

pub use crate::config::AppConfig;
pub use clients::Clients;
pub use persist::{Persist, PersistError, SaveError, StorageHealth, StorageNotice, StorageNoticeKind, StorageObserver};
pub use progress::{BusinessesError, PreferencesError, ProgressError, ProgressStore, STORE_FILE};
pub use secrets::{Secrets, UnsavedTokens, VaultSource};
pub use servers::{SandboxError, Servers};
pub use sessions::{DeepLinkNotice, LinkSessions, NEEDS_RECONNECTING};
pub use watch::{InFlight, Watch};
pub use window::WindowPlace;

/// Run a blocking call (the keyring's D-Bus calls) on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static, E: From<Bug> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    // A panic on the blocking pool comes back as a JoinError, whose text may quote the panic
    // message: it is not passed on.
    tokio::task::spawn_blocking(f).await.map_err(|_| Bug("a keyring call"))?
}

/// A bug inside uspslink (a panic): says where, never what it said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "Something went wrong inside uspslink ({0}). Nothing was changed; please try again. The details are in the log."
)]
pub struct Bug(pub &'static str);

/// A mutex whose holder panicked still holds valid data here (every update is replace-on-success),
/// so a caught panic in one command must not turn every later command into another panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where a flow works: one business's records and secrets in one environment. A flow takes its
/// scope once when it starts and passes it to every read and write, so "a flow works in one
/// environment, for one business" is a type: nothing in a flow can ask for "the environment in
/// force" or "the business shown" halfway through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scope {
    business: BusinessId,
    environment: Environment,
}

impl Scope {
    pub const fn new(business: BusinessId, environment: Environment) -> Self {
        Self { business, environment }
    }

    pub fn business(self) -> BusinessId {
        self.business
    }

    pub fn environment(self) -> Environment {
        self.environment
    }

    /// Where the first business's records and entries keep the names they had before there were
    /// several; another's are under its id.
    fn business_prefix(self) -> String {
        if self.business == BusinessId::FIRST {
            String::new()
        } else {
            format!("business-{}/", self.business.0)
        }
    }

    /// Where what belongs to the install rather than to one business is kept in this environment:
    /// the owner's own USPS developer app (its consumer secret, beside the consumer key in
    /// Settings) signs in every business. The first business's names, as before there were several.
    pub fn app_wide(self) -> Scope {
        Scope::new(BusinessId::FIRST, self.environment)
    }

    /// Where this scope's secret in `slot` is kept: its own entries, or the install's for a secret
    /// that is the install's ([`install_wide`]).
    pub fn holding(self, slot: SecretSlot) -> Scope {
        if install_wide(slot) {
            self.app_wide()
        } else {
            self
        }
    }

    /// How the owner knows it ("Sandbox").
    pub fn label(self) -> &'static str {
        self.environment.label()
    }

    /// The store key of one of this scope's records.
    pub fn key(self, record: &str) -> String {
        format!("{}{}/{record}", self.business_prefix(), self.environment.key())
    }

    /// The prefix of this scope's keyring entries.
    pub fn keyring_scope(self) -> String {
        format!("{}{}", self.business_prefix(), self.environment.key())
    }
}

/// Whether the secret in `slot` is the install's rather than one business's: the consumer secret
/// of the owner's own USPS developer app, which signs in every business.
pub fn install_wide(slot: SecretSlot) -> bool {
    slot == SecretSlot::UspsConsumerSecret
}

/// One business as the overview shows it: where its guide is, and whether USPS approved it yet
/// (in the environment in force).
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct BusinessOverview {
    pub id: BusinessId,
    pub name: String,
    /// The step to do next (the last one, waiting for approval, once every other is done).
    pub current_step: Step,
    pub current_step_title: String,
    pub current_step_number: u32,
    /// The identifiers were accepted by USPS: the link is done.
    pub link_complete: bool,
    pub completed_count: u32,
    pub total_steps: u32,
    pub approval: ApprovalView,
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
    /// The business shown (everything above is its).
    pub business: BusinessId,
    /// Every business, in the order they were added.
    pub businesses: Vec<BusinessOverview>,
}

/// The parts, held together for the commands and the flows: each flow takes the parts it needs.
pub struct AppState {
    started: Instant,
    /// The run's configuration, read once at start.
    pub(crate) config: AppConfig,
    clock: Clock,
    pub progress: ProgressStore,
    pub secrets: Secrets,
    pub servers: Servers,
    pub clients: Clients,
    pub sessions: LinkSessions,
    pub watch: Watch,
    pub in_flight: InFlight,
    pub window: WindowPlace,
}

impl AppState {
    /// The state over any persistence (tests use an in-memory one and the mock keyring).
    pub fn open(
        persist: std::sync::Arc<dyn Persist>,
        config: AppConfig,
        started: Instant,
        vault: VaultSource,
        storage_notice: Option<StorageNotice>,
    ) -> Self {
        let clock = Clock::system();
        let (progress, legacy_keyring) = ProgressStore::open(persist, storage_notice);
        let secrets = Secrets::new(vault, legacy_keyring, progress.persist());
        let sessions = LinkSessions::open(&progress, clock.now());
        Self {
            started,
            servers: Servers::new(config.sandbox_pkce, config.endpoints.clone()),
            config,
            clock,
            progress,
            secrets,
            clients: Clients::default(),
            sessions,
            watch: Watch::default(),
            in_flight: InFlight::default(),
            window: WindowPlace::default(),
        }
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

    /// The environment in force (a test run may override the stored preference).
    pub fn environment(&self) -> Environment {
        self.config.environment_override.unwrap_or_else(|| self.progress.preferences().environment)
    }

    /// The scope in force, for a flow that starts now.
    pub fn scope(&self) -> Scope {
        Scope::new(self.progress.businesses().current(), self.environment())
    }

    /// Start the in-process sandbox if the Sandbox environment is in force. Idempotent.
    pub async fn ensure_sandbox(&self) -> Result<Option<String>, SandboxError> {
        if self.environment() != Environment::Sandbox {
            return Ok(None);
        }
        self.servers.start_sandbox().await.map(Some)
    }

    /// The endpoints of `scope`, starting the sandbox first where it is needed.
    pub async fn endpoints_ready(&self, scope: Scope) -> Result<Endpoints, SandboxError> {
        self.servers.endpoints_ready(scope.environment()).await
    }

    /// The approval watch as the dashboard shows it.
    pub fn approval_view(&self, scope: Scope) -> ApprovalView {
        self.progress.approval_view(scope, &self.config.approval.schedule, self.now())
    }

    pub fn link_status(&self, scope: Scope) -> LinkStatus {
        self.sessions.status(self.progress.link_record(scope))
    }

    /// Save Settings. A change of environment ends any sign-in of the old one (its answer must not
    /// complete in the new one) and wakes the watch, which looks at the new environment now.
    pub fn save_preferences(&self, new: Preferences) -> Result<(), PreferencesError> {
        self.progress.save_preferences(new, |old, new| {
            // While the preferences are locked: a callback read after this sees the new environment
            // and no sign-in of the old one left to complete in it.
            if old.environment != new.environment {
                self.sessions.end_all(&self.progress);
                self.watch.wake();
            }
        })
    }

    pub fn snapshot(&self) -> AppSnapshot {
        let scope = self.scope();
        let environment = scope.environment();
        let preferences = self.progress.preferences();
        AppSnapshot {
            view: self.progress.view(scope),
            sign_in_moved_from: self.sign_in_moved_from(scope, &preferences),
            open_on: self.window.take_open_on(),
            offer_open_at_login: !self.progress.background_record().login_offer_answered,
            preferences,
            environment,
            environment_label: environment.label().to_string(),
            endpoints: self.servers.endpoints_of(environment),
            recent_deep_links: self.sessions.recent_deep_links(),
            usps_link: self.link_status(scope),
            stamps: self.progress.stamps_record(scope),
            identifiers: self.progress.identifiers_view(scope),
            approval: self.approval_view(scope),
            savings: self.progress.savings_view(scope),
            storage_notice: self.progress.notice(),
            business: scope.business(),
            businesses: self.overview(),
        }
    }

    /// Every business's scope in the environment in force, with its name, in the list's order.
    pub fn businesses_in_force(&self) -> Vec<(Scope, String)> {
        let environment = self.environment();
        self.progress.businesses().list().iter().map(|b| (Scope::new(b.id, environment), b.name.clone())).collect()
    }

    /// Every business, in the environment in force, as the overview shows it.
    pub fn overview(&self) -> Vec<BusinessOverview> {
        let now = self.now();
        let schedule = &self.config.approval.schedule;
        self.businesses_in_force()
            .into_iter()
            .map(|(scope, name)| {
                let view = self.progress.view(scope);
                BusinessOverview {
                    id: scope.business(),
                    name,
                    current_step: view.current_step,
                    current_step_title: view.current_step.title().to_string(),
                    current_step_number: view.current_step.index() as u32 + 1,
                    link_complete: self.progress.progress(scope).link_complete,
                    completed_count: view.completed_count,
                    total_steps: view.total_steps,
                    approval: self.progress.approval_view(scope, schedule, now),
                }
            })
            .collect()
    }

    /// A business's name, for a notification; none while there is one business only (its owner
    /// knows which).
    pub fn business_name_to_say(&self, business: BusinessId) -> Option<String> {
        let businesses = self.progress.businesses();
        if businesses.list().len() < 2 {
            return None;
        }
        businesses.get(business).map(|b| b.name.clone())
    }

    /// Change which businesses there are, or which is shown. When the business shown changes, its
    /// sign-ins open in the browser end before another is shown (their answer must not link the
    /// other), and the watch looks again now.
    pub fn change_businesses<T>(
        &self,
        change: impl FnOnce(&mut uspslink_core::business::Businesses) -> Result<T, uspslink_core::business::BusinessError>,
    ) -> Result<T, BusinessesError> {
        self.progress.update_businesses(change, |old, new| self.after_businesses_changed(old, new))
    }

    fn after_businesses_changed(
        &self,
        old: &uspslink_core::business::Businesses,
        new: &uspslink_core::business::Businesses,
    ) {
        if old.current() != new.current() {
            self.sessions.end_all(&self.progress);
        }
        self.watch.wake();
    }

    /// Take a business off the list and empty its records (its keyring entries are the flow's,
    /// deleted before this).
    pub fn remove_business(&self, id: BusinessId) -> Result<Business, BusinessesError> {
        self.progress.remove_business(id, |old, new| self.after_businesses_changed(old, new))
    }

    /// See [`AppSnapshot::sign_in_moved_from`]. The Sandbox has one service only, the app's own.
    fn sign_in_moved_from(&self, scope: Scope, preferences: &Preferences) -> Option<String> {
        let env = scope.environment();
        if env == Environment::Sandbox {
            return None;
        }
        let endpoints = self.servers.endpoints_of(env)?;
        let named_now = match preferences.sign_in_method() {
            SignInMethod::Service => preferences.sign_in_service(env, &endpoints),
            SignInMethod::OwnApp => None,
        };
        self.progress.link_record(scope).moved_from(named_now.as_deref()).map(str::to_string)
    }
}
