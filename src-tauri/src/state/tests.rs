//! The parts together, over a store in memory and the mock keyring.
use super::progress::{KEY_LEGACY_KEYRING, KEY_SIGN_INS};
use super::*;
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::Arc;
use uspslink_core::approval::ApprovalRecord;
use uspslink_core::error::HasKind;
use uspslink_core::onboarding::Step;
use uspslink_core::onboarding::{OnboardingEvent, Progress};
use uspslink_core::vault::Vault;
use uspslink_core::{ErrorKind, IpcError};

#[tokio::test]
async fn the_in_app_servers_answer_this_computer_only_and_their_helpers_this_runs_token_only() {
    let s = state_over(Arc::new(MemoryPersist::default()));
    let dir = std::env::temp_dir().join(format!("uspslink-sandbox-token-{}", std::process::id()));
    let file = dir.join("sandbox-helpers.token");
    s.servers.set_sandbox_token_file(file.clone());
    let endpoints = s.endpoints_ready(SB).await.unwrap();
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
    s.progress.set_storage_observer(Arc::new(move |problem: Option<&SaveError>| lock(&seen).push(problem.is_some())));

    let refused = s.progress.apply_from_user(SB, OnboardingEvent::DismissPopup).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Storage);
    assert!(refused.to_string().contains("newer version of uspslink"), "{}", refused.to_string());
    s.progress.dismiss_notice();
    let kept = s.snapshot().storage_notice.expect("said until the owner chooses");
    assert_eq!(kept.kind, StorageNoticeKind::NewerFile);
    assert!(kept.message.contains("format 2"), "{}", kept.message);
    assert!(lock(&persist.saved).is_empty());
    let key = SecretString::from("newer-versions-key");
    let refused = s.secrets.open(SB).set(uspslink_core::vault::SecretSlot::ShipEngineApiKey, &key).unwrap_err();
    assert!(matches!(refused, uspslink_core::vault::VaultError::ReadOnly), "its keys are not changed either");

    assert_eq!(s.progress.start_over_in_this_version().unwrap().as_deref(), Some("uspslink.json.newer-5"));
    assert!(s.snapshot().storage_notice.is_none());
    s.progress.apply_from_user(SB, OnboardingEvent::DismissPopup).unwrap();
    assert_eq!(*lock(&persist.saved), vec![SB.key("progress")]);
    assert_eq!(*lock(&health), vec![true, false], "a problem, then saving works again");
    assert_eq!(s.progress.start_over_in_this_version().unwrap(), None, "nothing more to set aside");
    s.secrets.open(SB).set(uspslink_core::vault::SecretSlot::ShipEngineApiKey, &key).unwrap();
}

#[test]
fn a_record_this_version_cannot_read_is_kept_aside_and_said_never_overwritten() {
    let persist = Arc::new(MemoryPersist::default());
    let other_shape = serde_json::json!({"carrier_id": 42, "verified": "a newer version's words"});
    lock(&persist.values).insert("sandbox/stamps".into(), other_shape.clone());
    let s = state_over(persist.clone());
    assert_eq!(s.progress.stamps_record(SB), StampsRecord::default(), "that part starts fresh");
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
    // The next start (before that record is ever saved again) finds the copy and nothing to set
    // aside again.
    let again = state_over(persist.clone());
    assert!(again.snapshot().storage_notice.is_none(), "said once");
    let copies = lock(&persist.values).keys().filter(|k| k.starts_with("set-aside/sandbox/stamps@")).count();
    assert_eq!(copies, 1);
    // The next save of that record keeps the copy; the other records are untouched.
    s.progress.set_stamps_record(SB, StampsRecord { key_checked: true, ..StampsRecord::default() }).unwrap();
    assert_eq!(lock(&persist.values)[&aside[0].0], other_shape);
    assert_eq!(s.progress.progress(SB), Progress::default());
}

/// The store in memory, with a switch that makes every save fail (a full disk).
#[derive(Default)]
pub(crate) struct MemoryPersist {
    pub(crate) values: Mutex<HashMap<String, serde_json::Value>>,
    pub(crate) saved: Mutex<Vec<(String, serde_json::Value)>>,
    pub(crate) fail: std::sync::atomic::AtomicBool,
    /// The keys of each write, in order (a write of several keys is one entry).
    pub(crate) writes: Mutex<Vec<Vec<String>>>,
}

impl Persist for MemoryPersist {
    fn load(&self, key: &str) -> Option<serde_json::Value> {
        lock(&self.values).get(key).cloned().filter(|v| !v.is_null())
    }

