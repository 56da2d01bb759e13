//! IPC commands: a thin layer over `AppState`, the flows and `uspslink-core`. Errors reach the UI as
//! `{kind, message}` (IpcError). Blocking keyring calls run on the blocking pool.
//!
//! The `#[tauri::command]` functions are made from the command table (command_names.rs), each with
//! the table's arguments and result, and each calls the body of its name in [`body`] with them: a
//! body whose arguments or result drift from the table does not compile, so the TypeScript
//! signatures (made from the same table) are the functions' own.
//!
//! Every body runs inside [`guarded`]: a panic (a bug, whatever input caused it) is caught, logged
//! without its message (it may quote what the user typed) and answered as an `internal` error; the
//! app stays up. None runs on the main thread (`async`), where a panic would abort.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use serde::Serialize;
use ts_rs::TS;
use uspslink_core::approval::ApprovalView;
use uspslink_core::business::BusinessId;
use uspslink_core::error::FieldProblem;
use uspslink_core::onboarding::{DashboardView, OnboardingEvent};
use uspslink_core::payments::{IdentifiersForm, IdentifiersView};
use uspslink_core::settings::Preferences;
use uspslink_core::shipengine::{RegistrationForm, StampsDraft};
use uspslink_core::vault::{SecretSlot, VaultStatus};
use uspslink_core::IpcError;

use crate::about::About;
use crate::flows::identifiers::IdentifiersUpdate;
use crate::flows::link::LinkUpdate;
use crate::flows::savings::SavingsUpdate;
use crate::flows::stamps::StampsUpdate;
use crate::state::{AppSnapshot, Bug, DeepLinkNotice};

type CmdResult<T> = Result<T, IpcError>;

/// Which secrets are in the keyring for the environment in force (never their values).
#[derive(Debug, Clone, Serialize, TS)]
pub struct SecretPresence {
    pub shipengine_api_key: bool,
    pub usps_consumer_secret: bool,
    pub usps_linked: bool,
}

/// Whether uspslink opens at login (in the tray), as the window shows it.
#[derive(Debug, Clone, Serialize, TS)]
pub struct OpenAtLogin {
    pub enabled: bool,
}

/// Run a command body; a panic becomes an `internal` error instead of a dead app.
async fn guarded<T>(command: &'static str, body: impl Future<Output = CmdResult<T>>) -> CmdResult<T> {
    let result = AssertUnwindSafe(body).catch_unwind().await.unwrap_or_else(|_| {
        tracing::error!(command, "a command panicked; answered as an internal error");
        Err(Bug(command).into())
    });
    if let Err(e) = &result {
        crate::about::note_error(command, e);
    }
    result
}

/// The `#[tauri::command]` of each row of the table: the window's arguments, as the table types
/// them, go to the body of the same name, whose result must be the table's.
macro_rules! commands_of_the_table {
    ($($name:ident ($($arg:ident : $ty:ty),*) -> $ret:ty,)*) => {
        $(
            #[tauri::command]
            pub async fn $name<R: tauri::Runtime>(app: tauri::AppHandle<R>, $($arg: $ty),*) -> CmdResult<$ret> {
                guarded(stringify!($name), body::$name(&app, $($arg),*)).await
            }
        )*
    };
}

for_each_command!(commands_of_the_table);

/// The bodies, one per command of the table, each over the app handle.
mod body {
    use secrecy::SecretString;
    use tauri::{AppHandle, Manager, Runtime};
    use uspslink_core::ErrorKind;

    use super::*;
    use crate::ipc::events::TauriHost;
    use crate::state::{blocking, AppState, Scope, Secrets};

    fn state<R: Runtime>(app: &AppHandle<R>) -> &AppState {
        app.state::<AppState>().inner()
    }

    fn host<R: Runtime>(app: &AppHandle<R>) -> TauriHost<R> {
        TauriHost(app.clone())
    }

    /// What is stored for `scope`, each secret where it is kept ([`Scope::holding`]).
    fn presence(secrets: &Secrets, scope: Scope) -> CmdResult<SecretPresence> {
        let has = |slot| secrets.open(scope.holding(slot)).has(slot).map_err(IpcError::from);
        Ok(SecretPresence {
            shipengine_api_key: has(SecretSlot::ShipEngineApiKey)?,
            usps_consumer_secret: has(SecretSlot::UspsConsumerSecret)?,
            usps_linked: has(SecretSlot::UspsRefreshToken)?,
        })
    }

