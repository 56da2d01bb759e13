//! Linking the USPS Business Account: open the system browser on the USPS sign-in page, take the
//! `uspslink://` callback, exchange the code, keep the tokens fresh, disconnect. The OAuth rules
//! themselves live in `uspslink_core::usps`; this is the glue to the app's state, vault and events.
//!
//! Every flow takes the environment once, when it starts: its endpoints, keyring entries and
//! records are that environment's only, so a token goes only to the environment that issued it.

use std::time::Instant;

use secrecy::SecretString;
use serde::Serialize;
use ts_rs::TS;
use uspslink_core::callback::{state_fingerprint, CallbackOutcome, OAuthCallback};
use uspslink_core::onboarding::{DashboardView, OnboardingEvent, Step};
use uspslink_core::payments::IdentifiersView;
use uspslink_core::settings::{Environment, SignInMethod};
use uspslink_core::usps::{
    LinkAttempt, LinkError, LinkRecord, LinkStatus, PkcePair, SignInServiceClient, TokenExchange, TokenSet,
    UspsOAuthClient, ATTEMPT_TTL,
};
use uspslink_core::vault::{SecretSlot, VaultError};
use uspslink_core::IpcError;

use super::{Host, OpenError};
use crate::state::{blocking, AppState, Bug, SandboxError, SaveError, Scope, UnsavedTokens};

