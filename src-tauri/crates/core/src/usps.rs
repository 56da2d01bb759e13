//! USPS OAuth 2.0 for a desktop app: the link attempt (state + PKCE), the authorize URL (COP
//! navigator), the token client (code exchange, refresh with rotation, revoke) and the JWT claims
//! used to pre-fill CRID / EPS.
//!
//! Sources: the USPS OAuth 2.0 spec v3.0.5 (`/oauth2/v3/token` takes JSON or form bodies; codes are
//! valid five minutes; a refresh returns a new refresh token) and the COP navigator URL USPS gives
//! platforms (`wf=apis_merchant_user&client_id&state&redirect_uri`); see the shared API notes.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use oauth2::{CsrfToken, PkceCodeChallenge};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use ts_rs::TS;

use crate::error::{ErrorKind, HasKind};

/// How long a started sign-in may take (sign-in + MFA + consent in the browser).
pub const ATTEMPT_TTL: Duration = Duration::from_secs(10 * 60);
/// Refresh when the access token has less than this left.
pub const REFRESH_MARGIN_SECS: u64 = 5 * 60;

#[derive(Debug, Error)]
pub enum LinkError {
    #[error("no sign-in is waiting for this answer; it was ignored")]
    UnknownState,
    #[error("this sign-in answer was already used; it was ignored")]
    UsedState,
    #[error("Login failed: the sign-in took longer than 10 minutes. Please try again.")]
    ExpiredState,
    #[error("That sign-in was started before uspslink restarted; please link again.")]
    StartedBeforeRestart,
    #[error("Login failed: access was not granted on the USPS page{}.", describe(.0))]
    Denied(Option<String>),
    #[error("Login failed: USPS reported \"{error}\"{}.", describe(.description))]
    AuthorizationFailed { error: String, description: Option<String> },
    #[error("Login failed: USPS refused the authorization code ({error}{}). Please try again.", describe(.description))]
    CodeRejected { error: String, description: Option<String> },
    #[error("Your USPS connection has expired or was revoked ({0}). A USPS password reset breaks every connection: reconnect to continue.")]
    NeedsReconnecting(String),
    #[error("USPS refused the app credentials ({0}): check the consumer key and secret in Settings")]
    BadClient(String),
    #[error("{0}")]
    NotConfigured(String),
    #[error("could not reach USPS: {0}")]
    Network(String),
    #[error("USPS answered with HTTP {0} and a body that could not be read")]
    Malformed(u16),
}

fn describe(d: &Option<String>) -> String {
    d.as_ref().map(|d| format!(": {d}")).unwrap_or_default()
}

impl HasKind for LinkError {
    fn kind(&self) -> ErrorKind {
        match self {
            LinkError::UnknownState | LinkError::UsedState => ErrorKind::InvalidDeepLink,
            LinkError::ExpiredState
            | LinkError::StartedBeforeRestart
            | LinkError::Denied(_)
            | LinkError::AuthorizationFailed { .. }
            | LinkError::CodeRejected { .. } => ErrorKind::LoginFailed,
            LinkError::NeedsReconnecting(_) => ErrorKind::NeedsReconnecting,
            LinkError::BadClient(_) | LinkError::NotConfigured(_) => ErrorKind::NotConfigured,
            LinkError::Network(_) => ErrorKind::Network,
            LinkError::Malformed(_) => ErrorKind::MalformedResponse,
        }
    }
}

/// One press of *Link your business account*: a fresh state and PKCE verifier.
#[derive(Debug)]
pub struct LinkAttempt {
    pub state: String,
    verifier: SecretString,
    pub redirect_uri: String,
    created: Instant,
}

impl LinkAttempt {
    pub fn verifier(&self) -> &SecretString {
        &self.verifier
    }
}

/// The attempts the app is waiting for. A state is accepted once, within [`ATTEMPT_TTL`].
#[derive(Default)]
pub struct AttemptStore {
    open: HashMap<String, LinkAttempt>,
    /// States already answered (or expired), so a replay says so instead of "unknown".
    closed: Vec<String>,
}

/// What the app needs to open the browser.
pub struct StartedAttempt {
    pub state: String,
    pub authorize_url: String,
}

