//! IPC commands: a thin layer over `AppState`, the flows and `uspslink-core`. Errors reach the UI as
//! `{kind, message}` (IpcError). Blocking keyring calls run on the blocking pool.
//!
//! Every command body runs inside [`guarded`]: a panic (a bug, whatever input caused it) is caught,
//! logged without its message (it may quote what the user typed) and answered as an `internal`
//! error; the app stays up. None runs on the main thread (`async`), where a panic would abort.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use secrecy::SecretString;
use serde::Serialize;
use tauri::State;
use ts_rs::TS;
use uspslink_core::approval::ApprovalView;
use uspslink_core::error::FieldProblem;
use uspslink_core::onboarding::{DashboardView, OnboardingEvent};
use uspslink_core::payments::{IdentifiersForm, IdentifiersView};
use uspslink_core::settings::Preferences;
use uspslink_core::shipengine::{RegistrationForm, StampsDraft};
use uspslink_core::vault::{SecretSlot, Vault, VaultStatus};
use uspslink_core::{ErrorKind, IpcError};

use super::events::TauriHost;
use crate::flows::identifiers::IdentifiersUpdate;
use crate::flows::link::LinkUpdate;
use crate::flows::savings::SavingsUpdate;
use crate::flows::stamps::StampsUpdate;
use crate::state::{blocking, internal, AppSnapshot, AppState, DeepLinkNotice, Scope};

type CmdResult<T> = Result<T, IpcError>;

/// Which secrets are in the keyring for the environment in force (never their values).
#[derive(Debug, Clone, Serialize, TS)]
pub struct SecretPresence {
    pub shipengine_api_key: bool,
    pub usps_consumer_secret: bool,
    pub usps_linked: bool,
}

/// Run a command body; a panic becomes an `internal` error instead of a dead app.
async fn guarded<T>(command: &'static str, body: impl Future<Output = CmdResult<T>>) -> CmdResult<T> {
    let result = AssertUnwindSafe(body).catch_unwind().await.unwrap_or_else(|_| {
        tracing::error!(command, "a command panicked; answered as an internal error");
        Err(internal(command))
    });
    if let Err(e) = &result {
        crate::about::note_error(command, e);
    }
    result
}

fn presence(vault: &Vault) -> CmdResult<SecretPresence> {
    let has = |slot| vault.has(slot).map_err(IpcError::from);
    Ok(SecretPresence {
        shipengine_api_key: has(SecretSlot::ShipEngineApiKey)?,
        usps_consumer_secret: has(SecretSlot::UspsConsumerSecret)?,
        usps_linked: has(SecretSlot::UspsRefreshToken)?,
    })
}

/// The scope in force as a command starts: the whole command works in it.
fn scope(state: &AppState) -> Scope {
    state.scope()
}

#[tauri::command]
pub async fn get_snapshot(state: State<'_, AppState>) -> CmdResult<AppSnapshot> {
    guarded("get_snapshot", async {
        crate::startup::phase("get_snapshot asked");
        Ok(state.snapshot())
    })
    .await
}

#[tauri::command]
pub async fn onboarding_event(state: State<'_, AppState>, event: OnboardingEvent) -> CmdResult<DashboardView> {
    guarded("onboarding_event", async { state.progress.apply_from_user(scope(&state), event) }).await
}

#[tauri::command]
pub async fn save_preferences(state: State<'_, AppState>, preferences: Preferences) -> CmdResult<AppSnapshot> {
    guarded("save_preferences", async {
        state.save_preferences(preferences)?;
        state.ensure_sandbox().await?;
        Ok(state.snapshot())
    })
    .await
}

#[tauri::command]
pub async fn dismiss_storage_notice(state: State<'_, AppState>) -> CmdResult<()> {
    guarded("dismiss_storage_notice", async {
        state.progress.dismiss_notice();
        Ok(())
    })
    .await
}

/// The owner chose to start over while a newer version's progress file is open: the name that file
/// was kept as (`None`: there was none).
#[tauri::command]
pub async fn start_over_in_this_version(state: State<'_, AppState>) -> CmdResult<Option<String>> {
    guarded("start_over_in_this_version", async { state.progress.start_over_in_this_version() }).await
}

