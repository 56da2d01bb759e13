//! USPS Payments v3: the payment-account inquiry and the payment authorization, with the spec's
//! body shapes and the Error Inventory's codes, behind the sandbox's own OAuth bearer tokens.
//!
//! Accounts (all but the last belong to CRID [`crate::usps::CRID`], MID [`crate::usps::MID`]):
//! - EPS `1000000001`: active, ACH Debit active (the one the sign-in token names);
//! - EPS `1000000002`: not active (100002);
//! - EPS `1000000003`: no payment method (100003);
//! - EPS `1000000004`: payment method not active yet, an ACH still Pending (100004);
//! - EPS `1000000005`: the credit card on the account fails validation (100005);
//! - EPS `1000000007`: not enough funds in the trust balance (100007);
//! - PERMIT `1234` at ZIP `78756`: active; any other permit or ZIP is not found (100001);
//! - EPS `1000000020`: active, the second business's ([`crate::usps::SECOND_BUSINESS`], user `merchant2`).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::errors::usps_api_on;
use crate::prices;
use crate::usps::{business_of, business_of_account, SandboxBusiness, CRID, EPS_ACCOUNT, SECOND_BUSINESS};
use crate::Shared;

pub const EPS_INACTIVE: &str = "1000000002";
pub const EPS_NO_PAYMENT_METHOD: &str = "1000000003";
pub const EPS_PAYMENT_PENDING: &str = "1000000004";
pub const EPS_CARD_INVALID: &str = "1000000005";
pub const EPS_INSUFFICIENT_FUNDS: &str = "1000000007";
pub const PERMIT_NUMBER: &str = "1234";
pub const PERMIT_ZIP: &str = "78756";

/// What a payment account's state makes the authorization answer.
enum Standing {
    Good,
    Refused(&'static str, &'static str),
}

/// The account, or None when USPS has no such account.
fn find(account_type: &str, number: &str, permit_zip: Option<&str>) -> Option<Standing> {
    match (account_type, number) {
        ("EPS", EPS_ACCOUNT) => Some(Standing::Good),
        ("EPS", n) if n == SECOND_BUSINESS.eps_account => Some(Standing::Good),
        ("EPS", EPS_INACTIVE) => Some(Standing::Refused("100002", "The EPS account is not Active.")),
        ("EPS", EPS_NO_PAYMENT_METHOD) => {
            Some(Standing::Refused("100003", "The EPS account does not have a Primary Payment Method."))
        }
        ("EPS", EPS_PAYMENT_PENDING) => {
            Some(Standing::Refused("100004", "The Primary Payment Method of the EPS account is not Active."))
        }
        // The Error Inventory names 100005/100006 only as credit card validation problems: this
        // wording is the sandbox's. 100007's is the inventory's.
        ("EPS", EPS_CARD_INVALID) => {
            Some(Standing::Refused("100005", "The credit card of the payment account could not be validated."))
        }
        ("EPS", EPS_INSUFFICIENT_FUNDS) => Some(Standing::Refused("100007", "Trust balance has insufficient funds.")),
        ("PERMIT", PERMIT_NUMBER) if permit_zip == Some(PERMIT_ZIP) => Some(Standing::Good),
        _ => None,
    }
}

fn bad(code: &str, detail: &str, parameter: Option<&str>) -> Response {
    usps_api_on(StatusCode::BAD_REQUEST, code, "Bad Request", detail, parameter)
}

fn not_found_detail(account_type: &str, number: &str) -> String {
    if account_type == "EPS" {
        format!("Could not find an EPS Account with number: {number}")
    } else {
        format!("Could not find a PERMIT Account with number: {number}")
    }
}

