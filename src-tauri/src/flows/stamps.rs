//! The Stamps.com step (ShipEngine): check and keep the API key, register the free account once,
//! verify it by SMS. Rules and requests live in `uspslink_core::shipengine`.
//!
//! Each call takes the scope in force when it starts. A record is changed with
//! `ProgressStore::update` after the call to ShipEngine returns, never written back from a copy read
//! before it: what changed meanwhile (a draft saved while a code was on its way) is kept.

use secrecy::SecretString;
use serde::Serialize;
use ts_rs::TS;
use uspslink_core::error::FieldProblem;
use uspslink_core::onboarding::{OnboardingEvent, Step};
use uspslink_core::shipengine::ShipEngineError;
use uspslink_core::shipengine::{
    check_api_key, Carrier, RegistrationForm, ShipEngineClient, StampsDraft, StampsRecord,
};
use uspslink_core::vault::{SecretSlot, VaultError};

use crate::state::{blocking, AppState, Bug, SandboxError, SaveError, Scope};

/// Why a Stamps.com step did not happen; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum StampsError {
    #[error("{0} is already on its way; wait for it to finish")]
    Busy(&'static str),
    #[error("enter your ShipStation API key first")]
    NoKey,
    #[error("register the Stamps.com account first")]
    NotRegistered,
    #[error("send a code first")]
    NoCodeSent,
    #[error("some fields need attention")]
    Form(Vec<FieldProblem>),
    /// The phone number or the code as typed.
    #[error(transparent)]
    Typed(#[from] uspslink_core::validate::Invalid),
    #[error(transparent)]
    ShipEngine(#[from] ShipEngineError),
    #[error(transparent)]
    Keyring(#[from] VaultError),
    #[error(transparent)]
    Save(#[from] SaveError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Bug(#[from] Bug),
    #[error(transparent)]
    Open(#[from] super::OpenError),
}

/// What the Stamps.com step shows after each action.
#[derive(Debug, Clone, Serialize, TS)]
pub struct StampsUpdate {
    pub record: StampsRecord,
    /// A Stamps.com carrier already on the account, offered instead of registering again.
    pub existing_carrier: Option<Carrier>,
    pub view: uspslink_core::onboarding::DashboardView,
}

async fn client(state: &AppState, scope: Scope) -> Result<ShipEngineClient, StampsError> {
    let endpoints = state.endpoints_ready(scope).await?;
    Ok(ShipEngineClient::over(state.clients.api(scope.environment(), &endpoints.shipengine_api)))
}

async fn stored_key(state: &AppState, scope: Scope) -> Result<SecretString, StampsError> {
    let secrets = state.secrets.clone();
    blocking(move || Ok::<_, StampsError>(secrets.open(scope).get(SecretSlot::ShipEngineApiKey)?))
        .await?
        .ok_or(StampsError::NoKey)
}

fn update(state: &AppState, scope: Scope, existing_carrier: Option<Carrier>) -> StampsUpdate {
    StampsUpdate { record: state.progress.stamps_record(scope), existing_carrier, view: state.progress.view(scope) }
}

/// Change the Stamps.com record of `scope` in place (see the module's note).
fn change(state: &AppState, scope: Scope, edit: impl FnOnce(&mut StampsRecord)) -> Result<(), SaveError> {
    state.progress.update(scope, |r| {
        edit(&mut r.stamps);
        Ok(())
    })
}

/// One at a time, whatever the UI sends: a second press while the first is on its way is refused.
fn one_in_flight<'a>(
    guard: &'a tokio::sync::Mutex<()>,
    what: &'static str,
) -> Result<tokio::sync::MutexGuard<'a, ()>, StampsError> {
    guard.try_lock().map_err(|_| StampsError::Busy(what))
}

/// Check the key with `GET /v1/carriers`, then keep it in the keyring. The public test key is refused
/// with the guide's warning and not stored.
pub async fn save_key(state: &AppState, key: String) -> Result<StampsUpdate, StampsError> {
    let scope = state.scope();
    let key = check_api_key(&key)?;
    let carriers = client(state, scope).await?.list_carriers(&key).await?;
    let secrets = state.secrets.clone();
    let to_store = key.clone();
    blocking(move || Ok::<_, StampsError>(secrets.open(scope).set(SecretSlot::ShipEngineApiKey, &to_store)?)).await?;
    change(state, scope, |r| r.key_checked = true)?;
    let existing = carriers.into_iter().find(|c| c.carrier_code == "stamps_com");
    Ok(update(state, scope, existing))
}

/// The Stamps.com terms, in the system browser.
pub fn open_carrier_terms(host: &impl super::Host) -> Result<(), StampsError> {
    Ok(super::link::open_external(host, uspslink_core::shipengine::STAMPS_CARRIER_TERMS_URL)?)
}

/// Use a Stamps.com carrier the account already has.
pub fn use_existing(state: &AppState, carrier_id: String) -> Result<StampsUpdate, StampsError> {
    let scope = state.scope();
    let carrier_id = uspslink_core::shipengine::check_carrier_id(&carrier_id)?;
    change(state, scope, |r| r.carrier_id = Some(carrier_id))?;
    Ok(update(state, scope, None))
}

/// Keep the registration form as typed (no card fields reach this), until the account exists.
pub fn save_draft(state: &AppState, scope: Scope, draft: StampsDraft) -> Result<(), SaveError> {
    change(state, scope, |r| {
        if r.carrier_id.is_none() {
            r.draft = Some(draft);
        }
    })
}

/// This month (for the card's expiry), by the state's clock.
fn today(state: &AppState) -> (u32, u32) {
    year_month(state.now())
}

/// Validation as the owner types: every problem of the form so far, without sending anything.
pub fn problems(state: &AppState, form: RegistrationForm) -> Vec<uspslink_core::error::FieldProblem> {
    form.to_request(today(state)).err().unwrap_or_default()
}

fn year_month(unix_secs: u64) -> (u32, u32) {
    let (y, m, _) = uspslink_core::usps::civil_date(unix_secs);
    (y, m)
}

/// Register the free Stamps.com account. The card number is used for this one request and dropped.
/// Never sent blindly again: one registration at a time, and an existing carrier is reused.
pub async fn register(state: &AppState, form: RegistrationForm) -> Result<StampsUpdate, StampsError> {
    let scope = state.scope();
    let _one = one_in_flight(&state.in_flight.register, "A registration")?;
    if let Some(id) = state.progress.stamps_record(scope).carrier_id {
        tracing::info!("Stamps.com already registered ({id}); not registering again");
        return Ok(update(state, scope, None));
    }
    let request = form.to_request(today(state)).map_err(StampsError::Form)?;
    drop(form);
    let key = stored_key(state, scope).await?;
    let carrier_id = client(state, scope).await?.register_stamps_once(&key, &request).await?;
    drop(request);
    tracing::info!("Stamps.com registered: {carrier_id}");
    // Stored at once, so a retry never registers twice. The draft has served its purpose.
    change(state, scope, |r| {
        r.carrier_id = Some(carrier_id);
        r.draft = None;
    })?;
    Ok(update(state, scope, None))
}

/// *Send code* / *Resend code*.
pub async fn send_code(state: &AppState, phone: String) -> Result<StampsUpdate, StampsError> {
    let scope = state.scope();
    let _one = one_in_flight(&state.in_flight.sms, "A code")?;
    let record = state.progress.stamps_record(scope);
    let carrier_id = record.carrier_id.ok_or(StampsError::NotRegistered)?;
    let phone = uspslink_core::validate::phone(&phone)?;
    uspslink_core::shipengine::resend_allowed(record.code_sent_at, state.now())?;
    let key = stored_key(state, scope).await?;
    let v = client(state, scope).await?.start_sms_verification(&key, &carrier_id, &phone).await?;
    let sent_at = state.now();
    change(state, scope, |r| {
        r.phone = Some(phone);
        r.verification_id = Some(v.verification_id);
        r.code_sent_at = Some(sent_at);
    })?;
    Ok(update(state, scope, None))
}

/// The code from the text message. A wrong code says so and changes nothing.
pub async fn verify(state: &AppState, code: String) -> Result<StampsUpdate, StampsError> {
    let scope = state.scope();
    let record = state.progress.stamps_record(scope);
    let (Some(carrier_id), Some(vid)) = (record.carrier_id, record.verification_id) else {
        return Err(StampsError::NoCodeSent);
    };
    let code = uspslink_core::validate::sms_code(&code)?;
    let code = SecretString::from(code);
    let key = stored_key(state, scope).await?;
    // ShipEngine's own words go to the code field as they are: they tell a wrong code from an expired
    // one and from too many tries ("Request a new code"), which rewording by their text had merged.
    let v = client(state, scope).await?.submit_verification_code(&key, &carrier_id, &vid, &code).await?;
    if v.status == "verified" {
        let verified_on = Some(uspslink_core::clock::iso_date(state.now()));
        // The record and the guide's step in one write.
        state.progress.update(scope, |r| {
            r.stamps.verified = true;
            r.stamps.verified_on = verified_on;
            let mut progress = r.progress.clone();
            match progress.apply(OnboardingEvent::Complete(Step::StampsAccount)) {
                Ok(()) => r.progress = progress,
                Err(e) => tracing::debug!("Stamps.com step not completed in the guidelines: {e}"),
            }
            Ok::<_, SaveError>(())
        })?;
    }
    Ok(update(state, scope, None))
}

#[cfg(test)]
mod tests {
    #[test]
    fn year_month_of_known_dates() {
        assert_eq!(super::year_month(0), (1970, 1));
        assert_eq!(super::year_month(951_782_400), (2000, 2)); // 2000-02-29
        assert_eq!(super::year_month(1_795_378_509), (2026, 11)); // 2026-11-22
        assert_eq!(super::year_month(1_798_761_599), (2026, 12)); // 2026-12-31 23:59:59
        assert_eq!(super::year_month(1_798_761_600), (2027, 1));
    }
}

#[cfg(test)]
mod flow_tests {
    //! The Stamps.com step without a window, against a real sandbox.
    use std::sync::Arc;

    use super::*;
    use crate::state::tests::{state_over, MemoryPersist, PROD, SB};
    use uspslink_core::clock::Clock;
    #[allow(unused_imports)]
    use uspslink_core::error::HasKind;
    #[allow(unused_imports)]
    use uspslink_core::{ErrorKind, IpcError};

    #[tokio::test]
    async fn a_second_registration_while_one_is_on_its_way_is_refused() {
        let s = state_over(Arc::new(MemoryPersist::default()));
        let held = s.in_flight.register.try_lock().unwrap();
        let form: RegistrationForm = serde_json::from_value(serde_json::json!({
            "nickname": "n", "email": "a@b.co", "agree_to_carrier_terms": true,
            "address": {}, "credit_card": {"name": "", "number": "", "expiration_month": "", "expiration_year": ""}
        }))
        .unwrap();
        let e = register(&s, form.clone()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Busy);
        drop(held);
        assert_eq!(register(&s, form).await.unwrap_err().kind(), ErrorKind::InvalidInput, "then it runs as usual");
    }

    #[tokio::test]
    async fn the_key_check_survives_one_server_error_and_keeps_the_key_per_environment() {
        let s = state_over(Arc::new(MemoryPersist::default()));
        let waits = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = waits.clone();
        s.clients.set_retry_observer(Arc::new(move |w| seen.lock().unwrap().push(w.clone())));
        s.endpoints_ready(SB).await.unwrap();
        s.servers.sandbox().inject_fault(
            "/v1/carriers",
            uspslink_sandbox::Fault { status: Some(503), ..Default::default() },
            1,
        );
        let u = save_key(&s, " sandbox_key_one ".into()).await.unwrap();
        assert!(u.record.key_checked);
        let waits = waits.lock().unwrap().clone();
        assert_eq!(waits.len(), 1, "{waits:?}");
        assert_eq!((waits[0].attempt, waits[0].reason.as_str()), (1, "HTTP 503"));
        assert!(s.secrets.open(SB).get(SecretSlot::ShipEngineApiKey).unwrap().is_some());
        assert!(s.secrets.open(PROD).get(SecretSlot::ShipEngineApiKey).unwrap().is_none());
        assert_eq!(save_key(&s, "TEST_abc".into()).await.unwrap_err().kind(), ErrorKind::InvalidApiKey);
        // Both checks (and the retried call) went through one HTTP client of the environment.
        let _ = save_key(&s, "sandbox_key_two".into()).await.unwrap();
        assert_eq!(s.clients.made(), 1);
    }

    /// *Send code* waits for ShipEngine between reading the record and writing it: what another
    /// command changed meanwhile is kept (the record is changed in place, not written back whole).
    #[tokio::test]
    async fn a_change_made_while_a_code_is_on_its_way_is_kept() {
        let s = state_over(Arc::new(MemoryPersist::default()));
        save_key(&s, "sandbox_race".into()).await.unwrap();
        let form: RegistrationForm = serde_json::from_value(serde_json::json!({
            "nickname": "My Stamps.com account", "email": "john.doe@example.com", "agree_to_carrier_terms": true,
            "address": {"name": "John Doe", "phone": "111-111-1111", "company_name": "Example Corp.",
                        "address_line1": "4009 Marathon Blvd", "address_line2": "", "city_locality": "Austin",
                        "state_province": "TX", "postal_code": "78756", "country_code": "US",
                        "address_residential_indicator": "no"},
            "credit_card": {"name": "John Doe", "number": "4111111111111111",
                            "expiration_year": "2030", "expiration_month": "07"}
        }))
        .unwrap();
        register(&s, form).await.unwrap();
        change(&s, SB, |r| r.key_checked = false).unwrap();
        let slow = uspslink_sandbox::Fault { delay_ms: Some(400), ..Default::default() };
        s.servers.sandbox().inject_fault("/v1/connections/carriers/stamps_com/{carrier_id}/verification", slow, 1);
        let meanwhile = async {
            tokio::time::sleep(std::time::Duration::from_millis(150)).await;
            change(&s, SB, |r| r.key_checked = true).unwrap();
        };
        let (sent, ()) = tokio::join!(send_code(&s, "512-555-0100".into()), meanwhile);
        let record = sent.unwrap().record;
        assert!(record.verification_id.is_some(), "the code went out");
        assert!(record.key_checked, "the change made while it was on its way is kept");
        assert!(s.progress.stamps_record(SB).key_checked);
    }

    #[test]
    fn the_stamps_draft_is_kept_until_the_account_exists() {
        use uspslink_core::shipengine::StampsDraft;
        let p = Arc::new(MemoryPersist::default());
        let s = state_over(p.clone());
        let draft = StampsDraft { email: "john.doe@example.com".into(), ..StampsDraft::default() };
        save_draft(&s, SB, draft.clone()).unwrap();
        save_draft(&s, SB, draft.clone()).unwrap();
        assert_eq!(crate::state::lock(&p.saved).len(), 1, "an unchanged draft is not written again");
        assert_eq!(s.progress.stamps_record(SB).draft, Some(draft.clone()));
        s.progress
            .set_stamps_record(
                SB,
                StampsRecord { carrier_id: Some("se-1".into()), draft: None, ..s.progress.stamps_record(SB) },
            )
            .unwrap();
        save_draft(&s, SB, draft).unwrap();
        assert_eq!(s.progress.stamps_record(SB).draft, None, "no draft once registered");
    }

    #[test]
    fn the_live_registration_check_takes_any_pasted_text() {
        let form: RegistrationForm = serde_json::from_value(serde_json::json!({
            "nickname": "n", "email": "a@b.co", "agree_to_carrier_terms": true,
            "address": {"postal_code": "78756–12"},
            "credit_card": {"name": "", "number": "4111 1111 1111 1111", "expiration_month": "", "expiration_year": ""}
        }))
        .unwrap();
        let state = state_over(Arc::new(MemoryPersist::default()));
        let found = problems(&state, form.clone());
        assert!(found.iter().any(|p| p.field == "address.postal_code" && p.message.contains("5 digits")), "{found:?}");
        let form = RegistrationForm {
            address: uspslink_core::shipengine::AddressForm { postal_code: "1234é5678".into(), ..form.address },
            ..form
        };
        assert!(problems(&state, form).iter().any(|p| p.field == "address.postal_code"));
    }

    /// The card's expiry is judged by the state's clock: a card for November 2026 is good in
    /// September and expired in December, with no waiting.
    #[test]
    fn a_card_expires_by_the_states_clock() {
        let form: RegistrationForm = serde_json::from_value(serde_json::json!({
            "nickname": "n", "email": "a@b.co", "agree_to_carrier_terms": true, "address": {},
            "credit_card": {"name": "n", "number": "4111 1111 1111 1111", "expiration_month": "11", "expiration_year": "2026"}
        }))
        .unwrap();
        let expiry_problem = |now: u64| {
            let state = state_over(Arc::new(MemoryPersist::default())).with_clock(Clock::reading(move || now));
            problems(&state, form.clone()).into_iter().any(|p| p.field.starts_with("credit_card.expiration"))
        };
        assert!(!expiry_problem(1_790_000_000), "2026-09-21: good");
        assert!(expiry_problem(1_796_256_000), "2026-12-03: expired");
    }
}