/// *About* in Settings: versions, folders and the diagnostics text.
#[tauri::command]
pub async fn about<R: tauri::Runtime>(
    app: tauri::AppHandle<R>,
    state: State<'_, AppState>,
) -> CmdResult<crate::about::About> {
    guarded("about", async {
        use tauri::Manager;
        let data = app
            .path()
            .app_data_dir()
            .map_err(|e| IpcError::new(ErrorKind::Internal, format!("no data folder: {e}")))?;
        let log = app.try_state::<crate::LogFilePath>().and_then(|l| l.0.clone());
        Ok(crate::about::about(&state, &data, log.as_deref()))
    })
    .await
}

#[tauri::command]
pub async fn vault_status(state: State<'_, AppState>) -> CmdResult<VaultStatus> {
    guarded("vault_status", async {
        let vault = state.secrets.clone();
        blocking(move || Ok(vault.keyring().status())).await
    })
    .await
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
    guarded("store_secret", async {
        let slot = user_slot(slot)?;
        let value = SecretString::from(value);
        let (vault, scope) = (state.secrets.clone(), scope(&state));
        blocking(move || {
            let vault = vault.open(scope);
            vault.set(slot, &value)?;
            presence(&vault)
        })
        .await
    })
    .await
}

#[tauri::command]
pub async fn forget_secret(state: State<'_, AppState>, slot: SecretSlot) -> CmdResult<SecretPresence> {
    guarded("forget_secret", async {
        let slot = user_slot(slot)?;
        let (vault, scope) = (state.secrets.clone(), scope(&state));
        blocking(move || {
            let vault = vault.open(scope);
            vault.delete(slot)?;
            presence(&vault)
        })
        .await
    })
    .await
}

#[tauri::command]
pub async fn secret_presence(state: State<'_, AppState>) -> CmdResult<SecretPresence> {
    guarded("secret_presence", async {
        let (vault, scope) = (state.secrets.clone(), scope(&state));
        blocking(move || presence(&vault.open(scope))).await
    })
    .await
}

#[tauri::command]
pub async fn recent_deep_links(state: State<'_, AppState>) -> CmdResult<Vec<DeepLinkNotice>> {
    guarded("recent_deep_links", async { Ok(state.sessions.recent_deep_links()) }).await
}

/// Called by the UI once the first screen is painted: logs the start-to-interactive time (read by
/// scripts/bench) and returns it in milliseconds.
#[tauri::command]
pub async fn app_ready<R: tauri::Runtime>(app: tauri::AppHandle<R>, state: State<'_, AppState>) -> CmdResult<u32> {
    guarded("app_ready", async {
        let ms = state.elapsed_ms();
        // What waited for the first screen (the scheme's registration) may start now.
        if let Some(first_screen) = tauri::Manager::try_state::<crate::FirstScreen>(&app) {
            first_screen.painted();
        }
        crate::startup::phase("interactive (first paint + 2 frames)");
        tracing::info!("interactive after {ms} ms");
        eprintln!("uspslink: interactive after {ms} ms");
        Ok(ms)
    })
    .await
}

#[tauri::command]
pub async fn start_usps_link<R: tauri::Runtime>(app: tauri::AppHandle<R>) -> CmdResult<LinkUpdate> {
    guarded("start_usps_link", crate::flows::link::start(&TauriHost(app.clone()))).await
}

#[tauri::command]
pub async fn cancel_usps_link<R: tauri::Runtime>(app: tauri::AppHandle<R>) -> CmdResult<LinkUpdate> {
    guarded("cancel_usps_link", async { Ok(crate::flows::link::cancel(&TauriHost(app.clone()))) }).await
}

/// Link health before use: refreshes the token when needed and reports the link.
#[tauri::command]
pub async fn refresh_usps_link<R: tauri::Runtime>(app: tauri::AppHandle<R>) -> CmdResult<LinkUpdate> {
    guarded("refresh_usps_link", crate::flows::link::refresh_if_needed(&TauriHost(app.clone()))).await
}

#[tauri::command]
pub async fn disconnect_usps<R: tauri::Runtime>(app: tauri::AppHandle<R>) -> CmdResult<LinkUpdate> {
    guarded("disconnect_usps", crate::flows::link::disconnect(&TauriHost(app.clone()))).await
}

/// *New to USPS?*: the Business Portal sign-up in the system browser.
#[tauri::command]
pub async fn open_usps_signup<R: tauri::Runtime>(
    app: tauri::AppHandle<R>,
    state: State<'_, AppState>,
) -> CmdResult<()> {
    guarded("open_usps_signup", async {
        let endpoints = state.endpoints_ready(scope(&state)).await?;
        crate::flows::link::open_external(&TauriHost(app.clone()), &endpoints.usps_signup)
    })
    .await
}

