//! The progress document: the preferences, what was said once, and each scope's typed records,
//! read from the progress file once and written through [`Persist`] after every change.
//!
//! A change is made to a copy ([`ProgressStore::update`]) and becomes current only once every record
//! it changed is written, in one write: a failed save changes nothing, on disk or in memory. The
//! write runs off the async threads (the fsync and the rename would hold up every other task on a
//! worker thread of the runtime).
//!
//! On disk the document is a map of keys (`preferences`, `background`, `<scope>/<record>`, and the
//! file's `format` number, `uspslink_core::progress_format`), so a record this version cannot read
//! is set aside by itself and the rest still loads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uspslink_core::approval::{ApprovalRecord, ApprovalView, Schedule};
use uspslink_core::business::{Business, BusinessError, BusinessId, Businesses};
use uspslink_core::onboarding::OnboardingError;
use uspslink_core::onboarding::{DashboardView, OnboardingEvent, Progress};
use uspslink_core::payments::{IdentifiersRecord, IdentifiersView};
use uspslink_core::savings::{SavingsRecord, SavingsView};
use uspslink_core::settings::SettingsError;
use uspslink_core::settings::{Environment, Preferences};
use uspslink_core::shipengine::StampsRecord;
use uspslink_core::usps::LinkRecord;

use super::persist::{read, read_or_set_aside, ReportingPersist, SaveError};
use super::sessions::SignInInBrowser;
use super::{lock, Persist, PersistError, Scope, StorageNotice, StorageNoticeKind, StorageObserver};

/// The store file (in the app's data dir). Holds preferences and progress; never a secret.
pub const STORE_FILE: &str = "uspslink.json";
const KEY_PREFERENCES: &str = "preferences";
/// The environment whose keyring entries still have the names of before environments existed.
pub(crate) const KEY_LEGACY_KEYRING: &str = "legacy_keyring_environment";
/// Sign-ins open in the browser (fingerprints of their states), so a callback that arrives after a
/// restart can be told apart from a forged one.
pub(crate) const KEY_SIGN_INS: &str = "sign_ins_in_browser";
/// What was said once about running in the background (the tray note, the open-at-login offer).
const KEY_BACKGROUND: &str = "background";
/// The businesses and the one shown (absent in a file from before several: its first business).
const KEY_BUSINESSES: &str = "businesses";
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
/// Every record a scope has.
const ALL_RECORDS: [&str; 6] =
    [NAME_PROGRESS, NAME_USPS_LINK, NAME_STAMPS, NAME_IDENTIFIERS, NAME_APPROVAL, NAME_SAVINGS];

/// Said once, kept across runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct BackgroundRecord {
    /// The note "uspslink keeps watching in the tray" went out (the first close into the tray).
    pub tray_note_shown: bool,
    /// The owner answered the offer to open uspslink at login (yes or not now): not offered again.
    pub login_offer_answered: bool,
}

/// One scope's records, typed.
#[derive(Debug, Clone, Default)]
pub struct ScopeRecords {
    pub progress: Progress,
    pub link: LinkRecord,
    pub stamps: StampsRecord,
    pub identifiers: IdentifiersRecord,
    pub approval: ApprovalRecord,
    pub savings: SavingsRecord,
}

