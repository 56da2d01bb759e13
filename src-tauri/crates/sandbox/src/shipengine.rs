//! ShipEngine endpoints (`API-Key` header). Keys: `sandbox_…` is a fresh account of the user's own;
//! `TEST_…` is the public test account (already has carriers; registration refused, as ShipEngine's
//! guide says); anything else is refused with 401.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::{errors, Shared};

#[derive(Default)]
pub(crate) struct Accounts {
    by_key: HashMap<String, Account>,
}

pub(crate) struct Account {
    pub(crate) carriers: Vec<Value>,
}

impl Account {
    fn new(key: &str) -> Self {
        let carriers = if is_test_key(key) {
            vec![
                carrier("se-test-stamps", "stamps_com", "Stamps.com (test account)"),
                carrier("se-test-ups", "ups", "UPS (test account)"),
                carrier("se-test-fedex", "fedex", "FedEx (test account)"),
            ]
        } else {
            Vec::new()
        };
        Account { carriers }
    }
}

fn carrier(id: &str, code: &str, nickname: &str) -> Value {
    json!({
        "carrier_id": id,
        "carrier_code": code,
        "account_number": format!("{id}-acct"),
        "requires_funded_amount": code == "stamps_com",
        "balance": 0.0,
        "nickname": nickname,
        "friendly_name": match code { "stamps_com" => "Stamps.com", "ups" => "UPS", _ => "FedEx" },
        "primary": false,
        "has_multi_package_supporting_services": false,
        "supports_label_messages": false,
        "disabled_by_billing_plan": false,
        "services": [], "packages": [], "options": [],
    })
}

pub(crate) fn is_test_key(key: &str) -> bool {
    key.starts_with("TEST_")
}

fn key_is_valid(key: &str) -> bool {
    let rest = key.strip_prefix("TEST_").or_else(|| key.strip_prefix("sandbox_"));
    rest.is_some_and(|r| r.len() >= 4 && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// The caller's API key, or the 401 ShipEngine sends.
pub(crate) fn authenticate(state: &Shared, headers: &HeaderMap) -> Result<String, Response> {
    let key = headers.get("api-key").and_then(|v| v.to_str().ok()).unwrap_or("");
    if key_is_valid(key) {
        return Ok(key.to_string());
    }
    let message = if key.is_empty() {
        "The request is missing the API-Key header."
    } else {
        "The API key is invalid. Please see https://www.shipengine.com/docs/auth"
    };
    Err(errors::shipengine(state, StatusCode::UNAUTHORIZED, "security", "unauthorized", message, None))
}

async fn list_carriers(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let key = match authenticate(&state, &headers) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let mut s = state.lock().expect("sandbox state");
    let request_id = s.next_request_id();
    let account = s.shipengine.by_key.entry(key.clone()).or_insert_with(|| Account::new(&key));
    (StatusCode::OK, Json(json!({"carriers": account.carriers, "request_id": request_id, "errors": []}))).into_response()
}

pub(crate) fn routes() -> Router<Shared> {
    Router::new().route("/v1/carriers", get(list_carriers))
}

#[cfg(test)]
mod tests {
    use crate::testutil::start;

    #[tokio::test]
    async fn carriers_need_a_valid_key() {
        let (sb, http) = start().await;
        let url = format!("{}/v1/carriers", sb.base_url());
        for (key, status) in [(None, 401), (Some("nope"), 401), (Some("sandbox_"), 401), (Some("sandbox_abcd"), 200)] {
            let mut req = http.get(&url);
            if let Some(k) = key {
                req = req.header("API-Key", k);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), status, "{key:?}");
            let body: serde_json::Value = r.json().await.unwrap();
            if status == 401 {
                let e = &body["errors"][0];
                assert_eq!((e["error_source"].as_str(), e["error_type"].as_str(), e["error_code"].as_str()),
                    (Some("shipengine"), Some("security"), Some("unauthorized")));
                assert!(e["message"].as_str().unwrap().len() > 10);
            } else {
                assert_eq!(body["carriers"], serde_json::json!([]));
            }
        }
    }

    #[tokio::test]
    async fn test_account_already_has_carriers() {
        let (sb, http) = start().await;
        let r = http.get(format!("{}/v1/carriers", sb.base_url())).header("API-Key", "TEST_publickey").send().await.unwrap();
        let body: serde_json::Value = r.json().await.unwrap();
        let codes: Vec<&str> = body["carriers"].as_array().unwrap().iter().map(|c| c["carrier_code"].as_str().unwrap()).collect();
        assert_eq!(codes, ["stamps_com", "ups", "fedex"]);
    }
}
