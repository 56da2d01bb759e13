//! The callback's pages: the browser lands here from USPS and is sent on to `uspslink://`.
//!
//! A `302` to a custom scheme leaves nothing to click when the browser blocks it (or asks and the
//! user says no), so the answer is a small page that redirects at once (`meta refresh`) and keeps an
//! *Open uspslink* button. It is never cached and sends no referrer, and it runs no script.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

pub(crate) enum Outcome<'a> {
    SignedIn,
    /// USPS sent an error (access not granted, a locked account): its description.
    Refused(&'a str),
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

/// Send the browser on to the app with `params`.
pub(crate) fn hand_on(app_redirect: &str, params: &[(&str, &str)], outcome: &Outcome) -> Response {
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    let sep = if app_redirect.contains('?') { '&' } else { '?' };
    let target = format!("{app_redirect}{sep}{query}");
    let button = format!("<p><a class=\"button\" id=\"open-app\" href=\"{}\">Open uspslink</a></p>", escape(&target));
    let (title, text) = match outcome {
        Outcome::SignedIn => (
            "Signed in to USPS",
            "<p>uspslink is finishing the link. If it did not open by itself, press the button.</p>".to_string(),
        ),
        Outcome::Refused(description) => (
            "USPS sign-in did not finish",
            format!(
                "<p>{}</p><p>uspslink will say what happened. If it did not open by itself, press the button.</p>",
                if description.is_empty() { "USPS did not grant access.".to_string() } else { escape(description) }
            ),
        ),
    };
    page(StatusCode::OK, title, &format!("{text}{button}"), Some(&target))
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