impl AttemptStore {
    /// Start an attempt and build the authorize URL (COP navigator query + PKCE S256).
    pub fn begin(
        &mut self,
        authorize_base: &str,
        client_id: &str,
        redirect_uri: &str,
        now: Instant,
    ) -> Result<StartedAttempt, LinkError> {
        let mut url = url::Url::parse(authorize_base).map_err(|_| {
            LinkError::NotConfigured(format!("the USPS sign-in address {authorize_base:?} is not a URL"))
        })?;
        if client_id.is_empty() {
            return Err(LinkError::NotConfigured("enter your USPS consumer key in Settings first".into()));
        }
        self.expire(now);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = CsrfToken::new_random().secret().clone();
        url.query_pairs_mut()
            .append_pair("wf", "apis_merchant_user")
            .append_pair("client_id", client_id)
            .append_pair("state", &state)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", "S256");
        self.open.insert(
            state.clone(),
            LinkAttempt {
                state: state.clone(),
                verifier: SecretString::from(verifier.secret().clone()),
                redirect_uri: redirect_uri.to_string(),
                created: now,
            },
        );
        Ok(StartedAttempt { state, authorize_url: url.into() })
    }

    fn expire(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .open
            .iter()
            .filter(|(_, a)| now.duration_since(a.created) > ATTEMPT_TTL)
            .map(|(s, _)| s.clone())
            .collect();
        for s in expired {
            self.open.remove(&s);
            self.close(s);
        }
    }

    fn close(&mut self, state: String) {
        self.closed.push(state);
        if self.closed.len() > 64 {
            self.closed.remove(0);
        }
    }

    /// Take the attempt a callback answers. Unknown, used and expired states are refused and change
    /// nothing else.
    pub fn take(&mut self, state: &str, now: Instant) -> Result<LinkAttempt, LinkError> {
        if let Some(a) = self.open.get(state) {
            if now.duration_since(a.created) > ATTEMPT_TTL {
                let a = self.open.remove(state).expect("present");
                self.close(a.state);
                return Err(LinkError::ExpiredState);
            }
        }
        match self.open.remove(state) {
            Some(a) => {
                self.close(a.state.clone());
                Ok(a)
            }
            None if self.closed.iter().any(|s| s == state) => Err(LinkError::UsedState),
            None => Err(LinkError::UnknownState),
        }
    }

    /// *Cancel*: every open attempt is dropped; a late answer is then refused.
    pub fn cancel_all(&mut self) {
        let states: Vec<String> = self.open.drain().map(|(s, _)| s).collect();
        for s in states {
            self.close(s);
        }
    }

    pub fn is_waiting(&self) -> bool {
        !self.open.is_empty()
    }

    /// Whether a sign-in is open and still within its 10 minutes: one left open longer is not
    /// "Waiting" any more, whether or not its answer ever comes.
    pub fn is_waiting_at(&self, now: Instant) -> bool {
        self.open.values().any(|a| now.duration_since(a.created) <= ATTEMPT_TTL)
    }

    /// Close the attempts past their 10 minutes; true when one was.
    pub fn expire_due(&mut self, now: Instant) -> bool {
        let before = self.open.len();
        self.expire(now);
        self.open.len() != before
    }
}

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

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Civil (UTC) year, month and day of a Unix time (Howard Hinnant's days-to-civil); no date crate
/// for this.
pub fn civil_date(unix_secs: u64) -> (u32, u32, u32) {
    let days = (unix_secs / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year as u32, month as u32, day as u32)
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

/// What the USPS access token says about the business, to pre-fill the identifiers step (the user
/// still confirms). Read without trusting the signature: display only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct AccountHints {
    pub crids: Vec<String>,
    pub mids: Vec<String>,
    pub eps_accounts: Vec<String>,
}

/// Decode the claims of a JWT access token. Unknown shapes give empty hints, never an error.
pub fn account_hints(access_token: &SecretString) -> AccountHints {
    let mut hints = AccountHints::default();
    let Some(payload) = access_token.expose_secret().split('.').nth(1) else { return hints };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')) else {
        return hints;
    };
    let Ok(claims) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return hints };
    let push = |v: &mut Vec<String>, x: Option<&serde_json::Value>| {
        if let Some(s) = x.and_then(|x| x.as_str().map(str::to_string).or_else(|| x.as_u64().map(|n| n.to_string()))) {
            if !s.is_empty() && !v.contains(&s) {
                v.push(s);
            }
        }
    };
    for owner in claims["mail_owners"].as_array().into_iter().flatten() {
        push(&mut hints.crids, owner.get("crid"));
        push(&mut hints.mids, owner.get("master_MID"));
        for mid in owner["mids"].as_array().into_iter().flatten() {
            push(&mut hints.mids, Some(mid));
        }
    }
    // Seen as an object with `accounts` and as a plain array; accept both.
    let accounts = claims["payment_accounts"]["accounts"].as_array().or(claims["payment_accounts"].as_array());
    for acct in accounts.into_iter().flatten() {
        if acct.is_string() {
            push(&mut hints.eps_accounts, Some(acct));
        } else {
            push(&mut hints.eps_accounts, acct.get("account_number").or(acct.get("accountNumber")));
        }
    }
    hints
}

