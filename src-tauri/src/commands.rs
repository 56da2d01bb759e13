//! IPC commands: a thin layer over `AppState` and `uspslink-core`. Errors reach the UI as
//! `{kind, message}` (IpcError). Blocking keyring calls run on the blocking pool.

use secrecy::SecretString;
use serde::Serialize;
use tauri::State;
use ts_rs::TS;
use uspslink_core::error::HasKind;
use uspslink_core::onboarding::{DashboardView, OnboardingEvent};
use uspslink_core::settings::Preferences;
use uspslink_core::vault::{SecretSlot, Vault, VaultStatus};
use uspslink_core::{ErrorKind, IpcError};

use crate::identifiers::IdentifiersUpdate;
use crate::link::LinkUpdate;
use uspslink_core::payments::{IdentifiersForm, IdentifiersView};
use crate::stamps::StampsUpdate;
use uspslink_core::shipengine::RegistrationForm;
use crate::state::{AppSnapshot, AppState, DeepLinkNotice};

type CmdResult<T> = Result<T, IpcError>;

/// Which secrets are in the keyring (never their values).
#[derive(Debug, Clone, Serialize, TS)]
pub struct SecretPresence {
    pub shipengine_api_key: bool,
    pub usps_consumer_secret: bool,
    pub usps_linked: bool,
}

pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> CmdResult<T> + Send + 'static) -> CmdResult<T> {
    tauri::async_runtime::spawn_blocking(f)
        .await
        .map_err(|e| IpcError::new(ErrorKind::Internal, format!("background task failed: {e}")))?
}

fn presence(vault: &Vault) -> CmdResult<SecretPresence> {
    let has = |slot| vault.has(slot).map_err(|e| e.to_ipc());
    Ok(SecretPresence {
        shipengine_api_key: has(SecretSlot::ShipEngineApiKey)?,
        usps_consumer_secret: has(SecretSlot::UspsConsumerSecret)?,
        usps_linked: has(SecretSlot::UspsRefreshToken)?,
    })
}

#[tauri::command]
pub fn get_snapshot(state: State<'_, AppState>) -> AppSnapshot {
    state.snapshot()
}

#[tauri::command]
pub fn onboarding_event(state: State<'_, AppState>, event: OnboardingEvent) -> CmdResult<DashboardView> {
    state.apply_from_user(event)
}

#[tauri::command]
pub async fn save_preferences(state: State<'_, AppState>, preferences: Preferences) -> CmdResult<AppSnapshot> {
    state.save_preferences(preferences)?;
    state.ensure_sandbox().await?;
    Ok(state.snapshot())
}

#[tauri::command]
pub async fn vault_status(state: State<'_, AppState>) -> CmdResult<VaultStatus> {
    let vault = state.vault_source();
    blocking(move || Ok(vault.open().status())).await
}

/// Only the secrets a user types go through here; tokens are written by the backend alone.
fn user_slot(slot: SecretSlot) -> CmdResult<SecretSlot> {
    match slot {
        SecretSlot::ShipEngineApiKey | SecretSlot::UspsConsumerSecret => Ok(slot),
        _ => Err(IpcError::new(ErrorKind::InvalidInput, "that secret is managed by the app and cannot be set by hand")),
    }
}

#[tauri::command]
pub async fn store_secret(state: State<'_, AppState>, slot: SecretSlot, value: String) -> CmdResult<SecretPresence> {
    let slot = user_slot(slot)?;
    let value = SecretString::from(value);
    let vault = state.vault_source();
    blocking(move || {
        let vault = vault.open();
        vault.set(slot, &value).map_err(|e| e.to_ipc())?;
        presence(&vault)
    })
    .await
}

#[tauri::command]
pub async fn forget_secret(state: State<'_, AppState>, slot: SecretSlot) -> CmdResult<SecretPresence> {
    let slot = user_slot(slot)?;
    let vault = state.vault_source();
    blocking(move || {
        let vault = vault.open();
        vault.delete(slot).map_err(|e| e.to_ipc())?;
        presence(&vault)
    })
    .await
}

#[tauri::command]
pub async fn secret_presence(state: State<'_, AppState>) -> CmdResult<SecretPresence> {
    let vault = state.vault_source();
    blocking(move || presence(&vault.open())).await
}

