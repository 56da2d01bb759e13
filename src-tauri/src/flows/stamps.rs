//! The Stamps.com step (ShipEngine): check and keep the API key, register the free account once,
//! verify it by SMS. Rules and requests live in `uspslink_core::shipengine`.

use secrecy::SecretString;
use serde::Serialize;
use ts_rs::TS;
use uspslink_core::onboarding::{OnboardingEvent, Step};
use uspslink_core::settings::Environment;
use uspslink_core::shipengine::{
    check_api_key, Carrier, RegistrationForm, ShipEngineClient, StampsDraft, StampsRecord,
};
use uspslink_core::vault::SecretSlot;
use uspslink_core::{ErrorKind, IpcError};

use crate::state::blocking;
use crate::state::AppState;

/// What the Stamps.com step shows after each action.
#[derive(Debug, Clone, Serialize, TS)]
pub struct StampsUpdate {
    pub record: StampsRecord,
    /// A Stamps.com carrier already on the account, offered instead of registering again.
    pub existing_carrier: Option<Carrier>,
    pub view: uspslink_core::onboarding::DashboardView,
}

fn client(state: &AppState, endpoints: &uspslink_core::settings::Endpoints) -> ShipEngineClient {
    ShipEngineClient::new(&endpoints.shipengine_api).with_retry(state.retry())
}

async fn stored_key(state: &AppState, env: Environment) -> Result<SecretString, IpcError> {
    crate::flows::link::vault_get(state, env, SecretSlot::ShipEngineApiKey)
        .await?
        .ok_or_else(|| IpcError::new(ErrorKind::NotConfigured, "enter your ShipStation API key first"))
}

fn update(state: &AppState, env: Environment, existing_carrier: Option<Carrier>) -> StampsUpdate {
    StampsUpdate { record: state.stamps_record(env), existing_carrier, view: state.view(env) }
}

/// One at a time, whatever the UI sends: a second press while the first is on its way is refused.
fn one_in_flight<'a>(
    guard: &'a tokio::sync::Mutex<()>,
    what: &str,
) -> Result<tokio::sync::MutexGuard<'a, ()>, IpcError> {
    guard
        .try_lock()
        .map_err(|_| IpcError::new(ErrorKind::Busy, format!("{what} is already on its way; wait for it to finish")))
}

/// Check the key with `GET /v1/carriers`, then keep it in the keyring. The public test key is refused
/// with the guide's warning and not stored.
pub async fn save_key(state: &AppState, key: String) -> Result<StampsUpdate, IpcError> {
    let env = state.environment();
    let key = check_api_key(&key)?;
    let endpoints = state.endpoints_ready(env).await?;
    let carriers = client(state, &endpoints).list_carriers(&key).await?;
    let vault = state.vault_access();
    let to_store = key.clone();
    blocking(move || vault.open(env).set(SecretSlot::ShipEngineApiKey, &to_store).map_err(IpcError::from)).await?;
    state.set_stamps_record(env, StampsRecord { key_checked: true, ..state.stamps_record(env) })?;
    let existing = carriers.into_iter().find(|c| c.carrier_code == "stamps_com");
    Ok(update(state, env, existing))
}

/// Use a Stamps.com carrier the account already has.
/// The Stamps.com terms, in the system browser.
pub fn open_carrier_terms(host: &impl super::Host) -> Result<(), IpcError> {
    super::link::open_external(host, uspslink_core::shipengine::STAMPS_CARRIER_TERMS_URL)
}

pub fn use_existing(state: &AppState, carrier_id: String) -> Result<StampsUpdate, IpcError> {
    let env = state.environment();
    let carrier_id = uspslink_core::shipengine::check_carrier_id(&carrier_id)?;
    state.set_stamps_record(env, StampsRecord { carrier_id: Some(carrier_id), ..state.stamps_record(env) })?;
    Ok(update(state, env, None))
}