/// What the app remembers about the USPS link (never a token: those are in the vault).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct LinkRecord {
    pub linked: bool,
    /// A refresh failed as revoked/expired (a password reset does this).
    pub needs_reconnecting: bool,
    /// Unix seconds.
    #[ts(type = "number")]
    pub linked_at: u64,
    #[ts(type = "number")]
    pub access_expires_at: u64,
    #[ts(type = "number | null")]
    pub refresh_expires_at: Option<u64>,
    pub hints: AccountHints,
}

impl LinkRecord {
    pub fn linked(tokens: &TokenSet, now: u64) -> Self {
        LinkRecord {
            linked: true,
            needs_reconnecting: false,
            linked_at: now,
            access_expires_at: tokens.access_expires_at,
            refresh_expires_at: tokens.refresh_expires_at,
            hints: account_hints(&tokens.access_token),
        }
    }

    /// After a refresh: new expiry, same link date.
    pub fn refreshed(&self, tokens: &TokenSet) -> Self {
        LinkRecord {
            access_expires_at: tokens.access_expires_at,
            refresh_expires_at: tokens.refresh_expires_at.or(self.refresh_expires_at),
            needs_reconnecting: false,
            hints: account_hints(&tokens.access_token),
            ..self.clone()
        }
    }

    pub fn needs_refresh(&self, now: u64) -> bool {
        self.linked && !self.needs_reconnecting && self.access_expires_at <= now + REFRESH_MARGIN_SECS
    }
}