#[tauri::command]
pub fn recent_deep_links(state: State<'_, AppState>) -> Vec<DeepLinkNotice> {
    state.recent_deep_links()
}

/// Called by the UI once the first screen is painted: logs the start-to-interactive time (read by
/// scripts/bench) and returns it in milliseconds.
#[tauri::command]
pub fn app_ready(state: State<'_, AppState>) -> u32 {
    let ms = state.elapsed_ms();
    tracing::info!("interactive after {ms} ms");
    eprintln!("uspslink: interactive after {ms} ms");
    ms
}

#[tauri::command]
pub async fn start_usps_link<R: tauri::Runtime>(app: tauri::AppHandle<R>) -> CmdResult<LinkUpdate> {
    crate::link::start(&app).await
}

#[tauri::command]
pub fn cancel_usps_link<R: tauri::Runtime>(app: tauri::AppHandle<R>) -> LinkUpdate {
    crate::link::cancel(&app)
}

/// Link health before use: refreshes the token when needed and reports the link.
#[tauri::command]
pub async fn refresh_usps_link<R: tauri::Runtime>(app: tauri::AppHandle<R>) -> CmdResult<LinkUpdate> {
    crate::link::refresh_if_needed(&app).await
}

#[tauri::command]
pub async fn disconnect_usps<R: tauri::Runtime>(app: tauri::AppHandle<R>) -> CmdResult<LinkUpdate> {
    crate::link::disconnect(&app).await
}

/// *New to USPS?*: the Business Portal sign-up in the system browser.
#[tauri::command]
pub async fn open_usps_signup<R: tauri::Runtime>(app: tauri::AppHandle<R>, state: State<'_, AppState>) -> CmdResult<()> {
    let endpoints = state.endpoints_ready().await?;
    crate::link::open_external(&app, &endpoints.usps_signup)
}

#[tauri::command]
pub async fn save_shipengine_key<R: tauri::Runtime>(app: tauri::AppHandle<R>, key: String) -> CmdResult<StampsUpdate> {
    crate::stamps::save_key(&app, key).await
}

#[tauri::command]
pub fn use_existing_stamps(state: State<'_, AppState>, carrier_id: String) -> CmdResult<StampsUpdate> {
    crate::stamps::use_existing(&state, carrier_id)
}

#[tauri::command]
pub async fn register_stamps<R: tauri::Runtime>(app: tauri::AppHandle<R>, form: RegistrationForm) -> CmdResult<StampsUpdate> {
    crate::stamps::register(&app, form).await
}

#[tauri::command]
pub async fn send_sms_code<R: tauri::Runtime>(app: tauri::AppHandle<R>, phone: String) -> CmdResult<StampsUpdate> {
    crate::stamps::send_code(&app, phone).await
}

#[tauri::command]
pub async fn verify_sms_code<R: tauri::Runtime>(app: tauri::AppHandle<R>, code: String) -> CmdResult<StampsUpdate> {
    crate::stamps::verify(&app, code).await
}

/// Validation as the user types: every problem of the form so far, without sending anything.
#[tauri::command]
pub fn check_registration(form: RegistrationForm) -> Vec<uspslink_core::error::FieldProblem> {
    form.to_request(crate::stamps::today()).err().unwrap_or_default()
}

#[tauri::command]
pub fn check_identifiers(form: IdentifiersForm) -> Vec<uspslink_core::error::FieldProblem> {
    crate::identifiers::check(&form)
}

#[tauri::command]
pub fn save_identifiers_draft(state: State<'_, AppState>, form: IdentifiersForm) -> CmdResult<IdentifiersView> {
    crate::identifiers::save_draft(&state, form)
}

#[tauri::command]
pub async fn verify_identifiers<R: tauri::Runtime>(app: tauri::AppHandle<R>, form: IdentifiersForm) -> CmdResult<IdentifiersUpdate> {
    crate::identifiers::verify(&app, form).await
}

#[tauri::command]
pub fn email_link_summary<R: tauri::Runtime>(app: tauri::AppHandle<R>) -> CmdResult<()> {
    crate::identifiers::email_summary(&app)
}

#[tauri::command]
pub fn save_stamps_draft(state: State<'_, AppState>, draft: uspslink_core::shipengine::StampsDraft) -> CmdResult<()> {
    crate::stamps::save_draft(&state, draft)
}
