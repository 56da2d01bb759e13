//! Everything the broker logs (its own test binary: the log subscriber is process-wide).

mod common;

use std::sync::{Arc, Mutex};

use serde_json::json;
use uspslink_sandbox::usps::CLIENT_SECRET;
use uspslink_sandbox::Sandbox;

use common::*;

/// Everything the broker logs during a sign-in, exchange and refresh: never a code, state, token or
/// the client secret.
#[tokio::test]
async fn no_secret_or_token_reaches_the_log() {
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || writer.clone()).finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let sb = Sandbox::start("127.0.0.1:0").await.unwrap();
    let b = broker(&sb, |_| {}).await;
    let base = b.base_url();
    let handed = signed_in(&base, &base, VERIFIER).await;
    let body = json!({"code": handed["code"], "state": handed["state"], "code_verifier": VERIFIER});
    let (_, tokens) = post(&base, "/v1/usps/token", body).await;
    let (_, renewed) = post(&base, "/v1/usps/refresh", json!({"refresh_token": tokens["refresh_token"]})).await;
    post(
        &base,
        "/v1/usps/token",
        json!({"code": handed["code"], "state": handed["state"], "code_verifier": "x".repeat(50)}),
    )
    .await;
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("POST /v1/usps/token 200"), "the access log is there: {log}");
    for secret in [
        handed["code"].as_str(),
        handed["state"].as_str(),
        VERIFIER,
        CLIENT_SECRET,
        tokens["access_token"].as_str().unwrap(),
        tokens["refresh_token"].as_str().unwrap(),
        renewed["refresh_token"].as_str().unwrap(),
    ] {
        assert!(!log.contains(secret), "{secret} is in the log:\n{log}");
    }
}
