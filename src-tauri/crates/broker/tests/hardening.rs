//! The broker against what the security review (issue 21) found, over HTTP in front of a real
//! sandbox; where it matters the sandbox behaves like real USPS and never checks PKCE, so only the
//! broker stands between a caught code and its use. Each of these failed on the broker before.

mod common;

use secrecy::SecretString;
use serde_json::json;
use uspslink_broker::config::TrustedProxies;
use uspslink_broker::seal::{challenge_of, Keys};
use uspslink_broker::Config;
use uspslink_sandbox::{Fault, Sandbox};

use common::*;

const ATTACKER: &str = "the-attackers-own-verifier-0123456789-abcdefghij";
const NOT_STARTED_HERE: &str = "this sign-in was not started through this sign-in service";

#[tokio::test]
async fn a_raw_code_from_the_callback_address_cannot_be_resealed_to_another_sign_in() {
    let sb = sandbox_like_usps().await;
    let secret = [11u8; 32];
    let b = instance(&sb, Keys::from_secret(&secret).unwrap(), None, |_| {}).await;
    let base = b.base_url();
    // The user's sign-in reaches USPS's redirect: the callback binds the code to the user's state.
    let (authorize_url, users_state) = start(&base, VERIFIER).await;
    let at_callback = sign_in_at_usps(&authorize_url, "authorize").await;
    let (raw, state) = code_and_state(&at_callback);
    assert_eq!(state, users_state);
    let (status, handed) = callback(&at_callback).await;
    assert_eq!(status, 200);
    let handed = handed.expect("handed on to the app");
    let (status, again) = callback(&at_callback).await;
    assert_eq!((status, again.is_some()), (200, true), "a reload of the callback page is fine");
    // Whoever saw the raw code (browser history, the TLS proxy's log) starts a sign-in of their own
    // and brings the code to the callback with their state: refused, nothing handed on.
    let (_, attackers_state) = start(&base, ATTACKER).await;
    let (status, handed_on) = callback(&format!("{base}/usps/callback?code={raw}&state={attackers_state}")).await;
    assert_eq!((status, handed_on), (400, None));
    // Even with a seal for their state in hand (made with the broker's own key), the exchange is
    // refused before USPS is called.
    let sealed = Keys::from_secret(&secret).unwrap().seal_code(&raw, &attackers_state);
    let calls = sb.oauth_calls();
    let (status, e) = exchange(&base, &sealed, &attackers_state, ATTACKER).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")), "{e}");
    assert_eq!(e["error_description"], "the authorization code was not received for this sign-in");
    assert_eq!(sb.oauth_calls(), calls, "USPS was not called");
    // The user's app still links: the code was never spent.
    let (status, tokens) = exchange(&base, &handed["code"], &handed["state"], VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(sb.oauth_calls(), calls + 1);
}

#[tokio::test]
async fn a_code_this_store_never_saw_arrive_is_never_exchanged() {
    let sb = sandbox_like_usps().await;
    let secret = [12u8; 32];
    let a = instance(&sb, Keys::from_secret(&secret).unwrap(), None, |_| {}).await;
    // Same key, its own memory: the callback ran on A, so B has no binding for the code.
    let b = instance(&sb, Keys::from_secret(&secret).unwrap(), Some(&a.base_url()), |_| {}).await;
    let handed = signed_in(&a.base_url(), &a.base_url(), VERIFIER).await;
    let calls = sb.oauth_calls();
    let (status, e) = exchange(&b.base_url(), &handed["code"], &handed["state"], VERIFIER).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")), "{e}");
    assert_eq!(sb.oauth_calls(), calls, "USPS was not called");
    let (status, tokens) = exchange(&a.base_url(), &handed["code"], &handed["state"], VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
}

#[tokio::test]
async fn the_client_behind_proxies_is_the_one_the_proxies_name() {
    let sb = Sandbox::start("127.0.0.1:0").await.unwrap();
    let b = broker(&sb, |c| {
        c.rate_per_minute = 1;
        c.trusted_proxies = TrustedProxies::Hops(1);
    })
    .await;
    let url = format!("{}/v1/usps/authorize", b.base_url());
    let body = json!({"code_challenge": challenge_of(VERIFIER)});
    let from = |lines: &[&str]| {
        let mut r = http().post(&url).json(&body);
        for line in lines {
            r = r.header("x-forwarded-for", *line);
        }
        r.send()
    };
    let status = |lines: &'static [&'static str]| {
        let sent = from(lines);
        async move { sent.await.unwrap().status().as_u16() }
    };
    // The client's own first line says anything; the load balancer's line (HAProxy adds one) names it.
    assert_eq!(status(&["203.0.113.1", "198.51.100.7"]).await, 200);
    assert_eq!(status(&["203.0.113.99", "198.51.100.7"]).await, 429, "a made-up first line changes nothing");
    assert_eq!(status(&["203.0.113.99, 198.51.100.7:5678"]).await, 429, "the port is not part of the client");
    assert_eq!(status(&["198.51.100.8"]).await, 200, "another client");
    // IPv6 clients are counted by their /64.
    assert_eq!(status(&["[2001:db8:1:2::1]:443"]).await, 200);
    assert_eq!(status(&["2001:db8:1:2:ffff::9"]).await, 429, "the same /64");
    assert_eq!(status(&["2001:db8:1:3::1"]).await, 200, "another /64");
    // Unreadable where the client should be: the peer counts (here 127.0.0.1, once).
    assert_eq!(status(&["198.51.100.9, not-an-address"]).await, 200);
    assert_eq!(status(&[]).await, 429, "the peer's budget was spent by the unreadable header");
    let r = from(&["198.51.100.7"]).await.unwrap();
    assert!(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);

    // By address: walk past the proxies (the peer, 127.0.0.1, is one).
    let b = broker(&sb, |c| {
        c.rate_per_minute = 1;
        c.trusted_proxies = TrustedProxies::parse("127.0.0.1/32, 10.0.0.0/8").unwrap();
    })
    .await;
    let url = format!("{}/v1/usps/authorize", b.base_url());
    let send = |line: &'static str| {
        let sent = http().post(&url).header("x-forwarded-for", line).json(&body).send();
        async move { sent.await.unwrap().status().as_u16() }
    };
    assert_eq!(send("6.6.6.6, 198.51.100.7, 10.1.2.3").await, 200);
    assert_eq!(send("198.51.100.7, 127.0.0.1").await, 429);
    assert_eq!(send("198.51.100.8").await, 200);
}

