//! The broker over HTTP in front of a real sandbox: a whole sign-in as the app and a browser make
//! it, a stolen code, two instances, bad input, USPS misbehaving.

mod common;

use std::collections::HashMap;

use secrecy::SecretString;
use serde_json::{json, Value};
use uspslink_broker::config::TrustedProxies;
use uspslink_broker::seal::{challenge_of, Keys};
use uspslink_broker::Broker;
use uspslink_sandbox::usps::CLIENT_ID;
use uspslink_sandbox::Sandbox;

use common::*;

#[tokio::test]
async fn a_whole_sign_in_exchange_refresh_and_revoke() {
    let sb = Sandbox::start("127.0.0.1:0").await.unwrap();
    let b = broker(&sb, |_| {}).await;
    let base = b.base_url();
    let (authorize_url, _) = start(&base, VERIFIER).await;
    let q: HashMap<String, String> = url::Url::parse(&authorize_url).unwrap().query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], CLIENT_ID, "the broker's USPS app, not one the merchant made");
    assert_eq!(q["redirect_uri"], format!("{base}/usps/callback"));
    assert_eq!(q["wf"], "apis_merchant_user");
    let handed = signed_in(&base, &base, VERIFIER).await;
    assert!(handed["code"].len() > 30, "the code is sealed, not USPS's 8 characters: {}", handed["code"]);
    let (status, tokens) = post(
        &base,
        "/v1/usps/token",
        json!({"code": handed["code"], "state": handed["state"], "code_verifier": VERIFIER}),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["access_token"].as_str().unwrap().matches('.').count(), 2);
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    // The same code again: USPS's answer (single use) comes back as USPS gave it.
    let (status, again) = post(
        &base,
        "/v1/usps/token",
        json!({"code": handed["code"], "state": handed["state"], "code_verifier": VERIFIER}),
    )
    .await;
    assert_eq!((status, again["error"].as_str()), (400, Some("invalid_grant")), "{again}");
    let (status, renewed) = post(&base, "/v1/usps/refresh", json!({"refresh_token": refresh})).await;
    assert_eq!(status, 200, "{renewed}");
    assert_ne!(renewed["refresh_token"], tokens["refresh_token"], "rotated");
    // The rotated-out token: USPS's meaning (revoked/expired) is kept, so the app says "reconnect".
    let (status, dead) = post(&base, "/v1/usps/refresh", json!({"refresh_token": refresh})).await;
    assert_eq!((status, dead["error"].as_str()), (400, Some("invalid_refresh_token")), "{dead}");
    let (status, _) =
        post(&base, "/v1/usps/revoke", json!({"token": renewed["refresh_token"], "token_type_hint": "refresh_token"}))
            .await;
    assert_eq!(status, 200);
    let (status, _) = post(&base, "/v1/usps/refresh", json!({"refresh_token": renewed["refresh_token"]})).await;
    assert_eq!(status, 400, "revoked at USPS");
}

