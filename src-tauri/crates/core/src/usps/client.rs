//! The token clients: code exchange, refresh with rotation, revoke, behind [`TokenExchange`]:
//! [`UspsOAuthClient`] talks to USPS (`/oauth2/v3/token`, `/oauth2/v3/revoke`) with the business's own
//! app credentials, [`SignInServiceClient`] to the uspslink sign-in service (`/v1/usps/...`), which adds
//! the vendor's. Both read the same OAuth answers, so the user sees the same messages either way.
#[allow(unused_imports)]
use super::*;
// RFC 6749's error body: USPS's, and the sign-in service's own (declared with the service's API).
use uspslink_protocol::sign_in::{self, OAuthError as OAuthErrorBody};

/// Tokens as stored: the secrets go to the vault; the expiry times may be kept anywhere.
pub struct TokenSet {
    pub access_token: SecretString,
    /// USPS rotates the refresh token on every refresh: always store the new one.
    pub refresh_token: Option<SecretString>,
    pub access_expires_at: u64,
    pub refresh_expires_at: Option<u64>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    refresh_token_expires_in: Option<u64>,
}

/// The token operations, behind a trait so a vendor build can move the exchange to its own server
/// (docs/DESIGN.md, "USPS authorization").
pub trait TokenExchange: Send + Sync {
    /// `state` is the one the code answered: USPS ignores it, the sign-in service checks the
    /// verifier against the challenge it carries.
    fn exchange_code(
        &self,
        code: &SecretString,
        verifier: &SecretString,
        redirect_uri: &str,
        state: &str,
    ) -> impl Future<Output = Result<TokenSet, LinkError>> + Send;
    fn refresh(&self, refresh_token: &SecretString) -> impl Future<Output = Result<TokenSet, LinkError>> + Send;
    fn revoke(&self, token: &SecretString, hint: &'static str) -> impl Future<Output = Result<(), LinkError>> + Send;
}

/// Talks to `/oauth2/v3/token` and `/oauth2/v3/revoke` with the business's own app credentials.
pub struct UspsOAuthClient {
    api: crate::http::Api,
    client_id: String,
    client_secret: SecretString,
}

impl UspsOAuthClient {
    pub fn new(base: &str, client_id: &str, client_secret: SecretString) -> Self {
        Self {
            api: crate::http::Api::new(base, Duration::from_secs(30)),
            client_id: client_id.to_string(),
            client_secret,
        }
    }

    /// Over a shared [`crate::http::Api`] (its client and retry policy).
    pub fn over(api: crate::http::Api, client_id: &str, client_secret: SecretString) -> Self {
        Self { api, client_id: client_id.to_string(), client_secret }
    }

    /// Who hears about the waits between retries (the UI counts them down).
    pub fn with_retry(mut self, retry: crate::http::Retry) -> Self {
        self.api.retry = retry;
        self
    }
}

/// A token request to `path` of `api`, sent once. A code is single use; and a refresh token rotates:
/// after a 502, a 504 or a dropped connection USPS may already have retired the token sent, so sending
/// it again would read as "reconnect" when the link is fine. The caller tries again later (the watch's
/// backoff) with whatever token it holds.
async fn send_token_request(
    api: &crate::http::Api,
    path: &str,
    body: &impl serde::Serialize,
    refreshing: bool,
) -> Result<TokenSet, LinkError> {
    let url = api.url(path);
    let answer = crate::http::fetch(api.http.post(&url).json(body))
        .await
        .map_err(|e| LinkError::Network(e.without_url().to_string()))?;
    token_answer(answer.status, &answer.body, refreshing)
}

/// A token endpoint's answer, from USPS or the sign-in service (which passes USPS's on).
fn token_answer(status: u16, bytes: &[u8], refreshing: bool) -> Result<TokenSet, LinkError> {
    if (200..300).contains(&status) {
        let t: TokenResponse = serde_json::from_slice(bytes).map_err(|_| LinkError::Malformed(status))?;
        let now = unix_now();
        return Ok(TokenSet {
            access_token: SecretString::from(t.access_token),
            refresh_token: t.refresh_token.map(SecretString::from),
            access_expires_at: now + t.expires_in.unwrap_or(0),
            refresh_expires_at: t.refresh_token_expires_in.map(|s| now + s),
        });
    }
    if status >= 500 || status == 429 {
        // Temporary: nothing is wrong with the link or the code, so do not call it a failed login.
        let detail = serde_json::from_slice::<OAuthErrorBody>(bytes)
            .ok()
            .and_then(|e| e.error_description)
            .filter(|d| d.len() <= 200)
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        return Err(LinkError::Network(format!(
            "USPS is unavailable right now (HTTP {status}{detail}); try again shortly"
        )));
    }
    let err: OAuthErrorBody = serde_json::from_slice(bytes).map_err(|_| LinkError::Malformed(status))?;
    Err(match err.error.as_str() {
        "invalid_client" | "unauthorized_client" => LinkError::BadClient(err.error),
        "invalid_grant" | "invalid_refresh_token" if refreshing => {
            LinkError::NeedsReconnecting(err.error_description.unwrap_or(err.error))
        }
        _ if refreshing => LinkError::AuthorizationFailed { error: err.error, description: err.error_description },
        _ => LinkError::CodeRejected { error: err.error, description: err.error_description },
    })
}

fn revoke_answer(status: u16, bytes: &[u8]) -> Result<(), LinkError> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let err: OAuthErrorBody = serde_json::from_slice(bytes).map_err(|_| LinkError::Malformed(status))?;
    Err(match err.error.as_str() {
        "invalid_client" | "unauthorized_client" => LinkError::BadClient(err.error),
        _ => LinkError::AuthorizationFailed { error: err.error, description: err.error_description },
    })
}

