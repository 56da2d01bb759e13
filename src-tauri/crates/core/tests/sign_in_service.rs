//! The app's sign-in service client against a real broker in front of a real sandbox: the sign-in
//! the default first run makes, and how each refusal reads to the user.

use std::time::Instant;

use secrecy::{ExposeSecret, SecretString};
use uspslink_broker::seal::Keys;
use uspslink_broker::{Broker, Config};
use uspslink_core::callback::{self, CallbackOutcome};
use uspslink_core::error::{ErrorKind, HasKind};
use uspslink_core::usps::{AttemptStore, LinkError, PkcePair, SignInServiceClient, TokenExchange};
use uspslink_sandbox::usps::{CLIENT_ID, CLIENT_SECRET, MFA_CODE, PASSWORD};
use uspslink_sandbox::Sandbox;

fn between(page: &str, before: &str) -> String {
    page.split(before)
        .nth(1)
        .unwrap_or_else(|| panic!("no {before:?} in {page}"))
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
}

/// The browser: USPS's pages, USPS's redirect to the service, the service's page on to the app.
async fn browser(authorize_url: &str) -> String {
    let http = reqwest::Client::new();
    let base = authorize_url.split("/cop-navigator").next().unwrap().to_string();
    let page = http.get(authorize_url).send().await.unwrap().text().await.unwrap();
    let flow = between(&page, "name=\"flow\" value=\"");
    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        let (http, url) = (http.clone(), format!("{base}{path}"));
        async move { http.post(url).form(&form).send().await.unwrap().text().await.unwrap() }
    };
    post(
        "/cop-navigator/sign-in",
        vec![("flow", flow.clone()), ("username", "merchant".into()), ("password", PASSWORD.into())],
    )
    .await;
    post("/cop-navigator/mfa", vec![("flow", flow.clone()), ("code", MFA_CODE.into())]).await;
    let page =
        post("/cop-navigator/grant", vec![("flow", flow), ("agree", "yes".into()), ("decision", "authorize".into())])
            .await;
    let to_service = between(&page, "id=\"go\" href=\"");
    let page = http.get(to_service).send().await.unwrap().text().await.unwrap();
    between(&page, "id=\"open-app\" href=\"")
}

async fn service() -> (Sandbox, Broker) {
    let sb = Sandbox::start("127.0.0.1:0").await.unwrap();
    let authorize = format!("{}/cop-navigator", sb.base_url());
    let api = sb.base_url();
    let broker = Broker::start("127.0.0.1:0", |addr| {
        Config::new(
            &api,
            &authorize,
            CLIENT_ID,
            SecretString::from(CLIENT_SECRET),
            &format!("http://{addr}"),
            Keys::random(),
        )
        .unwrap()
    })
    .await
    .unwrap();
    (sb, broker)
}

#[tokio::test]
async fn a_sign_in_through_the_service_links_refreshes_and_revokes() {
    let (_sb, broker) = service().await;
    let client = SignInServiceClient::new(&broker.base_url());
    let mut attempts = AttemptStore::default();
    let pkce = PkcePair::new();
    let started = client.begin(&pkce.challenge).await.unwrap();
    assert!(started.authorize_url.contains(&format!("client_id={CLIENT_ID}")));
    attempts.open_prepared(&started.state, pkce, client.base(), Instant::now()).unwrap();
    let url = browser(&started.authorize_url).await;
    let cb = callback::parse(&url).expect("the app's deep-link parser takes the service's hand-on");
    let attempt = attempts.take(&cb.state, Instant::now()).unwrap();
    let CallbackOutcome::Code(code) = cb.outcome else { panic!("a code") };
    let tokens = client.exchange_code(&code, attempt.verifier(), &attempt.redirect_uri, &attempt.state).await.unwrap();
    let refresh = tokens.refresh_token.unwrap();
    let renewed = client.refresh(&refresh).await.unwrap();
    assert_ne!(renewed.refresh_token.as_ref().unwrap().expose_secret(), refresh.expose_secret());
    // The rotated-out token reads as "needs reconnecting", as it does from USPS directly.
    let e = client.refresh(&refresh).await.err().unwrap();
    assert!(matches!(e, LinkError::NeedsReconnecting(_)), "{e}");
    client.revoke(renewed.refresh_token.as_ref().unwrap(), "refresh_token").await.unwrap();
    // The same code again: USPS said it was used; the user reads "Login failed".
    let e = client.exchange_code(&code, attempt.verifier(), "", &attempt.state).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::LoginFailed, "{e}");
}

