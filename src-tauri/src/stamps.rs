//! The Stamps.com step (ShipEngine): check and keep the API key, register the free account once,
//! verify it by SMS. Rules and requests live in `uspslink_core::shipengine`.

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tauri::{Manager, Runtime};
use ts_rs::TS;
use uspslink_core::error::HasKind;
use uspslink_core::onboarding::{OnboardingEvent, Step};
use uspslink_core::shipengine::{
    Carrier, RegistrationForm, ShipEngineClient, StampsDraft, StampsRecord, RESEND_COOLDOWN_SECS, TEST_KEY_PREFIX,
};
use uspslink_core::usps::unix_now;
use uspslink_core::vault::SecretSlot;
use uspslink_core::{ErrorKind, IpcError};

use crate::commands::blocking;
use crate::state::AppState;

/// What the Stamps.com step shows after each action.
#[derive(Debug, Clone, Serialize, TS)]
pub struct StampsUpdate {
    pub record: StampsRecord,
    /// A Stamps.com carrier already on the account, offered instead of registering again.
    pub existing_carrier: Option<Carrier>,
    pub view: uspslink_core::onboarding::DashboardView,
}

async fn client(state: &AppState) -> Result<ShipEngineClient, IpcError> {
    Ok(ShipEngineClient::new(&state.endpoints_ready().await?.shipengine_api))
}

async fn stored_key(state: &AppState) -> Result<SecretString, IpcError> {
    let vault = state.vault_source();
    blocking(move || vault.open().get(SecretSlot::ShipEngineApiKey).map_err(|e| e.to_ipc()))
        .await?
        .ok_or_else(|| IpcError::new(ErrorKind::NotConfigured, "enter your ShipStation API key first"))
}

fn update(state: &AppState, existing_carrier: Option<Carrier>) -> StampsUpdate {
    StampsUpdate { record: state.stamps_record(), existing_carrier, view: state.view() }
}

/// Check the key with `GET /v1/carriers`, then keep it in the keyring. The public test key is refused
/// with the guide's warning and not stored.
pub async fn save_key<R: Runtime>(app: &tauri::AppHandle<R>, key: String) -> Result<StampsUpdate, IpcError> {
    let state = app.state::<AppState>();
    let key = SecretString::from(key.trim().to_string());
    if key.expose_secret().is_empty() {
        return Err(IpcError::new(ErrorKind::InvalidInput, "enter your ShipStation API key"));
    }
    if key.expose_secret().starts_with(TEST_KEY_PREFIX) {
        return Err(IpcError::new(
            ErrorKind::InvalidApiKey,
            "This is ShipEngine's public test key. You cannot link your accounts to the public test account: \
             enter your own ShipStation API key.",
        ));
    }
    let carriers = client(&state).await?.list_carriers(&key).await.map_err(|e| e.to_ipc())?;
    let vault = state.vault_source();
    let to_store = key.clone();
    blocking(move || vault.open().set(SecretSlot::ShipEngineApiKey, &to_store).map_err(|e| e.to_ipc())).await?;
    state.set_stamps_record(StampsRecord { key_checked: true, ..state.stamps_record() })?;
    let existing = carriers.into_iter().find(|c| c.carrier_code == "stamps_com");
    Ok(update(&state, existing))
}

/// Use a Stamps.com carrier the account already has.
pub fn use_existing(state: &AppState, carrier_id: String) -> Result<StampsUpdate, IpcError> {
    state.set_stamps_record(StampsRecord { carrier_id: Some(carrier_id), ..state.stamps_record() })?;
    Ok(update(state, None))
}

/// Keep the registration form as typed (no card fields reach this), until the account exists.
pub fn save_draft(state: &AppState, draft: StampsDraft) -> Result<(), IpcError> {
    let record = state.stamps_record();
    if record.carrier_id.is_some() || record.draft.as_ref() == Some(&draft) {
        return Ok(());
    }
    state.set_stamps_record(StampsRecord { draft: Some(draft), ..record })
}

pub(crate) fn today() -> (u32, u32) {
    year_month(unix_now())
}

