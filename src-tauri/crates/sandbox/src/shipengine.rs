//! ShipEngine endpoints (`API-Key` header). Keys: `sandbox_…` is a fresh account of the user's own;
//! `TEST_…` is the public test account (already has carriers; registration refused, as ShipEngine's
//! guide says); anything else is refused with 401.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::{errors, Shared};

#[derive(Default)]
pub(crate) struct Accounts {
    pub(crate) by_key: HashMap<String, Account>,
}

pub(crate) struct Account {
    pub(crate) carriers: Vec<Value>,
}

/// An SMS verification in progress.
struct Verification {
    carrier_id: String,
    phone: String,
    code: String,
    sent_at: Duration,
    wrong_attempts: u32,
    verified: bool,
}

/// Registrations, verifications and the fake phone inbox (phone -> last code sent).
#[derive(Default)]
pub(crate) struct Stamps {
    verifications: HashMap<String, Verification>,
    inbox: HashMap<String, (String, Duration)>,
    counter: u64,
}

const CODE_TTL: Duration = Duration::from_secs(10 * 60);
const MAX_WRONG_CODES: u32 = 5;

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
    (StatusCode::OK, Json(json!({"carriers": account.carriers, "request_id": request_id, "errors": []})))
        .into_response()
}

fn field_error(state: &Shared, field: &str, code: &str, message: &str) -> Response {
    errors::shipengine(state, StatusCode::BAD_REQUEST, "validation", code, message, Some(field))
}