impl ScopeRecords {
    /// Each record as it is stored, by name.
    fn stored(&self) -> Result<[(&'static str, serde_json::Value); 6], serde_json::Error> {
        Ok([
            (NAME_PROGRESS, serde_json::to_value(&self.progress)?),
            (NAME_USPS_LINK, serde_json::to_value(&self.link)?),
            (NAME_STAMPS, serde_json::to_value(&self.stamps)?),
            (NAME_IDENTIFIERS, serde_json::to_value(&self.identifiers)?),
            (NAME_APPROVAL, serde_json::to_value(&self.approval)?),
            (NAME_SAVINGS, serde_json::to_value(&self.savings)?),
        ])
    }
}

/// An onboarding event that was not applied: not one of the guide's moves here, or not saved.
#[derive(Debug, thiserror::Error)]
pub enum ProgressError {
    #[error(transparent)]
    Step(#[from] OnboardingError),
    #[error(transparent)]
    Save(#[from] SaveError),
}

/// A change of the businesses that was not made: against their rules, or not saved.
#[derive(Debug, thiserror::Error)]
pub enum BusinessesError {
    #[error(transparent)]
    Rule(#[from] BusinessError),
    #[error(transparent)]
    Save(#[from] SaveError),
}

/// Settings that were not saved: one of them is not valid, or the disk refused.
#[derive(Debug, thiserror::Error)]
pub enum PreferencesError {
    #[error(transparent)]
    Invalid(#[from] SettingsError),
    #[error(transparent)]
    Save(#[from] SaveError),
}

/// Run a blocking write where it holds up no async task: on a worker of the multi-threaded runtime
/// (the app's), the worker hands its tasks to another thread for the time of the write; elsewhere
/// (the main thread, the blocking pool, a single-threaded test runtime) it runs as it is.
fn off_the_async_threads<T>(write: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(write),
        _ => write(),
    }
}

/// Each scope's records as loaded, and the businesses removed in this run: a flow still running for
/// one (a verification, a token refresh) must not write its records back after the removal.
#[derive(Default)]
struct Records {
    by_scope: HashMap<Scope, ScopeRecords>,
    removed: std::collections::HashSet<BusinessId>,
}

pub struct ProgressStore {
    persist: Arc<ReportingPersist>,
    preferences: Mutex<Preferences>,
    records: Mutex<Records>,
    background: Mutex<BackgroundRecord>,
    businesses: Mutex<Businesses>,
    /// Said once: what was found wrong with the progress file at start (or with a record since).
    notice: Mutex<Option<StorageNotice>>,
}

impl ProgressStore {
    /// The document over `persist`, and the environment whose keyring entries still carry the
    /// names of before environments (see [`super::Secrets`]).
    pub fn open(persist: Arc<dyn Persist>, notice: Option<StorageNotice>) -> (Self, Option<Environment>) {
        let persist = Arc::new(ReportingPersist::new(persist));
        let mut preferences: Preferences = read(&*persist, KEY_PREFERENCES);
        // Settings shows the method in force; files from before the choice get it decided here.
        preferences.usps_sign_in = Some(preferences.sign_in_method());
        let legacy_keyring = migrate_to_environments(&*persist, preferences.environment);
        let store = Self {
            background: Mutex::new(read(&*persist, KEY_BACKGROUND)),
            businesses: Mutex::new(read::<Businesses>(&*persist, KEY_BUSINESSES).repaired()),
            persist,
            preferences: Mutex::new(preferences),
            records: Mutex::new(Records::default()),
            notice: Mutex::new(notice),
        };
        (store, legacy_keyring)
    }

    /// The persistence itself, for the keyring's move of older entries (its marker) and its
    /// read-only rule while a newer version's file is open.
    pub(crate) fn persist(&self) -> Arc<dyn Persist> {
        self.persist.clone()
    }

    /// Where every save reports whether saving works (the window shows a problem until it does).
    pub fn set_storage_observer(&self, observer: StorageObserver) {
        self.persist.set_observer(observer);
    }

    fn write(&self, values: Vec<(String, serde_json::Value)>) -> Result<(), SaveError> {
        Ok(off_the_async_threads(|| self.persist.save_all(values))?)
    }

    pub fn preferences(&self) -> Preferences {
        lock(&self.preferences).clone()
    }

    /// Save Settings (checked first). `before_in_force` runs once they are saved and before anyone
    /// can read them (the lock is held), with the old and the new: what must end with the old
    /// environment ends before the new one is in force.
    pub fn save_preferences(
        &self,
        new: Preferences,
        before_in_force: impl FnOnce(&Preferences, &Preferences),
    ) -> Result<(), PreferencesError> {
        new.validate()?;
        let mut current = lock(&self.preferences);
        let json = serde_json::to_value(&new).map_err(SaveError::from)?;
        self.write(vec![(KEY_PREFERENCES.into(), json)])?;
        before_in_force(&current, &new);
        *current = new;
        Ok(())
    }

    pub fn background_record(&self) -> BackgroundRecord {
        lock(&self.background).clone()
    }

    /// Change what was said once, saved before it counts.
    pub fn update_background(&self, change: impl FnOnce(&mut BackgroundRecord)) -> Result<(), SaveError> {
        let mut current = lock(&self.background);
        let mut next = current.clone();
        change(&mut next);
        if next != *current {
            self.write(vec![(KEY_BACKGROUND.into(), serde_json::to_value(&next)?)])?;
            *current = next;
        }
        Ok(())
    }

    pub fn businesses(&self) -> Businesses {
        lock(&self.businesses).clone()
    }

    /// Change the businesses (add, rename, switch): by their rules, saved before it counts.
    /// `before_in_force` runs once the change is saved and before anyone can read it (the lock is
    /// held), with the old and the new: what must end with the business shown ends before another is.
    pub fn update_businesses<T>(
        &self,
        change: impl FnOnce(&mut Businesses) -> Result<T, BusinessError>,
        before_in_force: impl FnOnce(&Businesses, &Businesses),
    ) -> Result<T, BusinessesError> {
        let mut current = lock(&self.businesses);
        let mut next = current.clone();
        let answer = change(&mut next)?;
        if next != *current {
            self.write(vec![(KEY_BUSINESSES.into(), serde_json::to_value(&next).map_err(SaveError::from)?)])?;
            before_in_force(&current, &next);
            *current = next;
        }
        Ok(answer)
    }

    /// Take a business off the list and empty every record of it, in every environment, in one
    /// write: a crash leaves it either whole or gone. Its keyring entries are the caller's (deleted
    /// first, so none is left behind a business that no longer exists).
    pub fn remove_business(
        &self,
        id: BusinessId,
        before_in_force: impl FnOnce(&Businesses, &Businesses),
    ) -> Result<Business, BusinessesError> {
        let mut current = lock(&self.businesses);
        let mut next = current.clone();
        let removed = next.remove(id)?;
        let mut values = vec![(KEY_BUSINESSES.to_string(), serde_json::to_value(&next).map_err(SaveError::from)?)];
        for environment in Environment::ALL {
            let scope = Scope::new(id, environment);
            values.extend(ALL_RECORDS.iter().map(|name| (scope.key(name), serde_json::Value::Null)));
        }
        // Held across the write: no change of this business's records slips in between, and none
        // is written after it.
        let mut records = lock(&self.records);
        self.write(values)?;
        records.by_scope.retain(|scope, _| scope.business() != id);
        records.removed.insert(id);
        drop(records);
        before_in_force(&current, &next);
        *current = next;
        Ok(removed)
    }

    /// Whether `scope` has anything stored (a business removed, or never started there, has not).
    #[cfg(test)]
    pub(crate) fn stored_keys(&self, scope: Scope) -> Vec<String> {
        ALL_RECORDS
            .iter()
            .map(|name| scope.key(name))
            .filter(|key| self.persist.load(key).is_some_and(|v| !v.is_null()))
            .collect()
    }

    /// One record of `scope`; one this version cannot read is kept aside and said (never replaced
    /// silently by the defaults' next save).
    fn read_record<T: serde::de::DeserializeOwned + Default>(&self, scope: Scope, name: &str) -> T {
        let (value, set_aside) = read_or_set_aside(&*self.persist, &scope.key(name));
        if let Some(aside) = set_aside {
            *lock(&self.notice) = Some(StorageNotice {
                kind: StorageNoticeKind::SetAside,
                message: format!(
                    "Part of your progress ({}: {name}) could not be read by this version of uspslink. It was kept \
                     in the progress file as \"{aside}\" and that part starts fresh; nothing else changed.",
                    scope.label()
                ),
            });
        }
        value
    }

    /// Whether business `id` was removed in this run (a flow of it that still runs writes nothing).
    pub fn is_removed(&self, id: BusinessId) -> bool {
        lock(&self.records).removed.contains(&id)
    }

    fn with_records<T>(&self, scope: Scope, f: impl FnOnce(&mut ScopeRecords, bool) -> T) -> T {
        let mut all = lock(&self.records);
        let removed = all.removed.contains(&scope.business());
        let records = all.by_scope.entry(scope).or_insert_with(|| ScopeRecords {
            progress: self.read_record(scope, NAME_PROGRESS),
            link: self.read_record(scope, NAME_USPS_LINK),
            stamps: self.read_record(scope, NAME_STAMPS),
            identifiers: self.read_record(scope, NAME_IDENTIFIERS),
            approval: self.read_record(scope, NAME_APPROVAL),
            savings: self.read_record(scope, NAME_SAVINGS),
        });
        f(records, removed)
    }

    /// Read `scope`'s records (loaded from the file on first use).
    pub fn read<T>(&self, scope: Scope, f: impl FnOnce(&ScopeRecords) -> T) -> T {
        self.with_records(scope, |r, _| f(r))
    }

    /// Change `scope`'s records: `change` works on a copy, every record it changed is written in
    /// one write, and only then the copy is current. An error from `change` or from the write
    /// changes nothing. Read, change and write happen under one lock, so two changes of the same
    /// scope never overwrite each other's fields.
    pub fn update<T, E: From<SaveError>>(
        &self,
        scope: Scope,
        change: impl FnOnce(&mut ScopeRecords) -> Result<T, E>,
    ) -> Result<T, E> {
        self.with_records(scope, |current, removed| {
            if removed {
                return Err(SaveError(PersistError::BusinessRemoved).into());
            }
            let mut next = current.clone();
            let answer = change(&mut next)?;
            let before = current.stored().map_err(SaveError::from)?;
            let after = next.stored().map_err(SaveError::from)?;
            let changed: Vec<(String, serde_json::Value)> = after
                .into_iter()
                .zip(before)
                .filter(|((_, a), (_, b))| a != b)
                .map(|((name, value), _)| (scope.key(name), value))
                .collect();
            if !changed.is_empty() {
                self.write(changed)?;
                *current = next;
            }
            Ok(answer)
        })
    }

    pub fn view(&self, scope: Scope) -> DashboardView {
        self.read(scope, |r| r.progress.view())
    }

    pub fn progress(&self, scope: Scope) -> Progress {
        self.read(scope, |r| r.progress.clone())
    }

    /// An event from the UI: only those a user may claim (see `OnboardingEvent::is_user_event`).
    pub fn apply_from_user(&self, scope: Scope, event: OnboardingEvent) -> Result<DashboardView, ProgressError> {
        if !event.is_user_event() {
            return Err(OnboardingError::NotAUserEvent.into());
        }
        self.apply(scope, event)
    }

    /// Apply an onboarding event; persisted before it is visible, and unchanged on any error.
    pub fn apply(&self, scope: Scope, event: OnboardingEvent) -> Result<DashboardView, ProgressError> {
        self.update(scope, |r| {
            r.progress.apply(event)?;
            Ok(r.progress.view())
        })
    }

    pub fn link_record(&self, scope: Scope) -> LinkRecord {
        self.read(scope, |r| r.link.clone())
    }

    pub fn set_link_record(&self, scope: Scope, record: LinkRecord) -> Result<(), SaveError> {
        self.update(scope, |r| {
            r.link = record;
            Ok(())
        })
    }

    pub fn stamps_record(&self, scope: Scope) -> StampsRecord {
        self.read(scope, |r| r.stamps.clone())
    }

    pub fn set_stamps_record(&self, scope: Scope, record: StampsRecord) -> Result<(), SaveError> {
        self.update(scope, |r| {
            r.stamps = record;
            Ok(())
        })
    }

    pub fn identifiers_record(&self, scope: Scope) -> IdentifiersRecord {
        self.read(scope, |r| r.identifiers.clone())
    }

    pub fn set_identifiers_record(&self, scope: Scope, record: IdentifiersRecord) -> Result<(), SaveError> {
        self.update(scope, |r| {
            r.identifiers = record;
            Ok(())
        })
    }

    /// The identifiers step as shown: the draft, pre-filled from the USPS sign-in where empty.
    pub fn identifiers_view(&self, scope: Scope) -> IdentifiersView {
        self.read(scope, |r| r.identifiers.view(&r.link.hints, &r.savings.summary_lines(r.approval.is_approved())))
    }

    pub fn savings_record(&self, scope: Scope) -> SavingsRecord {
        self.read(scope, |r| r.savings.clone())
    }

    pub fn set_savings_record(&self, scope: Scope, record: SavingsRecord) -> Result<(), SaveError> {
        self.update(scope, |r| {
            r.savings = record;
            Ok(())
        })
    }

    /// What the NSA rates save, as the dashboard shows it.
    pub fn savings_view(&self, scope: Scope) -> SavingsView {
        self.read(scope, |r| r.savings.view(r.approval.is_approved()))
    }

    /// The savings' lines for the summary and the diagnostics.
    pub fn savings_lines(&self, scope: Scope) -> Vec<String> {
        self.read(scope, |r| r.savings.summary_lines(r.approval.is_approved()))
    }

    pub fn approval_record(&self, scope: Scope) -> ApprovalRecord {
        self.read(scope, |r| r.approval.clone())
    }

    pub fn set_approval_record(&self, scope: Scope, record: ApprovalRecord) -> Result<(), SaveError> {
        self.update(scope, |r| {
            r.approval = record;
            Ok(())
        })
    }

    /// The approval watch as the dashboard shows it, at `now`.
    pub fn approval_view(&self, scope: Scope, schedule: &Schedule, now: u64) -> ApprovalView {
        self.read(scope, |r| r.approval.view(schedule, r.progress.link_complete, now))
    }

    /// What was found wrong with the file, until the owner read it.
    pub fn notice(&self) -> Option<StorageNotice> {
        lock(&self.notice).clone()
    }

    /// The user read the storage notice: it is not shown again. A newer version's file stays said
    /// until the owner chooses what to do with it ([`Self::start_over_in_this_version`]).
    pub fn dismiss_notice(&self) {
        let mut notice = lock(&self.notice);
        if notice.as_ref().is_some_and(|n| n.kind != StorageNoticeKind::NewerFile) {
            *notice = None;
        }
    }

    /// The owner chose to start over in this version while a newer version's progress file is open:
    /// that file is kept aside as it is, and from now on progress is saved (the records in memory
    /// are already the fresh ones: nothing was read from that file). Returns the name it was kept as.
    pub fn start_over_in_this_version(&self) -> Result<Option<String>, SaveError> {
        let kept_as = off_the_async_threads(|| self.persist.set_newer_file_aside())?;
        let mut notice = lock(&self.notice);
        if notice.as_ref().is_some_and(|n| n.kind == StorageNoticeKind::NewerFile) {
            *notice = None;
        }
        if let Some(name) = &kept_as {
            tracing::warn!("started over in this version; the newer version's progress was kept as {name}");
        }
        Ok(kept_as)
    }

    /// The sign-ins the last run left open in the browser.
    pub(crate) fn sign_ins(&self) -> Vec<SignInInBrowser> {
        read(&*self.persist, KEY_SIGN_INS)
    }

    /// Write the sign-ins open in the browser (nothing when the file already has them).
    pub(crate) fn save_sign_ins(&self, list: &[SignInInBrowser]) -> Result<(), SaveError> {
        let json = serde_json::to_value(list)?;
        if self.persist.load(KEY_SIGN_INS).as_ref() == Some(&json) {
            return Ok(());
        }
        self.write(vec![(KEY_SIGN_INS.into(), json)])
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
    // Files from before environments had one business: the first.
    let scope = Scope::new(uspslink_core::business::BusinessId::FIRST, env);
    let result = (|| {
        let marker = serde_json::to_value(env).map_err(|e| PersistError::Io(e.to_string()))?;
        persist.save(KEY_LEGACY_KEYRING, marker)?;
        for (name, value) in &legacy {
            if persist.load(&scope.key(name)).is_none() {
                persist.save(&scope.key(name), value.clone())?;
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
