//! The sandbox's price list, one table for both sides: USPS's Domestic Prices v3 answers RETAIL,
//! COMMERCIAL and CONTRACT from it, and ShipEngine's `POST /v1/rates/estimate` quotes a Stamps.com
//! carrier from it: the COMMERCIAL (published) price until the platform applies the approved
//! contract (`POST /sandbox/shipengine/apply-contract {"carrier_id": …}`), the CONTRACT price from
//! then on. So the app's "does Stamps.com price at the NSA rates" has both answers to find.
//!
//! Prices are made up but ordered as USPS's are: contract < commercial < retail, more for more
//! weight and a farther zone.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{errors, Shared};

/// Which of the three prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Retail,
    Commercial,
    Contract,
}

/// The zone between two ZIP Codes, 1 to 8, from their three-digit prefixes (a stand-in for USPS's
/// zone chart).
pub fn zone(from_zip: &str, to_zip: &str) -> u32 {
    let prefix = |z: &str| z.get(..3).and_then(|p| p.parse::<i64>().ok()).unwrap_or(0);
    1 + ((prefix(from_zip) - prefix(to_zip)).unsigned_abs() / 25).min(7) as u32
}

/// The price in cents, or None for a mail class the sandbox does not price.
pub fn cents(mail_class: &str, weight_lb: f64, zone: u32, tier: Tier) -> Option<u32> {
    let pounds = weight_lb.max(0.0).ceil().max(1.0) as u32;
    let retail = match mail_class {
        "PRIORITY_MAIL" => 985 + (zone - 1) * 120 + (pounds - 1) * 150,
        "USPS_GROUND_ADVANTAGE" => {
            // Ground Advantage is priced by the ounce up to a pound.
            let ounces_step = if weight_lb <= 0.25 {
                0
            } else if weight_lb <= 0.5 {
                60
            } else {
                140
            };
            560 + ounces_step + (zone - 1) * 45 + (pounds - 1) * 110
        }
        _ => return None,
    };
    Some(match tier {
        Tier::Retail => retail,
        Tier::Commercial => retail * 88 / 100,
        Tier::Contract => retail * 75 / 100,
    })
}

/// A Priority Mail flat-rate envelope, whatever it holds.
const FLAT_RATE_ENVELOPE_CENTS: u32 = 1015;

/// ShipEngine's service code for a USPS mail class.
fn service_code(mail_class: &str) -> &'static str {
    match mail_class {
        "PRIORITY_MAIL" => "usps_priority_mail",
        _ => "usps_ground_advantage",
    }
}

fn money(c: u32) -> Value {
    json!({"currency": "usd", "amount": f64::from(c) / 100.0})
}

