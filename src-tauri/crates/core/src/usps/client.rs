//! The token client: code exchange, refresh with rotation, revoke (`/oauth2/v3/token`,
//! `/oauth2/v3/revoke`), behind [`TokenExchange`].
#[allow(unused_imports)]
use super::*;

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

#[derive(Deserialize)]
struct OAuthErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// The token operations, behind a trait so a vendor build can move the exchange to its own server
/// (docs/DESIGN.md, "USPS authorization").
pub trait TokenExchange: Send + Sync {
    fn exchange_code(
        &self,
        code: &SecretString,
        verifier: &SecretString,
        redirect_uri: &str,
    ) -> impl Future<Output = Result<TokenSet, LinkError>> + Send;
    fn refresh(&self, refresh_token: &SecretString) -> impl Future<Output = Result<TokenSet, LinkError>> + Send;
    fn revoke(&self, token: &SecretString, hint: &'static str) -> impl Future<Output = Result<(), LinkError>> + Send;
}

/// Talks to `/oauth2/v3/token` and `/oauth2/v3/revoke` with the business's own app credentials.
pub struct UspsOAuthClient {
    base: String,
    client_id: String,
    client_secret: SecretString,
    http: reqwest::Client,
    retry: crate::http::Retry,
}

impl UspsOAuthClient {
    pub fn new(base: &str, client_id: &str, client_secret: SecretString) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            client_id: client_id.to_string(),
            client_secret,
            http: crate::http::client_for(base, Duration::from_secs(30)),
            retry: crate::http::Retry::default(),
        }
    }

    /// Who hears about the waits between retries (the UI counts them down).
    pub fn with_retry(mut self, retry: crate::http::Retry) -> Self {
        self.retry = retry;
        self
    }

    /// The code exchange is sent once (a code is single use); a refresh is retried where safe.
    async fn token_request(&self, body: serde_json::Value, refreshing: bool) -> Result<TokenSet, LinkError> {
        let url = format!("{}/oauth2/v3/token", self.base);
        let answer = if refreshing {
            self.retry.fetch_idempotent("renewing your USPS connection", || self.http.post(&url).json(&body)).await
        } else {
            crate::http::fetch(self.http.post(&url).json(&body)).await
        }
        .map_err(|e| LinkError::Network(e.without_url().to_string()))?;
        let status = answer.status;
        let bytes = answer.body;
        if (200..300).contains(&status) {
            let t: TokenResponse = serde_json::from_slice(&bytes).map_err(|_| LinkError::Malformed(status))?;
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
            return Err(LinkError::Network(format!(
                "USPS is unavailable right now (HTTP {status}); try again shortly"
            )));
        }
        let err: OAuthErrorBody = serde_json::from_slice(&bytes).map_err(|_| LinkError::Malformed(status))?;
        Err(match err.error.as_str() {
            "invalid_client" | "unauthorized_client" => LinkError::BadClient(err.error),
            "invalid_grant" | "invalid_refresh_token" if refreshing => {
                LinkError::NeedsReconnecting(err.error_description.unwrap_or(err.error))
            }
            _ if refreshing => LinkError::AuthorizationFailed { error: err.error, description: err.error_description },
            _ => LinkError::CodeRejected { error: err.error, description: err.error_description },
        })
    }
}

impl TokenExchange for UspsOAuthClient {
    async fn exchange_code(
        &self,
        code: &SecretString,
        verifier: &SecretString,
        redirect_uri: &str,
    ) -> Result<TokenSet, LinkError> {
        self.token_request(
            serde_json::json!({
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
        self.token_request(
            serde_json::json!({
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
            self.http
                .post(format!("{}/oauth2/v3/revoke", self.base))
                .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
                .json(&serde_json::json!({"token": token.expose_secret(), "token_type_hint": hint})),
        )
        .await
        .map_err(|e| LinkError::Network(e.without_url().to_string()))?;
        let status = answer.status;
        if (200..300).contains(&status) {
            return Ok(());
        }
        let bytes = answer.body;
        let err: OAuthErrorBody = serde_json::from_slice(&bytes).map_err(|_| LinkError::Malformed(status))?;
        Err(match err.error.as_str() {
            "invalid_client" | "unauthorized_client" => LinkError::BadClient(err.error),
            _ => LinkError::AuthorizationFailed { error: err.error, description: err.error_description },
        })
    }
}