    /// Only the secrets a user types go through here; tokens are written by the backend alone.
    fn user_slot(slot: SecretSlot) -> CmdResult<SecretSlot> {
        match slot {
            SecretSlot::ShipEngineApiKey | SecretSlot::UspsConsumerSecret => Ok(slot),
            _ => Err(IpcError::new(
                ErrorKind::InvalidInput,
                "that secret is managed by the app and cannot be set by hand",
            )),
        }
    }

    /// A call that found the USPS link broken: the window is told (it shows *Reconnect*).
    fn announce_if_broken<R: Runtime>(app: &AppHandle<R>, broken: bool) {
        if broken {
            crate::flows::link::announce(&host(app));
        }
    }

    pub async fn get_snapshot<R: Runtime>(app: &AppHandle<R>) -> CmdResult<AppSnapshot> {
        crate::startup::phase("get_snapshot asked");
        Ok(state(app).snapshot())
    }

    pub async fn onboarding_event<R: Runtime>(app: &AppHandle<R>, event: OnboardingEvent) -> CmdResult<DashboardView> {
        let state = state(app);
        Ok(state.progress.apply_from_user(state.scope(), event)?)
    }

    pub async fn add_business<R: Runtime>(app: &AppHandle<R>, name: String) -> CmdResult<AppSnapshot> {
        let state = state(app);
        state.change_businesses(|b| b.add(&name))?;
        crate::ipc::background::tray::refresh(app);
        Ok(state.snapshot())
    }

    pub async fn rename_business<R: Runtime>(
        app: &AppHandle<R>,
        business: BusinessId,
        name: String,
    ) -> CmdResult<AppSnapshot> {
        let state = state(app);
        state.change_businesses(|b| b.rename(business, &name))?;
        crate::ipc::background::tray::refresh(app);
        Ok(state.snapshot())
    }

    pub async fn switch_business<R: Runtime>(app: &AppHandle<R>, business: BusinessId) -> CmdResult<AppSnapshot> {
        let state = state(app);
        state.change_businesses(|b| b.switch_to(business))?;
        crate::ipc::background::tray::refresh(app);
        Ok(state.snapshot())
    }

    /// The window asked the owner first (it names what goes and what stays).
    pub async fn remove_business<R: Runtime>(app: &AppHandle<R>, business: BusinessId) -> CmdResult<AppSnapshot> {
        crate::flows::businesses::remove(&host(app), business).await?;
        crate::ipc::background::tray::refresh(app);
        Ok(state(app).snapshot())
    }

    pub async fn save_preferences<R: Runtime>(app: &AppHandle<R>, preferences: Preferences) -> CmdResult<AppSnapshot> {
        let state = state(app);
        state.save_preferences(preferences)?;
        state.ensure_sandbox().await?;
        Ok(state.snapshot())
    }

    pub async fn dismiss_storage_notice<R: Runtime>(app: &AppHandle<R>) -> CmdResult<()> {
        state(app).progress.dismiss_notice();
        Ok(())
    }

    /// The owner chose to start over while a newer version's progress file is open: the name that
    /// file was kept as (`None`: there was none).
    pub async fn start_over_in_this_version<R: Runtime>(app: &AppHandle<R>) -> CmdResult<Option<String>> {
        Ok(state(app).progress.start_over_in_this_version()?)
    }

    /// *About* in Settings: versions, folders and the diagnostics text.
    pub async fn about<R: Runtime>(app: &AppHandle<R>) -> CmdResult<About> {
        let data = app
            .path()
            .app_data_dir()
            .map_err(|e| IpcError::new(ErrorKind::Internal, format!("no data folder: {e}")))?;
        let log = app.try_state::<crate::LogFilePath>().and_then(|l| l.0.clone());
        Ok(crate::about::about(state(app), &data, log.as_deref()))
    }

    pub async fn vault_status<R: Runtime>(app: &AppHandle<R>) -> CmdResult<VaultStatus> {
        let secrets = state(app).secrets.clone();
        blocking(move || Ok(secrets.keyring().status())).await
    }

    pub async fn store_secret<R: Runtime>(
        app: &AppHandle<R>,
        slot: SecretSlot,
        value: String,
    ) -> CmdResult<SecretPresence> {
        let slot = user_slot(slot)?;
        let value = SecretString::from(value);
        let (secrets, scope) = (state(app).secrets.clone(), state(app).scope());
        blocking(move || {
            secrets.open(scope.holding(slot)).set(slot, &value)?;
            presence(&secrets, scope)
        })
        .await
    }

    pub async fn forget_secret<R: Runtime>(app: &AppHandle<R>, slot: SecretSlot) -> CmdResult<SecretPresence> {
        let slot = user_slot(slot)?;
        let (secrets, scope) = (state(app).secrets.clone(), state(app).scope());
        blocking(move || {
            secrets.open(scope.holding(slot)).delete(slot)?;
            presence(&secrets, scope)
        })
        .await
    }

