//! Parsing of `uspslink://` URLs handed to the app by the OS.
//!
//! A deep link is untrusted input: any local program or web page can send one. So the parser is strict
//! (docs/DESIGN.md, "Security rules"): bounded length, exactly one accepted host and path, a closed set of
//! parameters each present at most once, and a character set per parameter. Anything else is refused
//! with a reason and nothing downstream sees it.

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use thiserror::Error;
use ts_rs::TS;

use crate::error::{ErrorKind, HasKind};

pub const SCHEME: &str = "uspslink";
/// The only URL the app accepts: `uspslink://oauth/callback?...`.
pub const CALLBACK_HOST: &str = "oauth";
pub const CALLBACK_PATH: &str = "/callback";
/// Real callbacks are a few hundred bytes; anything near this bound is hostile or broken.
pub const MAX_URL_LEN: usize = 2048;
// The sign-in service's signed state is about 120 characters (uspslink-broker's seal.rs); the limit
// is the one the service holds to as well.
use uspslink_protocol::MAX_STATE_LEN;
const MIN_STATE_LEN: usize = 16;
const MAX_CODE_LEN: usize = 512;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CallbackError {
    #[error("the link is {0} bytes long; at most {MAX_URL_LEN} are accepted")]
    TooLong(usize),
    #[error("the link is not a valid URL")]
    NotAUrl,
    #[error("the link's scheme is not {SCHEME}://")]
    WrongScheme,
    #[error("the link must be {SCHEME}://{CALLBACK_HOST}{CALLBACK_PATH}")]
    WrongTarget,
    #[error("the link carries a user, password, port or fragment, which a callback never has")]
    UnexpectedParts,
    #[error("the link has a parameter that a callback never has: {0:?}")]
    UnknownParameter(String),
    #[error("the link repeats the parameter {0:?}")]
    RepeatedParameter(String),
    #[error("the link's {0} parameter is malformed")]
    MalformedParameter(&'static str),
    #[error("the link has no state parameter")]
    MissingState,
    #[error("the link has neither a code nor an error")]
    MissingOutcome,
    #[error("the link has both a code and an error")]
    BothOutcomes,
}

impl HasKind for CallbackError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidDeepLink
    }
}

/// A short fingerprint of an OAuth state, for logs and for recognising a sign-in started before a
/// restart: the state itself is a one-time secret and is never written anywhere.
pub fn state_fingerprint(state: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(state.as_bytes()).iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// What the authorization server said: a code to exchange, or an error.
#[derive(Debug, Clone)]
pub enum CallbackOutcome {
    Code(SecretString),
    Error { error: String, description: Option<String> },
}

/// A parsed, validated OAuth callback. The code is wrapped so it cannot be logged by accident.
#[derive(Debug, Clone)]
pub struct OAuthCallback {
    pub state: String,
    pub outcome: CallbackOutcome,
}

impl OAuthCallback {
    /// A summary safe to show and log: never the code itself.
    pub fn summary(&self) -> CallbackSummary {
        match &self.outcome {
            CallbackOutcome::Code(code) => CallbackSummary {
                state_hash: state_fingerprint(&self.state),
                has_code: true,
                code_length: code.expose_secret().len() as u32,
                error: None,
                error_description: None,
            },
            CallbackOutcome::Error { error, description } => CallbackSummary {
                state_hash: state_fingerprint(&self.state),
                has_code: false,
                code_length: 0,
                error: Some(error.clone()),
                error_description: description.clone(),
            },
        }
    }
}

/// What the UI is told about a received callback (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct CallbackSummary {
    /// [`state_fingerprint`] of the state, never the state.
    pub state_hash: String,
    pub has_code: bool,
    pub code_length: u32,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// A parameter name as it may appear in the log: a plain short name as it is, anything else (a
/// sender's text, control characters) not at all.
fn loggable_name(name: &str) -> String {
    if !name.is_empty() && name.len() <= 32 && name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        name.to_string()
    } else {
        "(a name that is not shown)".to_string()
    }
}

fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

fn check_token(value: &str, min: usize, max: usize, name: &'static str) -> Result<(), CallbackError> {
    if value.len() < min || value.len() > max || !value.chars().all(is_unreserved) {
        return Err(CallbackError::MalformedParameter(name));
    }
    Ok(())
}

/// Whether a sign-in's state can come back through [`parse`]: the sign-in service's states are checked
/// with this before an attempt is opened, so a state the callback would refuse never starts a sign-in
/// that cannot finish.
pub fn state_can_come_back(state: &str) -> bool {
    check_token(state, MIN_STATE_LEN, MAX_STATE_LEN, "state").is_ok()
}