/// The user behind `Authorization: Bearer …`, or the 401 USPS gives.
fn authorized_user(state: &Shared, headers: &HeaderMap) -> Result<String, Response> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let s = state.lock().expect("sandbox state");
    match s.usps.token_user(token, s.unix_ms()) {
        Some(Some(user)) => Ok(user),
        Some(None) => Err(usps_api_on(
            StatusCode::FORBIDDEN,
            "403",
            "Access is denied",
            "This token was not granted by a USPS business account: sign in through the Customer Onboarding Platform.",
            None,
        )),
        None => Err(usps_api_on(
            StatusCode::UNAUTHORIZED,
            "401",
            "invalid_token",
            "Missing or malformed access token, or the token has expired or was revoked.",
            None,
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountQuery {
    account_type: Option<String>,
    #[serde(rename = "permitZIPCode")]
    permit_zip_code: Option<String>,
}

async fn payment_account(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(number): Path<String>,
    Query(q): Query<AccountQuery>,
) -> Response {
    if let Err(r) = authorized_user(&state, &headers) {
        return r;
    }
    let account_type = q.account_type.unwrap_or_default();
    if account_type != "EPS" && account_type != "PERMIT" {
        return bad("160390", "accountType must be PERMIT, METER, OMAS, or EPS.", Some("accountType"));
    }
    if account_type == "PERMIT"
        && q.permit_zip_code.as_deref().is_none_or(|z| z.len() != 5 || !z.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad("160215", "permitZIPCode is required for accountType PERMIT.", Some("permitZIPCode"));
    }
    match find(&account_type, &number, q.permit_zip_code.as_deref()) {
        Some(_) => Json(json!({"accountType": account_type, "accountNumber": number, "nonProfitStatus": false}))
            .into_response(),
        None => usps_api_on(
            StatusCode::NOT_FOUND,
            "100001",
            "Not Found",
            &not_found_detail(&account_type, &number),
            Some("account-number"),
        ),
    }
}

fn is_mid(v: &str) -> bool {
    (v.len() == 6 || v.len() == 9) && v.bytes().all(|b| b.is_ascii_digit())
}

/// The request's checks, in the order USPS reports them; the first problem is answered.
fn check_roles(roles: &[Value], business: SandboxBusiness) -> Result<(), Response> {
    let text = |r: &Value, k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut seen: Vec<String> = Vec::new();
    for role in roles {
        let name = text(role, "roleName");
        if name.is_empty() {
            return Err(bad("160219", "Each role requires a roleName.", Some("roleName")));
        }
        if seen.contains(&name) {
            return Err(bad("160227", &format!("{name} may appear only once."), Some("roleName")));
        }
        seen.push(name.clone());
        if text(role, "CRID").is_empty() {
            return Err(bad("160218", &format!("{name} requires CRID."), Some("CRID")));
        }
        if matches!(name.as_str(), "PAYER" | "RATE_HOLDER") {
            match text(role, "accountType").as_str() {
                "" => return Err(bad("160223", &format!("{name} requires accountType."), Some("accountType"))),
                "EPS" if text(role, "accountNumber").is_empty() => {
                    return Err(bad("160224", "accountNumber is required for accountType EPS.", Some("accountNumber")))
                }
                "PERMIT" if text(role, "permitNumber").is_empty() => {
                    return Err(bad("160225", "permitNumber is required for accountType PERMIT.", Some("permitNumber")))
                }
                "PERMIT" if text(role, "permitZIP").is_empty() => {
                    return Err(bad("160226", "permitZipCode is required for accountType PERMIT.", Some("permitZIP")))
                }
                "EPS" | "PERMIT" => {}
                _ => {
                    return Err(bad(
                        "160220",
                        &format!("{name} requires accountType of PERMIT or EPS."),
                        Some("accountType"),
                    ))
                }
            }
        }
        if matches!(name.as_str(), "LABEL_OWNER" | "RETURN_LABEL_OWNER") {
            if text(role, "MID").is_empty() {
                return Err(bad("160221", &format!("{name} requires MID."), Some("MID")));
            }
            if text(role, "manifestMID").is_empty() {
                return Err(bad("160222", &format!("{name} requires manifestMID."), Some("manifestMID")));
            }
        }
        for field in ["MID", "manifestMID"] {
            let v = text(role, field);
            if !v.is_empty() && !is_mid(&v) {
                return Err(bad("400", &format!("{field} must match ^(\\d{{6}}|\\d{{9}})$."), Some(field)));
            }
        }
    }
    if !seen.iter().any(|n| n == "PAYER") {
        return Err(bad("160228", "The PAYER role is required.", Some("roles")));
    }
    if !seen.iter().any(|n| n == "LABEL_OWNER") {
        return Err(bad("160229", "The LABEL_OWNER role is required.", Some("roles")));
    }
    // The business the user signed in for owns these identifiers; anybody else's are refused.
    for role in roles {
        let crid = text(role, "CRID");
        if crid != business.crid {
            return Err(usps_api_on(
                StatusCode::FORBIDDEN,
                "403",
                "Access is denied",
                &format!("The CRID {crid} is not associated with the signed-in USPS account."),
                Some("CRID"),
            ));
        }
        if text(role, "roleName") == "LABEL_OWNER" && text(role, "MID") != business.mid {
            return Err(usps_api_on(
                StatusCode::FORBIDDEN,
                "403",
                "Access is denied",
                &format!("The MID {} is not associated with CRID {crid}.", text(role, "MID")),
                Some("MID"),
            ));
        }
    }
    for role in roles.iter().filter(|r| matches!(text(r, "roleName").as_str(), "PAYER" | "RATE_HOLDER")) {
        let account_type = text(role, "accountType");
        let number = if account_type == "EPS" { text(role, "accountNumber") } else { text(role, "permitNumber") };
        let zip = text(role, "permitZIP");
        match find(&account_type, &number, Some(&zip)) {
            None => return Err(bad("100001", &not_found_detail(&account_type, &number), Some("accountNumber"))),
            Some(Standing::Refused(code, detail)) => return Err(bad(code, detail, Some("accountNumber"))),
            Some(Standing::Good) => {}
        }
    }
    Ok(())
}

async fn payment_authorization(State(state): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    // The identifiers must be those of the business the user signed in for.
    let business = match authorized_user(&state, &headers) {
        Ok(user) => business_of(&user),
        Err(r) => return r,
    };
    let Ok(parties) = serde_json::from_slice::<Value>(&body) else {
        return bad("400", "The request body is not valid JSON.", None);
    };
    let Some(roles) = parties.get("roles").and_then(Value::as_array) else {
        return bad("160228", "The PAYER role is required.", Some("roles"));
    };
    if let Err(r) = check_roles(roles, business) {
        return r;
    }
    let mut s = state.lock().expect("sandbox state");
    s.usps_payment_authorizations += 1;
    let n = s.usps_payment_authorizations;
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let token = format!(
        "{}.{}.{}",
        b64(br#"{"alg":"RS256"}"#),
        b64(json!({"sub": business.crid, "n": n}).to_string().as_bytes()),
        b64(b"sandbox")
    );
    Json(json!({"paymentAuthorizationToken": token, "roles": roles})).into_response()
}

/// Domestic Prices v3 `POST /prices/v3/total-rates/search`: RETAIL, COMMERCIAL and CONTRACT prices
/// from the sandbox's price list (`prices.rs`), consistent for every call. A CONTRACT price for one
/// of the sandbox business's accounts is error 160212 "An approved contract could not be found"
/// until `POST /sandbox/usps/approve-contract {"crid": …}` approves the business, then a price. The
/// `published_fallback` fault answers a CONTRACT request with the published price and USPS's warning.
async fn total_rates_search(
    State(state): State<Shared>,
    headers: HeaderMap,
    fallback: Option<axum::Extension<crate::faults::PublishedFallback>>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = authorized_user(&state, &headers) {
        return r;
    }
    let Ok(q) = serde_json::from_slice::<Value>(&body) else {
        return bad("400", "The request body is not valid JSON.", None);
    };
    let mail_class = q["mailClass"].as_str().unwrap_or("").to_string();
    if mail_class.is_empty() {
        return bad("400", "mailClass is required.", Some("mailClass"));
    }
    let Some(weight) = q["weight"].as_f64().filter(|w| *w > 0.0 && *w <= 70.0) else {
        return bad("400", "weight must be a positive number of pounds, at most 70.", Some("weight"));
    };
    let zip = |f: &str| q[f].as_str().filter(|z| z.len() == 5 && z.bytes().all(|b| b.is_ascii_digit()));
    // The approval check's request names ZIP Codes; one that names none is priced in zone 1.
    let zone = match (zip("originZIPCode"), zip("destinationZIPCode")) {
        (Some(from), Some(to)) => prices::zone(from, to),
        _ => 1,
    };
    let price_type = q["priceType"].as_str().unwrap_or("RETAIL").to_string();
    let tier = match price_type.as_str() {
        "RETAIL" => prices::Tier::Retail,
        "COMMERCIAL" => prices::Tier::Commercial,
        "CONTRACT" | "NSA" => prices::Tier::Contract,
        _ => return bad("400", "priceType must be RETAIL, COMMERCIAL, CONTRACT or NSA.", Some("priceType")),
    };
    let price = |tier: prices::Tier, kind: &str, warnings: Value| -> Response {
        let Some(cents) = prices::cents(&mail_class, weight, zone, tier) else {
            return bad("400", &format!("{mail_class} is not a mail class the sandbox prices."), Some("mailClass"));
        };
        let amount = f64::from(cents) / 100.0;
        let mut body = json!({"rateOptions": [{"totalBasePrice": amount, "rates": [{
            "description": format!("{mail_class} Package"), "priceType": kind, "price": amount,
            "mailClass": mail_class, "SKU": "DPXX0XXXXX01010", "weight": weight, "zone": format!("{zone:02}"),
        }]}]});
        if !warnings.is_null() {
            body["warnings"] = warnings;
        }
        Json(body).into_response()
    };
    if tier != prices::Tier::Contract {
        return price(tier, &price_type, Value::Null);
    }
    let account_type = q["accountType"].as_str().unwrap_or("").to_string();
    let number = q["accountNumber"].as_str().unwrap_or("").to_string();
    if account_type.is_empty() || number.is_empty() {
        return bad("400", "accountType and accountNumber are required for contract prices.", Some("accountNumber"));
    }
    if find(&account_type, &number, Some(PERMIT_ZIP)).is_none() {
        return bad("100001", &not_found_detail(&account_type, &number), Some("accountNumber"));
    }
    // The contract is the account's business's.
    let crid = business_of_account(&account_type, &number).crid;
    if !state.lock().expect("sandbox state").approved_contracts.contains(crid) {
        return bad("160212", &format!("An approved contract could not be found for {mail_class}."), None);
    }
    if fallback.is_some() {
        let warning = json!([{"warningCode": "CONTRACT_RATE_NOT_FOUND",
            "warningDescription": "Contract rate not found for request. Published rate returned."}]);
        return price(prices::Tier::Commercial, "COMMERCIAL", warning);
    }
    price(prices::Tier::Contract, &price_type, Value::Null)
}

#[derive(Deserialize)]
struct ApproveContract {
    crid: String,
}

/// Sandbox helper: USPS approves the business's NSA contract (what the sales representative does).
async fn approve_contract(State(state): State<Shared>, Json(a): Json<ApproveContract>) -> Response {
    if a.crid != CRID && a.crid != SECOND_BUSINESS.crid {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("the sandbox has no business with CRID {}", a.crid)})),
        )
            .into_response();
    }
    state.lock().expect("sandbox state").approved_contracts.insert(a.crid);
    StatusCode::NO_CONTENT.into_response()
}

/// Sandbox helper: how many payment authorizations were granted (tests check "exactly one").
async fn authorizations(State(state): State<Shared>) -> Json<Value> {
    Json(json!({"granted": state.lock().expect("sandbox state").usps_payment_authorizations}))
}

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/payments/v3/payment-account/{number}", get(payment_account))
        .route("/payments/v3/payment-authorization", post(payment_authorization))
        .route("/prices/v3/total-rates/search", post(total_rates_search))
}

pub(crate) fn helper_routes() -> Router<Shared> {
    Router::new()
        .route("/sandbox/usps/payment-authorizations", get(authorizations))
        .route("/sandbox/usps/approve-contract", post(approve_contract))
}