/// The Stamps.com terms the registration agrees to, in the system browser.
#[tauri::command]
pub async fn open_carrier_terms<R: tauri::Runtime>(app: tauri::AppHandle<R>) -> CmdResult<()> {
    guarded("open_carrier_terms", async { crate::flows::stamps::open_carrier_terms(&TauriHost(app.clone())) }).await
}

#[tauri::command]
pub async fn save_shipengine_key(state: State<'_, AppState>, key: String) -> CmdResult<StampsUpdate> {
    guarded("save_shipengine_key", crate::flows::stamps::save_key(&state, key)).await
}

#[tauri::command]
pub async fn use_existing_stamps(state: State<'_, AppState>, carrier_id: String) -> CmdResult<StampsUpdate> {
    guarded("use_existing_stamps", async { crate::flows::stamps::use_existing(&state, carrier_id) }).await
}

#[tauri::command]
pub async fn register_stamps(state: State<'_, AppState>, form: RegistrationForm) -> CmdResult<StampsUpdate> {
    guarded("register_stamps", crate::flows::stamps::register(&state, form)).await
}

#[tauri::command]
pub async fn send_sms_code(state: State<'_, AppState>, phone: String) -> CmdResult<StampsUpdate> {
    guarded("send_sms_code", crate::flows::stamps::send_code(&state, phone)).await
}

#[tauri::command]
pub async fn verify_sms_code(state: State<'_, AppState>, code: String) -> CmdResult<StampsUpdate> {
    guarded("verify_sms_code", crate::flows::stamps::verify(&state, code)).await
}

/// Validation as the user types: every problem of the form so far, without sending anything.
#[tauri::command]
pub async fn check_registration(state: State<'_, AppState>, form: RegistrationForm) -> CmdResult<Vec<FieldProblem>> {
    guarded("check_registration", async { Ok(crate::flows::stamps::problems(&state, form)) }).await
}

#[tauri::command]
pub async fn check_identifiers(form: IdentifiersForm) -> CmdResult<Vec<FieldProblem>> {
    guarded("check_identifiers", async { Ok(crate::flows::identifiers::check(&form)) }).await
}

#[tauri::command]
pub async fn save_identifiers_draft(state: State<'_, AppState>, form: IdentifiersForm) -> CmdResult<IdentifiersView> {
    guarded("save_identifiers_draft", async { crate::flows::identifiers::save_draft(&state, scope(&state), form) })
        .await
}

#[tauri::command]
pub async fn verify_identifiers<R: tauri::Runtime>(
    app: tauri::AppHandle<R>,
    state: State<'_, AppState>,
    form: IdentifiersForm,
) -> CmdResult<IdentifiersUpdate> {
    guarded("verify_identifiers", async {
        let result = crate::flows::identifiers::verify(&state, form).await;
        match &result {
            Err(e) if e.kind == ErrorKind::NeedsReconnecting => crate::flows::link::announce(&TauriHost(app.clone())),
            // The link is complete: the approval watch makes its first check now.
            Ok(_) => state.watch.wake(),
            Err(_) => {}
        }
        result
    })
    .await
}

#[tauri::command]
pub async fn email_link_summary<R: tauri::Runtime>(app: tauri::AppHandle<R>) -> CmdResult<()> {
    guarded("email_link_summary", async { crate::flows::identifiers::email_summary(&TauriHost(app.clone())) }).await
}