fn year_month(unix_secs: u64) -> (u32, u32) {
    let (y, m, _) = uspslink_core::usps::civil_date(unix_secs);
    (y, m)
}

/// Register the free Stamps.com account. The card number is used for this one request and dropped.
pub async fn register<R: Runtime>(app: &tauri::AppHandle<R>, form: RegistrationForm) -> Result<StampsUpdate, IpcError> {
    let state = app.state::<AppState>();
    if let Some(id) = state.stamps_record().carrier_id {
        tracing::info!("Stamps.com already registered ({id}); not registering again");
        return Ok(update(&state, None));
    }
    let request = form.to_request(today()).map_err(|fields| {
        let mut e = IpcError::new(ErrorKind::InvalidInput, "some fields need attention");
        e.fields = fields;
        e
    })?;
    drop(form);
    let key = stored_key(&state).await?;
    let carrier_id = client(&state).await?.register_stamps_once(&key, &request).await.map_err(|e| e.to_ipc())?;
    drop(request);
    tracing::info!("Stamps.com registered: {carrier_id}");
    // Stored at once, so a retry never registers twice. The draft has served its purpose.
    state.set_stamps_record(StampsRecord { carrier_id: Some(carrier_id), draft: None, ..state.stamps_record() })?;
    Ok(update(&state, None))
}

/// *Send code* / *Resend code*.
pub async fn send_code<R: Runtime>(app: &tauri::AppHandle<R>, phone: String) -> Result<StampsUpdate, IpcError> {
    let state = app.state::<AppState>();
    let record = state.stamps_record();
    let carrier_id = record.carrier_id.clone().ok_or_else(|| IpcError::new(ErrorKind::NotConfigured, "register the Stamps.com account first"))?;
    let phone = uspslink_core::validate::phone(&phone).map_err(|m| IpcError::new(ErrorKind::InvalidInput, m))?;
    if let Some(sent) = record.code_sent_at {
        let wait = (sent + RESEND_COOLDOWN_SECS).saturating_sub(unix_now());
        if wait > 0 {
            return Err(IpcError::new(ErrorKind::RateLimited, format!("wait {wait} s before asking for another code")));
        }
    }
    let key = stored_key(&state).await?;
    let v = client(&state).await?.start_sms_verification(&key, &carrier_id, &phone).await.map_err(|e| e.to_ipc())?;
    state.set_stamps_record(StampsRecord {
        phone: Some(phone),
        verification_id: Some(v.verification_id),
        code_sent_at: Some(unix_now()),
        ..record
    })?;
    Ok(update(&state, None))
}

/// The code from the text message. A wrong code says so and changes nothing.
pub async fn verify<R: Runtime>(app: &tauri::AppHandle<R>, code: String) -> Result<StampsUpdate, IpcError> {
    let state = app.state::<AppState>();
    let record = state.stamps_record();
    let (Some(carrier_id), Some(vid)) = (record.carrier_id.clone(), record.verification_id.clone()) else {
        return Err(IpcError::new(ErrorKind::NotConfigured, "send a code first"));
    };
    let code = SecretString::from(code.trim().to_string());
    if code.expose_secret().is_empty() || !code.expose_secret().chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(IpcError::new(ErrorKind::InvalidInput, "enter the code from the text message"));
    }
    let key = stored_key(&state).await?;
    let v = client(&state).await?.submit_verification_code(&key, &carrier_id, &vid, &code).await.map_err(|e| {
        let mut e = e.to_ipc();
        if e.fields.iter().any(|f| f.field == "verification_code") && e.message.contains("incorrect") {
            e.message = "That code is not right. Check the text message and try again.".into();
        }
        e
    })?;
    if v.status == "verified" {
        state.set_stamps_record(StampsRecord { verified: true, ..record })?;
        if let Err(e) = state.apply(OnboardingEvent::Complete(Step::StampsAccount)) {
            tracing::debug!("Stamps.com step not completed in the guidelines: {}", e.message);
        }
    }
    Ok(update(&state, None))
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