impl TokenExchange for UspsOAuthClient {
    async fn exchange_code(
        &self,
        code: &SecretString,
        verifier: &SecretString,
        redirect_uri: &str,
        _state: &str,
    ) -> Result<TokenSet, LinkError> {
        send_token_request(
            &self.api,
            "/oauth2/v3/token",
            &serde_json::json!({
                "grant_type": "authorization_code",
                "client_id": self.client_id,
                "client_secret": self.client_secret.expose_secret(),
                "code": code.expose_secret(),
                "redirect_uri": redirect_uri,
                "code_verifier": verifier.expose_secret(),
            }),
            false,
        )
        .await
    }

    async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, LinkError> {
        send_token_request(
            &self.api,
            "/oauth2/v3/token",
            &serde_json::json!({
                "grant_type": "refresh_token",
                "client_id": self.client_id,
                "client_secret": self.client_secret.expose_secret(),
                "refresh_token": refresh_token.expose_secret(),
            }),
            true,
        )
        .await
    }

    async fn revoke(&self, token: &SecretString, hint: &'static str) -> Result<(), LinkError> {
        let answer = crate::http::fetch(
            self.api
                .http
                .post(self.api.url("/oauth2/v3/revoke"))
                .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
                .json(&serde_json::json!({"token": token.expose_secret(), "token_type_hint": hint})),
        )
        .await
        .map_err(|e| LinkError::Network(e.without_url().to_string()))?;
        revoke_answer(answer.status, &answer.body)
    }
}

/// The uspslink sign-in service (the `uspslink-broker` crate): it holds the vendor's USPS app
/// credentials, so the merchant needs none. The app keeps PKCE: the service checks the verifier.
pub struct SignInServiceClient {
    api: crate::http::Api,
}

impl SignInServiceClient {
    pub fn new(base: &str) -> Self {
        Self { api: crate::http::Api::new(base, Duration::from_secs(30)) }
    }

    /// Over a shared [`crate::http::Api`] (its client and retry policy).
    pub fn over(api: crate::http::Api) -> Self {
        Self { api }
    }

    /// The service's address, as the tokens it issues are recorded with.
    pub fn base(&self) -> &str {
        &self.api.base
    }

    pub fn with_retry(mut self, retry: crate::http::Retry) -> Self {
        self.api.retry = retry;
        self
    }

    fn unreachable(e: impl std::fmt::Display) -> LinkError {
        LinkError::Network(format!("the uspslink sign-in service cannot be reached ({e})"))
    }

    /// Start a sign-in for `challenge`: the USPS sign-in address and the state it will answer with.
    pub async fn begin(&self, challenge: &str) -> Result<StartedAttempt, LinkError> {
        let url = self.api.url(sign_in::AUTHORIZE_PATH);
        let body = sign_in::AuthorizeRequest {
            code_challenge: challenge.into(),
            code_challenge_method: Some(sign_in::PKCE_METHOD.into()),
        };
        let answer = self
            .api
            .retry
            .fetch_idempotent("starting the USPS sign-in", || self.api.http.post(&url).json(&body))
            .await
            .map_err(|e| Self::unreachable(e.without_url()))?;
        if !(200..300).contains(&answer.status) {
            let why = serde_json::from_slice::<OAuthErrorBody>(&answer.body)
                .map(|e| e.error_description.unwrap_or(e.error))
                .unwrap_or_else(|_| format!("HTTP {}", answer.status));
            return Err(Self::unreachable(why));
        }
        let a: sign_in::AuthorizeAnswer =
            serde_json::from_slice(&answer.body).map_err(|_| LinkError::Malformed(answer.status))?;
        let ok_url = url::Url::parse(&a.authorize_url).is_ok_and(|u| matches!(u.scheme(), "https" | "http"));
        if !crate::callback::state_can_come_back(&a.state) || !ok_url {
            return Err(LinkError::Malformed(answer.status));
        }
        Ok(StartedAttempt { state: a.state, authorize_url: a.authorize_url })
    }
}

impl TokenExchange for SignInServiceClient {
    async fn exchange_code(
        &self,
        code: &SecretString,
        verifier: &SecretString,
        _redirect_uri: &str,
        state: &str,
    ) -> Result<TokenSet, LinkError> {
        let body = sign_in::TokenRequest {
            code: code.expose_secret().into(),
            state: state.into(),
            code_verifier: verifier.expose_secret().into(),
        };
        send_token_request(&self.api, sign_in::TOKEN_PATH, &body, false).await
    }

    async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, LinkError> {
        let body = sign_in::RefreshRequest { refresh_token: refresh_token.expose_secret().into() };
        send_token_request(&self.api, sign_in::REFRESH_PATH, &body, true).await
    }

    async fn revoke(&self, token: &SecretString, hint: &'static str) -> Result<(), LinkError> {
        let answer =
            crate::http::fetch(self.api.http.post(self.api.url(sign_in::REVOKE_PATH)).json(&sign_in::RevokeRequest {
                token: token.expose_secret().into(),
                token_type_hint: Some(hint.into()),
            }))
            .await
            .map_err(|e| Self::unreachable(e.without_url()))?;
        revoke_answer(answer.status, &answer.body)
    }
}