#[tokio::test]
async fn usps_refusing_the_users_grant_is_passed_on_and_refusing_the_vendor_is_not() {
    let sb = Sandbox::start("127.0.0.1:0").await.unwrap();
    let b = broker(&sb, |_| {}).await;
    let base = b.base_url();
    // The sandbox's revoked user (as after a password reset): USPS's own answer comes back.
    let (authorize_url, _) = start(&base, VERIFIER).await;
    let (_, handed) = callback(&sign_in_at_usps_as(&authorize_url, "revoked", "authorize").await).await;
    let handed = handed.expect("handed on to the app");
    let (status, tokens) = exchange(&base, &handed["code"], &handed["state"], VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, e) = post(&base, "/v1/usps/refresh", json!({"refresh_token": tokens["refresh_token"]})).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_refresh_token")), "{e}");
    // A 401 about the user's grant is the user's: the app says "reconnect".
    for error in ["invalid_grant", "invalid_token"] {
        let fault = Fault { status: Some(401), error: Some(error.into()), ..Default::default() };
        sb.inject_fault("/oauth2/v3/token", fault, 1);
        let (status, e) = post(&base, "/v1/usps/refresh", json!({"refresh_token": "RT0001abcdef"})).await;
        assert_eq!((status, e["error"].as_str()), (401, Some(error)), "{e}");
    }
    // USPS refusing the vendor's own credentials is not the user's to fix.
    let wrong = broker(&sb, |c| c.client_secret = SecretString::from("not-the-secret")).await;
    let (status, e) = post(&wrong.base_url(), "/v1/usps/refresh", json!({"refresh_token": "RT0001abcdef"})).await;
    assert_eq!((status, e["error"].as_str()), (502, Some("temporarily_unavailable")), "{e}");
    let fault = Fault { status: Some(400), error: Some("unauthorized_client".into()), ..Default::default() };
    sb.inject_fault("/oauth2/v3/token", fault, 1);
    let (status, e) = post(&base, "/v1/usps/refresh", json!({"refresh_token": "RT0001abcdef"})).await;
    assert_eq!((status, e["error"].as_str()), (502, Some("temporarily_unavailable")), "{e}");
}

