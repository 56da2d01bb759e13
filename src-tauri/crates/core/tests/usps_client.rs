//! The USPS OAuth client against the sandbox: a real HTTP server, the real HTML pages, every error body.

use std::time::Instant;

use secrecy::{ExposeSecret, SecretString};
use uspslink_core::callback::{self, CallbackOutcome};
use uspslink_core::error::{ErrorKind, HasKind};
use uspslink_core::usps::{account_hints, AttemptStore, LinkError, TokenExchange, UspsOAuthClient};
use uspslink_sandbox::usps::{CLIENT_ID, CLIENT_SECRET, CRID, EPS_ACCOUNT, MFA_CODE, PASSWORD};
use uspslink_sandbox::Sandbox;

const REDIRECT: &str = "uspslink://oauth/callback";

fn attr_after(html: &str, marker: &str, attr: &str) -> String {
    let rest = &html[html.find(marker).unwrap_or_else(|| panic!("{marker} not in {html}"))..];
    let start = rest.find(&format!("{attr}=\"")).unwrap() + attr.len() + 2;
    rest[start..start + rest[start..].find('"').unwrap()].replace("&amp;", "&")
}

/// Walk the sandbox's sign-in pages like a user would; returns the uspslink:// URL of the last page.
async fn walk(authorize_url: &str, user: &str, decision: &str) -> String {
    let http = reqwest::Client::new();
    let page = http.get(authorize_url).send().await.unwrap().text().await.unwrap();
    let flow = attr_after(&page, "name=\"flow\"", "value");
    let base = authorize_url.split("/cop-navigator").next().unwrap();
    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move { http.post(url).form(&form).send().await.unwrap().text().await.unwrap() }
    };
    post(
        "/cop-navigator/sign-in",
        vec![("flow", flow.clone()), ("username", user.into()), ("password", PASSWORD.into())],
    )
    .await;
    post("/cop-navigator/mfa", vec![("flow", flow.clone()), ("code", MFA_CODE.into())]).await;
    let page =
        post("/cop-navigator/grant", vec![("flow", flow), ("agree", "yes".into()), ("decision", decision.into())])
            .await;
    attr_after(&page, if decision == "deny" { "id=\"return\"" } else { "id=\"go\"" }, "href")
}

async fn setup() -> (Sandbox, UspsOAuthClient, AttemptStore) {
    let sb = Sandbox::start("127.0.0.1:0").await.unwrap();
    let client = UspsOAuthClient::new(&sb.base_url(), CLIENT_ID, SecretString::from(CLIENT_SECRET));
    (sb, client, AttemptStore::default())
}

#[tokio::test]
async fn link_refresh_rotation_and_revoke() {
    let (sb, client, mut attempts) = setup().await;
    let started =
        attempts.begin(&format!("{}/cop-navigator", sb.base_url()), CLIENT_ID, REDIRECT, Instant::now()).unwrap();
    let url = walk(&started.authorize_url, "merchant", "authorize").await;
    let cb = callback::parse(&url).unwrap();
    let attempt = attempts.take(&cb.state, Instant::now()).unwrap();
    let CallbackOutcome::Code(code) = cb.outcome else { panic!("expected a code") };
    let tokens = client.exchange_code(&code, attempt.verifier(), &attempt.redirect_uri, "").await.unwrap();
    assert!(tokens.access_expires_at > uspslink_core::usps::unix_now() + 60);
    let hints = account_hints(&tokens.access_token);
    assert_eq!(hints.crids, [CRID]);
    assert_eq!(hints.eps_accounts, [EPS_ACCOUNT]);

    // A replayed code is refused with the server's reason.
    let e = client.exchange_code(&code, attempt.verifier(), REDIRECT, "").await.err().unwrap();
    assert!(matches!(&e, LinkError::CodeRejected { error, .. } if error == "invalid_grant"), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::LoginFailed);
    assert!(e.to_string().starts_with("Login failed"));

    let rt1 = tokens.refresh_token.unwrap();
    let t2 = client.refresh(&rt1).await.unwrap();
    let rt2 = t2.refresh_token.unwrap();
    assert_ne!(rt1.expose_secret(), rt2.expose_secret());
    let e = client.refresh(&rt1).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::NeedsReconnecting, "{e:?}");
    assert!(e.to_string().contains("password reset"));

    // USPS rotates the token and the answer is lost on the way back: the refresh is not sent again
    // with the token USPS has just retired (that would read as "reconnect"); it is a network error.
    sb.inject_fault("/oauth2/v3/token", uspslink_sandbox::Fault { lose_response: true, ..Default::default() }, 1);
    let e = client.refresh(&rt2).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Network, "{e:?}");
    // USPS did rotate it: sent again, that token now reads "reconnect" (what a retry would have said).
    assert_eq!(client.refresh(&rt2).await.err().unwrap().kind(), ErrorKind::NeedsReconnecting);

    client.revoke(&rt2, "refresh_token").await.unwrap();
    assert_eq!(client.refresh(&rt2).await.err().unwrap().kind(), ErrorKind::NeedsReconnecting);
}

