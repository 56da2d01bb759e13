//! Instances sharing one real Redis (`redis-server` on a loopback port of each test's own): a
//! sign-in started on one instance and finished on another, the re-seal attack across instances,
//! limits that hold for the whole service, and Redis going away in the middle of a sign-in.
//! Without `redis-server` on PATH these tests fail, saying so.
//!
//! Unix only: the sign-in service's fleet runs on Linux next to a Linux Redis; built for Windows
//! (under Wine in the test command) there is no `redis-server` to start, and the shared store's
//! code is the same on every platform.
#![cfg(unix)]

mod common;

use std::time::{Duration, Instant};

use serde_json::json;
use uspslink_broker::config::TrustedProxies;
use uspslink_broker::seal::{challenge_of, Keys};
use uspslink_sandbox::Sandbox;

use common::*;

const ATTACKER: &str = "the-attackers-own-verifier-0123456789-abcdefghij";

#[tokio::test]
async fn instances_sharing_redis_finish_each_others_sign_ins_and_refuse_a_reseal_across_them() {
    let redis = RedisServer::start();
    let sb = sandbox_like_usps().await;
    let secret = [31u8; 32];
    let keys = || Keys::from_secret(&secret).unwrap();
    let a = instance(&sb, keys(), None, |c| c.redis_url = Some(redis.url())).await;
    let b = instance(&sb, keys(), Some(&a.base_url()), |c| c.redis_url = Some(redis.url())).await;
    // Started on A, USPS's redirect served by B, exchanged on A.
    let handed = signed_in(&a.base_url(), &b.base_url(), VERIFIER).await;
    let (status, tokens) = exchange(&a.base_url(), &handed["code"], &handed["state"], VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");

    // The user's next sign-in: its callback runs on B.
    let (authorize_url, _) = start(&a.base_url(), VERIFIER).await;
    let at_callback = sign_in_at_usps(&authorize_url, "authorize").await;
    let (raw, state) = code_and_state(&at_callback);
    let (status, handed) = callback(&at_callback.replacen(&a.base_url(), &b.base_url(), 1)).await;
    assert_eq!(status, 200);
    let handed = handed.expect("handed on to the app");
    // Whoever saw the raw code tries it on A with a sign-in of their own started on B: refused.
    let (_, attackers_state) = start(&b.base_url(), ATTACKER).await;
    let resealed = format!("{}/usps/callback?code={raw}&state={attackers_state}", a.base_url());
    assert_eq!(callback(&resealed).await, (400, None));
    let calls = sb.oauth_calls();
    let sealed = keys().seal_code(&raw, &attackers_state);
    for at in [&a, &b] {
        let (status, e) = exchange(&at.base_url(), &sealed, &attackers_state, ATTACKER).await;
        assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")), "{e}");
    }
    assert_eq!(sb.oauth_calls(), calls, "USPS was not called");
    let (status, tokens) = exchange(&a.base_url(), &handed["code"], &state, VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");

    // Everything the broker keeps is under its prefix, and neither a code nor a state is in it.
    let keys_in_redis = redis.keys();
    assert!(!keys_in_redis.is_empty());
    for key in &keys_in_redis {
        assert!(key.starts_with("uspslink-broker:"), "{key}");
        assert!(!key.contains(&raw) && !key.contains(&state), "{key}");
    }
    let stored = redis.command(&format!("GET uspslink-broker:code:{}", sha256_hex(&raw))).expect("an answer");
    assert!(stored.contains(&sha256_hex(&state)), "the binding is to the state's fingerprint: {stored}");
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn limits_hold_for_the_whole_service() {
    let redis = RedisServer::start();
    let sb = Sandbox::start("127.0.0.1:0").await.unwrap();
    let tweak = |c: &mut uspslink_broker::Config| {
        c.redis_url = Some(redis.url());
        c.rate_per_minute = 2;
        c.usps_calls_per_minute = 3;
        c.trusted_proxies = TrustedProxies::Hops(1);
    };
    let secret = [32u8; 32];
    let a = instance(&sb, Keys::from_secret(&secret).unwrap(), None, tweak).await;
    let b = instance(&sb, Keys::from_secret(&secret).unwrap(), Some(&a.base_url()), tweak).await;
    let body = json!({"code_challenge": challenge_of(VERIFIER)});
    let authorize = |at: &uspslink_broker::Broker, client: &'static str| {
        let sent = http().post(format!("{}/v1/usps/authorize", at.base_url())).header("x-forwarded-for", client);
        let sent = sent.json(&body).send();
        async move { sent.await.unwrap() }
    };
    assert_eq!(authorize(&a, "198.51.100.7").await.status(), 200);
    assert_eq!(authorize(&b, "198.51.100.7").await.status(), 200);
    let r = authorize(&a, "198.51.100.7").await;
    assert_eq!(r.status(), 429, "two a minute for the client, whichever instance it reaches");
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(authorize(&b, "198.51.100.8").await.status(), 200, "another client");
    // Three calls to USPS a minute for the whole service; the fourth is not made.
    let refresh = |at: &uspslink_broker::Broker, client: &'static str| {
        let url = format!("{}/v1/usps/refresh", at.base_url());
        let sent = http().post(url).header("x-forwarded-for", client).json(&json!({"refresh_token": "RT0001abc"}));
        let sent = sent.send();
        async move { sent.await.unwrap() }
    };
    for (at, client) in [(&a, "198.51.100.10"), (&b, "198.51.100.11"), (&a, "198.51.100.12")] {
        assert_eq!(refresh(at, client).await.status(), 400, "USPS's answer: an unknown refresh token");
    }
    let calls = sb.oauth_calls();
    let r = refresh(&b, "198.51.100.13").await;
    assert_eq!(r.status(), 503);
    assert!(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"], "temporarily_unavailable");
    assert_eq!(sb.oauth_calls(), calls, "USPS was not called past the cap");
}

#[tokio::test]
async fn with_redis_gone_nothing_is_done_unbound_and_it_recovers() {
    let mut redis = RedisServer::start();
    let sb = sandbox_like_usps().await;
    let secret = [33u8; 32];
    let url = redis.url();
    let b = instance(&sb, Keys::from_secret(&secret).unwrap(), None, |c| c.redis_url = Some(url)).await;
    let base = b.base_url();
    let (authorize_url, state) = start(&base, VERIFIER).await;
    let at_callback = sign_in_at_usps(&authorize_url, "authorize").await;
    let (raw, _) = code_and_state(&at_callback);
    let port = redis.port;
    redis.stop();
    let calls = sb.oauth_calls();
    // The callback cannot bind the code: nothing is handed on.
    assert_eq!(callback(&at_callback).await, (503, None));
    // A new sign-in is refused rather than started unbound.
    let (status, e) = post(&base, "/v1/usps/authorize", json!({"code_challenge": challenge_of(VERIFIER)})).await;
    assert_eq!((status, e["error"].as_str()), (503, Some("temporarily_unavailable")), "{e}");
    // An exchange (a code sealed for this state, as if the callback had run) is refused, not made
    // unbound.
    let sealed = Keys::from_secret(&secret).unwrap().seal_code(&raw, &state);
    let (status, e) = exchange(&base, &sealed, &state, VERIFIER).await;
    assert_eq!((status, e["error"].as_str()), (503, Some("temporarily_unavailable")), "{e}");
    assert_eq!(sb.oauth_calls(), calls, "nothing reached USPS");
    // Linked users keep refreshing (counted in this process meanwhile): USPS's own answer.
    let (status, e) = post(&base, "/v1/usps/refresh", json!({"refresh_token": "RT0001abcdef"})).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")), "{e}");

    // Redis back (empty, as after a restart): the same callback binds and the sign-in finishes.
    let _redis = RedisServer::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(15);
    let handed = loop {
        match callback(&at_callback).await {
            (200, Some(handed)) => break handed,
            other => assert!(Instant::now() < deadline, "still refused after Redis came back: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (status, tokens) = exchange(&base, &handed["code"], &handed["state"], VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
}
