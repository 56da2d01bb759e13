//! USPS OAuth 2.0 for a desktop app: the link attempt (state + PKCE), the authorize URL (COP
//! navigator), the token client (code exchange, refresh with rotation, revoke) and the JWT claims
//! used to pre-fill CRID / EPS.
//!
//! Sources: the USPS OAuth 2.0 spec v3.0.5 (`/oauth2/v3/token` takes JSON or form bodies; codes are
//! valid five minutes; a refresh returns a new refresh token) and the COP navigator URL USPS gives
//! platforms (`wf=apis_merchant_user&client_id&state&redirect_uri`); see the shared API notes.
//!
//! Split by concern: `attempt` (state + PKCE), `client` (tokens), `claims` (JWT hints), `record`
//! (what is kept); the time helpers are `crate::clock`.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use base64::Engine;
use oauth2::{CsrfToken, PkceCodeChallenge};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use ts_rs::TS;

use crate::error::{ErrorKind, HasKind};

mod attempt;
mod claims;
mod client;
mod record;

pub use attempt::*;
pub use claims::*;
pub use client::*;
pub use record::*;
// Where these lived before the split; the clock is its own module now.
pub use crate::clock::{civil_date, unix_now};

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
        let r = LinkRecord::linked(&tokens, 1_000, crate::settings::SignInMethod::OwnApp, None);
        assert!(!r.needs_refresh(1_000));
        assert!(r.needs_refresh(10_000 - REFRESH_MARGIN_SECS));
        let again = r.refreshed(&TokenSet { access_expires_at: 40_000, refresh_expires_at: None, ..tokens });
        assert_eq!((again.linked_at, again.access_expires_at, again.refresh_expires_at), (1_000, 40_000, Some(50_000)));
        let broken = LinkRecord { needs_reconnecting: true, ..again };
        assert!(!broken.needs_refresh(u64::MAX / 2), "a broken link is not refreshed, it is reconnected");
    }

    #[test]
    fn a_link_moved_away_from_its_service_is_noticed() {
        let tokens = TokenSet {
            access_token: SecretString::from("a.b.c"),
            refresh_token: None,
            access_expires_at: 10_000,
            refresh_expires_at: None,
        };
        let service = crate::settings::SignInMethod::Service;
        let r = LinkRecord::linked(&tokens, 1_000, service, Some("https://signin.example.com".into()));
        assert_eq!(r.moved_from(Some("https://signin.example.com")), None);
        assert_eq!(r.moved_from(Some("https://signin.example.com/")), None, "a trailing slash is the same");
        assert_eq!(r.moved_from(Some("https://other.example.net")), Some("https://signin.example.com"));
        assert_eq!(r.moved_from(None), Some("https://signin.example.com"), "Settings now name the own app");
        // Nothing to move: no link, a broken one (reconnecting anyway), or tokens from the own app.
        assert_eq!(LinkRecord::default().moved_from(Some("https://x")), None);
        assert_eq!(LinkRecord { needs_reconnecting: true, ..r.clone() }.moved_from(Some("https://x")), None);
        let own = LinkRecord::linked(&tokens, 1_000, crate::settings::SignInMethod::OwnApp, None);
        assert_eq!(own.moved_from(Some("https://x")), None);
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