    fn save(&self, key: &str, value: serde_json::Value) -> Result<(), PersistError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PersistError::Io("the disk is full".into()));
        }
        self.save_all(vec![(key.into(), value)])
    }

    /// All or nothing, as the progress file's one write is.
    fn save_all(&self, values: Vec<(String, serde_json::Value)>) -> Result<(), PersistError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PersistError::Io("the disk is full".into()));
        }
        lock(&self.writes).push(values.iter().map(|(k, _)| k.clone()).collect());
        for (key, value) in values {
            lock(&self.values).insert(key.clone(), value.clone());
            lock(&self.saved).push((key, value));
        }
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

pub(crate) const SB: Scope = Scope::new(BusinessId::FIRST, Environment::Sandbox);
pub(crate) const PROD: Scope = Scope::new(BusinessId::FIRST, Environment::Production);

#[test]
fn events_are_persisted_before_they_show() {
    let p = Arc::new(MemoryPersist::default());
    let s = state(p.clone());
    let view = s.progress.apply(SB, OnboardingEvent::OpenGuidelines).unwrap();
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
    let e = s.progress.apply(SB, OnboardingEvent::Complete(Step::BeforeYouStart)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage);
    assert!(
        e.to_string().contains("the disk is full") && e.to_string().contains("Nothing was changed"),
        "{}",
        e.to_string()
    );
    assert_eq!(s.snapshot().view.current_step, Step::BeforeYouStart);
    let e =
        s.progress.set_stamps_record(SB, StampsRecord { key_checked: true, ..StampsRecord::default() }).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage);
    assert!(!s.progress.stamps_record(SB).key_checked);
    assert!(s
        .save_preferences(Preferences { environment: Environment::Production, ..Preferences::default() })
        .is_err());
    assert_eq!(s.scope(), SB);
}

#[test]
fn every_save_reports_when_saving_stops_and_starts_working() {
    use std::sync::atomic::Ordering::SeqCst;
    let p = Arc::new(MemoryPersist::default());
    let s = state(p.clone());
    let seen: Arc<Mutex<Vec<Option<ErrorKind>>>> = Arc::default();
    let log = seen.clone();
    s.progress.set_storage_observer(Arc::new(move |problem: Option<&SaveError>| {
        lock(&log).push(problem.map(|e| e.kind()));
    }));
    s.progress.apply(SB, OnboardingEvent::OpenGuidelines).unwrap();
    assert!(lock(&seen).is_empty(), "a save that works while all is well says nothing");
    p.fail.store(true, SeqCst);
    // Not only the commands' saves: a record the watch writes in the background reports too.
    s.progress.set_approval_record(SB, ApprovalRecord { notified: true, ..ApprovalRecord::default() }).unwrap_err();
    s.progress.set_stamps_record(SB, StampsRecord { key_checked: true, ..StampsRecord::default() }).unwrap_err();
    assert_eq!(*lock(&seen), vec![Some(ErrorKind::Storage), Some(ErrorKind::Storage)]);
    p.fail.store(false, SeqCst);
    s.progress.set_stamps_record(SB, StampsRecord { key_checked: true, ..StampsRecord::default() }).unwrap();
    s.progress.apply(SB, OnboardingEvent::Complete(Step::BeforeYouStart)).unwrap();
    assert_eq!(*lock(&seen), vec![Some(ErrorKind::Storage), Some(ErrorKind::Storage), None], "cleared once");
}

#[test]
fn the_ui_cannot_complete_the_link_itself() {
    let p = Arc::new(MemoryPersist::default());
    let s = state(p.clone());
    let e = s.progress.apply_from_user(SB, OnboardingEvent::LinkCompleted).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(lock(&p.saved).is_empty());
    assert!(s.progress.apply_from_user(SB, OnboardingEvent::Complete(Step::BeforeYouStart)).is_ok());
}