#[tauri::command]
pub async fn save_stamps_draft(state: State<'_, AppState>, draft: StampsDraft) -> CmdResult<()> {
    guarded("save_stamps_draft", async { crate::flows::stamps::save_draft(&state, scope(&state), draft) }).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_command_body_answers_internal_and_leaves_no_text_of_the_input() {
        let typed = "78756–12";
        let e = guarded("check_registration", async {
            let _ = &typed[..6]; // slicing inside a multi-byte character panics
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Internal);
        assert!(!e.message.contains(typed) && e.message.contains("Nothing was changed"), "{}", e.message);
        // And afterwards commands still run.
        assert_eq!(guarded("get_snapshot", async { Ok(1) }).await.unwrap(), 1);
    }
}

/// *Check now*: ask USPS whether the NSA rates are approved (within the daily ceiling).
#[tauri::command]
pub async fn check_approval_now<R: tauri::Runtime>(
    app: tauri::AppHandle<R>,
    state: State<'_, AppState>,
) -> CmdResult<ApprovalView> {
    guarded("check_approval_now", async {
        let scope = state.scope();
        match crate::flows::approval::check_in(&state, scope, crate::flows::approval::Trigger::CheckNow).await {
            Ok(outcome) => {
                crate::flows::watch::after_check(&TauriHost(app.clone()), scope, &outcome);
                Ok(outcome.view)
            }
            Err(e) => {
                if e.kind == ErrorKind::NeedsReconnecting {
                    crate::flows::link::announce(&TauriHost(app.clone()));
                }
                Err(e)
            }
        }
    })
    .await
}

/// *Check again*: price the reference parcels and ask Stamps.com for its quote (within USPS's quota).
#[tauri::command]
pub async fn check_savings<R: tauri::Runtime>(
    app: tauri::AppHandle<R>,
    state: State<'_, AppState>,
) -> CmdResult<SavingsUpdate> {
    guarded("check_savings", async {
        let scope = state.scope();
        match crate::flows::savings::price_in(&state, scope, uspslink_core::savings::SavingsTrigger::CheckAgain).await {
            Ok(outcome) => {
                Ok(SavingsUpdate { savings: outcome.view, identifiers: state.progress.identifiers_view(scope) })
            }
            Err(e) => {
                if e.kind == ErrorKind::NeedsReconnecting {
                    crate::flows::link::announce(&TauriHost(app.clone()));
                }
                Err(e)
            }
        }
    })
    .await
}

/// Whether uspslink opens at login (in the tray), as the window shows it.
#[derive(Debug, Clone, Serialize, TS)]
pub struct OpenAtLogin {
    pub enabled: bool,
}

fn open_at_login_of<R: tauri::Runtime>(app: &tauri::AppHandle<R>) -> CmdResult<OpenAtLogin> {
    use tauri_plugin_autostart::ManagerExt;
    let enabled = app.autolaunch().is_enabled().map_err(|e| {
        IpcError::new(ErrorKind::Internal, format!("Could not tell whether uspslink opens at login: {e}"))
    })?;
    Ok(OpenAtLogin { enabled })
}

#[tauri::command]
pub async fn open_at_login<R: tauri::Runtime>(app: tauri::AppHandle<R>) -> CmdResult<OpenAtLogin> {
    guarded("open_at_login", async { open_at_login_of(&app) }).await
}

/// *Open at login* on or off (Settings, or the offer at the waiting-for-approval step, which is then
/// not made again).
#[tauri::command]
pub async fn set_open_at_login<R: tauri::Runtime>(
    app: tauri::AppHandle<R>,
    state: State<'_, AppState>,
    enabled: bool,
) -> CmdResult<OpenAtLogin> {
    guarded("set_open_at_login", async {
        use tauri_plugin_autostart::ManagerExt;
        let launcher = app.autolaunch();
        let done = if enabled { launcher.enable() } else { launcher.disable() };
        done.map_err(|e| {
            IpcError::new(ErrorKind::Internal, format!("Could not change whether uspslink opens at login: {e}"))
        })?;
        tracing::info!(enabled, "open at login");
        state.progress.update_background(|r| r.login_offer_answered = true)?;
        open_at_login_of(&app)
    })
    .await
}

/// *Not now* on the offer to open at login: not offered again (Settings still has it).
#[tauri::command]
pub async fn dismiss_open_at_login_offer(state: State<'_, AppState>) -> CmdResult<()> {
    guarded("dismiss_open_at_login_offer", async {
        state.progress.update_background(|r| r.login_offer_answered = true)
    })
    .await
}

/// Ctrl+W: the same as the window's close button (into the tray while something is watched).
#[tauri::command]
pub async fn close_window<R: tauri::Runtime>(app: tauri::AppHandle<R>) -> CmdResult<()> {
    guarded("close_window", async {
        use tauri::Manager;
        if let Some(window) = app.get_webview_window(crate::ipc::background::MAIN) {
            window
                .close()
                .map_err(|e| IpcError::new(ErrorKind::Internal, format!("Could not close the window: {e}")))?;
        }
        Ok(())
    })
    .await
}

/// *Quit*: the watch finishes a check in progress, then the app ends.
#[tauri::command]
pub async fn quit_app<R: tauri::Runtime>(app: tauri::AppHandle<R>) -> CmdResult<()> {
    guarded("quit_app", async {
        crate::ipc::background::quit(&app);
        Ok(())
    })
    .await
}