    pub async fn secret_presence<R: Runtime>(app: &AppHandle<R>) -> CmdResult<SecretPresence> {
        let (secrets, scope) = (state(app).secrets.clone(), state(app).scope());
        blocking(move || presence(&secrets, scope)).await
    }

    pub async fn recent_deep_links<R: Runtime>(app: &AppHandle<R>) -> CmdResult<Vec<DeepLinkNotice>> {
        Ok(state(app).sessions.recent_deep_links())
    }

    /// Called by the UI once the first screen is painted: logs the start-to-interactive time (read
    /// by scripts/bench) and returns it in milliseconds.
    pub async fn app_ready<R: Runtime>(app: &AppHandle<R>) -> CmdResult<u32> {
        let ms = state(app).elapsed_ms();
        // What waited for the first screen (the scheme's registration) may start now.
        if let Some(first_screen) = app.try_state::<crate::FirstScreen>() {
            first_screen.painted();
        }
        crate::startup::phase("interactive (first paint + 2 frames)");
        tracing::info!("interactive after {ms} ms");
        eprintln!("uspslink: interactive after {ms} ms");
        Ok(ms)
    }

    pub async fn start_usps_link<R: Runtime>(app: &AppHandle<R>) -> CmdResult<LinkUpdate> {
        Ok(crate::flows::link::start(&host(app)).await?)
    }

    pub async fn cancel_usps_link<R: Runtime>(app: &AppHandle<R>) -> CmdResult<LinkUpdate> {
        Ok(crate::flows::link::cancel(&host(app)))
    }

    /// Link health before use: refreshes the token when needed and reports the link.
    pub async fn refresh_usps_link<R: Runtime>(app: &AppHandle<R>) -> CmdResult<LinkUpdate> {
        Ok(crate::flows::link::refresh_if_needed(&host(app)).await?)
    }

    pub async fn disconnect_usps<R: Runtime>(app: &AppHandle<R>) -> CmdResult<LinkUpdate> {
        Ok(crate::flows::link::disconnect(&host(app)).await?)
    }

    /// *New to USPS?*: the Business Portal sign-up in the system browser.
    pub async fn open_usps_signup<R: Runtime>(app: &AppHandle<R>) -> CmdResult<()> {
        let state = state(app);
        let endpoints = state.endpoints_ready(state.scope()).await?;
        Ok(crate::flows::link::open_external(&host(app), &endpoints.usps_signup)?)
    }

    /// The Stamps.com terms the registration agrees to, in the system browser.
    pub async fn open_carrier_terms<R: Runtime>(app: &AppHandle<R>) -> CmdResult<()> {
        Ok(crate::flows::stamps::open_carrier_terms(&host(app))?)
    }

    pub async fn save_shipengine_key<R: Runtime>(app: &AppHandle<R>, key: String) -> CmdResult<StampsUpdate> {
        Ok(crate::flows::stamps::save_key(state(app), key).await?)
    }

    pub async fn use_existing_stamps<R: Runtime>(app: &AppHandle<R>, carrier_id: String) -> CmdResult<StampsUpdate> {
        Ok(crate::flows::stamps::use_existing(state(app), carrier_id)?)
    }

    pub async fn register_stamps<R: Runtime>(app: &AppHandle<R>, form: RegistrationForm) -> CmdResult<StampsUpdate> {
        Ok(crate::flows::stamps::register(state(app), form).await?)
    }

    pub async fn send_sms_code<R: Runtime>(app: &AppHandle<R>, phone: String) -> CmdResult<StampsUpdate> {
        Ok(crate::flows::stamps::send_code(state(app), phone).await?)
    }

    pub async fn verify_sms_code<R: Runtime>(app: &AppHandle<R>, code: String) -> CmdResult<StampsUpdate> {
        Ok(crate::flows::stamps::verify(state(app), code).await?)
    }

    /// Validation as the user types: every problem of the form so far, without sending anything.
    pub async fn check_registration<R: Runtime>(
        app: &AppHandle<R>,
        form: RegistrationForm,
    ) -> CmdResult<Vec<FieldProblem>> {
        Ok(crate::flows::stamps::problems(state(app), form))
    }

    pub async fn check_identifiers<R: Runtime>(
        _app: &AppHandle<R>,
        form: IdentifiersForm,
    ) -> CmdResult<Vec<FieldProblem>> {
        Ok(crate::flows::identifiers::check(&form))
    }

    pub async fn save_identifiers_draft<R: Runtime>(
        app: &AppHandle<R>,
        form: IdentifiersForm,
    ) -> CmdResult<IdentifiersView> {
        let state = state(app);
        Ok(crate::flows::identifiers::save_draft(state, state.scope(), form)?)
    }

