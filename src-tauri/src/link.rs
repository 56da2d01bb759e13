//! Linking the USPS Business Account: open the system browser on the USPS sign-in page, take the
//! `uspslink://` callback, exchange the code, keep the tokens fresh, disconnect. The OAuth rules
//! themselves live in `uspslink_core::usps`; this is the glue to the app's state, vault and events.

use std::time::Instant;

use secrecy::SecretString;
use serde::Serialize;
use tauri::{Emitter, Manager, Runtime};
use ts_rs::TS;
use uspslink_core::callback::{CallbackOutcome, OAuthCallback};
use uspslink_core::error::HasKind;
use uspslink_core::onboarding::{DashboardView, OnboardingEvent, Step};
use uspslink_core::payments::IdentifiersView;
use uspslink_core::settings::Environment;
use uspslink_core::usps::{unix_now, LinkError, LinkRecord, LinkStatus, TokenExchange, TokenSet, UspsOAuthClient};
use uspslink_core::vault::SecretSlot;
use uspslink_core::{ErrorKind, IpcError};

use crate::commands::blocking;
use crate::state::AppState;

pub const EVENT_USPS_LINK: &str = "usps-link";
/// A command that replaces the system browser (the URL is appended as its last argument).
pub const ENV_BROWSER: &str = "USPSLINK_BROWSER";

/// Sent to the UI whenever the link changes.
#[derive(Debug, Clone, Serialize, TS)]
pub struct LinkUpdate {
    pub status: LinkStatus,
    pub view: DashboardView,
    /// A new link brings new pre-fill values for the identifiers step.
    pub identifiers: IdentifiersView,
}

/// The app credentials and addresses in force.
struct UspsApp {
    client_id: String,
    secret: SecretString,
    api_base: String,
    authorize: String,
    redirect_uri: String,
}

impl UspsApp {
    fn client(&self) -> UspsOAuthClient {
        UspsOAuthClient::new(&self.api_base, &self.client_id, self.secret.clone())
    }
}

async fn usps_app(state: &AppState) -> Result<UspsApp, IpcError> {
    let endpoints = state.endpoints_ready().await?;
    let prefs = state.preferences();
    let (client_id, secret) = if state.environment() == Environment::Sandbox && prefs.usps_consumer_key.is_empty() {
        // The sandbox's own app credentials: the whole flow works with none of the user's.
        (
            uspslink_sandbox::usps::CLIENT_ID.to_string(),
            SecretString::from(uspslink_sandbox::usps::CLIENT_SECRET),
        )
    } else {
        if prefs.usps_consumer_key.is_empty() {
            return Err(LinkError::NotConfigured(
                "Enter your USPS consumer key and secret (USPS developer portal, My Apps) in Settings first.".into(),
            )
            .to_ipc());
        }
        let vault = state.vault_source();
        let secret = blocking(move || vault.open().get(SecretSlot::UspsConsumerSecret).map_err(|e| e.to_ipc())).await?;
        let secret = secret.ok_or_else(|| {
            LinkError::NotConfigured("Enter your USPS consumer secret in Settings first.".into()).to_ipc()
        })?;
        (prefs.usps_consumer_key.clone(), secret)
    };
    Ok(UspsApp {
        client_id,
        secret,
        api_base: endpoints.usps_api,
        authorize: endpoints.usps_authorize,
        redirect_uri: prefs.redirect_uri,
    })
}

fn emit<R: Runtime>(app: &tauri::AppHandle<R>) -> LinkUpdate {
    let state = app.state::<AppState>();
    let update = LinkUpdate { status: state.link_status(), view: state.view(), identifiers: state.identifiers_view() };
    if let Err(e) = app.emit(EVENT_USPS_LINK, &update) {
        tracing::error!("could not emit {EVENT_USPS_LINK}: {e}");
    }
    update
}