#[test]
fn invalid_preferences_are_refused_and_change_nothing() {
    let p = Arc::new(MemoryPersist::default());
    let s = state(p.clone());
    let before = s.snapshot().preferences;
    let bad = Preferences { redirect_uri: "http://evil.example/cb".into(), ..Preferences::default() };
    assert_eq!(s.save_preferences(bad).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert!(lock(&p.saved).is_empty());
    assert_eq!(s.snapshot().preferences, before);
    assert_eq!(before.usps_sign_in, Some(uspslink_core::settings::SignInMethod::Service), "decided at load");
}

#[test]
fn environments_keep_their_own_progress() {
    let p = Arc::new(MemoryPersist::default());
    let s = state(p.clone());
    s.progress
        .set_stamps_record(
            SB,
            StampsRecord {
                key_checked: true,
                carrier_id: Some("se-100001".into()),
                verified: true,
                ..StampsRecord::default()
            },
        )
        .unwrap();
    s.progress.apply(SB, OnboardingEvent::OpenGuidelines).unwrap();
    s.save_preferences(Preferences { environment: Environment::Production, ..Preferences::default() }).unwrap();
    let snap = s.snapshot();
    assert_eq!(snap.environment, Environment::Production);
    assert_eq!(snap.stamps, StampsRecord::default(), "nothing from the Sandbox is shown as real");
    assert!(snap.view.show_popup, "Production has its own progress");
    s.save_preferences(Preferences::default()).unwrap();
    assert_eq!(s.snapshot().stamps.carrier_id.as_deref(), Some("se-100001"), "and the Sandbox keeps its own");
    // After a restart, too.
    let again = state(p.clone());
    assert_eq!(again.progress.stamps_record(SB).carrier_id.as_deref(), Some("se-100001"));
    assert_eq!(again.progress.stamps_record(PROD), StampsRecord::default());
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
    assert_eq!(s.progress.stamps_record(SB).carrier_id.as_deref(), Some("se-100001"));
    assert!(!s.progress.view(SB).show_popup);
    assert_eq!(s.progress.stamps_record(PROD), StampsRecord::default());
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
    assert_eq!(s.progress.stamps_record(SB).carrier_id.as_deref(), Some("se-100001"));
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
    assert_eq!(
        s.progress.stamps_record(SB),
        StampsRecord::default(),
        "a top-level key of a format-1 file is no record"
    );
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
    let s = AppState::open(p.clone(), AppConfig::default(), Instant::now(), VaultSource::fixed(keyring.clone()), None);
    assert!(s.secrets.open(PROD).get(SecretSlot::UspsRefreshToken).unwrap().is_none());
    let sandbox = s.secrets.open(SB);
    assert_eq!(sandbox.get(SecretSlot::UspsRefreshToken).unwrap().unwrap().expose_secret(), "old-refresh");
    assert!(keyring.get(SecretSlot::UspsRefreshToken).unwrap().is_none());
    assert!(p.load(KEY_LEGACY_KEYRING).is_none(), "moved once");
}

#[test]
fn sign_ins_are_remembered_across_a_restart_by_fingerprint_only() {
    let p = Arc::new(MemoryPersist::default());
    let s = state(p.clone());
    s.sessions.remember_sign_in(&s.progress, s.now(), "theRealState0123456789").unwrap();
    let stored = serde_json::to_string(&p.load(KEY_SIGN_INS)).unwrap();
    assert!(!stored.contains("theRealState0123456789"), "the state itself is never stored: {stored}");
    assert!(!s.sessions.started_before_restart("theRealState0123456789"), "this run's own sign-in");
    let after = state(p.clone());
    assert!(after.sessions.started_before_restart("theRealState0123456789"));
    assert!(!after.sessions.started_before_restart("someOtherState012345"));
    after.sessions.forget_sign_ins(&after.progress, |_| true).unwrap();
    assert!(!after.sessions.started_before_restart("theRealState0123456789"), "said once");
}

#[test]
fn a_poisoned_lock_does_not_take_the_app_down() {
    let s = Arc::new(state(Arc::new(MemoryPersist::default())));
    let s2 = s.clone();
    let _ = std::thread::spawn(move || {
        let _g = s2.sessions.attempts.lock().unwrap();
        panic!("a command panicked while holding a lock");
    })
    .join();
    assert!(s.sessions.attempts.is_poisoned());
    assert!(s.snapshot().recent_deep_links.is_empty(), "later commands still work");
}

#[test]
fn an_update_writes_the_records_it_changed_in_one_write_or_changes_nothing() {
    let p = Arc::new(MemoryPersist::default());
    let s = state(p.clone());
    s.progress
        .update(SB, |r| {
            r.stamps.key_checked = true;
            r.progress.apply(OnboardingEvent::OpenGuidelines)?;
            Ok::<_, IpcError>(())
        })
        .unwrap();
    assert_eq!(*lock(&p.writes), vec![vec![SB.key("progress"), SB.key("stamps")]], "one write, two records");
    // Nothing changed: nothing written.
    s.progress
        .update(SB, |r| {
            r.stamps.key_checked = true;
            Ok::<_, IpcError>(())
        })
        .unwrap();
    assert_eq!(lock(&p.writes).len(), 1);
    // An error from the change, or from the disk, leaves every record as it was.
    let refused = s.progress.update(SB, |r| {
        r.stamps.carrier_id = Some("se-1".into());
        r.progress.apply(OnboardingEvent::LinkCompleted)?;
        Ok::<_, IpcError>(())
    });
    assert!(refused.is_err());
    assert_eq!(s.progress.stamps_record(SB).carrier_id, None, "the half-made change is not kept");
    p.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let full = s.progress.update(SB, |r| {
        r.stamps.carrier_id = Some("se-2".into());
        Ok::<_, IpcError>(())
    });
    assert_eq!(full.unwrap_err().kind, ErrorKind::Storage);
    assert_eq!(s.progress.stamps_record(SB).carrier_id, None);
    assert_eq!(lock(&p.writes).len(), 1);
}

/// The write leaves the async threads on the app's runtime (multi-threaded), and works as well on
/// the blocking pool and a single-threaded runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_runs_on_any_thread_the_app_has() {
    let p = Arc::new(MemoryPersist::default());
    let s = Arc::new(state(p.clone()));
    s.progress.apply(SB, OnboardingEvent::OpenGuidelines).unwrap();
    let on_pool = s.clone();
    tokio::task::spawn_blocking(move || on_pool.progress.apply(SB, OnboardingEvent::Complete(Step::BeforeYouStart)))
        .await
        .unwrap()
        .unwrap();
    let worker = s.clone();
    tokio::spawn(async move {
        worker.progress.update(SB, |r| {
            r.stamps.key_checked = true;
            Ok::<_, IpcError>(())
        })
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(lock(&p.writes).len(), 3);
}

/// A file the current version wrote (one business) opens as its first business, with nothing moved
/// and nothing lost; a second business keeps its own records and keyring entries apart.
#[test]
fn a_file_of_one_business_is_the_first_and_a_second_business_is_kept_apart() {
    use uspslink_core::business::{BusinessError, BusinessId, FIRST_NAME};
    use uspslink_core::vault::SecretSlot;
    let p = Arc::new(MemoryPersist::default());
    {
        let mut v = lock(&p.values);
        v.insert("format".into(), serde_json::json!(1));
        v.insert("preferences".into(), serde_json::json!({"environment": "sandbox"}));
        v.insert("sandbox/stamps".into(), serde_json::json!({"key_checked": true, "carrier_id": "se-100001"}));
        v.insert("sandbox/progress".into(), serde_json::json!({"popup_dismissed": true}));
    }
    let keyring = Vault::mock();
    let s = state_with_keyring(p.clone(), keyring.clone());
    let first = s.scope();
    assert_eq!((first, s.progress.businesses().list()[0].name.as_str()), (SB, FIRST_NAME));
    assert_eq!(s.progress.stamps_record(first).carrier_id.as_deref(), Some("se-100001"), "nothing lost");
    assert!(!s.progress.view(first).show_popup);
    assert!(lock(&p.saved).is_empty(), "nothing moved");
    s.secrets.open(first).set(SecretSlot::ShipEngineApiKey, &SecretString::from("first-key")).unwrap();

    let second = s.progress.update_businesses(|b| b.add("Shop Two"), |_, _| {}).unwrap();
    let other = s.scope();
    assert_eq!(other, Scope::new(second, Environment::Sandbox), "the new business is shown");
    assert_eq!(s.progress.stamps_record(other), StampsRecord::default(), "it starts fresh");
    s.progress
        .update(other, |r| {
            r.stamps.carrier_id = Some("se-200002".into());
            Ok::<_, SaveError>(())
        })
        .unwrap();
    assert!(p.load("business-2/sandbox/stamps").is_some(), "filed under its id");
    assert!(s.secrets.open(other).get(SecretSlot::ShipEngineApiKey).unwrap().is_none(), "its own keyring entries");
    s.secrets.open(other).set(SecretSlot::ShipEngineApiKey, &SecretString::from("second-key")).unwrap();

    // The first business is untouched, and shown again after a restart once switched back.
    s.progress.update_businesses(|b| b.switch_to(BusinessId::FIRST), |_, _| {}).unwrap();
    let again = state_with_keyring(p.clone(), keyring);
    assert_eq!(again.scope(), SB);
    assert_eq!(again.progress.stamps_record(SB).carrier_id.as_deref(), Some("se-100001"));
    assert_eq!(again.progress.stamps_record(other).carrier_id.as_deref(), Some("se-200002"));
    use secrecy::ExposeSecret;
    let key = |scope| again.secrets.open(scope).get(SecretSlot::ShipEngineApiKey).unwrap().unwrap();
    assert_eq!(
        (key(SB).expose_secret().to_string(), key(other).expose_secret().to_string()),
        ("first-key".into(), "second-key".into())
    );
    // A refused change is said and changes nothing.
    let refused = again.progress.update_businesses(|b| b.add("shop two"), |_, _| {}).unwrap_err();
    assert!(matches!(refused, BusinessesError::Rule(BusinessError::NameTaken(_))), "{refused:?}");
    assert_eq!(again.progress.businesses().list().len(), 2);
}
