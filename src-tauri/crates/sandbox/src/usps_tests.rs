//! The sandbox's USPS pages and OAuth rules, driven over HTTP like a browser and a token client.

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::testutil::start;
use crate::usps::{CLIENT_ID, CLIENT_SECRET, MFA_CODE, PASSWORD};

const VERIFIER: &str = "verifier-0123456789-0123456789-0123456789-abcdef";
const REDIRECT: &str = "uspslink://oauth/callback";

fn challenge(v: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()))
}

/// The value of `attr="…"` right after `marker` in an HTML page.
fn attr_after(html: &str, marker: &str, attr: &str) -> Option<String> {
    let rest = &html[html.find(marker)?..];
    let start = rest.find(&format!("{attr}=\""))? + attr.len() + 2;
    Some(rest[start..start + rest[start..].find('"')?].replace("&amp;", "&"))
}

struct Browser {
    base: String,
    http: reqwest::Client,
}

impl Browser {
    async fn open(&self, state: &str) -> String {
        let url = format!(
            "{}/cop-navigator?wf=apis_merchant_user&client_id={CLIENT_ID}&state={state}&redirect_uri={}&code_challenge={}&code_challenge_method=S256",
            self.base,
            "uspslink%3A%2F%2Foauth%2Fcallback",
            challenge(VERIFIER)
        );
        self.http.get(url).send().await.unwrap().text().await.unwrap()
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> String {
        self.http.post(format!("{}{path}", self.base)).form(form).send().await.unwrap().text().await.unwrap()
    }

    /// Sign in, MFA, grant; returns the final page.
    async fn sign_in_and_grant(&self, user: &str, decision: &str) -> String {
        let page = self.open("stateABCDEFGHIJKLMNOP").await;
        let flow = attr_after(&page, "name=\"flow\"", "value").unwrap();
        let page =
            self.post("/cop-navigator/sign-in", &[("flow", &flow), ("username", user), ("password", PASSWORD)]).await;
        assert!(page.contains("Multi-Factor"), "{page}");
        let page = self.post("/cop-navigator/mfa", &[("flow", &flow), ("code", MFA_CODE)]).await;
        assert!(page.contains("Authorize and Continue"), "{page}");
        self.post("/cop-navigator/grant", &[("flow", &flow), ("agree", "yes"), ("decision", decision)]).await
    }

    async fn code_for(&self, user: &str) -> String {
        let page = self.sign_in_and_grant(user, "authorize").await;
        let href = attr_after(&page, "id=\"go\"", "href").unwrap();
        assert!(href.starts_with("uspslink://oauth/callback?code="), "{href}");
        assert!(href.ends_with("&state=stateABCDEFGHIJKLMNOP"));
        href.split("code=").nth(1).unwrap().split('&').next().unwrap().to_string()
    }

    /// The text of `GET path`.
    async fn get_text(&self, path: &str) -> String {
        self.http.get(format!("{}{path}", self.base)).send().await.unwrap().text().await.unwrap()
    }

    /// `POST /oauth2/v3/revoke` with the sandbox app's Basic auth.
    async fn revoke(&self, token: &str, hint: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/oauth2/v3/revoke", self.base))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .json(&json!({"token": token, "token_type_hint": hint}))
            .send()
            .await
            .unwrap()
    }

    async fn token(&self, body: Value) -> (u16, Value) {
        let r = self.http.post(format!("{}/oauth2/v3/token", self.base)).json(&body).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }
}

async fn browser() -> (crate::Sandbox, Browser) {
    let (sb, http) = start().await;
    let b = Browser { base: sb.base_url(), http };
    (sb, b)
}

fn code_body(code: &str, verifier: &str) -> Value {
    json!({"grant_type": "authorization_code", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
           "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier})
}

#[tokio::test]
async fn full_flow_code_is_single_use_and_refresh_rotates() {
    let (_sb, b) = browser().await;
    let code = b.code_for("merchant").await;
    assert_eq!(code.len(), 8);
    let (status, t) = b.token(code_body(&code, VERIFIER)).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["refresh_count"], 0);
    // The access token is a JWT carrying the mail owner's CRID.
    let claims = t["access_token"].as_str().unwrap().split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    assert_eq!(claims["mail_owners"][0]["crid"], crate::usps::CRID);

    let (status, e) = b.token(code_body(&code, VERIFIER)).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")));
    assert!(e["error_description"].as_str().unwrap().contains("already been used"));

    let refresh = |rt: &str| json!({"grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": rt});
    let rt1 = t["refresh_token"].as_str().unwrap().to_string();
    let (status, t2) = b.token(refresh(&rt1)).await;
    assert_eq!(status, 200);
    assert_eq!(t2["refresh_count"], 1);
    let rt2 = t2["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2);
    let (status, e) = b.token(refresh(&rt1)).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_refresh_token")));

    // Revoke (Basic auth) kills the new refresh token too.
    let r = b.revoke(&rt2, "refresh_token").await;
    assert_eq!(r.status(), 200);
    let (status, _) = b.token(refresh(&rt2)).await;
    assert_eq!(status, 400);
    let r = b.http.post(format!("{}/oauth2/v3/revoke", b.base)).json(&json!({"token": "x"})).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn pkce_and_client_and_redirect_are_checked() {
    let (_sb, b) = browser().await;
    let code = b.code_for("merchant").await;
    let (status, e) = b.token(code_body(&code, "wrong-verifier-0123456789-0123456789-0123456789")).await;
    assert_eq!((status, e["error_description"].as_str()), (400, Some("PKCE verification failed.")));
    let mut body = code_body(&code, VERIFIER);
    body["client_secret"] = json!("nope");
    let (status, e) = b.token(body).await;
    assert_eq!((status, e["error"].as_str()), (401, Some("invalid_client")));
    let mut body = code_body(&code, VERIFIER);
    body["redirect_uri"] = json!("https://elsewhere.example/cb");
    assert_eq!(b.token(body).await.1["error"], "invalid_grant");
    // Form bodies work as well as JSON.
    let r = b
        .http
        .post(format!("{}/oauth2/v3/token", b.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn codes_expire_after_five_minutes() {
    let (_sb, b) = browser().await;
    let code = b.code_for("merchant").await;
    let r = b.http.post(format!("{}/sandbox/clock", b.base)).json(&json!({"advance_secs": 301})).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let (status, e) = b.token(code_body(&code, VERIFIER)).await;
    assert_eq!((status, e["error_description"].as_str()), (400, Some("The authorization code has expired.")));
}

#[tokio::test]
async fn wrong_password_locked_account_and_deny_lead_back_with_errors() {
    let (_sb, b) = browser().await;
    let page = b.open("stateABCDEFGHIJKLMNOP").await;
    let flow = attr_after(&page, "name=\"flow\"", "value").unwrap();
    let page =
        b.post("/cop-navigator/sign-in", &[("flow", &flow), ("username", "merchant"), ("password", "bad")]).await;
    assert!(page.contains("Login failed"));
    let href = attr_after(&page, "id=\"give-up\"", "href").unwrap();
    assert!(href.starts_with("uspslink://oauth/callback?error=login_failed&error_description="), "{href}");
    let page =
        b.post("/cop-navigator/sign-in", &[("flow", &flow), ("username", "locked"), ("password", PASSWORD)]).await;
    assert!(page.contains("locked"));
    assert!(attr_after(&page, "id=\"return\"", "href").unwrap().contains("error=login_failed"));
    let page = b.sign_in_and_grant("merchant", "deny").await;
    let href = attr_after(&page, "id=\"return\"", "href").unwrap();
    assert_eq!(href, "uspslink://oauth/callback?error=access_denied&state=stateABCDEFGHIJKLMNOP");
}

#[tokio::test]
async fn grant_needs_the_checkbox_and_bad_requests_get_an_error_page() {
    let (_sb, b) = browser().await;
    let page = b.open("stateABCDEFGHIJKLMNOP").await;
    let flow = attr_after(&page, "name=\"flow\"", "value").unwrap();
    b.post("/cop-navigator/sign-in", &[("flow", &flow), ("username", "merchant"), ("password", PASSWORD)]).await;
    let page = b.post("/cop-navigator/mfa", &[("flow", &flow), ("code", "000000")]).await;
    assert!(page.contains("That code is not correct."));
    b.post("/cop-navigator/mfa", &[("flow", &flow), ("code", MFA_CODE)]).await;
    let page = b.post("/cop-navigator/grant", &[("flow", &flow), ("decision", "authorize")]).await;
    assert!(page.contains("Check the agreement box"));
    let bad = b.get_text("/cop-navigator?wf=apis_merchant_user&client_id=other&state=s&redirect_uri=x").await;
    assert!(bad.contains("The client application identifier is invalid."));
    let no_pkce = b
        .get_text(&format!(
            "/cop-navigator?wf=apis_merchant_user&client_id={CLIENT_ID}&state=s&redirect_uri={}",
            "uspslink%3A%2F%2Foauth%2Fcallback"
        ))
        .await;
    assert!(no_pkce.contains("PKCE"));
    // HTML-escaping of reflected input.
    let page = b.open("<script>").await;
    assert!(!page.contains("<script>"));
}

#[tokio::test]
async fn revoked_user_and_password_reset_break_refresh() {
    let (_sb, b) = browser().await;
    let code = b.code_for("revoked").await;
    let (_, t) = b.token(code_body(&code, VERIFIER)).await;
    let body = json!({"grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": t["refresh_token"]});
    let (status, e) = b.token(body).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_refresh_token")));

    let code = b.code_for("merchant").await;
    let (_, t) = b.token(code_body(&code, VERIFIER)).await;
    b.http
        .post(format!("{}/sandbox/usps/revoke-user", b.base))
        .json(&json!({"username": "merchant"}))
        .send()
        .await
        .unwrap();
    let body = json!({"grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": t["refresh_token"]});
    assert_eq!(b.token(body).await.0, 400);
}

/// A user-bound access token, through the sign-in pages and the token endpoint.
async fn access_token(b: &Browser) -> String {
    let code = b.code_for("merchant").await;
    let (_, t) = b.token(code_body(&code, VERIFIER)).await;
    t["access_token"].as_str().unwrap().to_string()
}

fn first_error(body: &Value) -> (String, String) {
    let e = &body["error"]["errors"][0];
    (e["code"].as_str().unwrap_or("").to_string(), e["source"]["parameter"].as_str().unwrap_or("").to_string())
}

#[tokio::test]
async fn payment_account_inquiry_needs_a_user_token_and_knows_the_accounts() {
    use crate::payments::{PERMIT_NUMBER, PERMIT_ZIP};
    let (_sb, b) = browser().await;
    let url = |path: &str| format!("{}/payments/v3/payment-account/{path}", b.base);
    let r = b.http.get(url("1000000001?accountType=EPS")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["errors"][0]["title"], "invalid_token");
    let (_, cc) = b
        .token(json!({"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}))
        .await;
    let r = b
        .http
        .get(url("1000000001?accountType=EPS"))
        .bearer_auth(cc["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a token without a business user sees no accounts");

    let token = access_token(&b).await;
    let get = |path: String| b.http.get(url(&path)).bearer_auth(&token).send();
    let r = get("1000000001?accountType=EPS".into()).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!((body["accountType"].as_str(), body["accountNumber"].as_str()), (Some("EPS"), Some("1000000001")));
    let r = get("9999999999?accountType=EPS".into()).await.unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(first_error(&body).0, "100001");
    assert_eq!(body["error"]["errors"][0]["detail"], "Could not find an EPS Account with number: 9999999999");
    assert_eq!(
        get(format!("{PERMIT_NUMBER}?accountType=PERMIT&permitZIPCode={PERMIT_ZIP}")).await.unwrap().status(),
        200
    );
    assert_eq!(get(format!("{PERMIT_NUMBER}?accountType=PERMIT&permitZIPCode=10001")).await.unwrap().status(), 404);
    let body: Value = get(format!("{PERMIT_NUMBER}?accountType=PERMIT")).await.unwrap().json().await.unwrap();
    assert_eq!(first_error(&body), ("160215".into(), "permitZIPCode".into()));
    let body: Value = get("1000000001?accountType=CASH".into()).await.unwrap().json().await.unwrap();
    assert_eq!(first_error(&body).0, "160390");
}

#[tokio::test]
async fn payment_authorization_checks_roles_and_account_standing() {
    let (_sb, b) = browser().await;
    let token = access_token(&b).await;
    let payer = |acct: &str| json!({"roleName": "PAYER", "CRID": crate::usps::CRID, "MID": crate::usps::MID, "manifestMID": crate::usps::MID, "accountType": "EPS", "accountNumber": acct});
    let owner = json!({"roleName": "LABEL_OWNER", "CRID": crate::usps::CRID, "MID": crate::usps::MID, "manifestMID": crate::usps::MID});
    let post = |roles: Value| {
        b.http
            .post(format!("{}/payments/v3/payment-authorization", b.base))
            .bearer_auth(&token)
            .json(&json!({"roles": roles}))
            .send()
    };
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (json!([payer("1000000002"), owner]), 400, "100002", "accountNumber"),
        (json!([payer("1000000003"), owner]), 400, "100003", "accountNumber"),
        (json!([payer("1000000004"), owner]), 400, "100004", "accountNumber"),
        (json!([payer("1000000005"), owner]), 400, "100005", "accountNumber"),
        (json!([payer("1000000007"), owner]), 400, "100007", "accountNumber"),
        (json!([payer("5555555555"), owner]), 400, "100001", "accountNumber"),
        (json!([payer("1000000001")]), 400, "160229", "roles"),
        (json!([owner]), 400, "160228", "roles"),
        (json!([payer("1000000001"), payer("1000000001"), owner]), 400, "160227", "roleName"),
        (
            json!([{"roleName": "PAYER", "CRID": "", "accountType": "EPS", "accountNumber": "1"}, owner]),
            400,
            "160218",
            "CRID",
        ),
        (
            json!([{"roleName": "PAYER", "CRID": "20538353", "accountType": "EPS"}, owner]),
            400,
            "160224",
            "accountNumber",
        ),
        (
            json!([{"roleName": "PAYER", "CRID": "20538353", "accountType": "PERMIT", "permitNumber": "1234"}, owner]),
            400,
            "160226",
            "permitZIP",
        ),
        (
            json!([payer("1000000001"), {"roleName": "LABEL_OWNER", "CRID": "20538353", "manifestMID": "901234567"}]),
            400,
            "160221",
            "MID",
        ),
        (
            json!([payer("1000000001"), {"roleName": "LABEL_OWNER", "CRID": "20538353", "MID": "901234567"}]),
            400,
            "160222",
            "manifestMID",
        ),
        (
            json!([payer("1000000001"), {"roleName": "LABEL_OWNER", "CRID": "12345678", "MID": "901234567", "manifestMID": "901234567"}]),
            403,
            "403",
            "CRID",
        ),
        (
            json!([payer("1000000001"), {"roleName": "LABEL_OWNER", "CRID": "20538353", "MID": "123456", "manifestMID": "123456"}]),
            403,
            "403",
            "MID",
        ),
    ];
    for (roles, status, code, parameter) in cases {
        let r = post(roles.clone()).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{roles}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(first_error(&body), (code.to_string(), parameter.to_string()), "{roles}");
        assert_eq!(body["error"]["code"], status.to_string());
    }
    let granted = |b: &Browser| {
        let url = format!("{}/sandbox/usps/payment-authorizations", b.base);
        let http = b.http.clone();
        async move { http.get(url).send().await.unwrap().json::<Value>().await.unwrap()["granted"].as_u64().unwrap() }
    };
    assert_eq!(granted(&b).await, 0, "no refused request counts");
    let r = post(json!([payer("1000000001"), owner])).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["paymentAuthorizationToken"].as_str().unwrap().split('.').count(), 3);
    assert_eq!(body["roles"].as_array().unwrap().len(), 2);
    assert_eq!(granted(&b).await, 1);
    // A revoked access token is refused.
    b.revoke(&token, "access_token").await;
    assert_eq!(post(json!([payer("1000000001"), owner])).await.unwrap().status(), 401);
}

#[tokio::test]
async fn access_tokens_outlive_a_restart_but_not_a_password_reset_or_their_expiry() {
    let (sb, b) = browser().await;
    let token = access_token(&b).await;
    drop(sb);
    let (_sb2, b2) = browser().await;
    let lookup = |b: &Browser, t: String| {
        let req =
            b.http.get(format!("{}/payments/v3/payment-account/1000000001?accountType=EPS", b.base)).bearer_auth(t);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(lookup(&b2, token.clone()).await, 200, "a token from before the restart still works");
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(lookup(&b2, forged).await, 401, "a token with a wrong signature is refused");

    b2.http
        .post(format!("{}/sandbox/usps/revoke-user", b2.base))
        .json(&json!({"username": "merchant"}))
        .send()
        .await
        .unwrap();
    assert_eq!(lookup(&b2, token).await, 401, "a password reset kills the tokens issued before it");
    let fresh = access_token(&b2).await;
    assert_eq!(lookup(&b2, fresh.clone()).await, 200, "signing in again works");
    b2.http.post(format!("{}/sandbox/clock", b2.base)).json(&json!({"advance_secs": 28_800})).send().await.unwrap();
    assert_eq!(lookup(&b2, fresh).await, 401, "an expired token is refused");
}

#[tokio::test]
async fn a_huge_clock_move_is_refused_and_the_sandbox_keeps_working() {
    let (_sb, b) = browser().await;
    for huge in [u64::MAX, u64::MAX / 2, 10 * 366 * 86_400 + 1] {
        let r =
            b.http.post(format!("{}/sandbox/clock", b.base)).json(&json!({"advance_secs": huge})).send().await.unwrap();
        assert_eq!(r.status(), 400, "{huge}");
    }
    // Nothing was poisoned or moved: a whole sign-in still works and its code is still fresh.
    let code = b.code_for("merchant").await;
    let (status, _) = b
        .token(json!({"grant_type": "authorization_code", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                      "code": code, "redirect_uri": REDIRECT, "code_verifier": VERIFIER}))
        .await;
    assert_eq!(status, 200);
    let r = b.http.post(format!("{}/sandbox/clock", b.base)).json(&json!({"advance_secs": 60})).send().await.unwrap();
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn sign_ins_in_progress_are_bounded() {
    let (sb, b) = browser().await;
    let first = b.open("stateFIRST0123456789").await;
    let first_flow = attr_after(&first, "name=\"flow\"", "value").unwrap();
    for _ in 0..crate::usps::MAX_FLOWS + 10 {
        b.open("stateMANY0123456789").await;
    }
    let kept = sb.state.lock().unwrap().usps.flow_count();
    assert_eq!(kept, crate::usps::MAX_FLOWS);
    // The oldest was forgotten: its sign-in form now says so instead of continuing.
    let page = b
        .post("/cop-navigator/sign-in", &[("flow", &first_flow), ("username", "merchant"), ("password", PASSWORD)])
        .await;
    assert!(!page.contains("Multi-Factor"), "{page}");
}

#[tokio::test]
async fn contract_prices_wait_for_the_approval_and_bad_searches_say_why() {
    let (_sb, b) = browser().await;
    let bearer = access_token(&b).await;
    let search = |body: Value| {
        let (http, url, bearer) = (b.http.clone(), format!("{}/prices/v3/total-rates/search", b.base), bearer.clone());
        async move {
            let r = http.post(url).bearer_auth(bearer).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let contract = json!({"mailClass": "PRIORITY_MAIL", "weight": 1.0, "priceType": "CONTRACT",
                          "accountType": "EPS", "accountNumber": crate::usps::EPS_ACCOUNT});
    let (status, body) = search(contract.clone()).await;
    assert_eq!((status, body["error"]["errors"][0]["code"].as_str()), (400, Some("160212")), "{body}");
    for (bad, code) in [
        (json!({"weight": 1.0, "priceType": "CONTRACT"}), "400"),
        (json!({"mailClass": "PRIORITY_MAIL", "weight": 0, "priceType": "CONTRACT"}), "400"),
        (json!({"mailClass": "PRIORITY_MAIL", "weight": 1.0, "priceType": "FREE"}), "400"),
        (
            json!({"mailClass": "PRIORITY_MAIL", "weight": 1.0, "priceType": "CONTRACT", "accountType": "EPS", "accountNumber": "9999999999"}),
            "100001",
        ),
    ] {
        let (status, body) = search(bad.clone()).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["error"]["errors"][0]["code"].as_str(), Some(code), "{bad}: {body}");
    }
    let approve = |crid: &str| {
        b.http.post(format!("{}/sandbox/usps/approve-contract", b.base)).json(&json!({"crid": crid})).send()
    };
    assert_eq!(approve("99999999").await.unwrap().status(), 404);
    assert_eq!(approve(crate::usps::CRID).await.unwrap().status(), 204);
    let (status, body) = search(contract.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(body["rateOptions"][0]["rates"][0]["priceType"], "CONTRACT");
    // The three prices of one parcel agree with each other, call after call.
    let far = |price_type: &str| {
        let mut q = contract.clone();
        q["priceType"] = json!(price_type);
        q["originZIPCode"] = json!("78756");
        q["destinationZIPCode"] = json!("98101");
        q
    };
    let mut totals = Vec::new();
    for price_type in ["CONTRACT", "COMMERCIAL", "RETAIL", "CONTRACT"] {
        let (status, body) = search(far(price_type)).await;
        assert_eq!(status, 200, "{body}");
        totals.push(body["rateOptions"][0]["totalBasePrice"].as_f64().unwrap());
    }
    assert!(totals[0] < totals[1] && totals[1] < totals[2] && totals[3] == totals[0], "{totals:?}");
    // The published-rate fallback, as a fault: the published price and USPS's warning.
    let fault = crate::Fault { published_fallback: true, ..Default::default() };
    _sb.inject_fault("/prices/v3/total-rates/search", fault, 1);
    let (status, body) = search(far("CONTRACT")).await;
    assert_eq!(status, 200);
    assert_eq!(body["rateOptions"][0]["rates"][0]["priceType"], "COMMERCIAL");
    assert_eq!(body["rateOptions"][0]["totalBasePrice"].as_f64(), Some(totals[1]));
    assert!(body["warnings"][0]["warningDescription"].as_str().unwrap().contains("Published rate returned"), "{body}");
    let (_, body) = search(far("CONTRACT")).await;
    assert_eq!(body["rateOptions"][0]["totalBasePrice"].as_f64(), Some(totals[0]), "one call only");
    let r = b
        .http
        .post(format!("{}/prices/v3/total-rates/search", b.base))
        .bearer_auth("forged")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn pkce_can_be_ignored_as_real_usps_does() {
    let options = crate::SandboxOptions { pkce: crate::Pkce::Ignore, ..Default::default() };
    let sb = crate::Sandbox::start_with("127.0.0.1:0", options).await.unwrap();
    let b = Browser { base: sb.base_url(), http: reqwest::Client::new() };
    let code = b.code_for("merchant").await;
    assert_eq!(sb.oauth_calls(), 0, "the pages are not the OAuth endpoints");
    let (status, t) = b.token(code_body(&code, "any-verifier-at-all")).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(sb.oauth_calls(), 1);
    // A sign-in without any challenge is taken, and its code exchanged without any verifier.
    let query = format!(
        "wf=apis_merchant_user&client_id={CLIENT_ID}&state=s&redirect_uri={}",
        "uspslink%3A%2F%2Foauth%2Fcallback"
    );
    let page = b.get_text(&format!("/cop-navigator?{query}")).await;
    assert!(page.contains("name=\"flow\""), "{page}");
    let code = b.code_for("merchant").await;
    let mut body = code_body(&code, "");
    body.as_object_mut().unwrap().remove("code_verifier");
    assert_eq!(b.token(body).await.0, 200);
    // Still single use.
    assert_eq!(b.token(code_body(&code, "x")).await.0, 400);
    assert_eq!(sb.oauth_calls(), 3);
}

#[tokio::test]
async fn an_injected_oauth_error_says_what_usps_would() {
    let (sb, b) = browser().await;
    let fault = crate::Fault { status: Some(401), error: Some("invalid_grant".into()), ..Default::default() };
    sb.inject_fault("/oauth2/v3/token", fault, 1);
    let (status, e) = b.token(json!({"grant_type": "refresh_token"})).await;
    assert_eq!((status, e["error"].as_str()), (401, Some("invalid_grant")));
    // Without one, the generic error of the route, as before.
    sb.inject_fault("/oauth2/v3/token", crate::Fault { status: Some(401), ..Default::default() }, 1);
    assert_eq!(b.token(json!({"grant_type": "refresh_token"})).await.1["error"], "invalid_request");
}