/// Keep the registration form as typed (no card fields reach this), until the account exists.
pub fn save_draft(state: &AppState, env: Environment, draft: StampsDraft) -> Result<(), IpcError> {
    let record = state.stamps_record(env);
    if record.carrier_id.is_some() || record.draft.as_ref() == Some(&draft) {
        return Ok(());
    }
    state.set_stamps_record(env, StampsRecord { draft: Some(draft), ..record })
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
pub async fn register(state: &AppState, form: RegistrationForm) -> Result<StampsUpdate, IpcError> {
    let env = state.environment();
    let _one = one_in_flight(&state.register_in_flight, "A registration")?;
    if let Some(id) = state.stamps_record(env).carrier_id {
        tracing::info!("Stamps.com already registered ({id}); not registering again");
        return Ok(update(state, env, None));
    }
    let request = form.to_request(today(state)).map_err(|fields| {
        let mut e = IpcError::new(ErrorKind::InvalidInput, "some fields need attention");
        e.fields = fields;
        e
    })?;
    drop(form);
    let key = stored_key(state, env).await?;
    let endpoints = state.endpoints_ready(env).await?;
    let carrier_id = client(state, &endpoints).register_stamps_once(&key, &request).await?;
    drop(request);
    tracing::info!("Stamps.com registered: {carrier_id}");
    // Stored at once, so a retry never registers twice. The draft has served its purpose.
    state.set_stamps_record(
        env,
        StampsRecord { carrier_id: Some(carrier_id), draft: None, ..state.stamps_record(env) },
    )?;
    Ok(update(state, env, None))
}

/// *Send code* / *Resend code*.
pub async fn send_code(state: &AppState, phone: String) -> Result<StampsUpdate, IpcError> {
    let env = state.environment();
    let _one = one_in_flight(&state.sms_in_flight, "A code")?;
    let record = state.stamps_record(env);
    let carrier_id = record
        .carrier_id
        .clone()
        .ok_or_else(|| IpcError::new(ErrorKind::NotConfigured, "register the Stamps.com account first"))?;
    let phone = uspslink_core::validate::phone(&phone).map_err(|m| IpcError::new(ErrorKind::InvalidInput, m))?;
    uspslink_core::shipengine::resend_allowed(record.code_sent_at, state.now())?;
    let key = stored_key(state, env).await?;
    let endpoints = state.endpoints_ready(env).await?;
    let v = client(state, &endpoints).start_sms_verification(&key, &carrier_id, &phone).await?;
    state.set_stamps_record(
        env,
        StampsRecord {
            phone: Some(phone),
            verification_id: Some(v.verification_id),
            code_sent_at: Some(state.now()),
            ..record
        },
    )?;
    Ok(update(state, env, None))
}

/// The code from the text message. A wrong code says so and changes nothing.
pub async fn verify(state: &AppState, code: String) -> Result<StampsUpdate, IpcError> {
    let env = state.environment();
    let record = state.stamps_record(env);
    let (Some(carrier_id), Some(vid)) = (record.carrier_id.clone(), record.verification_id.clone()) else {
        return Err(IpcError::new(ErrorKind::NotConfigured, "send a code first"));
    };
    let code = uspslink_core::validate::sms_code(&code).map_err(|m| IpcError::new(ErrorKind::InvalidInput, m))?;
    let code = SecretString::from(code);
    let key = stored_key(state, env).await?;
    let endpoints = state.endpoints_ready(env).await?;
    // ShipEngine's own words go to the code field as they are: they tell a wrong code from an expired
    // one and from too many tries ("Request a new code"), which rewording by their text had merged.
    let v = client(state, &endpoints).submit_verification_code(&key, &carrier_id, &vid, &code).await?;
    if v.status == "verified" {
        let verified_on = Some(uspslink_core::clock::iso_date(state.now()));
        state.set_stamps_record(env, StampsRecord { verified: true, verified_on, ..record })?;
        if let Err(e) = state.apply(env, OnboardingEvent::Complete(Step::StampsAccount)) {
            tracing::debug!("Stamps.com step not completed in the guidelines: {}", e.message);
        }
    }
    Ok(update(state, env, None))
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
    use crate::state::tests::{state_over, MemoryPersist};
    use uspslink_core::clock::Clock;

    #[tokio::test]
    async fn a_second_registration_while_one_is_on_its_way_is_refused() {
        let s = state_over(Arc::new(MemoryPersist::default()));
        let held = s.register_in_flight.try_lock().unwrap();
        let form: RegistrationForm = serde_json::from_value(serde_json::json!({
            "nickname": "n", "email": "a@b.co", "agree_to_carrier_terms": true,
            "address": {}, "credit_card": {"name": "", "number": "", "expiration_month": "", "expiration_year": ""}
        }))
        .unwrap();
        let e = register(&s, form.clone()).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Busy);
        drop(held);
        assert_eq!(register(&s, form).await.unwrap_err().kind, ErrorKind::InvalidInput, "then it runs as usual");
    }

    #[tokio::test]
    async fn the_key_check_survives_one_server_error_and_keeps_the_key_per_environment() {
        let s = state_over(Arc::new(MemoryPersist::default()));
        let waits = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = waits.clone();
        s.set_retry_observer(Arc::new(move |w| seen.lock().unwrap().push(w.clone())));
        s.endpoints_ready(Environment::Sandbox).await.unwrap();
        s.sandbox().inject_fault(
            "/v1/carriers",
            uspslink_sandbox::Fault { status: Some(503), ..Default::default() },
            1,
        );
        let u = save_key(&s, " sandbox_key_one ".into()).await.unwrap();
        assert!(u.record.key_checked);
        let waits = waits.lock().unwrap().clone();
        assert_eq!(waits.len(), 1, "{waits:?}");
        assert_eq!((waits[0].attempt, waits[0].reason.as_str()), (1, "HTTP 503"));
        assert!(s.vault(Environment::Sandbox).get(SecretSlot::ShipEngineApiKey).unwrap().is_some());
        assert!(s.vault(Environment::Production).get(SecretSlot::ShipEngineApiKey).unwrap().is_none());
        assert_eq!(save_key(&s, "TEST_abc".into()).await.unwrap_err().kind, ErrorKind::InvalidApiKey);
    }

    #[test]
    fn the_stamps_draft_is_kept_until_the_account_exists() {
        use uspslink_core::shipengine::StampsDraft;
        let p = Arc::new(MemoryPersist::default());
        let s = state_over(p.clone());
        let draft = StampsDraft { email: "john.doe@example.com".into(), ..StampsDraft::default() };
        save_draft(&s, Environment::Sandbox, draft.clone()).unwrap();
        save_draft(&s, Environment::Sandbox, draft.clone()).unwrap();
        assert_eq!(crate::state::lock(&p.saved).len(), 1, "an unchanged draft is not written again");
        assert_eq!(s.stamps_record(Environment::Sandbox).draft, Some(draft.clone()));
        s.set_stamps_record(
            Environment::Sandbox,
            StampsRecord { carrier_id: Some("se-1".into()), draft: None, ..s.stamps_record(Environment::Sandbox) },
        )
        .unwrap();
        save_draft(&s, Environment::Sandbox, draft).unwrap();
        assert_eq!(s.stamps_record(Environment::Sandbox).draft, None, "no draft once registered");
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