/// `POST /v1/rates/estimate` for a Stamps.com carrier of the caller's: a rate per service the sandbox
/// prices, at the published price until the platform applies the contract.
async fn estimate(State(state): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let key = match crate::shipengine::authenticate(&state, &headers) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let bad = |field: &str, message: &str| {
        errors::shipengine(&state, StatusCode::BAD_REQUEST, "validation", "invalid_field_value", message, Some(field))
    };
    let Ok(q) = serde_json::from_slice::<Value>(&body) else {
        return bad("body", "The request body is not valid JSON.");
    };
    let carrier_id = q["carrier_id"].as_str().unwrap_or("").to_string();
    if carrier_id.is_empty() {
        return bad("carrier_id", "carrier_id is required.");
    }
    if !crate::shipengine::owns_carrier(&state, &key, &carrier_id) {
        return errors::shipengine(
            &state,
            StatusCode::NOT_FOUND,
            "business_rules",
            "carrier_not_found",
            "The carrier was not found.",
            Some("carrier_id"),
        );
    }
    let zip = |f: &str| q[f].as_str().filter(|z| z.len() == 5 && z.bytes().all(|b| b.is_ascii_digit()));
    let (Some(from), Some(to)) = (zip("from_postal_code"), zip("to_postal_code")) else {
        return bad("to_postal_code", "from_postal_code and to_postal_code must be 5-digit ZIP Codes.");
    };
    let ounces = match (q["weight"]["value"].as_f64(), q["weight"]["unit"].as_str()) {
        (Some(v), Some("ounce")) => v,
        (Some(v), Some("pound")) => v * 16.0,
        (Some(v), Some("gram")) => v / 28.3495,
        _ => return bad("weight", "weight needs a value and a unit (ounce, pound or gram)."),
    };
    if !(ounces > 0.0 && ounces <= 70.0 * 16.0) {
        return bad("weight.value", "weight must be above 0 and at most 70 lb.");
    }
    let z = zone(from, to);
    let applied = {
        let s = state.lock().expect("sandbox state");
        // The platform applies a contract USPS approved: every sandbox account is the one business's.
        s.platform_contracts.contains(&carrier_id) && s.approved_contracts.contains(crate::usps::CRID)
    };
    let tier = if applied { Tier::Contract } else { Tier::Commercial };
    let request_id = state.lock().expect("sandbox state").next_request_id();
    // Priority Mail is quoted for a flat-rate envelope too, listed first, as ShipEngine quotes a
    // service once per package type: the client must pick the parcel's own (`package`) rate.
    let flat_rate_envelope = json!({
        "rate_type": "check", "carrier_id": carrier_id, "shipping_amount": money(FLAT_RATE_ENVELOPE_CENTS),
        "zone": z, "package_type": "flat_rate_envelope", "service_code": "usps_priority_mail",
        "service_type": "USPS Priority Mail", "carrier_code": "stamps_com", "error_messages": [], "warning_messages": [],
    });
    let rates: Vec<Value> = std::iter::once(flat_rate_envelope)
        .chain(["PRIORITY_MAIL", "USPS_GROUND_ADVANTAGE"].iter().filter_map(|class| {
            let price = cents(class, ounces / 16.0, z, tier)?;
            Some(json!({
                "rate_type": "check",
                "carrier_id": carrier_id,
                "shipping_amount": money(price),
                "insurance_amount": money(0),
                "confirmation_amount": money(0),
                "other_amount": money(0),
                "zone": z,
                "package_type": "package",
                "delivery_days": if *class == "PRIORITY_MAIL" { 2 } else { 4 },
                "guaranteed_service": false,
                "negotiated_rate": applied,
                "service_type": if *class == "PRIORITY_MAIL" { "USPS Priority Mail" } else { "USPS Ground Advantage" },
                "service_code": service_code(class),
                "trackable": true,
                "carrier_code": "stamps_com",
                "carrier_friendly_name": "Stamps.com",
                "validation_status": "unknown",
                "warning_messages": [],
                "error_messages": [],
            }))
        }))
        .collect();
    let mut response = Json(Value::Array(rates)).into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-shipengine-requestid", v);
    }
    response
}

#[derive(Deserialize)]
struct ApplyContract {
    carrier_id: String,
}

/// Sandbox helper: the platform applies the approved contract to this Stamps.com carrier (what
/// Stamps.com does once its *Connect USPS Business Account* link is in place).
async fn apply_contract(State(state): State<Shared>, Json(a): Json<ApplyContract>) -> Response {
    let mut s = state.lock().expect("sandbox state");
    let known = s.shipengine.by_key.values().any(|acct| {
        acct.carriers.iter().any(|c| c["carrier_id"] == a.carrier_id.as_str() && c["carrier_code"] == "stamps_com")
    });
    if !known {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("the sandbox has no Stamps.com carrier {}", a.carrier_id)})),
        )
            .into_response();
    }
    s.platform_contracts.insert(a.carrier_id);
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) fn routes() -> Router<Shared> {
    Router::new().route("/v1/rates/estimate", post(estimate))
}

