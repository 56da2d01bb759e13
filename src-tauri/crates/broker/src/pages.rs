//! The callback's pages: the browser lands here from USPS and is sent on to `uspslink://`.
//!
//! A `302` to a custom scheme leaves nothing to click when the browser blocks it (or asks and the
//! user says no), so the answer is a small page that redirects at once (`meta refresh`) and keeps an
//! *Open uspslink* button. It is never cached and sends no referrer, and it runs no script.
//!
//! Whoever made the link chose every query parameter, so no page shows any of them: the wording is
//! fixed. What is handed on to `uspslink://` keeps to the rule the app's parser holds to
//! (`uspslink-protocol`), so an answer is never dropped there for its form.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use uspslink_protocol::{is_oauth_error_char, MAX_ERROR_CODE_LEN, MAX_ERROR_DESCRIPTION_LEN};

pub(crate) enum Outcome {
    SignedIn,
    /// USPS sent an error: `access_denied` (the user said no), or anything else.
    Refused {
        denied: bool,
    },
}

/// Only the characters the shared rule allows, at most `max` of them (they are ASCII, so that is
/// also `max` bytes and every cut is at a character boundary).
fn within_rule(text: &str, max: usize) -> String {
    text.chars().filter(|c| is_oauth_error_char(*c)).take(max).collect()
}

/// The `error` handed on: within the rule, or `server_error` when nothing of it is left, so the app
/// still learns that the sign-in failed.
pub(crate) fn error_for_app(error: &str) -> String {
    let kept = within_rule(error, MAX_ERROR_CODE_LEN);
    if kept.is_empty() {
        "server_error".to_string()
    } else {
        kept
    }
}

/// The `error_description` handed on: within the rule, or none.
pub(crate) fn description_for_app(description: &str) -> Option<String> {
    Some(within_rule(description, MAX_ERROR_DESCRIPTION_LEN)).filter(|d| !d.is_empty())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn page(status: StatusCode, title: &str, body: &str, refresh_to: Option<&str>) -> Response {
    let refresh = refresh_to
        .map(|u| format!("<meta http-equiv=\"refresh\" content=\"0; url={}\">", escape(u)))
        .unwrap_or_default();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{refresh}\
         <title>{t} | uspslink</title><style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;\
         padding:0 1rem;color:#1f2937}}a.button{{display:inline-block;background:#1d4ed8;color:#fff;padding:.6rem 1.2rem;\
         border-radius:.4rem;text-decoration:none;font-size:1.1rem}}a.button:focus{{outline:3px solid #f59e0b}}</style>\
         </head><body><main><h1>{t}</h1>{body}</main></body></html>",
        t = escape(title)
    );
    let mut r = (status, Html(html)).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
    );
    r
}

const SIGNED_IN: &str = "<p>uspslink is finishing the link. If it did not open by itself, press the button.</p>";
const DENIED: &str = "<p>USPS did not grant access.</p><p>If uspslink did not open by itself, press the button.</p>";
const FAILED: &str = "<p>The sign-in was cancelled or failed.</p>\
                      <p>uspslink will say what happened. If it did not open by itself, press the button.</p>";

/// Send the browser on to the app with `params`.
pub(crate) fn hand_on(app_redirect: &str, params: &[(&str, &str)], outcome: &Outcome) -> Response {
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    let sep = if app_redirect.contains('?') { '&' } else { '?' };
    let target = format!("{app_redirect}{sep}{query}");
    let button = format!("<p><a class=\"button\" id=\"open-app\" href=\"{}\">Open uspslink</a></p>", escape(&target));
    let (title, text) = match outcome {
        Outcome::SignedIn => ("Signed in to USPS", SIGNED_IN),
        Outcome::Refused { denied: true } => ("USPS sign-in did not finish", DENIED),
        Outcome::Refused { denied: false } => ("USPS sign-in did not finish", FAILED),
    };
    page(StatusCode::OK, title, &format!("{text}{button}"), Some(&target))
}

/// The code came with another sign-in's state first: someone else has it. Nothing is handed on.
pub(crate) fn code_taken() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "This sign-in link was already used",
        "<p>USPS's answer in it belongs to another sign-in. Go back to uspslink and press \
         <strong>Link your business account</strong> again.</p>",
        None,
    )
}

/// The shared store cannot be reached, so the code cannot be bound: nothing is handed on.
pub(crate) fn busy() -> Response {
    try_later(StatusCode::SERVICE_UNAVAILABLE, "The uspslink sign-in service is busy", crate::STORE_DOWN_RETRY_SECS)
}

/// Too many requests from this network.
pub(crate) fn too_many(wait: Duration) -> Response {
    try_later(StatusCode::TOO_MANY_REQUESTS, "Too many sign-ins from your network", crate::retry_after_secs(wait))
}

/// Nothing was linked; the page says to link again in a minute, and `Retry-After` says when.
fn try_later(status: StatusCode, title: &str, retry_after_secs: u64) -> Response {
    let mut r = page(
        status,
        title,
        "<p>Nothing was linked. Wait a minute, then go back to uspslink and press \
         <strong>Link your business account</strong> again.</p>",
        None,
    );
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    r
}

/// A callback with no state this service issued (forged, damaged or too old): nothing is handed on.
pub(crate) fn not_valid() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "This sign-in link is not valid",
        "<p>It was not started from uspslink, or it is too old. Go back to uspslink and press \
         <strong>Link your business account</strong> again.</p>",
        None,
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use uspslink_protocol::{is_oauth_error_code, is_oauth_error_description};

    use super::*;

    #[test]
    fn what_is_handed_on_keeps_to_the_rule() {
        assert_eq!(error_for_app("access_denied"), "access_denied");
        assert_eq!(error_for_app("\u{e9}\"\\"), "server_error", "nothing left");
        assert_eq!(error_for_app(&"e\u{e9}".repeat(100)), "e".repeat(64));
        assert_eq!(
            description_for_app("Your \"USPS\" account is locked.").as_deref(),
            Some("Your USPS account is locked.")
        );
        assert_eq!(description_for_app("\u{1F600}\n"), None);
        assert_eq!(description_for_app(&"d".repeat(1_000)).map(|d| d.len()), Some(300));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]
        // Whatever USPS (or whoever made the link) put in error and error_description, what the
        // callback hands on is accepted by the app's parser (the shared rule).
        #[test]
        fn anything_handed_on_passes_the_shared_rule(error in "\\PC*", description in "\\PC*", ascii in "[ -~]{0,400}") {
            for text in [&error, &description, &ascii] {
                prop_assert!(is_oauth_error_code(&error_for_app(text)));
                if let Some(d) = description_for_app(text) {
                    prop_assert!(is_oauth_error_description(&d));
                }
            }
        }
    }
}