#[tokio::test]
async fn a_code_with_the_wrong_verifier_reads_as_a_failed_login() {
    let (_sb, broker) = service().await;
    let client = SignInServiceClient::new(&broker.base_url());
    let pkce = PkcePair::new();
    let started = client.begin(&pkce.challenge).await.unwrap();
    let cb = callback::parse(&browser(&started.authorize_url).await).unwrap();
    let CallbackOutcome::Code(code) = cb.outcome else { panic!() };
    let wrong = SecretString::from("x".repeat(64));
    let e = client.exchange_code(&code, &wrong, "", &cb.state).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::LoginFailed);
    assert!(e.to_string().contains("the code verifier does not match this sign-in"), "{e}");
}

#[tokio::test]
async fn a_service_that_cannot_be_reached_is_said_so() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let client = SignInServiceClient::new(&format!("http://{closed}"));
    let e = client.begin(&PkcePair::new().challenge).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Network);
    assert!(e.to_string().contains("the uspslink sign-in service cannot be reached"), "{e}");
    let mut attempts = AttemptStore::default();
    assert!(!attempts.is_waiting(), "nothing was opened");
    assert!(attempts.open_prepared("", PkcePair::new(), "http://127.0.0.1:9", Instant::now()).is_err());
}

#[test]
fn a_state_the_callback_would_refuse_never_opens_a_sign_in() {
    // Before, a state up to 2,048 bytes was taken here while the callback takes 256: a sign-in
    // that could never come back.
    let mut attempts = AttemptStore::default();
    for unusable in ["a".repeat(uspslink_protocol::MAX_STATE_LEN + 1), "short".into(), "with space in it 0123".into()] {
        assert!(attempts.open_prepared(&unusable, PkcePair::new(), "http://127.0.0.1:9", Instant::now()).is_err());
        assert!(!uspslink_core::callback::state_can_come_back(&unusable));
    }
    let longest = "a".repeat(uspslink_protocol::MAX_STATE_LEN);
    attempts.open_prepared(&longest, PkcePair::new(), "http://127.0.0.1:9", Instant::now()).unwrap();
    let link = format!("uspslink://oauth/callback?code=c&state={longest}");
    assert_eq!(uspslink_core::callback::parse(&link).unwrap().state, longest);
}

#[tokio::test]
async fn a_long_usps_error_still_reaches_the_app_and_says_why() {
    let (_sb, broker) = service().await;
    let client = SignInServiceClient::new(&broker.base_url());
    let started = client.begin(&PkcePair::new().challenge).await.unwrap();
    let description = "Your USPS account is locked – ".repeat(40);
    let url = url::Url::parse_with_params(
        &format!("{}/usps/callback", broker.base_url()),
        [("error", "login_failed"), ("error_description", description.as_str()), ("state", started.state.as_str())],
    )
    .unwrap();
    let page = reqwest::get(url).await.unwrap().text().await.unwrap();
    let cb = callback::parse(&between(&page, "id=\"open-app\" href=\"")).expect("within the parser's limits");
    assert_eq!(cb.state, started.state);
    let CallbackOutcome::Error { error, description } = cb.outcome else { panic!("an error answer") };
    assert_eq!(error, "login_failed");
    assert!(description.unwrap().starts_with("Your USPS account is locked"));
}