fn luhn_ok(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.chars().rev().enumerate() {
        let Some(mut d) = c.to_digit(10) else { return false };
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    digits.len() >= 12 && sum % 10 == 0
}

/// Checks every field of the registration body; the first problem becomes a 400 naming the field.
fn check_registration(body: &Value) -> Result<(), (String, &'static str, String)> {
    let missing = |f: &str| (f.to_string(), "field_value_required", format!("{f} is required."));
    let text = |path: &str| -> Option<&str> {
        let mut v = body;
        for part in path.split('.') {
            v = v.get(part)?;
        }
        v.as_str().filter(|s| !s.trim().is_empty())
    };
    for f in [
        "nickname",
        "email",
        "address.name",
        "address.phone",
        "address.address_line1",
        "address.city_locality",
        "address.state_province",
        "address.postal_code",
        "address.country_code",
        "address.address_residential_indicator",
        "credit_card.name",
        "credit_card.number",
        "credit_card.type",
        "credit_card.expiration_year",
        "credit_card.expiration_month",
    ] {
        if text(f).is_none() {
            return Err(missing(f));
        }
    }
    if body.get("agree_to_carrier_terms").and_then(Value::as_bool) != Some(true) {
        return Err((
            "agree_to_carrier_terms".into(),
            "terms_not_accepted",
            "You must agree to the carrier terms.".into(),
        ));
    }
    let invalid = |f: &str, m: &str| (f.to_string(), "invalid_field_value", m.to_string());
    if !text("email").is_some_and(|e| e.contains('@') && e.rsplit('@').next().is_some_and(|d| d.contains('.'))) {
        return Err(invalid("email", "email is not a valid e-mail address."));
    }
    let zip = text("address.postal_code").unwrap_or("");
    if !(zip.len() == 5 || (zip.len() == 10 && zip.as_bytes()[5] == b'-'))
        || !zip.replace('-', "").chars().all(|c| c.is_ascii_digit())
    {
        return Err(invalid("address.postal_code", "postal_code must be a 5-digit ZIP or ZIP+4."));
    }
    if text("address.country_code") != Some("US") {
        return Err(invalid("address.country_code", "Stamps.com accounts can only be registered with a US address."));
    }
    if !matches!(text("address.address_residential_indicator"), Some("yes" | "no" | "unknown")) {
        return Err(invalid(
            "address.address_residential_indicator",
            "address_residential_indicator must be yes, no or unknown.",
        ));
    }
    let phone_digits = text("address.phone").unwrap_or("").chars().filter(char::is_ascii_digit).count();
    if !(10..=11).contains(&phone_digits) {
        return Err(invalid("address.phone", "phone must be a 10-digit US phone number."));
    }
    if !luhn_ok(text("credit_card.number").unwrap_or("")) {
        return Err(invalid("credit_card.number", "The credit card number is invalid."));
    }
    if !matches!(text("credit_card.type"), Some("Visa" | "MasterCard" | "AmericanExpress" | "Discover")) {
        return Err(invalid(
            "credit_card.type",
            "credit_card.type must be Visa, MasterCard, AmericanExpress or Discover.",
        ));
    }
    let month: u32 = text("credit_card.expiration_month").and_then(|m| m.parse().ok()).unwrap_or(0);
    let year: u32 = text("credit_card.expiration_year").and_then(|y| y.parse().ok()).unwrap_or(0);
    if !(1..=12).contains(&month) || !(2000..=2100).contains(&year) {
        return Err(invalid("credit_card.expiration_month", "The card's expiration date is invalid."));
    }
    Ok(())
}

async fn register_stamps(State(state): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let key = match authenticate(&state, &headers) {
        Ok(k) => k,
        Err(r) => return r,
    };
    if is_test_key(&key) {
        return errors::shipengine(
            &state,
            StatusCode::BAD_REQUEST,
            "business_rules",
            "unspecified",
            "You cannot link your accounts to the public test account, you'll need to use your own API key.",
            None,
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return errors::shipengine(
            &state,
            StatusCode::BAD_REQUEST,
            "validation",
            "invalid_field_value",
            "The request body is not valid JSON.",
            None,
        );
    };
    if let Err((field, code, message)) = check_registration(&body) {
        return field_error(&state, &field, code, &message);
    }
    let mut s = state.lock().expect("sandbox state");
    s.stamps.counter += 1;
    let carrier_id = format!("se-{}", 100_000 + s.stamps.counter);
    let account = s.shipengine.by_key.entry(key.clone()).or_insert_with(|| Account::new(&key));
    if account.carriers.iter().any(|c| c["carrier_code"] == "stamps_com") {
        drop(s);
        return errors::shipengine(
            &state,
            StatusCode::BAD_REQUEST,
            "business_rules",
            "unspecified",
            "A Stamps.com account is already connected to this account.",
            None,
        );
    }
    let nickname = body["nickname"].as_str().unwrap_or("Stamps.com").to_string();
    account.carriers.push(carrier(&carrier_id, "stamps_com", &nickname));
    (StatusCode::OK, Json(json!({"carrier_id": carrier_id}))).into_response()
}

pub(crate) fn owns_carrier(state: &Shared, key: &str, carrier_id: &str) -> bool {
    let s = state.lock().expect("sandbox state");
    s.shipengine
        .by_key
        .get(key)
        .is_some_and(|a| a.carriers.iter().any(|c| c["carrier_id"] == carrier_id && c["carrier_code"] == "stamps_com"))
}

/// The caller's key, when it is valid and owns the Stamps.com carrier; otherwise the 401 or 404.
fn authenticate_for_carrier(state: &Shared, headers: &HeaderMap, carrier_id: &str) -> Result<String, Response> {
    let key = authenticate(state, headers)?;
    if !owns_carrier(state, &key, carrier_id) {
        return Err(errors::shipengine(
            state,
            StatusCode::NOT_FOUND,
            "business_rules",
            "carrier_not_found",
            "The carrier was not found.",
            Some("carrier_id"),
        ));
    }
    Ok(key)
}

async fn start_verification(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(carrier_id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = authenticate_for_carrier(&state, &headers, &carrier_id) {
        return r;
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let phone: String = body["phone"].as_str().unwrap_or("").chars().filter(char::is_ascii_digit).collect();
    if phone.len() != 10 {
        return field_error(&state, "phone", "invalid_field_value", "phone must be a 10-digit US phone number.");
    }
    if body["verification_type"].as_str() != Some("sms") {
        return field_error(&state, "verification_type", "invalid_field_value", "Only sms verification is supported.");
    }
    let mut s = state.lock().expect("sandbox state");
    let now = s.now();
    s.stamps.counter += 1;
    let n = s.stamps.counter;
    let id = format!("vfn_{n:08}");
    let code = format!("{:06}", (n * 7_919 + 424_242) % 1_000_000);
    s.stamps.inbox.insert(phone.clone(), (code.clone(), now));
    s.stamps.verifications.insert(
        id.clone(),
        Verification { carrier_id, phone: phone.clone(), code, sent_at: now, wrong_attempts: 0, verified: false },
    );
    Json(json!({"phone": phone, "verification_id": id, "verification_method": "sms", "status": "unverified"}))
        .into_response()
}

async fn submit_verification(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((carrier_id, verification_id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = authenticate_for_carrier(&state, &headers, &carrier_id) {
        return r;
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let code = body["verification_code"].as_str().unwrap_or("").trim().to_string();
    let mut s = state.lock().expect("sandbox state");
    let now = s.now();
    let Some(v) = s.stamps.verifications.get_mut(&verification_id).filter(|v| v.carrier_id == carrier_id) else {
        drop(s);
        return errors::shipengine(
            &state,
            StatusCode::NOT_FOUND,
            "business_rules",
            "unspecified",
            "The verification was not found.",
            Some("verification_id"),
        );
    };
    let phone = v.phone.clone();
    let reply = |status: &str| {
        Json(
            json!({"phone": phone, "verification_id": verification_id, "verification_method": "sms", "status": status}),
        )
        .into_response()
    };
    if v.verified {
        return reply("verified");
    }
    let problem = if v.wrong_attempts >= MAX_WRONG_CODES {
        Some(("verification_code", "Too many incorrect codes. Request a new code."))
    } else if now.saturating_sub(v.sent_at) > CODE_TTL {
        Some(("verification_code", "The verification code has expired. Request a new code."))
    } else if code != v.code {
        v.wrong_attempts += 1;
        Some(("verification_code", "The verification code is incorrect."))
    } else {
        None
    };
    if let Some((field, message)) = problem {
        drop(s);
        return field_error(&state, field, "invalid_field_value", message);
    }
    v.verified = true;
    reply("verified")
}

async fn disconnect_stamps(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(carrier_id): Path<String>,
) -> Response {
    let key = match authenticate_for_carrier(&state, &headers, &carrier_id) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let mut s = state.lock().expect("sandbox state");
    if let Some(a) = s.shipengine.by_key.get_mut(&key) {
        a.carriers.retain(|c| c["carrier_id"] != carrier_id);
    }
    StatusCode::NO_CONTENT.into_response()
}

/// Sandbox-only: the last SMS code sent to a phone (the fake phone inbox).
async fn phone_inbox(State(state): State<Shared>, Path(phone): Path<String>) -> Response {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let s = state.lock().expect("sandbox state");
    match s.stamps.inbox.get(&digits) {
        Some((code, _)) => Json(json!({"phone": digits, "code": code})).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({"phone": digits, "code": null}))).into_response(),
    }
}

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/v1/carriers", get(list_carriers))
        .route("/v1/registration/stamps_com", post(register_stamps))
        .route("/v1/connections/carriers/stamps_com/{carrier_id}", delete(disconnect_stamps))
        .route("/v1/connections/carriers/stamps_com/{carrier_id}/verification", post(start_verification))
        .route(
            "/v1/connections/carriers/stamps_com/{carrier_id}/verification/{verification_id}",
            put(submit_verification),
        )
}

pub(crate) fn helper_routes() -> Router<Shared> {
    Router::new().route("/sandbox/phone-inbox/{phone}", get(phone_inbox))
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
                assert_eq!(
                    (e["error_source"].as_str(), e["error_type"].as_str(), e["error_code"].as_str()),
                    (Some("shipengine"), Some("security"), Some("unauthorized"))
                );
                assert!(e["message"].as_str().unwrap().len() > 10);
            } else {
                assert_eq!(body["carriers"], serde_json::json!([]));
            }
        }
    }

    #[tokio::test]
    async fn test_account_already_has_carriers() {
        let (sb, http) = start().await;
        let r = http
            .get(format!("{}/v1/carriers", sb.base_url()))
            .header("API-Key", "TEST_publickey")
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = r.json().await.unwrap();
        let codes: Vec<&str> =
            body["carriers"].as_array().unwrap().iter().map(|c| c["carrier_code"].as_str().unwrap()).collect();
        assert_eq!(codes, ["stamps_com", "ups", "fedex"]);
    }

    fn registration() -> serde_json::Value {
        serde_json::json!({
            "nickname": "My Stamps.com account", "email": "john.doe@example.com", "agree_to_carrier_terms": true,
            "address": {"name": "John Doe", "phone": "111-111-1111", "company_name": "Example Corp.",
                        "address_line1": "4009 Marathon Blvd", "address_line2": "Suite 300", "city_locality": "Austin",
                        "state_province": "TX", "postal_code": "78756", "country_code": "US",
                        "address_residential_indicator": "no"},
            "credit_card": {"name": "my credit card", "number": "4111111111111111", "type": "Visa",
                            "expiration_year": "2030", "expiration_month": "07"}
        })
    }

    async fn post(
        http: &reqwest::Client,
        url: String,
        key: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let r = http.post(url).header("API-Key", key).json(body).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(serde_json::Value::Null))
    }

    #[tokio::test]
    async fn registration_validates_every_field_and_refuses_test_keys() {
        let (sb, http) = start().await;
        let url = format!("{}/v1/registration/stamps_com", sb.base_url());
        let (status, body) = post(&http, url.clone(), "TEST_publickey", &registration()).await;
        assert_eq!(status, 400);
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("public test account"));
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            ("address", serde_json::json!({"address": {"phone": null}}), "address.phone"),
            ("email", serde_json::json!({"email": "nope"}), "email"),
            ("terms", serde_json::json!({"agree_to_carrier_terms": false}), "agree_to_carrier_terms"),
            ("card", serde_json::json!({"credit_card": {"number": "4111111111111112"}}), "credit_card.number"),
            ("zip", serde_json::json!({"address": {"postal_code": "7875"}}), "address.postal_code"),
        ];
        for (what, patch, field) in cases {
            let mut body = registration();
            for (k, v) in patch.as_object().unwrap() {
                match v {
                    serde_json::Value::Object(inner) => {
                        for (ik, iv) in inner {
                            body[k][ik] = iv.clone();
                        }
                    }
                    other => body[k] = other.clone(),
                }
            }
            let (status, e) = post(&http, url.clone(), "sandbox_mine", &body).await;
            assert_eq!(status, 400, "{what}");
            assert_eq!(e["errors"][0]["field_name"], field, "{what}: {e}");
        }
        // Optional fields may be left out.
        let mut body = registration();
        body["address"].as_object_mut().unwrap().remove("address_line2");
        body["address"].as_object_mut().unwrap().remove("company_name");
        let (status, ok) = post(&http, url.clone(), "sandbox_mine", &body).await;
        assert_eq!(status, 200, "{ok}");
        assert!(ok["carrier_id"].as_str().unwrap().starts_with("se-"));
        // The carrier now exists; a second registration is refused.
        let (status, _) = post(&http, url, "sandbox_mine", &registration()).await;
        assert_eq!(status, 400);
        let r =
            http.get(format!("{}/v1/carriers", sb.base_url())).header("API-Key", "sandbox_mine").send().await.unwrap();
        let carriers: serde_json::Value = r.json().await.unwrap();
        assert_eq!(carriers["carriers"][0]["carrier_code"], "stamps_com");
    }

    #[tokio::test]
    async fn sms_verification_inbox_wrong_codes_lockout_and_expiry() {
        let (sb, http) = start().await;
        let base = sb.base_url();
        let (_, reg) = post(&http, format!("{base}/v1/registration/stamps_com"), "sandbox_mine", &registration()).await;
        let carrier = reg["carrier_id"].as_str().unwrap().to_string();
        let vurl = format!("{base}/v1/connections/carriers/stamps_com/{carrier}/verification");
        let (status, v) = post(
            &http,
            vurl.clone(),
            "sandbox_mine",
            &serde_json::json!({"phone": "5121112222", "verification_type": "sms"}),
        )
        .await;
        assert_eq!((status, v["status"].as_str()), (200, Some("unverified")));
        let id = v["verification_id"].as_str().unwrap().to_string();
        let inbox: serde_json::Value =
            http.get(format!("{base}/sandbox/phone-inbox/5121112222")).send().await.unwrap().json().await.unwrap();
        let code = inbox["code"].as_str().unwrap().to_string();
        assert_eq!(code.len(), 6);
        let put = |c: String| {
            let http = http.clone();
            let url = format!("{vurl}/{id}");
            async move {
                let r = http
                    .put(url)
                    .header("API-Key", "sandbox_mine")
                    .json(&serde_json::json!({"verification_code": c}))
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap())
            }
        };
        let (status, e) = put("000000".into()).await;
        assert_eq!((status, e["errors"][0]["field_name"].as_str()), (400, Some("verification_code")));
        let (status, ok) = put(code.clone()).await;
        assert_eq!((status, ok["status"].as_str()), (200, Some("verified")));

        // A second verification: five wrong codes lock it, even against the right one.
        let (_, v2) = post(
            &http,
            vurl.clone(),
            "sandbox_mine",
            &serde_json::json!({"phone": "5121112222", "verification_type": "sms"}),
        )
        .await;
        let id2 = v2["verification_id"].as_str().unwrap().to_string();
        let code2: serde_json::Value =
            http.get(format!("{base}/sandbox/phone-inbox/5121112222")).send().await.unwrap().json().await.unwrap();
        for _ in 0..5 {
            http.put(format!("{vurl}/{id2}"))
                .header("API-Key", "sandbox_mine")
                .json(&serde_json::json!({"verification_code": "999999"}))
                .send()
                .await
                .unwrap();
        }
        let r = http
            .put(format!("{vurl}/{id2}"))
            .header("API-Key", "sandbox_mine")
            .json(&serde_json::json!({"verification_code": code2["code"]}))
            .send()
            .await
            .unwrap();
        let e: serde_json::Value = r.json().await.unwrap();
        assert!(e["errors"][0]["message"].as_str().unwrap().contains("Too many"));

        // A third: the code expires after ten minutes.
        let (_, v3) = post(
            &http,
            vurl.clone(),
            "sandbox_mine",
            &serde_json::json!({"phone": "5121112222", "verification_type": "sms"}),
        )
        .await;
        let id3 = v3["verification_id"].as_str().unwrap().to_string();
        let code3: serde_json::Value =
            http.get(format!("{base}/sandbox/phone-inbox/5121112222")).send().await.unwrap().json().await.unwrap();
        http.post(format!("{base}/sandbox/clock"))
            .json(&serde_json::json!({"advance_secs": 601}))
            .send()
            .await
            .unwrap();
        let r = http
            .put(format!("{vurl}/{id3}"))
            .header("API-Key", "sandbox_mine")
            .json(&serde_json::json!({"verification_code": code3["code"]}))
            .send()
            .await
            .unwrap();
        let e: serde_json::Value = r.json().await.unwrap();
        assert!(e["errors"][0]["message"].as_str().unwrap().contains("expired"));

        // Somebody else's carrier is not found; delete works for the owner.
        let (status, _) = post(
            &http,
            vurl.clone(),
            "sandbox_other",
            &serde_json::json!({"phone": "5121112222", "verification_type": "sms"}),
        )
        .await;
        assert_eq!(status, 404);
        let r = http
            .delete(format!("{base}/v1/connections/carriers/stamps_com/{carrier}"))
            .header("API-Key", "sandbox_mine")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
}