#[tokio::test]
async fn a_stolen_code_is_useless_without_the_apps_verifier() {
    let sb = Sandbox::start("127.0.0.1:0").await.unwrap();
    let b = broker(&sb, |_| {}).await;
    let base = b.base_url();
    // Another program caught the uspslink:// redirect: it has the sealed code and the state.
    let stolen = signed_in(&base, &base, VERIFIER).await;
    let wrong = "an-attackers-own-verifier-of-plenty-characters-0123";
    let (status, e) = post(
        &base,
        "/v1/usps/token",
        json!({"code": stolen["code"], "state": stolen["state"], "code_verifier": wrong}),
    )
    .await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(e["error_description"], "the code verifier does not match this sign-in");
    // Its own sign-in (a state for its own verifier) does not take the code either.
    let (_, attackers_state) = start(&base, wrong).await;
    let (status, e) = post(
        &base,
        "/v1/usps/token",
        json!({"code": stolen["code"], "state": attackers_state, "code_verifier": wrong}),
    )
    .await;
    assert_eq!(
        (status, e["error_description"].as_str()),
        (400, Some("the authorization code does not belong to this sign-in"))
    );
    // Nor can it make the callback seal a code for its state: the sealed code does not show USPS's.
    let (status, handed) =
        callback(&format!("{base}/usps/callback?code={}&state={attackers_state}", stolen["code"])).await;
    assert_eq!(status, 200);
    let resealed = handed.unwrap()["code"].clone();
    let (status, _) =
        post(&base, "/v1/usps/token", json!({"code": resealed, "state": attackers_state, "code_verifier": wrong}))
            .await;
    assert_eq!(status, 400, "USPS never issued the sealed text as a code");
    // The app, with its verifier, still links: nothing above reached USPS with the real code.
    let (status, tokens) = post(
        &base,
        "/v1/usps/token",
        json!({"code": stolen["code"], "state": stolen["state"], "code_verifier": VERIFIER}),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
}

/// Without a shared store (tests/redis.rs has one), the code is bound where the callback ran: the
/// exchange goes to that instance. Everything else works on any instance with the key.
#[tokio::test]
async fn two_instances_with_one_key_serve_the_same_sign_in() {
    let sb = Sandbox::start("127.0.0.1:0").await.unwrap();
    let secret = [42u8; 32];
    // Behind one load balancer both have the same public URL; here it is instance A's address.
    let a = Broker::start("127.0.0.1:0", |addr| {
        config(&sb, &format!("http://{addr}"), Keys::from_secret(&secret).unwrap())
    })
    .await
    .unwrap();
    let public = a.base_url();
    let b = Broker::start("127.0.0.1:0", |_| config(&sb, &public, Keys::from_secret(&secret).unwrap())).await.unwrap();
    // Started on A, USPS's redirect served by B, exchanged on B, refreshed on A.
    let handed = signed_in(&a.base_url(), &b.base_url(), VERIFIER).await;
    let (status, tokens) = post(
        &b.base_url(),
        "/v1/usps/token",
        json!({"code": handed["code"], "state": handed["state"], "code_verifier": VERIFIER}),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let (status, _) = post(&a.base_url(), "/v1/usps/refresh", json!({"refresh_token": tokens["refresh_token"]})).await;
    assert_eq!(status, 200);
    // An instance with another key does not accept what A issued.
    let other = broker(&sb, |_| {}).await;
    let handed = signed_in(&a.base_url(), &a.base_url(), VERIFIER).await;
    let (status, e) = post(
        &other.base_url(),
        "/v1/usps/token",
        json!({"code": handed["code"], "state": handed["state"], "code_verifier": VERIFIER}),
    )
    .await;
    assert_eq!(
        (status, e["error_description"].as_str()),
        (400, Some("this sign-in was not started through this sign-in service"))
    );
}

#[tokio::test]
async fn denied_and_forged_callbacks() {
    let sb = Sandbox::start("127.0.0.1:0").await.unwrap();
    let b = broker(&sb, |_| {}).await;
    let base = b.base_url();
    let (authorize_url, state) = start(&base, VERIFIER).await;
    let (status, handed) = callback(&sign_in_at_usps(&authorize_url, "deny").await).await;
    assert_eq!(status, 200);
    let handed = handed.unwrap();
    assert_eq!((handed["error"].as_str(), handed["state"].as_str()), ("access_denied", state.as_str()));
    assert!(!handed.contains_key("code"));
    // Made-up answers are not handed on to the app.
    for forged in [
        "/usps/callback?code=ABCD1234&state=madeUpState0123456789".to_string(),
        "/usps/callback?code=ABCD1234".to_string(),
        format!("/usps/callback?state={state}"),
        format!("/usps/callback?code=ABCD1234&state={}", "A".repeat(5000)),
        "/usps/callback?code=%FF%FE&state=%00".to_string(),
    ] {
        let (status, handed) = callback(&format!("{base}{forged}")).await;
        assert_eq!((status, handed), (400, None), "{forged}");
    }
}

#[tokio::test]
async fn bad_requests_get_clear_oauth_errors() {
    let sb = Sandbox::start("127.0.0.1:0").await.unwrap();
    let b = broker(&sb, |c| c.allowed_origins = vec!["https://vendor.example".into()]).await;
    let base = b.base_url();
    let h = http();
    assert_eq!(h.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    let r = h.get(format!("{base}/nothing")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "not_found");
    let send = |path: &str, body: Vec<u8>| {
        h.post(format!("{base}{path}")).header("content-type", "application/json").body(body).send()
    };
    let r = send("/v1/usps/token", vec![b'{'; 20_000]).await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    let r = send("/v1/usps/token", b"not json".to_vec()).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error_description"], "the request body is not JSON");
    let (status, e) = post(&base, "/v1/usps/token", json!({"code": "x", "state": "y"})).await;
    assert_eq!((status, e["error_description"].as_str()), (400, Some("code_verifier is missing or not text")));
    let (status, e) = post(&base, "/v1/usps/authorize", json!({"code_challenge": "short"})).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_request")));
    let (status, _) = post(
        &base,
        "/v1/usps/authorize",
        json!({"code_challenge": challenge_of(VERIFIER), "code_challenge_method": "plain"}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, e) = post(&base, "/v1/usps/refresh", json!({"refresh_token": "x".repeat(3000)})).await;
    assert_eq!((status, e["error_description"].as_str()), (400, Some("a field is too long")));
    // A web page elsewhere cannot use the API from a user's browser; the allowed origin can.
    let body = json!({"code_challenge": challenge_of(VERIFIER)});
    let r = h
        .post(format!("{base}/v1/usps/authorize"))
        .header("origin", "https://evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = h
        .post(format!("{base}/v1/usps/authorize"))
        .header("origin", "https://vendor.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://vendor.example");
}

#[tokio::test]
async fn each_client_is_rate_limited_on_its_own() {
    let sb = Sandbox::start("127.0.0.1:0").await.unwrap();
    let b = broker(&sb, |c| {
        c.rate_per_minute = 3;
        c.trusted_proxies = TrustedProxies::Hops(1);
    })
    .await;
    let url = format!("{}/v1/usps/refresh", b.base_url());
    let from = |ip: &'static str| {
        http()
            .post(&url)
            .header("x-forwarded-for", format!("198.51.100.9, {ip}"))
            .json(&json!({"refresh_token": "RT-unknown"}))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(from("203.0.113.1").await.unwrap().status(), 400, "USPS's answer: an unknown refresh token");
    }
    let r = from("203.0.113.1").await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "slow_down");
    assert_eq!(from("203.0.113.2").await.unwrap().status(), 400, "another client is not held back");
    // The health check is never limited (load balancers poll it).
    for _ in 0..10 {
        assert_eq!(http().get(format!("{}/healthz", b.base_url())).send().await.unwrap().status(), 200);
    }
}

#[tokio::test]
async fn usps_down_or_refusing_the_broker_is_not_the_users_fault() {
    let sb = Sandbox::start("127.0.0.1:0").await.unwrap();
    // USPS not reachable at all.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let down = broker(&sb, |c| c.usps_api = format!("http://{closed}")).await;
    let (status, e) = post(&down.base_url(), "/v1/usps/refresh", json!({"refresh_token": "RT"})).await;
    assert_eq!((status, e["error"].as_str()), (502, Some("temporarily_unavailable")));
    // The vendor's secret is wrong: the app must not tell the merchant to check credentials.
    let wrong = broker(&sb, |c| c.client_secret = SecretString::from("not-the-secret")).await;
    let (status, e) = post(&wrong.base_url(), "/v1/usps/refresh", json!({"refresh_token": "RT"})).await;
    assert_eq!(
        (status, e["error_description"].as_str()),
        (502, Some("the uspslink sign-in service could not authenticate to USPS"))
    );
    // USPS answering 503.
    let fault = |f: uspslink_sandbox::Fault| sb.inject_fault("/oauth2/v3/token", f, 1);
    fault(uspslink_sandbox::Fault { status: Some(503), ..Default::default() });
    let ok = broker(&sb, |c| c.usps_timeout = std::time::Duration::from_secs(1)).await;
    let (status, e) = post(&ok.base_url(), "/v1/usps/refresh", json!({"refresh_token": "RT"})).await;
    assert_eq!((status, e["error"].as_str()), (503, Some("temporarily_unavailable")));
    // USPS too slow: the broker gives up at its timeout instead of holding the app.
    fault(uspslink_sandbox::Fault { delay_ms: Some(3_000), ..Default::default() });
    let started = std::time::Instant::now();
    let (status, e) = post(&ok.base_url(), "/v1/usps/refresh", json!({"refresh_token": "RT"})).await;
    assert_eq!((status, e["error_description"].as_str()), (504, Some("USPS did not answer in time")));
    assert!(started.elapsed() < std::time::Duration::from_millis(2_500));
}