/// Parse and validate a `uspslink://oauth/callback?...` URL.
pub fn parse(raw: &str) -> Result<OAuthCallback, CallbackError> {
    if raw.len() > MAX_URL_LEN {
        return Err(CallbackError::TooLong(raw.len()));
    }
    // Control characters and whitespace are never part of a callback; url::Url would silently strip
    // some of them, which would let two different strings mean the same link.
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(CallbackError::NotAUrl);
    }
    let url = url::Url::parse(raw).map_err(|_| CallbackError::NotAUrl)?;
    if url.scheme() != SCHEME {
        return Err(CallbackError::WrongScheme);
    }
    if !url.username().is_empty() || url.password().is_some() || url.port().is_some() || url.fragment().is_some() {
        return Err(CallbackError::UnexpectedParts);
    }
    // Compare the raw text too: the URL parser normalises `/../` and friends, and a link that only
    // becomes the callback after normalisation is not one a real authorization server sends.
    let exact_prefix = format!("{SCHEME}://{CALLBACK_HOST}{CALLBACK_PATH}?");
    if url.host_str() != Some(CALLBACK_HOST) || url.path() != CALLBACK_PATH || !raw.starts_with(&exact_prefix) {
        return Err(CallbackError::WrongTarget);
    }

    let mut state = None;
    let mut code = None;
    let mut error = None;
    let mut description = None;
    for (key, value) in url.query_pairs() {
        let slot = match key.as_ref() {
            "state" => &mut state,
            "code" => &mut code,
            "error" => &mut error,
            "error_description" => &mut description,
            other => return Err(CallbackError::UnknownParameter(loggable_name(other))),
        };
        if slot.is_some() {
            return Err(CallbackError::RepeatedParameter(loggable_name(&key)));
        }
        *slot = Some(value.into_owned());
    }

    let state = state.ok_or(CallbackError::MissingState)?;
    check_token(&state, MIN_STATE_LEN, MAX_STATE_LEN, "state")?;
    let outcome = match (code, error) {
        (Some(_), Some(_)) => return Err(CallbackError::BothOutcomes),
        (None, None) => return Err(CallbackError::MissingOutcome),
        (Some(code), None) => {
            check_token(&code, 1, MAX_CODE_LEN, "code")?;
            if description.is_some() {
                return Err(CallbackError::UnknownParameter("error_description".into()));
            }
            CallbackOutcome::Code(SecretString::from(code))
        }
        (None, Some(error)) => {
            // One rule with the sign-in service's hand-on (uspslink-protocol): what it passes on is
            // taken here, so a failed sign-in is never dropped unseen ("Waiting" for 10 minutes).
            if !uspslink_protocol::is_oauth_error_code(&error) {
                return Err(CallbackError::MalformedParameter("error"));
            }
            let description = description.filter(|d| !d.is_empty());
            if description.as_deref().is_some_and(|d| !uspslink_protocol::is_oauth_error_description(d)) {
                return Err(CallbackError::MalformedParameter("error_description"));
            }
            CallbackOutcome::Error { error, description }
        }
    };
    Ok(OAuthCallback { state, outcome })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = "s7Yk2mQp9xZa3LbC";

    #[test]
    fn accepts_a_code_callback() {
        let cb = parse(&format!("uspslink://oauth/callback?code=AB12cd34&state={STATE}")).unwrap();
        assert_eq!(cb.state, STATE);
        match cb.outcome {
            CallbackOutcome::Code(c) => assert_eq!(c.expose_secret(), "AB12cd34"),
            other => panic!("expected a code, got {other:?}"),
        }
    }

    #[test]
    fn accepts_an_error_callback_with_description() {
        let cb = parse(&format!(
            "uspslink://oauth/callback?error=access_denied&error_description=User%20denied&state={STATE}"
        ))
        .unwrap();
        let s = cb.summary();
        assert_eq!(s.error.as_deref(), Some("access_denied"));
        assert_eq!(s.error_description.as_deref(), Some("User denied"));
        assert!(!s.has_code);
        // Whatever RFC 6749 allows and the sign-in service hands on (uspslink-protocol) is taken:
        // spaces and capitals in `error`, a description of 300 bytes.
        let long = "d".repeat(300);
        let cb =
            parse(&format!("uspslink://oauth/callback?error=Access%20Denied&error_description={long}&state={STATE}"))
                .unwrap();
        assert_eq!(cb.summary().error.as_deref(), Some("Access Denied"));
        assert_eq!(cb.summary().error_description.as_deref(), Some(long.as_str()));
    }

    #[test]
    fn summary_and_debug_never_show_the_code() {
        let cb = parse(&format!("uspslink://oauth/callback?code=SECRETCODE99&state={STATE}")).unwrap();
        assert!(!format!("{cb:?}").contains("SECRETCODE99"));
        let s = serde_json::to_string(&cb.summary()).unwrap();
        assert!(!s.contains("SECRETCODE99"));
        assert!(s.contains("\"code_length\":12"));
    }

    #[test]
    fn refuses_hostile_and_malformed_links() {
        let long = format!("uspslink://oauth/callback?code=a&state={STATE}&x={}", "a".repeat(3000));
        let cases: Vec<(String, CallbackError)> = vec![
            (long.clone(), CallbackError::TooLong(long.len())),
            ("not a url".into(), CallbackError::NotAUrl),
            ("".into(), CallbackError::NotAUrl),
            (format!("https://oauth/callback?code=a&state={STATE}"), CallbackError::WrongScheme),
            (format!("uspslink://evil/callback?code=a&state={STATE}"), CallbackError::WrongTarget),
            (format!("uspslink://oauth/callback/?code=a&state={STATE}"), CallbackError::WrongTarget),
            (format!("uspslink://oauth/../callback?code=a&state={STATE}"), CallbackError::WrongTarget),
            (format!("uspslink://oauth/Callback?code=a&state={STATE}"), CallbackError::WrongTarget),
            (format!("uspslink:oauth/callback?code=a&state={STATE}"), CallbackError::WrongTarget),
            (format!("uspslink://u:p@oauth/callback?code=a&state={STATE}"), CallbackError::UnexpectedParts),
            (format!("uspslink://oauth:99/callback?code=a&state={STATE}"), CallbackError::UnexpectedParts),
            (format!("uspslink://oauth/callback?code=a&state={STATE}#frag"), CallbackError::UnexpectedParts),
            (
                format!("uspslink://oauth/callback?code=a&state={STATE}&redirect=x"),
                CallbackError::UnknownParameter("redirect".into()),
            ),
            (
                format!("uspslink://oauth/callback?code=a&code=b&state={STATE}"),
                CallbackError::RepeatedParameter("code".into()),
            ),
            ("uspslink://oauth/callback?code=a".into(), CallbackError::MissingState),
            ("uspslink://oauth/callback?code=a&state=short".into(), CallbackError::MalformedParameter("state")),
            (
                format!("uspslink://oauth/callback?code=a&state={STATE}%3Cscript%3E"),
                CallbackError::MalformedParameter("state"),
            ),
            (format!("uspslink://oauth/callback?code=a%22b&state={STATE}"), CallbackError::MalformedParameter("code")),
            (format!("uspslink://oauth/callback?code=&state={STATE}"), CallbackError::MalformedParameter("code")),
            (format!("uspslink://oauth/callback?state={STATE}"), CallbackError::MissingOutcome),
            (
                format!("uspslink://oauth/callback?code=a&error=access_denied&state={STATE}"),
                CallbackError::BothOutcomes,
            ),
            (
                format!("uspslink://oauth/callback?error=access%22denied&state={STATE}"),
                CallbackError::MalformedParameter("error"),
            ),
            (
                format!("uspslink://oauth/callback?error=x&error_description={}&state={STATE}", "d".repeat(301)),
                CallbackError::MalformedParameter("error_description"),
            ),
            (
                format!("uspslink://oauth/callback?error=x&error_description=a%0Ab&state={STATE}"),
                CallbackError::MalformedParameter("error_description"),
            ),
            (
                format!("uspslink://oauth/callback?code=a&error_description=x&state={STATE}"),
                CallbackError::UnknownParameter("error_description".into()),
            ),
            (format!("uspslink://oauth/callback?code=a&state={STATE}\n"), CallbackError::NotAUrl),
            (
                format!("uspslink://oauth/callback?code=a&state={STATE}&%0Afake%20line=1"),
                CallbackError::UnknownParameter("(a name that is not shown)".into()),
            ),
            (
                format!("uspslink://oauth/callback?code=%F0%9F%98%80&state={STATE}"),
                CallbackError::MalformedParameter("code"),
            ),
            (format!("uspslink://oauth/callback?code=a&state={STATE}%00"), CallbackError::MalformedParameter("state")),
        ];
        for (url, expected) in cases {
            let got = parse(&url).expect_err(&url);
            assert_eq!(got, expected, "url: {url}");
        }
    }

    mod fuzz {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(20_000))]

            /// Arbitrary strings never panic the parser, and anything accepted satisfies every rule.
            #[test]
            fn arbitrary_input_never_panics(s in ".{0,300}") {
                if let Ok(cb) = parse(&s) {
                    prop_assert!(s.starts_with("uspslink://oauth/callback?"));
                    prop_assert!(cb.state.len() >= MIN_STATE_LEN);
                }
            }

            /// Inputs close to valid ones (the real prefix plus random query bytes).
            #[test]
            fn near_valid_input_never_panics(q in "[a-z_=&%0-9A-F.~-]{0,200}") {
                let s = format!("uspslink://oauth/callback?{q}");
                if let Ok(cb) = parse(&s) {
                    prop_assert!(cb.state.chars().all(is_unreserved));
                }
            }
        }
    }
}