#[tokio::test]
async fn wrong_verifier_and_wrong_secret() {
    let (sb, client, mut attempts) = setup().await;
    let started =
        attempts.begin(&format!("{}/cop-navigator", sb.base_url()), CLIENT_ID, REDIRECT, Instant::now()).unwrap();
    let url = walk(&started.authorize_url, "merchant", "authorize").await;
    let cb = callback::parse(&url).unwrap();
    let CallbackOutcome::Code(code) = cb.outcome else { panic!() };
    let bad = SecretString::from("x".repeat(50));
    let e = client.exchange_code(&code, &bad, REDIRECT, "").await.err().unwrap();
    assert!(e.to_string().contains("PKCE verification failed"), "{e}");

    let wrong = UspsOAuthClient::new(&sb.base_url(), CLIENT_ID, SecretString::from("nope"));
    let e = wrong.exchange_code(&code, &bad, REDIRECT, "").await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::NotConfigured);
    assert!(!e.to_string().contains("nope"), "the secret never appears in messages");
}

#[tokio::test]
async fn deny_comes_back_as_an_error_callback() {
    let (sb, _client, mut attempts) = setup().await;
    let started =
        attempts.begin(&format!("{}/cop-navigator", sb.base_url()), CLIENT_ID, REDIRECT, Instant::now()).unwrap();
    let url = walk(&started.authorize_url, "merchant", "deny").await;
    let cb = callback::parse(&url).unwrap();
    assert_eq!(cb.state, started.state);
    assert!(matches!(cb.outcome, CallbackOutcome::Error { ref error, .. } if error == "access_denied"));
}

#[tokio::test]
async fn network_and_malformed_answers() {
    let (sb, client, _) = setup().await;
    sb.inject_fault("/oauth2/v3/token", uspslink_sandbox::Fault { malformed: true, ..Default::default() }, 1);
    let e = client.refresh(&SecretString::from("x")).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::MalformedResponse);
    // A refresh is sent once (USPS may have rotated the token before a 502/503/504 or a dropped
    // connection): one 503 is an outage, said as such; nothing is wrong with the link itself.
    sb.inject_fault("/oauth2/v3/token", uspslink_sandbox::Fault { status: Some(503), ..Default::default() }, 1);
    let e = client.refresh(&SecretString::from("x")).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Network, "{e:?}");
    assert!(e.to_string().contains("HTTP 503"));
    // The fault was used up by that one call: the next refresh gets the real answer.
    let e = client.refresh(&SecretString::from("x")).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::NeedsReconnecting, "{e:?}");
    // A code exchange is sent once: a code is single use, so the app reports and the user retries.
    sb.inject_fault("/oauth2/v3/token", uspslink_sandbox::Fault { status: Some(503), ..Default::default() }, 1);
    let e = client.exchange_code(&SecretString::from("c"), &SecretString::from("v"), REDIRECT, "").await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Network, "{e:?}");
    let gone = UspsOAuthClient::new("http://127.0.0.1:9", CLIENT_ID, SecretString::from(CLIENT_SECRET));
    assert_eq!(gone.refresh(&SecretString::from("x")).await.err().unwrap().kind(), ErrorKind::Network);
}