/// Why the link (or a token for a USPS call) is not there; nothing changed unless it says so.
#[derive(Debug, thiserror::Error)]
pub enum LinkFlowError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("Finish signing in to USPS in your browser first, then verify again.")]
    SignInOpen,
    /// USPS no longer takes the link (a password reset, a revoked consent): the link shows it.
    #[error("{}", crate::state::NEEDS_RECONNECTING)]
    NeedsReconnecting,
    #[error("Link your USPS business account first (step 5).")]
    NotLinked,
    #[error(
        "Another business was shown while the USPS sign-in was being prepared: start it again from this business."
    )]
    ScopeChanged,
    #[error("Your USPS connection is gone: reconnect your USPS business account.")]
    TokensGone,
    #[error(transparent)]
    Keyring(#[from] VaultError),
    #[error(transparent)]
    Save(#[from] SaveError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Bug(#[from] Bug),
    #[error(transparent)]
    Open(#[from] OpenError),
}

impl LinkFlowError {
    /// USPS no longer takes the link: the window shows *Reconnect*.
    pub fn needs_reconnecting(&self) -> bool {
        matches!(
            self,
            LinkFlowError::NeedsReconnecting
                | LinkFlowError::TokensGone
                | LinkFlowError::Link(LinkError::NeedsReconnecting(_))
        )
    }
}

/// Sent to the UI whenever the link changes.
#[derive(Debug, Clone, Serialize, TS)]
pub struct LinkUpdate {
    pub status: LinkStatus,
    pub view: DashboardView,
    /// A new link brings new pre-fill values for the identifiers step.
    pub identifiers: IdentifiersView,
}

/// The business's own USPS developer app: its credentials and addresses in force.
struct UspsApp {
    client_id: String,
    secret: SecretString,
    api_base: String,
    authorize: String,
    redirect_uri: String,
}

async fn usps_app(state: &AppState, scope: Scope) -> Result<UspsApp, LinkFlowError> {
    let endpoints = state.endpoints_ready(scope).await?;
    let prefs = state.progress.preferences();
    let (client_id, secret) = if scope.environment() == Environment::Sandbox && prefs.usps_consumer_key.is_empty() {
        // The sandbox's own app credentials: the whole flow works with none of the user's.
        let app = state.servers.sandbox_app().await?;
        (app.client_id, app.secret)
    } else {
        if prefs.usps_consumer_key.is_empty() {
            return Err(LinkError::NotConfigured(
                "Enter your USPS consumer key and secret (USPS developer portal, My Apps) in Settings first.".into(),
            )
            .into());
        }
        let slot = SecretSlot::UspsConsumerSecret;
        let secret = vault_get(state, scope.holding(slot), slot).await?;
        let secret = secret
            .ok_or_else(|| LinkError::NotConfigured("Enter your USPS consumer secret in Settings first.".into()))?;
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

/// The uspslink sign-in service for `scope`: the Sandbox's own, the address typed in Settings, or
/// the build's.
async fn sign_in_service(state: &AppState, scope: Scope) -> Result<SignInServiceClient, LinkFlowError> {
    let endpoints = state.endpoints_ready(scope).await?;
    let url = state.progress.preferences().sign_in_service(scope.environment(), &endpoints).ok_or_else(|| {
        LinkError::NotConfigured(format!(
            "This copy of uspslink has no sign-in service for {}: enter the address your vendor gave you in \
             Settings, or sign in with your own USPS developer app.",
            scope.label()
        ))
    })?;
    Ok(SignInServiceClient::over(state.clients.api(scope.environment(), &url)))
}

/// Who exchanges, renews and revokes the tokens: the same way they were issued.
enum TokenClient {
    OwnApp(UspsOAuthClient),
    Service(SignInServiceClient),
}

/// The client for tokens issued `via` a way, through the sign-in service at `service` when that way
/// is the service: the exchange goes where the sign-in started, a refresh and a revoke where the
/// tokens came from. Never to an address typed in Settings since: a token goes only to the service
/// that issued it.
async fn token_client(
    state: &AppState,
    scope: Scope,
    via: SignInMethod,
    service: Option<&str>,
) -> Result<TokenClient, LinkFlowError> {
    Ok(match via {
        SignInMethod::OwnApp => {
            let app = usps_app(state, scope).await?;
            TokenClient::OwnApp(UspsOAuthClient::over(
                state.clients.api(scope.environment(), &app.api_base),
                &app.client_id,
                app.secret.clone(),
            ))
        }
        SignInMethod::Service => TokenClient::Service(match (scope.environment(), service) {
            // The app's own service, in front of the sandbox: the same one, on a new port each run.
            (Environment::Sandbox, _) => sign_in_service(state, scope).await?,
            (_, Some(url)) => SignInServiceClient::over(state.clients.api(scope.environment(), url)),
            // A link made before the address was recorded: the environment's own service (the
            // build's), never one typed in Settings since.
            (_, None) => {
                let own = state.endpoints_ready(scope).await?.sign_in_service.ok_or_else(|| {
                    LinkError::NotConfigured("This copy of uspslink has no sign-in service for this link.".into())
                })?;
                SignInServiceClient::over(state.clients.api(scope.environment(), &own))
            }
        }),
    })
}

impl TokenExchange for TokenClient {
    async fn exchange_code(
        &self,
        code: &SecretString,
        verifier: &SecretString,
        redirect_uri: &str,
        state: &str,
    ) -> Result<TokenSet, LinkError> {
        match self {
            TokenClient::OwnApp(c) => c.exchange_code(code, verifier, redirect_uri, state).await,
            TokenClient::Service(c) => c.exchange_code(code, verifier, redirect_uri, state).await,
        }
    }

    async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, LinkError> {
        match self {
            TokenClient::OwnApp(c) => c.refresh(refresh_token).await,
            TokenClient::Service(c) => c.refresh(refresh_token).await,
        }
    }

    async fn revoke(&self, token: &SecretString, hint: &'static str) -> Result<(), LinkError> {
        match self {
            TokenClient::OwnApp(c) => c.revoke(token, hint).await,
            TokenClient::Service(c) => c.revoke(token, hint).await,
        }
    }
}

/// The tokens of links made before the sign-in method was recorded came from the business's app
/// (or the sandbox's, directly).
fn issued_via(record: &LinkRecord) -> SignInMethod {
    record.issued_via.unwrap_or(SignInMethod::OwnApp)
}

/// One secret of one environment, from the keyring (on the blocking pool).
pub(crate) async fn vault_get(
    state: &AppState,
    scope: Scope,
    slot: SecretSlot,
) -> Result<Option<SecretString>, LinkFlowError> {
    let vault = state.secrets.clone();
    blocking(move || Ok::<_, LinkFlowError>(vault.open(scope).get(slot)?)).await
}

/// The link as the UI shows it now, for the environment in force.
pub fn update(state: &AppState) -> LinkUpdate {
    let scope = state.scope();
    LinkUpdate {
        status: state.link_status(scope),
        view: state.progress.view(scope),
        identifiers: state.progress.identifiers_view(scope),
    }
}

fn emit(host: &impl Host) -> LinkUpdate {
    let update = update(host.state());
    host.link_changed(&update);
    update
}

/// Open an http(s) address in the system browser.
pub fn open_external(host: &impl Host, url: &str) -> Result<(), OpenError> {
    let parsed = url::Url::parse(url).map_err(|_| OpenError::NotAWebAddress)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(OpenError::NotWeb);
    }
    host.open_url(url)
}

/// Hand a `mailto:` URL to the system mail client.
pub fn open_mail(host: &impl Host, mailto: &str) -> Result<(), OpenError> {
    if !mailto.starts_with("mailto:") {
        return Err(OpenError::NotMail);
    }
    host.open_url(mailto)
}

/// *Link your business account* (or *Reconnect* / *Try again*).
pub async fn start(host: &impl Host) -> Result<LinkUpdate, LinkFlowError> {
    let state = host.state();
    let scope = state.scope();
    let started = match state.progress.preferences().sign_in_method() {
        SignInMethod::OwnApp => {
            let usps = usps_app(state, scope).await?;
            crate::state::lock(&state.sessions.attempts).begin(
                &usps.authorize,
                &usps.client_id,
                &usps.redirect_uri,
                Instant::now(),
            )?
        }
        SignInMethod::Service => {
            // The challenge goes to the service, which signs it into the state; the verifier stays here.
            let pkce = PkcePair::new();
            let service = sign_in_service(state, scope).await?;
            let started = service.begin(&pkce.challenge).await?;
            crate::state::lock(&state.sessions.attempts).open_prepared(
                &started.state,
                pkce,
                service.base(),
                Instant::now(),
            )?;
            started
        }
    };
    // The business shown changed while the sign-in was being prepared (the switch ended the
    // sign-ins open then, not this one): its answer must not link the business shown now.
    if state.scope() != scope {
        crate::state::lock(&state.sessions.attempts).cancel_all();
        return Err(LinkFlowError::ScopeChanged);
    }
    if let Err(e) = state.sessions.remember_sign_in(&state.progress, state.now(), &started.state) {
        // Only the "started before a restart" message depends on it; the sign-in itself works.
        tracing::warn!("could not remember the sign-in across a restart: {e}");
    }
    state.sessions.set_failure(None);
    if let Err(e) = open_external(host, &started.authorize_url) {
        crate::state::lock(&state.sessions.attempts).cancel_all();
        return Err(e.into());
    }
    tracing::info!(state = %state_fingerprint(&started.state), "USPS sign-in opened in the browser");
    // A sign-in left open past its 10 minutes stops showing "Waiting", whether or not USPS answers.
    let later = host.clone();
    tokio::spawn(async move {
        tokio::time::sleep(ATTEMPT_TTL + std::time::Duration::from_secs(1)).await;
        let state = later.state();
        let expired = crate::state::lock(&state.sessions.attempts).expire_due(Instant::now());
        if expired {
            state.sessions.set_failure(Some(LinkError::ExpiredState.into()));
        }
        // Always: even when a late answer already closed the sign-in, the screen must not stay on
        // "Waiting" (the status itself is computed from the time).
        emit(&later);
    });
    Ok(emit(host))
}

pub fn cancel(host: &impl Host) -> LinkUpdate {
    let state = host.state();
    crate::state::lock(&state.sessions.attempts).cancel_all();
    let _ = state.sessions.forget_sign_ins(&state.progress, |_| true);
    state.sessions.set_failure(None);
    emit(host)
}

/// Write the tokens USPS issued: the rotated refresh token before the access token, so a failure
/// between the two never leaves a dead refresh token beside a live access token. A keyring that
/// refuses keeps them in memory (used meanwhile) and is tried again, so a rotation is never lost.
async fn store_tokens(state: &AppState, scope: Scope, tokens: &TokenSet) {
    if state.progress.is_removed(scope.business()) {
        // Removed while USPS answered: its keyring entries are gone and stay gone.
        tracing::info!("new USPS tokens for a business removed meanwhile were dropped");
        return;
    }
    let unsaved = UnsavedTokens { access: tokens.access_token.clone(), refresh: tokens.refresh_token.clone() };
    if let Err(e) = write_tokens(state, scope, &unsaved).await {
        tracing::warn!("the keyring did not take the new USPS tokens ({e}); kept in memory and tried again");
        state.secrets.keep_unsaved_tokens(scope, unsaved);
    } else {
        state.secrets.clear_unsaved_tokens(scope);
    }
}

async fn write_tokens(state: &AppState, scope: Scope, tokens: &UnsavedTokens) -> Result<(), LinkFlowError> {
    let vault = state.secrets.clone();
    let tokens = tokens.clone();
    blocking(move || {
        let vault = vault.open(scope);
        if let Some(r) = &tokens.refresh {
            vault.set(SecretSlot::UspsRefreshToken, r)?;
        }
        Ok::<_, LinkFlowError>(vault.set(SecretSlot::UspsAccessToken, &tokens.access)?)
    })
    .await
}

/// Tokens the keyring refused earlier: try again (before any use of the keyring's copies).
async fn retry_unsaved_tokens(state: &AppState, scope: Scope) {
    if let Some(t) = state.secrets.unsaved_tokens(scope) {
        match write_tokens(state, scope, &t).await {
            Ok(()) => {
                tracing::info!("the keyring took the USPS tokens it refused before");
                state.secrets.clear_unsaved_tokens(scope);
            }
            Err(e) => tracing::warn!("the keyring still refuses the USPS tokens: {e}"),
        }
    }
}

/// A token: the one the keyring has not taken yet if any, else the keyring's.
async fn token(state: &AppState, scope: Scope, slot: SecretSlot) -> Result<Option<SecretString>, LinkFlowError> {
    if let Some(t) = state.secrets.unsaved_tokens(scope) {
        match slot {
            SecretSlot::UspsAccessToken => return Ok(Some(t.access)),
            SecretSlot::UspsRefreshToken if t.refresh.is_some() => return Ok(t.refresh),
            _ => {}
        }
    }
    vault_get(state, scope, slot).await
}

async fn forget_tokens(state: &AppState, scope: Scope) -> Result<(), LinkFlowError> {
    state.secrets.clear_unsaved_tokens(scope);
    let vault = state.secrets.clone();
    blocking(move || {
        let vault = vault.open(scope);
        vault.delete(SecretSlot::UspsAccessToken)?;
        Ok::<_, LinkFlowError>(vault.delete(SecretSlot::UspsRefreshToken)?)
    })
    .await
}

/// What the deep-link entry point does with a parsed callback. Decided before anything is shown,
/// emitted or focused: only an answer to a sign-in this app opened (or opened before a restart)
/// changes anything.
pub enum CallbackDecision {
    /// The answer to an open sign-in: complete it.
    Complete(LinkAttempt),
    /// The answer to a sign-in opened before uspslink restarted: say so.
    StartedBeforeRestart,
    /// Unknown, used or expired: ignored.
    Refuse(LinkError),
}

pub fn decide(state: &AppState, callback: &OAuthCallback) -> CallbackDecision {
    let taken = crate::state::lock(&state.sessions.attempts).take(&callback.state, Instant::now());
    match taken {
        Ok(attempt) => {
            let fp = state_fingerprint(&callback.state);
            state.sessions.forget_sign_ins_in_memory(|h| h == fp);
            CallbackDecision::Complete(attempt)
        }
        Err(LinkError::UnknownState) if state.sessions.started_before_restart(&callback.state) => {
            let fp = state_fingerprint(&callback.state);
            state.sessions.forget_sign_ins_in_memory(|h| h == fp);
            CallbackDecision::StartedBeforeRestart
        }
        Err(e) => CallbackDecision::Refuse(e),
    }
}

/// The user-visible half of [`CallbackDecision::StartedBeforeRestart`].
pub fn started_before_restart(host: &impl Host) {
    let state = host.state();
    state.sessions.set_failure(Some(LinkError::StartedBeforeRestart.into()));
    emit(host);
    if let Err(e) = state.sessions.save_sign_ins(&state.progress) {
        tracing::warn!("could not save the answered sign-in: {e}");
    }
}

/// The answer to an open sign-in: exchange the code (or report the error) and store the tokens.
pub async fn complete(host: impl Host, scope: Scope, attempt: LinkAttempt, callback: OAuthCallback) {
    let state = host.state();
    // decide() forgot the answered sign-in in memory; the disk follows, off the path to the window.
    if let Err(e) = state.sessions.save_sign_ins(&state.progress) {
        tracing::warn!("could not save the answered sign-in: {e}");
    }
    let outcome = complete_in(state, scope, &attempt, callback).await;
    match outcome {
        Ok(()) => {
            tracing::info!("USPS business account linked");
            state.sessions.set_failure(None);
            // A reconnect: the approval watch takes up the link again now.
            state.watch.wake();
            // Finishes the guideline step when the user got there through the steps; a reconnect
            // from elsewhere leaves their place alone.
            if let Err(e) = state.progress.apply(scope, OnboardingEvent::Complete(Step::LinkBusinessAccount)) {
                tracing::debug!("link step not completed in the guidelines: {e}");
            }
        }
        Err(e) => {
            tracing::warn!("USPS link failed: {e}");
            state.sessions.set_failure(Some(IpcError::from(e)));
        }
    }
    emit(&host);
}

/// The exchange itself, without the UI: plain Rust over the state (unit-tested against the sandbox).
pub async fn complete_in(
    state: &AppState,
    scope: Scope,
    attempt: &LinkAttempt,
    callback: OAuthCallback,
) -> Result<(), LinkFlowError> {
    match callback.outcome {
        CallbackOutcome::Error { error, description } if error == "access_denied" => {
            Err(LinkError::Denied(description).into())
        }
        CallbackOutcome::Error { error, description } => {
            Err(LinkError::AuthorizationFailed { error, description }.into())
        }
        CallbackOutcome::Code(code) => {
            let client = token_client(state, scope, attempt.via, attempt.service.as_deref()).await?;
            let tokens = client.exchange_code(&code, attempt.verifier(), &attempt.redirect_uri, &attempt.state).await?;
            store_tokens(state, scope, &tokens).await;
            let linked = LinkRecord::linked(&tokens, state.now(), attempt.via, attempt.service.clone());
            Ok(state.progress.set_link_record(scope, linked)?)
        }
    }
}

/// Refresh the access token when it is (nearly) expired, or always with `force` (an API answered
/// 401); store the rotated refresh token. A refresh refused as revoked/expired turns the link to
/// "needs reconnecting".
pub async fn refresh_in(state: &AppState, scope: Scope, force: bool) -> Result<(), LinkFlowError> {
    // One refresh at a time: two with the same (rotating) refresh token would break the link.
    let _guard = state.sessions.refresh.lock().await;
    retry_unsaved_tokens(state, scope).await;
    let record = state.progress.link_record(scope);
    let due = record.needs_refresh(state.now()) || (force && record.linked && !record.needs_reconnecting);
    if !due {
        return Ok(());
    }
    let client = token_client(state, scope, issued_via(&record), record.issued_by.as_deref()).await?;
    let result = match token(state, scope, SecretSlot::UspsRefreshToken).await? {
        Some(rt) => client.refresh(&rt).await,
        None => Err(LinkError::NeedsReconnecting("no refresh token is stored".into())),
    };
    match result {
        Ok(tokens) => {
            store_tokens(state, scope, &tokens).await;
            // On the record as it is now (not the copy read before the call).
            state.progress.update(scope, |r| {
                r.link = r.link.refreshed(&tokens);
                Ok::<_, SaveError>(())
            })?;
            tracing::info!("USPS access token refreshed");
            Ok(())
        }
        Err(e @ LinkError::NeedsReconnecting(_)) => mark_broken(state, scope, &e.to_string()).await,
        Err(e) => Err(e.into()),
    }
}

pub async fn refresh_if_needed(host: &impl Host) -> Result<LinkUpdate, LinkFlowError> {
    let state = host.state();
    refresh_in(state, state.scope(), false).await?;
    Ok(emit(host))
}

/// USPS no longer accepts the link (a refused refresh, or an API answering 401 after a refresh): the
/// tokens go, and the link shows "needs reconnecting" until the user signs in again.
pub async fn mark_broken(state: &AppState, scope: Scope, reason: &str) -> Result<(), LinkFlowError> {
    tracing::warn!("USPS link needs reconnecting: {reason}");
    forget_tokens(state, scope).await?;
    Ok(state.progress.update(scope, |r| {
        r.link.needs_reconnecting = true;
        Ok::<_, SaveError>(())
    })?)
}

/// A current access token for a USPS API call of `scope`: refreshed first when it is (nearly)
/// expired, or always with `force`.
pub async fn access_token_in(state: &AppState, scope: Scope, force: bool) -> Result<SecretString, LinkFlowError> {
    refresh_in(state, scope, force).await?;
    // A sign-in open in the browser is the shown business's (a switch ends it): only that
    // business waits for it; the watch goes on checking the others.
    if scope == state.scope() && crate::state::lock(&state.sessions.attempts).is_waiting_at(Instant::now()) {
        return Err(LinkFlowError::SignInOpen);
    }
    let record = state.progress.link_record(scope);
    if record.needs_reconnecting {
        return Err(LinkFlowError::NeedsReconnecting);
    }
    if !record.linked {
        return Err(LinkFlowError::NotLinked);
    }
    match token(state, scope, SecretSlot::UspsAccessToken).await? {
        Some(t) => Ok(t),
        None => {
            mark_broken(state, scope, "no access token is stored").await?;
            Err(LinkFlowError::TokensGone)
        }
    }
}

/// Tell the UI the link changed (after a flow that may have marked it broken).
pub fn announce(host: &impl Host) {
    emit(host);
}

/// *Disconnect*: revoke at USPS (best effort: the local tokens go either way), then forget.
pub async fn disconnect(host: &impl Host) -> Result<LinkUpdate, LinkFlowError> {
    let state = host.state();
    let scope = state.scope();
    crate::state::lock(&state.sessions.attempts).cancel_all();
    revoke_in(state, scope).await?;
    forget_tokens(state, scope).await?;
    state.progress.set_link_record(scope, LinkRecord::default())?;
    state.sessions.set_failure(None);
    Ok(emit(host))
}

/// Revoke `scope`'s USPS tokens at USPS, best effort: one USPS no longer takes, or a service that
/// cannot be reached, is logged; the caller forgets the tokens either way. Only a keyring that
/// cannot be read is an error (nothing is forgotten then).
pub async fn revoke_in(state: &AppState, scope: Scope) -> Result<(), LinkFlowError> {
    let tokens = (
        token(state, scope, SecretSlot::UspsRefreshToken).await?,
        token(state, scope, SecretSlot::UspsAccessToken).await?,
    );
    if tokens.0.is_none() && tokens.1.is_none() {
        return Ok(());
    }
    let record = state.progress.link_record(scope);
    match token_client(state, scope, issued_via(&record), record.issued_by.as_deref()).await {
        Ok(client) => {
            for (token, hint) in [(tokens.0, "refresh_token"), (tokens.1, "access_token")] {
                if let Some(t) = token {
                    if let Err(e) = client.revoke(&t, hint).await {
                        tracing::warn!("USPS revoke ({hint}) failed: {e}");
                    }
                }
            }
        }
        Err(e) => tracing::warn!("could not revoke at USPS: {e}"),
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    //! The link flow without a window: the state over the in-memory store and the mock keyring,
    //! against a real sandbox over HTTP.
    use std::sync::Arc;

    use secrecy::ExposeSecret;
    use uspslink_core::callback;

    use super::*;
    use crate::state::tests::{state_over, MemoryPersist};
    #[allow(unused_imports)]
    use uspslink_core::error::HasKind;
    #[allow(unused_imports)]
    use uspslink_core::{ErrorKind, IpcError};

    const SB: crate::state::Scope = crate::state::tests::SB;

    /// Walk the sandbox's sign-in pages as a browser does; returns the `uspslink://` URL.
    pub(crate) async fn sign_in(authorize_url: &str, user: &str) -> String {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let base = authorize_url.split("/cop-navigator").next().unwrap().to_string();
        let page = http.get(authorize_url).send().await.unwrap().text().await.unwrap();
        let flow = page.split("name=\"flow\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
        let post = |path: &str, form: Vec<(&'static str, String)>| {
            let http = http.clone();
            let url = format!("{base}{path}");
            async move { http.post(url).form(&form).send().await.unwrap().text().await.unwrap() }
        };
        post(
            "/cop-navigator/sign-in",
            vec![("flow", flow.clone()), ("username", user.into()), ("password", "sandbox-password".into())],
        )
        .await;
        post("/cop-navigator/mfa", vec![("flow", flow.clone()), ("code", "123456".into())]).await;
        let page = post(
            "/cop-navigator/grant",
            vec![("flow", flow), ("agree", "yes".into()), ("decision", "authorize".into())],
        )
        .await;
        let href = page.split("id=\"go\" href=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
        if !href.starts_with("http") {
            return href;
        }
        // Through the sign-in service: USPS sends the browser to its callback page, which hands on.
        let page = http.get(&href).send().await.unwrap().text().await.unwrap();
        page.split("id=\"open-app\" href=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&")
    }

    pub(crate) async fn linked_state(user: &str) -> (AppState, Arc<MemoryPersist>) {
        linked_state_with(user, uspslink_core::vault::Vault::mock()).await
    }

    async fn linked_state_with(user: &str, keyring: uspslink_core::vault::Vault) -> (AppState, Arc<MemoryPersist>) {
        let p = Arc::new(MemoryPersist::default());
        let s = crate::state::tests::state_with_keyring(p.clone(), keyring);
        link_in(&s, SB, user).await;
        (s, p)
    }

    /// Sign in as `user` and complete the link in `scope`.
    pub(crate) async fn link_in(s: &AppState, scope: Scope, user: &str) {
        let cb = callback::parse(&signed_in_url(s, user).await).unwrap();
        let CallbackDecision::Complete(attempt) = decide(s, &cb) else { panic!("the app's own sign-in is accepted") };
        complete_in(s, scope, &attempt, cb).await.unwrap();
    }

    /// Open a sign-in in the state and walk it in the sandbox: the `uspslink://` answer.
    async fn signed_in_url(s: &AppState, user: &str) -> String {
        let endpoints = s.endpoints_ready(SB).await.unwrap();
        let started = crate::state::lock(&s.sessions.attempts)
            .begin(
                &endpoints.usps_authorize,
                uspslink_sandbox::usps::CLIENT_ID,
                "uspslink://oauth/callback",
                Instant::now(),
            )
            .unwrap();
        sign_in(&started.authorize_url, user).await
    }

    #[tokio::test]
    async fn completion_stores_tokens_in_the_environment_and_a_replay_changes_nothing() {
        let p = Arc::new(MemoryPersist::default());
        let s = state_over(p.clone());
        let url = signed_in_url(&s, "merchant").await;
        let cb = callback::parse(&url).unwrap();
        let CallbackDecision::Complete(attempt) = decide(&s, &cb) else { panic!() };
        complete_in(&s, SB, &attempt, cb).await.unwrap();
        assert!(matches!(s.link_status(SB), LinkStatus::Linked { .. }));
        assert!(s.secrets.open(SB).get(SecretSlot::UspsRefreshToken).unwrap().is_some());
        assert!(s.secrets.open(crate::state::tests::PROD).get(SecretSlot::UspsAccessToken).unwrap().is_none());
        // The same URL again (a replay), and a forged state: refused before anything happens.
        let writes = crate::state::lock(&p.saved).len();
        assert!(matches!(decide(&s, &callback::parse(&url).unwrap()), CallbackDecision::Refuse(LinkError::UsedState)));
        let forged = callback::parse("uspslink://oauth/callback?code=abc&state=forgedState0123456789").unwrap();
        assert!(matches!(decide(&s, &forged), CallbackDecision::Refuse(LinkError::UnknownState)));
        assert_eq!(crate::state::lock(&p.saved).len(), writes, "nothing was written");
    }

    #[tokio::test]
    async fn a_forced_refresh_rotates_the_refresh_token() {
        let (s, _p) = linked_state("merchant").await;
        let before = s.secrets.open(SB).get(SecretSlot::UspsRefreshToken).unwrap().unwrap();
        let token = access_token_in(&s, SB, true).await.unwrap();
        let after = s.secrets.open(SB).get(SecretSlot::UspsRefreshToken).unwrap().unwrap();
        assert_ne!(before.expose_secret(), after.expose_secret(), "USPS rotated it and the new one was kept");
        assert_eq!(
            token.expose_secret(),
            s.secrets.open(SB).get(SecretSlot::UspsAccessToken).unwrap().unwrap().expose_secret()
        );
        // The old refresh token is dead at USPS: only the stored new one keeps the link alive.
        access_token_in(&s, SB, true).await.unwrap();
        assert!(matches!(s.link_status(SB), LinkStatus::Linked { .. }));
    }

    #[tokio::test]
    async fn tokens_the_keyring_refuses_are_kept_in_memory_and_written_later() {
        use uspslink_core::vault::test_store::TestStore;
        let store = TestStore::new(keyring_core::mock::Store::new().unwrap(), None);
        let keyring = uspslink_core::vault::Vault::with_store(store.clone(), uspslink_core::vault::SERVICE);
        let (s, _p) = linked_state_with("merchant", keyring).await;
        let old_refresh = s.secrets.open(SB).get(SecretSlot::UspsRefreshToken).unwrap().unwrap();
        // The keyring refuses every write for a moment (locked): the refresh still succeeds at USPS,
        // and USPS has rotated the refresh token, so the new one must not be lost.
        store.refuse_writes(true);
        let used = access_token_in(&s, SB, true).await.unwrap();
        let kept = s.secrets.unsaved_tokens(SB).expect("the new tokens are kept in memory");
        assert_eq!(used.expose_secret(), kept.access.expose_secret(), "and used meanwhile");
        let rotated = kept.refresh.clone().unwrap();
        assert_ne!(rotated.expose_secret(), old_refresh.expose_secret());
        assert_eq!(
            s.secrets.open(SB).get(SecretSlot::UspsRefreshToken).unwrap().unwrap().expose_secret(),
            old_refresh.expose_secret()
        );
        // A refresh now uses the rotated token from memory (the old one is dead at USPS).
        access_token_in(&s, SB, true).await.unwrap();
        assert!(matches!(s.link_status(SB), LinkStatus::Linked { .. }));
        // Once the keyring takes writes again, the next use writes them.
        store.refuse_writes(false);
        let kept = s.secrets.unsaved_tokens(SB).unwrap();
        access_token_in(&s, SB, false).await.unwrap();
        assert!(s.secrets.unsaved_tokens(SB).is_none());
        let stored = s.secrets.open(SB).get(SecretSlot::UspsRefreshToken).unwrap().unwrap();
        assert_eq!(Some(stored.expose_secret()), kept.refresh.as_ref().map(|r| r.expose_secret()));
        access_token_in(&s, SB, true).await.unwrap();
        assert!(matches!(s.link_status(SB), LinkStatus::Linked { .. }));
    }

    #[tokio::test]
    async fn a_revoked_user_needs_reconnecting_after_one_refresh() {
        let (s, _p) = linked_state("revoked").await;
        let e = access_token_in(&s, SB, true).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NeedsReconnecting);
        assert!(matches!(s.link_status(SB), LinkStatus::NeedsReconnecting { .. }));
        assert!(s.secrets.open(SB).get(SecretSlot::UspsAccessToken).unwrap().is_none(), "the dead tokens are gone");
    }

    #[tokio::test]
    async fn a_sign_in_from_before_a_restart_is_recognised_and_said_once() {
        let p = Arc::new(MemoryPersist::default());
        let s = state_over(p.clone());
        s.sessions.remember_sign_in(&s.progress, s.now(), "stateOfTheLastRun0123").unwrap();
        drop(s);
        let s = state_over(p);
        let cb = callback::parse("uspslink://oauth/callback?code=abc&state=stateOfTheLastRun0123").unwrap();
        assert!(matches!(decide(&s, &cb), CallbackDecision::StartedBeforeRestart));
        assert!(matches!(decide(&s, &cb), CallbackDecision::Refuse(LinkError::UnknownState)), "once");
    }
}

#[cfg(test)]
mod host_tests {
    //! The link flow as the window drives it, on a recording host: what it opens, what it tells.
    use std::sync::Arc;

    use uspslink_core::callback;

    use super::*;
    use crate::flows::tests::RecordingHost;
    use crate::state::lock;
    use crate::state::tests::{state_over, MemoryPersist};
    #[allow(unused_imports)]
    use uspslink_core::error::HasKind;
    #[allow(unused_imports)]
    use uspslink_core::{ErrorKind, IpcError};

    #[tokio::test]
    async fn start_opens_the_sign_in_and_the_answer_links_and_is_told_once() {
        let host = RecordingHost::new(state_over(Arc::new(MemoryPersist::default())));
        let shown = start(&host).await.unwrap();
        assert!(matches!(shown.status, LinkStatus::Waiting));
        let opened = lock(&host.opened).clone();
        assert_eq!(opened.len(), 1);
        assert!(opened[0].contains("code_challenge_method=S256") && opened[0].contains("state="), "{}", opened[0]);
        let url = tests::sign_in(&opened[0], "merchant").await;
        let cb = callback::parse(&url).unwrap();
        let CallbackDecision::Complete(attempt) = decide(host.state(), &cb) else { panic!("our own sign-in") };
        complete(host.clone(), crate::state::tests::SB, attempt, cb).await;
        let told = lock(&host.links).clone();
        assert!(matches!(told.last().unwrap().status, LinkStatus::Linked { .. }), "{:?}", told.last());
        // The same answer again is refused before anything is told.
        let before = lock(&host.links).len();
        assert!(matches!(decide(host.state(), &callback::parse(&url).unwrap()), CallbackDecision::Refuse(_)));
        assert_eq!(lock(&host.links).len(), before);
        // Disconnect: revoked at USPS, forgotten here, and told.
        let after = disconnect(&host).await.unwrap();
        assert!(matches!(after.status, LinkStatus::NotLinked));
        assert!(host
            .state()
            .secrets
            .open(crate::state::tests::SB)
            .get(SecretSlot::UspsRefreshToken)
            .unwrap()
            .is_none());
    }

    /// Start, sign in in the "browser", complete: the link record.
    async fn link_through(host: &RecordingHost) -> LinkRecord {
        start(host).await.unwrap();
        let opened = lock(&host.opened).last().unwrap().clone();
        let cb = callback::parse(&tests::sign_in(&opened, "merchant").await).unwrap();
        let CallbackDecision::Complete(attempt) = decide(host.state(), &cb) else { panic!("our own sign-in") };
        complete(host.clone(), crate::state::tests::SB, attempt, cb).await;
        match &lock(&host.links).last().unwrap().status {
            LinkStatus::Linked { record } => record.clone(),
            other => panic!("not linked: {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_default_sign_in_goes_through_the_service_and_the_own_app_way_stays() {
        let host = RecordingHost::new(state_over(Arc::new(MemoryPersist::default())));
        let record = link_through(&host).await;
        let opened = lock(&host.opened)[0].clone();
        let redirect =
            url::Url::parse(&opened).unwrap().query_pairs().find(|(k, _)| k == "redirect_uri").unwrap().1.to_string();
        assert!(redirect.starts_with("http://127.0.0.1:") && redirect.ends_with("/usps/callback"), "{redirect}");
        assert_eq!(record.issued_via, Some(SignInMethod::Service));
        // Renewed the way it was issued (the service's USPS app), and still linked after it.
        let state = host.state();
        crate::flows::link::access_token_in(state, crate::state::tests::SB, true).await.unwrap();
        assert!(matches!(state.link_status(crate::state::tests::SB), LinkStatus::Linked { .. }));
        disconnect(&host).await.unwrap();

        let mut prefs = state.progress.preferences();
        prefs.usps_sign_in = Some(SignInMethod::OwnApp);
        state.save_preferences(prefs).unwrap();
        let record = link_through(&host).await;
        let opened = lock(&host.opened).last().unwrap().clone();
        assert!(opened.contains("redirect_uri=uspslink%3A%2F%2Foauth%2Fcallback"), "{opened}");
        assert_eq!(record.issued_via, Some(SignInMethod::OwnApp));
        crate::flows::link::access_token_in(state, crate::state::tests::SB, true).await.unwrap();
    }

    /// The owner's own USPS developer app is the install's: its secret, stored once, signs in every
    /// business, and removing the business whose names it is kept under leaves it.
    #[tokio::test]
    async fn the_own_apps_secret_serves_every_business_and_outlives_the_first() {
        use secrecy::ExposeSecret;
        const SB: Scope = crate::state::tests::SB;
        let host = RecordingHost::new(state_over(Arc::new(MemoryPersist::default())));
        let state = host.state();
        let mut prefs = state.progress.preferences();
        prefs.usps_sign_in = Some(SignInMethod::OwnApp);
        prefs.usps_consumer_key = uspslink_sandbox::usps::CLIENT_ID.into();
        state.save_preferences(prefs).unwrap();
        let secret = SecretString::from(uspslink_sandbox::usps::CLIENT_SECRET);
        state.secrets.open(SB.app_wide()).set(SecretSlot::UspsConsumerSecret, &secret).unwrap();
        let second = state.change_businesses(|b| b.add("Second Shop")).unwrap();
        let second = Scope::new(second, uspslink_core::settings::Environment::Sandbox);
        assert_eq!(usps_app(state, second).await.unwrap().secret.expose_secret(), secret.expose_secret());
        crate::flows::businesses::remove(&host, SB.business()).await.unwrap();
        assert_eq!(state.scope(), second);
        assert!(usps_app(state, second).await.is_ok(), "the install's secret is still there");
    }

    /// A stand-in at an address: counts every connection made to it (anything a token could reach).
    async fn listening_stand_in() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = hits.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(conn);
            }
        });
        (url, hits)
    }

    #[tokio::test]
    async fn tokens_go_only_to_the_service_that_issued_them() {
        // A live environment signing in through a service of the vendor's (a broker in front of the
        // sandbox), as an owner whose Settings name it.
        let sandbox = uspslink_sandbox::Sandbox::start("127.0.0.1:0").await.unwrap();
        let (api, authorize) = (sandbox.base_url(), format!("{}/cop-navigator", sandbox.base_url()));
        let service = uspslink_broker::Broker::start("127.0.0.1:0", |addr| {
            uspslink_broker::Config::new(
                &api,
                &authorize,
                uspslink_sandbox::usps::CLIENT_ID,
                SecretString::from(uspslink_sandbox::usps::CLIENT_SECRET),
                &format!("http://{addr}"),
                uspslink_broker::seal::Keys::random(),
            )
            .unwrap()
        })
        .await
        .unwrap();
        let host = RecordingHost::new(state_over(Arc::new(MemoryPersist::default())));
        let state = host.state();
        let live = crate::state::tests::PROD;
        let mut prefs = state.progress.preferences();
        prefs.environment = live.environment();
        prefs.sign_in_service_url = service.base_url();
        state.save_preferences(prefs.clone()).unwrap();
        start(&host).await.unwrap();
        let opened = lock(&host.opened).last().unwrap().clone();
        let cb = callback::parse(&tests::sign_in(&opened, "merchant").await).unwrap();
        let CallbackDecision::Complete(attempt) = decide(state, &cb) else { panic!("our own sign-in") };
        complete(host.clone(), live, attempt, cb).await;
        let record = state.progress.link_record(live);
        assert!(record.linked, "{:?}", lock(&host.links).last());
        assert_eq!(record.issued_by.as_deref(), Some(service.base_url().as_str()));
        assert_eq!(state.snapshot().sign_in_moved_from, None);

        // Another address typed in Settings after linking: the owner is told the link stays with
        // its service, and no token ever reaches the new address: not at a refresh, not at
        // *Disconnect*.
        let (elsewhere, hits) = listening_stand_in().await;
        prefs.sign_in_service_url = elsewhere;
        state.save_preferences(prefs).unwrap();
        assert_eq!(state.snapshot().sign_in_moved_from, Some(service.base_url()));
        access_token_in(state, live, true).await.unwrap();
        assert!(state.progress.link_record(live).linked, "renewed through the service that issued it");
        disconnect(&host).await.unwrap();
        assert!(state.secrets.open(live).get(SecretSlot::UspsRefreshToken).unwrap().is_none());
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing was sent to the typed address");
    }

    #[tokio::test]
    async fn a_live_environment_without_a_sign_in_service_says_what_to_do() {
        let host = RecordingHost::new(state_over(Arc::new(MemoryPersist::default())));
        let state = host.state();
        let mut prefs = state.progress.preferences();
        prefs.environment = uspslink_core::settings::Environment::Production;
        state.save_preferences(prefs.clone()).unwrap();
        // The test's configuration names no sign-in service; only a build can have one built in.
        if uspslink_core::settings::BUILT_IN_SIGN_IN_SERVICE.is_none() {
            let e = start(&host).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotConfigured);
            assert!(e.to_string().contains("no sign-in service for Production"), "{}", e.to_string());
            assert!(lock(&host.opened).is_empty(), "nothing opened");
        }
        // A typed address that answers nothing: said, and nothing opened.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        prefs.sign_in_service_url = format!("http://{closed}");
        state.save_preferences(prefs).unwrap();
        let e = start(&host).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Network);
        assert!(e.to_string().contains("sign-in service cannot be reached"), "{}", e.to_string());
        assert!(lock(&host.opened).is_empty());
        assert!(!lock(&state.sessions.attempts).is_waiting());
    }

    #[tokio::test]
    async fn a_denied_sign_in_is_told_as_a_failure_and_only_web_or_mail_addresses_are_opened() {
        let host = RecordingHost::new(state_over(Arc::new(MemoryPersist::default())));
        start(&host).await.unwrap();
        let opened = lock(&host.opened)[0].clone();
        let state = url::Url::parse(&opened).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.to_string();
        let cb = callback::parse(&format!("uspslink://oauth/callback?error=access_denied&state={state}")).unwrap();
        let CallbackDecision::Complete(attempt) = decide(host.state(), &cb) else { panic!() };
        complete(host.clone(), crate::state::tests::SB, attempt, cb).await;
        assert!(matches!(
            &lock(&host.links).last().unwrap().status,
            LinkStatus::Failed { kind: ErrorKind::LoginFailed, .. }
        ));
        for bad in ["file:///etc/passwd", "javascript:alert(1)", "uspslink://x", "not a url"] {
            assert_eq!(open_external(&host, bad).unwrap_err().kind(), ErrorKind::InvalidInput, "{bad}");
        }
        assert_eq!(open_mail(&host, "https://example.com").unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(lock(&host.opened).len(), 1, "nothing else was opened");
    }
}