    pub async fn verify_identifiers<R: Runtime>(
        app: &AppHandle<R>,
        form: IdentifiersForm,
    ) -> CmdResult<IdentifiersUpdate> {
        let result = crate::flows::identifiers::verify(state(app), form).await;
        announce_if_broken(app, result.as_ref().is_err_and(|e| e.needs_reconnecting()));
        if result.is_ok() {
            // The link is complete: the approval watch makes its first check now.
            state(app).watch.wake();
        }
        Ok(result?)
    }

    pub async fn email_link_summary<R: Runtime>(app: &AppHandle<R>) -> CmdResult<()> {
        Ok(crate::flows::identifiers::email_summary(&host(app))?)
    }

    pub async fn save_stamps_draft<R: Runtime>(app: &AppHandle<R>, draft: StampsDraft) -> CmdResult<()> {
        let state = state(app);
        Ok(crate::flows::stamps::save_draft(state, state.scope(), draft)?)
    }

    /// *Check now*: ask USPS whether the NSA rates are approved (within the daily ceiling).
    pub async fn check_approval_now<R: Runtime>(app: &AppHandle<R>) -> CmdResult<ApprovalView> {
        let state = state(app);
        let scope = state.scope();
        let result = crate::flows::approval::check_in(state, scope, crate::flows::approval::Trigger::CheckNow).await;
        announce_if_broken(app, result.as_ref().is_err_and(|e| e.needs_reconnecting()));
        let outcome = result?;
        crate::flows::watch::after_check(&host(app), scope, &outcome);
        Ok(outcome.view)
    }

    /// *Check again*: price the reference parcels and ask Stamps.com for its quote (within USPS's quota).
    pub async fn check_savings<R: Runtime>(app: &AppHandle<R>) -> CmdResult<SavingsUpdate> {
        let state = state(app);
        let scope = state.scope();
        let trigger = uspslink_core::savings::SavingsTrigger::CheckAgain;
        let result = crate::flows::savings::price_in(state, scope, trigger).await;
        announce_if_broken(app, result.as_ref().is_err_and(|e| e.needs_reconnecting()));
        Ok(SavingsUpdate { savings: result?.view, identifiers: state.progress.identifiers_view(scope) })
    }

    fn open_at_login_of<R: Runtime>(app: &AppHandle<R>) -> CmdResult<OpenAtLogin> {
        use tauri_plugin_autostart::ManagerExt;
        let enabled = app.autolaunch().is_enabled().map_err(|e| {
            IpcError::new(ErrorKind::Internal, format!("Could not tell whether uspslink opens at login: {e}"))
        })?;
        Ok(OpenAtLogin { enabled })
    }

    pub async fn open_at_login<R: Runtime>(app: &AppHandle<R>) -> CmdResult<OpenAtLogin> {
        open_at_login_of(app)
    }

    /// *Open at login* on or off (Settings, or the offer at the waiting-for-approval step, which is
    /// then not made again).
    pub async fn set_open_at_login<R: Runtime>(app: &AppHandle<R>, enabled: bool) -> CmdResult<OpenAtLogin> {
        use tauri_plugin_autostart::ManagerExt;
        let launcher = app.autolaunch();
        let done = if enabled { launcher.enable() } else { launcher.disable() };
        done.map_err(|e| {
            IpcError::new(ErrorKind::Internal, format!("Could not change whether uspslink opens at login: {e}"))
        })?;
        tracing::info!(enabled, "open at login");
        state(app).progress.update_background(|r| r.login_offer_answered = true)?;
        open_at_login_of(app)
    }

    /// *Not now* on the offer to open at login: not offered again (Settings still has it).
    pub async fn dismiss_open_at_login_offer<R: Runtime>(app: &AppHandle<R>) -> CmdResult<()> {
        Ok(state(app).progress.update_background(|r| r.login_offer_answered = true)?)
    }

    /// Ctrl+W: the same as the window's close button (into the tray while something is watched).
    pub async fn close_window<R: Runtime>(app: &AppHandle<R>) -> CmdResult<()> {
        if let Some(window) = app.get_webview_window(crate::ipc::background::MAIN) {
            window
                .close()
                .map_err(|e| IpcError::new(ErrorKind::Internal, format!("Could not close the window: {e}")))?;
        }
        Ok(())
    }

    /// *Quit*: the watch finishes a check in progress, then the app ends.
    pub async fn quit_app<R: Runtime>(app: &AppHandle<R>) -> CmdResult<()> {
        crate::ipc::background::quit(app);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uspslink_core::ErrorKind;

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