/// The link as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LinkStatus {
    NotLinked,
    /// The browser is open on the USPS sign-in page.
    Waiting,
    Linked {
        record: LinkRecord,
    },
    /// The last attempt failed; `kind` is `login_failed`, `network`, `not_configured`, …
    Failed {
        kind: ErrorKind,
        message: String,
    },
    NeedsReconnecting {
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH: &str = "http://127.0.0.1:1/cop-navigator";

    #[test]
    fn authorize_url_carries_cop_params_and_pkce() {
        let mut store = AttemptStore::default();
        let a = store.begin(AUTH, "my-key", "uspslink://oauth/callback", Instant::now()).unwrap();
        let url = url::Url::parse(&a.authorize_url).unwrap();
        let q: HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["wf"], "apis_merchant_user");
        assert_eq!(q["client_id"], "my-key");
        assert_eq!(q["redirect_uri"], "uspslink://oauth/callback");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["state"], a.state);
        assert!(q["state"].len() >= 16);
        assert_eq!(q["code_challenge"].len(), 43);
        // Two attempts never share a state.
        let b = store.begin(AUTH, "my-key", "uspslink://oauth/callback", Instant::now()).unwrap();
        assert_ne!(a.state, b.state);
    }

    #[test]
    fn a_state_is_accepted_once_and_unknown_states_are_refused() {
        let mut store = AttemptStore::default();
        let now = Instant::now();
        let a = store.begin(AUTH, "k", "uspslink://oauth/callback", now).unwrap();
        assert!(matches!(store.take("forged-state-123456", now), Err(LinkError::UnknownState)));
        assert!(store.is_waiting(), "a forged answer changes nothing");
        let taken = store.take(&a.state, now).unwrap();
        assert_eq!(taken.redirect_uri, "uspslink://oauth/callback");
        assert!(matches!(store.take(&a.state, now), Err(LinkError::UsedState)));
    }

    #[test]
    fn expired_and_cancelled_attempts_are_refused() {
        let mut store = AttemptStore::default();
        let t0 = Instant::now();
        let a = store.begin(AUTH, "k", "uspslink://oauth/callback", t0).unwrap();
        assert!(store.is_waiting_at(t0 + ATTEMPT_TTL));
        assert!(!store.is_waiting_at(t0 + ATTEMPT_TTL + Duration::from_secs(1)), "past 10 minutes it is not Waiting");
        let e = store.take(&a.state, t0 + ATTEMPT_TTL + Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, LinkError::ExpiredState));
        assert_eq!(e.kind(), ErrorKind::LoginFailed);
        let late = store.begin(AUTH, "k", "uspslink://oauth/callback", t0).unwrap();
        assert!(store.expire_due(t0 + ATTEMPT_TTL + Duration::from_secs(1)));
        assert!(!store.expire_due(t0 + ATTEMPT_TTL + Duration::from_secs(2)), "once");
        assert!(matches!(store.take(&late.state, t0), Err(LinkError::UsedState)));
        let b = store.begin(AUTH, "k", "uspslink://oauth/callback", t0).unwrap();
        store.cancel_all();
        assert!(!store.is_waiting());
        assert!(matches!(store.take(&b.state, t0), Err(LinkError::UsedState)));
    }

    #[test]
    fn begin_needs_a_consumer_key_and_a_valid_url() {
        let mut store = AttemptStore::default();
        assert!(matches!(
            store.begin(AUTH, "", "uspslink://oauth/callback", Instant::now()),
            Err(LinkError::NotConfigured(_))
        ));
        assert!(matches!(store.begin("not a url", "k", "x", Instant::now()), Err(LinkError::NotConfigured(_))));
        assert!(!store.is_waiting());
    }

    fn jwt(claims: serde_json::Value) -> SecretString {
        let enc = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        SecretString::from(format!("{}.{}.sig", enc(br#"{"alg":"RS256"}"#), enc(claims.to_string().as_bytes())))
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(951_782_400), (2000, 2, 29));
        assert_eq!(civil_date(1_798_761_599), (2026, 12, 31));
        assert_eq!(civil_date(1_798_761_600), (2027, 1, 1));
    }

    #[test]
    fn link_record_refresh_rules() {
        let tokens = TokenSet {
            access_token: SecretString::from("a.b.c"),
            refresh_token: None,
            access_expires_at: 10_000,
            refresh_expires_at: Some(50_000),
        };
        let r = LinkRecord::linked(&tokens, 1_000);
        assert!(!r.needs_refresh(1_000));
        assert!(r.needs_refresh(10_000 - REFRESH_MARGIN_SECS));
        let again = r.refreshed(&TokenSet { access_expires_at: 40_000, refresh_expires_at: None, ..tokens });
        assert_eq!((again.linked_at, again.access_expires_at, again.refresh_expires_at), (1_000, 40_000, Some(50_000)));
        let broken = LinkRecord { needs_reconnecting: true, ..again };
        assert!(!broken.needs_refresh(u64::MAX / 2), "a broken link is not refreshed, it is reconnected");
    }

    #[test]
    fn hints_from_token_claims() {
        let t = jwt(serde_json::json!({
            "sub": "x",
            "mail_owners": [{"crid": "20538353", "master_MID": "901234567", "mids": ["123456"]}],
            "payment_accounts": {"accounts": [{"account_number": "1000000001"}]}
        }));
        let h = account_hints(&t);
        assert_eq!(h.crids, ["20538353"]);
        assert_eq!(h.mids, ["901234567", "123456"]);
        assert_eq!(h.eps_accounts, ["1000000001"]);
        assert_eq!(account_hints(&SecretString::from("not-a-jwt")), AccountHints::default());
        assert_eq!(account_hints(&SecretString::from("a.!!!.c")), AccountHints::default());
    }
}