pub(crate) fn helper_routes() -> Router<Shared> {
    Router::new().route("/sandbox/shipengine/apply-contract", post(apply_contract))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::start;

    #[test]
    fn prices_are_ordered_as_usps_orders_them() {
        for class in ["PRIORITY_MAIL", "USPS_GROUND_ADVANTAGE"] {
            for w in [0.25, 0.5, 1.0, 3.0] {
                for z in 1..=8 {
                    let [c, m, r] =
                        [Tier::Contract, Tier::Commercial, Tier::Retail].map(|t| cents(class, w, z, t).unwrap());
                    assert!(c < m && m < r, "{class} {w} {z}: {c} {m} {r}");
                }
                assert!(cents(class, w, 8, Tier::Retail) > cents(class, w, 1, Tier::Retail));
            }
        }
        assert_eq!(cents("PRIORITY_MAIL", 1.0, 1, Tier::Retail), Some(985));
        assert_eq!(cents("MEDIA_MAIL", 1.0, 1, Tier::Retail), None);
        assert_eq!(zone("78756", "78701"), 1);
        assert_eq!(zone("78756", "98101"), 8);
    }

    #[tokio::test]
    async fn the_estimate_quotes_published_prices_until_the_platform_applies_the_contract() {
        let (sb, http) = start().await;
        let base = sb.base_url();
        let key = "TEST_estimates";
        let carrier = "se-test-stamps";
        let _ = http.get(format!("{base}/v1/carriers")).header("API-Key", key).send().await.unwrap();
        let ask = |body: Value| {
            let http = http.clone();
            let url = format!("{base}/v1/rates/estimate");
            async move { http.post(url).header("API-Key", key).json(&body).send().await.unwrap() }
        };
        let parcel = json!({"carrier_id": carrier, "from_country_code": "US", "from_postal_code": "78756",
            "to_country_code": "US", "to_postal_code": "78701", "weight": {"value": 16, "unit": "ounce"}});
        let priority = |rates: &Value| {
            let of_service = rates.as_array().unwrap().iter().filter(|r| r["service_code"] == "usps_priority_mail");
            let package = of_service.clone().find(|r| r["package_type"] == "package").unwrap();
            assert_eq!(of_service.count(), 2, "the package and a flat-rate envelope");
            package["shipping_amount"]["amount"].as_f64().unwrap()
        };
        let rates: Value = ask(parcel.clone()).await.json().await.unwrap();
        assert_eq!(priority(&rates), 8.66, "the commercial price");
        // Applying before USPS approved changes nothing; after, the contract price.
        let apply = |id: &str| {
            let http = http.clone();
            let url = format!("{base}/sandbox/shipengine/apply-contract");
            let body = json!({"carrier_id": id});
            async move { http.post(url).json(&body).send().await.unwrap().status() }
        };
        assert_eq!(apply(carrier).await, 204);
        let rates: Value = ask(parcel.clone()).await.json().await.unwrap();
        assert_eq!(priority(&rates), 8.66);
        sb.approve_contract();
        let rates: Value = ask(parcel.clone()).await.json().await.unwrap();
        assert_eq!(priority(&rates), 7.38, "the contract price");
        assert_eq!(apply("se-nobody").await, 404);
        // Refusals: another account's carrier, a bad ZIP, no weight, no key.
        let mut other = parcel.clone();
        other["carrier_id"] = json!("se-someone-else");
        assert_eq!(ask(other).await.status(), 404);
        let mut bad_zip = parcel.clone();
        bad_zip["to_postal_code"] = json!("7870");
        assert_eq!(ask(bad_zip).await.status(), 400);
        let mut no_weight = parcel.clone();
        no_weight["weight"] = json!({"value": 0, "unit": "ounce"});
        assert_eq!(ask(no_weight).await.status(), 400);
        let r = http.post(format!("{base}/v1/rates/estimate")).json(&parcel).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
}