/// Open an http(s) address in the system browser (or the `USPSLINK_BROWSER` command).
pub fn open_external<R: Runtime>(app: &tauri::AppHandle<R>, url: &str) -> Result<(), IpcError> {
    let parsed = url::Url::parse(url).map_err(|_| IpcError::new(ErrorKind::InvalidInput, "not a web address"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(IpcError::new(ErrorKind::InvalidInput, "only web addresses are opened in the browser"));
    }
    launch(app, url)
}

/// Hand a `mailto:` URL to the system mail client (or the `USPSLINK_BROWSER` command).
pub fn open_mail<R: Runtime>(app: &tauri::AppHandle<R>, mailto: &str) -> Result<(), IpcError> {
    if !mailto.starts_with("mailto:") {
        return Err(IpcError::new(ErrorKind::InvalidInput, "not an e-mail address"));
    }
    launch(app, mailto)
}

fn launch<R: Runtime>(app: &tauri::AppHandle<R>, url: &str) -> Result<(), IpcError> {
    if let Ok(cmd) = std::env::var(ENV_BROWSER) {
        let mut parts = cmd.split_whitespace();
        let program = parts.next().ok_or_else(|| IpcError::new(ErrorKind::NotConfigured, format!("{ENV_BROWSER} is empty")))?;
        std::process::Command::new(program)
            .args(parts)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .spawn()
            .map_err(|e| IpcError::new(ErrorKind::Internal, format!("could not start the browser ({program}): {e}")))?;
        return Ok(());
    }
    use tauri_plugin_opener::OpenerExt;
    app.opener()
        .open_url(url, None::<&str>)
        .map_err(|e| IpcError::new(ErrorKind::Internal, format!("could not open {}: {e}", url.split(':').next().unwrap_or("it"))))
}

/// *Link your business account* (or *Reconnect* / *Try again*).
pub async fn start<R: Runtime>(app: &tauri::AppHandle<R>) -> Result<LinkUpdate, IpcError> {
    let state = app.state::<AppState>();
    let usps = usps_app(&state).await?;
    let started = state
        .attempts
        .lock()
        .expect("attempts")
        .begin(&usps.authorize, &usps.client_id, &usps.redirect_uri, Instant::now())
        .map_err(|e| e.to_ipc())?;
    state.set_link_failure(None);
    if let Err(e) = open_external(app, &started.authorize_url) {
        state.attempts.lock().expect("attempts").cancel_all();
        return Err(e);
    }
    tracing::info!("USPS sign-in opened in the browser (state {})", started.state);
    Ok(emit(app))
}

pub fn cancel<R: Runtime>(app: &tauri::AppHandle<R>) -> LinkUpdate {
    let state = app.state::<AppState>();
    state.attempts.lock().expect("attempts").cancel_all();
    state.set_link_failure(None);
    emit(app)
}

async fn store_tokens(state: &AppState, tokens: &TokenSet) -> Result<(), IpcError> {
    let vault = state.vault_source();
    let access = tokens.access_token.clone();
    let refresh = tokens.refresh_token.clone();
    blocking(move || {
        let vault = vault.open();
        vault.set(SecretSlot::UspsAccessToken, &access).map_err(|e| e.to_ipc())?;
        match refresh {
            Some(r) => vault.set(SecretSlot::UspsRefreshToken, &r).map_err(|e| e.to_ipc()),
            None => Ok(()),
        }
    })
    .await
}

async fn forget_tokens(state: &AppState) -> Result<(), IpcError> {
    let vault = state.vault_source();
    blocking(move || {
        let vault = vault.open();
        vault.delete(SecretSlot::UspsAccessToken).map_err(|e| e.to_ipc())?;
        vault.delete(SecretSlot::UspsRefreshToken).map_err(|e| e.to_ipc())
    })
    .await
}

/// A valid `uspslink://oauth/callback` arrived. Unknown and replayed states are ignored (a forged
/// link must not disturb a real sign-in); everything else ends the attempt.
pub async fn complete<R: Runtime>(app: tauri::AppHandle<R>, callback: OAuthCallback) {
    let state = app.state::<AppState>();
    let attempt = state.attempts.lock().expect("attempts").take(&callback.state, Instant::now());
    let attempt = match attempt {
        Ok(a) => a,
        Err(e @ (LinkError::UnknownState | LinkError::UsedState)) => {
            tracing::warn!("ignored a USPS callback: {e}");
            return;
        }
        Err(e) => {
            state.set_link_failure(Some(e.to_ipc()));
            emit(&app);
            return;
        }
    };
    let outcome = match callback.outcome {
        CallbackOutcome::Error { error, description } if error == "access_denied" => Err(LinkError::Denied(description).to_ipc()),
        CallbackOutcome::Error { error, description } => {
            Err(LinkError::AuthorizationFailed { error, description }.to_ipc())
        }
        CallbackOutcome::Code(code) => async {
            let usps = usps_app(&state).await?;
            let tokens =
                usps.client().exchange_code(&code, attempt.verifier(), &attempt.redirect_uri).await.map_err(|e| e.to_ipc())?;
            store_tokens(&state, &tokens).await?;
            state.set_link_record(LinkRecord::linked(&tokens, unix_now()))?;
            Ok(())
        }
        .await,
    };
    match outcome {
        Ok(()) => {
            tracing::info!("USPS business account linked");
            state.set_link_failure(None);
            // Finishes the guideline step when the user got there through the steps; a reconnect
            // from elsewhere leaves their place alone.
            if let Err(e) = state.apply(OnboardingEvent::Complete(Step::LinkBusinessAccount)) {
                tracing::debug!("link step not completed in the guidelines: {}", e.message);
            }
        }
        Err(e) => {
            tracing::warn!("USPS link failed: {}", e.message);
            state.set_link_failure(Some(e));
        }
    }
    emit(&app);
}

/// Refresh the access token when it is (nearly) expired; store the rotated refresh token. A refresh
/// refused as revoked/expired turns the link to "needs reconnecting".
pub async fn refresh_if_needed<R: Runtime>(app: &tauri::AppHandle<R>) -> Result<LinkUpdate, IpcError> {
    let state = app.state::<AppState>();
    // One refresh at a time: two with the same (rotating) refresh token would break the link.
    let _guard = state.refresh_lock.lock().await;
    let record = state.link_record();
    if !record.needs_refresh(unix_now()) {
        return Ok(emit(app));
    }
    let usps = usps_app(&state).await?;
    let vault = state.vault_source();
    let refresh_token = blocking(move || vault.open().get(SecretSlot::UspsRefreshToken).map_err(|e| e.to_ipc())).await?;
    let result = match refresh_token {
        Some(rt) => usps.client().refresh(&rt).await,
        None => Err(LinkError::NeedsReconnecting("no refresh token is stored".into())),
    };
    match result {
        Ok(tokens) => {
            store_tokens(&state, &tokens).await?;
            state.set_link_record(record.refreshed(&tokens))?;
            tracing::info!("USPS access token refreshed");
        }
        Err(e @ LinkError::NeedsReconnecting(_)) => mark_broken(&state, &e.to_string()).await?,
        Err(e) => return Err(e.to_ipc()),
    }
    Ok(emit(app))
}

/// USPS no longer accepts the link (a refused refresh, or an API answering 401): the tokens go, and
/// the link shows "needs reconnecting" until the user signs in again.
async fn mark_broken(state: &AppState, reason: &str) -> Result<(), IpcError> {
    tracing::warn!("USPS link needs reconnecting: {reason}");
    forget_tokens(state).await?;
    state.set_link_record(LinkRecord { needs_reconnecting: true, ..state.link_record() })
}

/// The same, from outside (the payments calls), telling the UI.
pub async fn broken<R: Runtime>(app: &tauri::AppHandle<R>, reason: &str) -> Result<LinkUpdate, IpcError> {
    mark_broken(&app.state::<AppState>(), reason).await?;
    Ok(emit(app))
}

/// A current access token for a USPS API call: refreshed first when it is (nearly) expired.
pub async fn access_token<R: Runtime>(app: &tauri::AppHandle<R>) -> Result<SecretString, IpcError> {
    let update = refresh_if_needed(app).await?;
    match update.status {
        LinkStatus::Linked { .. } => {}
        LinkStatus::NeedsReconnecting { message } => return Err(IpcError::new(ErrorKind::NeedsReconnecting, message)),
        LinkStatus::Waiting => {
            return Err(IpcError::new(ErrorKind::NotConfigured, "Finish signing in to USPS in your browser first, then verify again."))
        }
        _ => return Err(IpcError::new(ErrorKind::NotConfigured, "Link your USPS business account first (step 5).")),
    }
    let vault = app.state::<AppState>().vault_source();
    let token = blocking(move || vault.open().get(SecretSlot::UspsAccessToken).map_err(|e| e.to_ipc())).await?;
    match token {
        Some(t) => Ok(t),
        None => {
            broken(app, "no access token is stored").await?;
            Err(IpcError::new(ErrorKind::NeedsReconnecting, "Your USPS connection is gone: reconnect your USPS business account."))
        }
    }
}

/// *Disconnect*: revoke at USPS (best effort: the local tokens go either way), then forget.
pub async fn disconnect<R: Runtime>(app: &tauri::AppHandle<R>) -> Result<LinkUpdate, IpcError> {
    let state = app.state::<AppState>();
    state.attempts.lock().expect("attempts").cancel_all();
    let vault = state.vault_source();
    let tokens = blocking(move || {
        let v = vault.open();
        let r = v.get(SecretSlot::UspsRefreshToken).map_err(|e| e.to_ipc())?;
        let a = v.get(SecretSlot::UspsAccessToken).map_err(|e| e.to_ipc())?;
        Ok((r, a))
    })
    .await?;
    match usps_app(&state).await {
        Ok(usps) => {
            let client = usps.client();
            for (token, hint) in [(tokens.0, "refresh_token"), (tokens.1, "access_token")] {
                if let Some(t) = token {
                    if let Err(e) = client.revoke(&t, hint).await {
                        tracing::warn!("USPS revoke ({hint}) failed: {e}");
                    }
                }
            }
        }
        Err(e) => tracing::warn!("could not revoke at USPS: {}", e.message),
    }
    forget_tokens(&state).await?;
    state.set_link_record(LinkRecord::default())?;
    state.set_link_failure(None);
    Ok(emit(app))
}