#[tokio::test]
async fn a_sign_in_started_before_a_key_rotation_finishes_after_it() {
    let sb = Sandbox::start("127.0.0.1:0").await.unwrap();
    let (old, new) = ([21u8; 32], [22u8; 32]);
    let before = instance(&sb, Keys::from_secret(&old).unwrap(), None, |_| {}).await;
    let public = before.base_url();
    let (authorize_url, old_state) = start(&public, VERIFIER).await;
    let at_callback = sign_in_at_usps(&authorize_url, "authorize").await;
    // The instance is replaced by one on the new key, with the old one as the previous key.
    let rotated_keys = Keys::from_secret(&new).unwrap().with_previous(&old).unwrap();
    let after = instance(&sb, rotated_keys, Some(&public), |_| {}).await;
    let (status, handed) = callback(&at_callback.replacen(&public, &after.base_url(), 1)).await;
    assert_eq!(status, 200);
    let handed = handed.expect("handed on to the app");
    assert_eq!(handed["state"], old_state);
    let (status, tokens) = exchange(&after.base_url(), &handed["code"], &handed["state"], VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    // New sign-ins are signed with the new key only.
    let (_, new_state) = start(&after.base_url(), VERIFIER).await;
    assert!(Keys::from_secret(&new).unwrap().verify_state(&new_state, 0).is_ok());
    assert!(Keys::from_secret(&old).unwrap().verify_state(&new_state, 0).is_err());
    // A state from a key that is neither: refused at the callback and at the exchange.
    let stranger = instance(&sb, Keys::from_secret(&[23u8; 32]).unwrap(), Some(&public), |_| {}).await;
    let (_, strange_state) = start(&stranger.base_url(), VERIFIER).await;
    let strange = format!("{}/usps/callback?code=C0DE1234&state={strange_state}", after.base_url());
    let (status, handed) = callback(&strange).await;
    assert_eq!((status, handed), (400, None));
    let sealed = Keys::from_secret(&[23u8; 32]).unwrap().seal_code("C0DE1234", &strange_state);
    let (status, e) = exchange(&after.base_url(), &sealed, &strange_state, VERIFIER).await;
    assert_eq!((status, e["error_description"].as_str()), (400, Some(NOT_STARTED_HERE)));
    // Without the previous key, the old state is not taken.
    let new_only = instance(&sb, Keys::from_secret(&new).unwrap(), Some(&public), |_| {}).await;
    let (status, _) = callback(&at_callback.replacen(&public, &new_only.base_url(), 1)).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn only_usps_shaped_tokens_are_sent_to_usps() {
    let sb = Sandbox::start("127.0.0.1:0").await.unwrap();
    let b = broker(&sb, |_| {}).await;
    let base = b.base_url();
    let calls = sb.oauth_calls();
    let long = "a".repeat(uspslink_broker::MAX_USPS_TOKEN + 1);
    for bad in ["", "has space", "RT1&grant_type=client_credentials", "caf\u{e9}", "tab\there", "quote\"", &long] {
        let (status, e) = post(&base, "/v1/usps/refresh", json!({"refresh_token": bad})).await;
        assert_eq!((status, e["error"].as_str()), (400, Some("invalid_request")), "{bad:?}: {e}");
        let (status, e) = post(&base, "/v1/usps/revoke", json!({"token": bad})).await;
        assert_eq!((status, e["error"].as_str()), (400, Some("invalid_request")), "{bad:?}: {e}");
    }
    let (_, e) = post(&base, "/v1/usps/refresh", json!({"refresh_token": "has space"})).await;
    assert_eq!(e["error_description"], "refresh_token is not a USPS token");
    let (_, e) = post(&base, "/v1/usps/revoke", json!({"token": "has space"})).await;
    assert_eq!(e["error_description"], "token is not a USPS token");
    let odd_hint = json!({"token": "RT0001abcdef", "token_type_hint": "id_token"});
    let (status, e) = post(&base, "/v1/usps/revoke", odd_hint).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_request")), "{e}");
    assert!(e["error_description"].as_str().unwrap().contains("token_type_hint"));
    assert_eq!(sb.oauth_calls(), calls, "nothing reached USPS");
    // A token of the right shape goes, with either hint.
    for hint in ["access_token", "refresh_token"] {
        let body = json!({"token": "RT0001abcdef", "token_type_hint": hint});
        assert_eq!(post(&base, "/v1/usps/revoke", body).await.0, 200);
    }
    assert_eq!(sb.oauth_calls(), calls + 2);
}

#[tokio::test]
async fn the_cap_on_calls_to_usps_holds_and_usps_is_not_called_past_it() {
    let sb = Sandbox::start("127.0.0.1:0").await.unwrap();
    let b = broker(&sb, |c| c.usps_calls_per_minute = 2).await;
    let url = format!("{}/v1/usps/refresh", b.base_url());
    for _ in 0..2 {
        let r = http().post(&url).json(&json!({"refresh_token": "RT0001abcdef"})).send().await.unwrap();
        assert_eq!(r.status(), 400, "USPS's answer: an unknown refresh token");
    }
    let calls = sb.oauth_calls();
    let r = http().post(&url).json(&json!({"refresh_token": "RT0001abcdef"})).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"], "temporarily_unavailable");
    assert_eq!(sb.oauth_calls(), calls, "USPS was not called past the cap");
}

#[tokio::test]
async fn the_callback_shows_fixed_words_and_hands_on_only_what_the_app_takes() {
    let sb = Sandbox::start("127.0.0.1:0").await.unwrap();
    let b = broker(&sb, |_| {}).await;
    let base = b.base_url();
    let (_, state) = start(&base, VERIFIER).await;
    let made_up = "Your account is locked. Call \"USPS\" at +1-555-0100 or visit evil.example \u{1F600}";
    let query = serde_urlencoded::to_string([
        ("error", "login_failed\u{e9}<b>"),
        ("error_description", made_up),
        ("state", state.as_str()),
    ])
    .unwrap();
    let url = format!("{base}/usps/callback?{query}");
    let page = http().get(&url).send().await.unwrap().text().await.unwrap();
    // The words on the page are the broker's own, none of the link's.
    let shown = page.split("<main>").nth(1).unwrap().split("<p><a").next().unwrap();
    assert!(shown.contains("The sign-in was cancelled or failed."), "{shown}");
    assert!(!shown.contains("Call") && !shown.contains("evil.example") && !shown.contains("login_failed"), "{shown}");
    // What is handed on keeps to the rule the app's parser holds to.
    let (status, handed) = callback(&url).await;
    assert_eq!(status, 200);
    let handed = handed.expect("handed on to the app");
    assert_eq!(handed["error"], "login_failed<b>");
    assert_eq!(handed["error_description"], "Your account is locked. Call USPS at +1-555-0100 or visit evil.example ");
    assert!(uspslink_protocol::is_oauth_error_code(&handed["error"]));
    assert!(uspslink_protocol::is_oauth_error_description(&handed["error_description"]));
    // access_denied gets its own fixed words.
    let denied = format!("{base}/usps/callback?error=access_denied&state={state}");
    let page = http().get(&denied).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("USPS did not grant access."), "{page}");
}

#[test]
fn usps_over_plain_http_to_another_machine_is_refused() {
    let authorize = "https://cop.usps.com/cop-navigator";
    let keys = Keys::random();
    let e = Config::new("http://apis.usps.com", authorize, "id", "s".into(), "https://signin.example.com", keys);
    assert!(e.err().expect("refused").contains("https"));
    let settings = |k: &str| match k {
        "USPSLINK_BROKER_CLIENT_ID" => Some("id".to_string()),
        "USPSLINK_BROKER_CLIENT_SECRET_FILE" => Some("secret".to_string()),
        "USPSLINK_BROKER_USPS_AUTHORIZE_URL" => Some("http://10.0.0.9/cop-navigator".to_string()),
        _ => None,
    };
    let e = Config::from_env(settings, |_| Ok(b"s".to_vec()), "127.0.0.1:1".parse().unwrap()).err().expect("refused");
    assert!(e.starts_with("USPSLINK_BROKER_USPS_AUTHORIZE_URL"), "names the setting: {e}");
    // The sandbox on this machine is fine.
    let sandbox = "http://127.0.0.1:4000";
    assert!(Config::new(sandbox, authorize, "id", "s".into(), "http://127.0.0.1:1", Keys::random()).is_ok());
}

#[tokio::test]
async fn an_in_process_broker_answers_only_to_loopback_names() {
    let sb = Sandbox::start("127.0.0.1:0").await.unwrap();
    let b = broker(&sb, |c| c.require_loopback_host = true).await;
    let port = b.addr().port();
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        assert_eq!(status_with_host(b.addr(), "/healthz", &host).await, 200, "{host}");
    }
    // A web page's own name pointed at 127.0.0.1 (DNS rebinding), or another port: refused.
    for host in [format!("rebind.example:{port}"), format!("127.0.0.1:{}", port.wrapping_add(1)), "localhost".into()] {
        assert_eq!(status_with_host(b.addr(), "/healthz", &host).await, 421, "{host}");
        assert_eq!(status_with_host(b.addr(), "/usps/callback?state=x", &host).await, 421, "{host}");
    }
    // The app and the browser reach it as 127.0.0.1: a whole sign-in works.
    let base = b.base_url();
    let handed = signed_in(&base, &base, VERIFIER).await;
    let (status, tokens) = exchange(&base, &handed["code"], &handed["state"], VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    // The deployed service (the default) answers its public name.
    let deployed = broker(&sb, |_| {}).await;
    assert_eq!(status_with_host(deployed.addr(), "/healthz", "signin.example.com").await, 200);
}
