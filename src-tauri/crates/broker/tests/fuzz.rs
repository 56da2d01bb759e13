//! Whatever a browser or a client sends (any Unicode in any parameter or field), the broker answers
//! with a page or an OAuth error: never a panic, never a 5xx of its own, never a code handed on or a
//! token exchanged for input it did not issue.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use secrecy::SecretString;
use tower::ServiceExt;
use uspslink_broker::seal::Keys;
use uspslink_broker::{router, Config};

/// One router for every case (building one loads TLS roots for its USPS client: slow).
fn app() -> axum::Router {
    static APP: std::sync::OnceLock<axum::Router> = std::sync::OnceLock::new();
    APP.get_or_init(|| {
        // USPS is never reached for input the broker did not issue; a closed port proves it (a call
        // would answer 502).
        let config = Config::new(
            "http://127.0.0.1:9",
            "http://127.0.0.1:9/cop-navigator",
            "fuzz-client",
            SecretString::from("fuzz-secret"),
            "https://signin.example.com",
            Keys::random(),
        )
        .unwrap();
        router(config)
    })
    .clone()
}

fn send(app: axum::Router, req: Request<Body>) -> (StatusCode, String) {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    let rt =
        RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap());
    rt.block_on(async move {
        let r = app.oneshot(req).await.unwrap();
        let status = r.status();
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn any_callback_query(code in "\\PC*", state in "\\PC*", error in "\\PC*", description in "\\PC*", with_error in any::<bool>()) {
        let mut params = vec![("code", code.as_str()), ("state", state.as_str())];
        if with_error {
            params.push(("error", error.as_str()));
            params.push(("error_description", description.as_str()));
        }
        let query = serde_urlencoded::to_string(&params).unwrap();
        let req = Request::get(format!("/usps/callback?{query}")).body(Body::empty()).unwrap();
        let (status, page) = send(app(), req);
        prop_assert_eq!(status, StatusCode::BAD_REQUEST, "a state it never issued is refused");
        prop_assert!(!page.contains("open-app"), "nothing is handed on to the app");
    }

    #[test]
    fn any_raw_query(raw in "[ -~]{0,300}") {
        let uri = format!("/usps/callback?{}", raw.replace(' ', "%20").replace('#', "%23"));
        if let Ok(req) = Request::get(uri).body(Body::empty()) {
            let (status, _) = send(app(), req);
            prop_assert_eq!(status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn any_token_request(code in "\\PC*", state in "\\PC*", verifier in "\\PC*", junk in proptest::collection::vec(any::<u8>(), 0..200)) {
        let body = serde_json::json!({"code": code, "state": state, "code_verifier": verifier}).to_string();
        for b in [body.into_bytes(), junk.clone()] {
            let req = Request::post("/v1/usps/token").header("content-type", "application/json").body(Body::from(b)).unwrap();
            let (status, answer) = send(app(), req);
            prop_assert_eq!(status, StatusCode::BAD_REQUEST, "{}", answer);
            let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
            prop_assert!(v["error"].as_str().is_some());
        }
    }

    #[test]
    fn any_authorize_request(challenge in "\\PC*", method in "\\PC*") {
        let body = serde_json::json!({"code_challenge": challenge, "code_challenge_method": method}).to_string();
        let req = Request::post("/v1/usps/authorize").header("content-type", "application/json").body(Body::from(body)).unwrap();
        let (status, answer) = send(app(), req);
        prop_assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST, "{} {}", status, answer);
        if status == StatusCode::OK {
            prop_assert!(method == "S256" && challenge.len() == 43);
        }
    }
}
