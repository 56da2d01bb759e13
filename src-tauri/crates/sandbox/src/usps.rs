//! USPS: the COP-style sign-in pages (sign-in, MFA, grant access, success) and the OAuth endpoints
//! (`/oauth2/v3/token`, `/oauth2/v3/revoke`) with the real rules: five-minute single-use codes,
//! refresh-token rotation, error bodies. PKCE S256 is enforced by default (USPS does not document
//! it); [`crate::Pkce::Ignore`] behaves like real USPS, which takes a challenge and never checks it.
//!
//! Sandbox app credentials: consumer key `sandbox-consumer-key`, secret `sandbox-consumer-secret`.
//! Users (password `sandbox-password`): `merchant` (succeeds), `locked` (account locked),
//! `revoked` (its refresh tokens are revoked at once, as after a password reset), all of the
//! business [`BUSINESS`]; `merchant2` (succeeds) signs in for another business,
//! [`SECOND_BUSINESS`] (one install of uspslink links several). MFA code `123456`.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{errors, Pkce, Shared};

pub const CLIENT_ID: &str = "sandbox-consumer-key";
pub const CLIENT_SECRET: &str = "sandbox-consumer-secret";
pub const PASSWORD: &str = "sandbox-password";
pub const MFA_CODE: &str = "123456";
pub const CRID: &str = "20538353";
pub const MID: &str = "901234567";
pub const EPS_ACCOUNT: &str = "1000000001";

/// A business a sandbox user signs in for, by its identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxBusiness {
    pub crid: &'static str,
    pub mid: &'static str,
    pub eps_account: &'static str,
}

/// The business of `merchant`, `locked` and `revoked`.
pub const BUSINESS: SandboxBusiness = SandboxBusiness { crid: CRID, mid: MID, eps_account: EPS_ACCOUNT };
/// The business of `merchant2`.
pub const SECOND_BUSINESS: SandboxBusiness =
    SandboxBusiness { crid: "20538360", mid: "901234570", eps_account: "1000000020" };

/// The business `user` signs in for.
pub fn business_of(user: &str) -> SandboxBusiness {
    if user == "merchant2" {
        SECOND_BUSINESS
    } else {
        BUSINESS
    }
}

/// The business whose NSA contract an account's prices follow (every account but the second
/// business's EPS account is the first business's).
pub(crate) fn business_of_account(account_type: &str, number: &str) -> SandboxBusiness {
    if account_type == "EPS" && number == SECOND_BUSINESS.eps_account {
        SECOND_BUSINESS
    } else {
        BUSINESS
    }
}
const CODE_TTL: Duration = Duration::from_secs(5 * 60);
const ACCESS_TTL_SECS: u64 = 28_799;
const REFRESH_TTL_SECS: u64 = 7 * 24 * 3600;

struct Flow {
    client_id: String,
    state: String,
    redirect_uri: String,
    challenge: String,
    user: Option<String>,
    mfa_done: bool,
}

struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    user: String,
    issued_at: Duration,
    used: bool,
}

struct RefreshGrant {
    user: String,
    client_id: String,
    valid: bool,
    count: u32,
}

/// Sign-ins in progress the sandbox keeps; the oldest is forgotten past this.
pub(crate) const MAX_FLOWS: usize = 256;

#[derive(Default)]
pub(crate) struct Usps {
    flows: HashMap<String, Flow>,
    /// Flow ids, oldest first: at most [`MAX_FLOWS`] sign-ins are kept, so a page reloaded in a loop
    /// cannot grow the sandbox without bound.
    flow_order: std::collections::VecDeque<String>,
    codes: HashMap<String, CodeGrant>,
    refresh: HashMap<String, RefreshGrant>,
    /// Access tokens revoked before they expired.
    revoked_access: Vec<String>,
    /// User -> when their password was reset (Unix ms): access tokens issued before are dead.
    reset_at: HashMap<String, u64>,
    counter: u64,
}

impl Usps {
    #[cfg(test)]
    pub(crate) fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// The user a bearer token was issued to: None for a forged, expired or revoked token, Some(None)
    /// for a client-credentials token (no user). Access tokens are signed and carry their own expiry,
    /// like USPS's JWTs, so they stay valid when the sandbox (or the app running it) restarts.
    pub(crate) fn token_user(&self, token: &str, now_ms: u64) -> Option<Option<String>> {
        let (unsigned, signature) = token.rsplit_once('.')?;
        if sign(unsigned) != signature || self.revoked_access.iter().any(|t| t == token) {
            return None;
        }
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(unsigned.split('.').nth(1)?).ok()?;
        let claims: Value = serde_json::from_slice(&claims).ok()?;
        let issued_ms = claims["iat_ms"].as_u64()?;
        if claims["exp"].as_u64()? * 1000 <= now_ms {
            return None;
        }
        let user = claims["user"].as_str().map(str::to_string);
        if let Some(u) = &user {
            if self.reset_at.get(u).is_some_and(|reset| issued_ms <= *reset) {
                return None;
            }
        }
        Some(user)
    }

    /// A new authorization code. USPS codes are "eight alphanumeric characters", and no two are
    /// alike: drawn from a fresh id's digest, never one issued before (the counter-based prefix cut to
    /// eight characters used before repeated itself past 9,999 codes, which the sign-in service then
    /// rightly refused as one code arriving with two sign-ins).
    fn fresh_code(&mut self) -> String {
        const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        loop {
            let digest = Sha256::digest(self.next_id("C").as_bytes());
            let code: String = digest.iter().take(8).map(|b| ALPHANUMERIC[usize::from(*b) % 62] as char).collect();
            if !self.codes.contains_key(&code) {
                return code;
            }
        }
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        let digest = Sha256::digest(format!("{prefix}-{}", self.counter));
        let tail: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        format!("{prefix}{:04}{tail}", self.counter)
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> Response {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} | USPS (sandbox)</title>\
         <style>body{{font-family:sans-serif;max-width:560px;margin:40px auto;padding:0 16px}}\
         .err{{color:#b91c1c}} .banner{{background:#333366;color:#fff;padding:8px 12px}}\
         button,.button{{font-size:1.1em;padding:8px 16px}}</style></head>\
         <body><div class=\"banner\">USPS (uspslink sandbox)</div><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    ))
    .into_response()
}

/// The error paragraph every page shows (the scripted browser and tests look for `#error`).
fn error_html(message: &str) -> String {
    format!("<p class=\"err\" id=\"error\">{}</p>", escape(message))
}

fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{sep}{query}")
}

/// The app's scheme, an https callback, or a loopback http one (the in-process sign-in service the
/// app runs in front of the sandbox; real USPS is expected to want https).
fn redirect_allowed(uri: &str) -> bool {
    uri == "uspslink://oauth/callback"
        || uri.starts_with("https://")
        || uri.starts_with("http://127.0.0.1:")
        || uri.starts_with("http://localhost:")
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    wf: Option<String>,
    client_id: Option<String>,
    state: Option<String>,
    redirect_uri: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

async fn cop_navigator(State(state): State<Shared>, Query(q): Query<AuthorizeQuery>) -> Response {
    let bad = |msg: &str| page("Request problem", &error_html(msg));
    if q.wf.as_deref() != Some("apis_merchant_user") {
        return bad("Unknown workflow (wf must be apis_merchant_user).");
    }
    if q.client_id.as_deref() != Some(CLIENT_ID) {
        return bad("The client application identifier is invalid.");
    }
    let Some(redirect_uri) = q.redirect_uri.filter(|r| redirect_allowed(r)) else {
        return bad("The redirect_uri does not match the application's registered Callback URL.");
    };
    let Some(st) = q.state.filter(|s| !s.is_empty()) else { return bad("The state parameter is missing.") };
    let mut s = state.lock().expect("sandbox state");
    let challenge = match s.pkce {
        Pkce::Enforce => {
            let Some(challenge) = q.code_challenge.filter(|c| c.len() == 43) else {
                return bad("A PKCE code_challenge (S256) is required by the sandbox.");
            };
            if q.code_challenge_method.as_deref() != Some("S256") {
                return bad("code_challenge_method must be S256.");
            }
            challenge
        }
        // Taken, kept, never looked at again.
        Pkce::Ignore => q.code_challenge.unwrap_or_default(),
    };
    let flow = s.usps.next_id("flow");
    s.usps.flows.insert(
        flow.clone(),
        Flow { client_id: CLIENT_ID.into(), state: st, redirect_uri, challenge, user: None, mfa_done: false },
    );
    s.usps.flow_order.push_back(flow.clone());
    while s.usps.flow_order.len() > MAX_FLOWS {
        if let Some(oldest) = s.usps.flow_order.pop_front() {
            s.usps.flows.remove(&oldest);
        }
    }
    sign_in_page(&flow, None, "")
}

fn sign_in_page(flow: &str, error: Option<&str>, extra: &str) -> Response {
    let err = error.map(error_html).unwrap_or_default();
    page(
        "Sign In",
        &format!(
            "{err}<form method=\"post\" action=\"/cop-navigator/sign-in\" id=\"sign-in\">\
             <input type=\"hidden\" name=\"flow\" value=\"{f}\">\
             <p><label>Username <input name=\"username\" id=\"username\" autocomplete=\"username\"></label></p>\
             <p><label>Password <input name=\"password\" id=\"password\" type=\"password\"></label></p>\
             <p><button type=\"submit\" id=\"submit\">Sign In</button></p></form>\
             {extra}<p>Sandbox users: merchant, merchant2 (another business), locked, revoked; password {PASSWORD}.</p>",
            f = escape(flow)
        ),
    )
}

/// A page whose only way on is back to the app with an error (what COP does for locked accounts).
fn return_with_error(flow: &Flow, title: &str, error: &str, description: &str) -> Response {
    let href = redirect_with(
        &flow.redirect_uri,
        &[("error", error), ("error_description", description), ("state", &flow.state)],
    );
    page(
        title,
        &format!(
            "{}<p><a class=\"button\" id=\"return\" href=\"{}\">Return to the application</a></p>",
            error_html(description),
            escape(&href)
        ),
    )
}

#[derive(Deserialize)]
struct SignInForm {
    flow: String,
    username: String,
    password: String,
}

async fn sign_in(State(state): State<Shared>, Form(f): Form<SignInForm>) -> Response {
    let mut s = state.lock().expect("sandbox state");
    let Some(flow) = s.usps.flows.get_mut(&f.flow) else {
        return page("Session expired", &error_html("This sign-in session is unknown or over."));
    };
    let known = ["merchant", "merchant2", "locked", "revoked"].contains(&f.username.as_str());
    if f.username == "locked" && f.password == PASSWORD {
        return return_with_error(
            flow,
            "Account locked",
            "login_failed",
            "Your USPS account is locked after too many attempts.",
        );
    }
    if !known || f.password != PASSWORD {
        // COP keeps the user on the page; the sandbox also offers the way back with the reason, so
        // the app can say why the sign-in failed.
        let href = redirect_with(
            &flow.redirect_uri,
            &[
                ("error", "login_failed"),
                ("error_description", "The username or password is incorrect."),
                ("state", &flow.state),
            ],
        );
        let give_up =
            format!("<p><a id=\"give-up\" href=\"{}\">Cancel and return to the application</a></p>", escape(&href));
        return sign_in_page(&f.flow, Some("Login failed: the username or password is incorrect."), &give_up);
    }
    flow.user = Some(f.username.clone());
    mfa_page(&f.flow, None)
}

fn mfa_page(flow: &str, error: Option<&str>) -> Response {
    let err = error.map(error_html).unwrap_or_default();
    page(
        "Multi-Factor Authentication",
        &format!(
            "{err}<p>Enter the code we sent to your phone (sandbox code: {MFA_CODE}).</p>\
             <form method=\"post\" action=\"/cop-navigator/mfa\" id=\"mfa\">\
             <input type=\"hidden\" name=\"flow\" value=\"{f}\">\
             <p><label>Code <input name=\"code\" id=\"code\" inputmode=\"numeric\"></label></p>\
             <p><button type=\"submit\" id=\"submit\">Verify</button></p></form>",
            f = escape(flow)
        ),
    )
}

#[derive(Deserialize)]
struct MfaForm {
    flow: String,
    code: String,
}

async fn mfa(State(state): State<Shared>, Form(f): Form<MfaForm>) -> Response {
    let mut s = state.lock().expect("sandbox state");
    let Some(flow) = s.usps.flows.get_mut(&f.flow).filter(|fl| fl.user.is_some()) else {
        return page("Session expired", &error_html("Sign in first."));
    };
    if f.code.trim() != MFA_CODE {
        return mfa_page(&f.flow, Some("That code is not correct."));
    }
    flow.mfa_done = true;
    grant_page(&f.flow, None)
}

fn grant_page(flow: &str, error: Option<&str>) -> Response {
    let err = error.map(error_html).unwrap_or_default();
    page(
        "Grant uspslink Access",
        &format!(
            "{err}<p>uspslink asks to access your USPS business account: payment accounts, Mailer IDs and \
             contract rates.</p>\
             <form method=\"post\" action=\"/cop-navigator/grant\" id=\"grant\">\
             <input type=\"hidden\" name=\"flow\" value=\"{f}\">\
             <p><label><input type=\"checkbox\" name=\"agree\" value=\"yes\" id=\"agree\"> I have read and agree \
             to grant this platform access to my USPS account.</label></p>\
             <p><button type=\"submit\" name=\"decision\" value=\"authorize\" id=\"authorize\">Authorize and Continue</button>\
             <button type=\"submit\" name=\"decision\" value=\"deny\" id=\"deny\">Deny</button></p></form>",
            f = escape(flow)
        ),
    )
}

#[derive(Deserialize)]
struct GrantForm {
    flow: String,
    decision: String,
    agree: Option<String>,
}

async fn grant(State(state): State<Shared>, Form(f): Form<GrantForm>) -> Response {
    let mut s = state.lock().expect("sandbox state");
    let now = s.now();
    let usps = &mut s.usps;
    let ok = usps.flows.get(&f.flow).is_some_and(|fl| fl.user.is_some() && fl.mfa_done);
    if !ok {
        return page("Session expired", &error_html("Sign in first."));
    }
    if f.decision == "deny" {
        let flow = usps.flows.remove(&f.flow).expect("checked");
        let href = redirect_with(&flow.redirect_uri, &[("error", "access_denied"), ("state", &flow.state)]);
        return page(
            "Access not granted",
            &format!("<p>You did not grant access.</p><p><a class=\"button\" id=\"return\" href=\"{}\">Return to the application</a></p>", escape(&href)),
        );
    }
    if f.agree.as_deref() != Some("yes") {
        return grant_page(&f.flow, Some("Check the agreement box to continue."));
    }
    let flow = usps.flows.remove(&f.flow).expect("checked");
    let code = usps.fresh_code();
    usps.codes.insert(
        code.clone(),
        CodeGrant {
            client_id: flow.client_id,
            redirect_uri: flow.redirect_uri.clone(),
            challenge: flow.challenge,
            user: flow.user.expect("checked"),
            issued_at: now,
            used: false,
        },
    );
    let href = redirect_with(&flow.redirect_uri, &[("code", &code), ("state", &flow.state)]);
    page(
        "Successful Integration",
        &format!(
            "<p>Your USPS business account is now connected.</p>\
             <p><a class=\"button\" id=\"go\" href=\"{}\">Go to uspslink</a></p>",
            escape(&href)
        ),
    )
}

async fn business_portal() -> Response {
    page(
        "USPS Business Portal (sandbox)",
        "<p>Create a USPS Business Account, then add your payment account under \
         <strong>Add Your Payment Account to Get Started</strong> (ACH Debit; Pending is fine).</p>",
    )
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs sandbox access tokens. Not a secret: it only has to tell the sandbox's tokens from made-up
/// ones, across restarts.
const SIGNING_KEY: &[u8] = b"uspslink sandbox token signature";

fn sign(unsigned: &str) -> String {
    b64url(&Sha256::new().chain_update(SIGNING_KEY).chain_update(unsigned.as_bytes()).finalize())
}

fn make_access_token(usps: &mut Usps, user: Option<&str>, now_ms: u64) -> String {
    let id = usps.next_id("AT");
    let mut claims = json!({
        "sub": user.unwrap_or(CLIENT_ID), "user": user, "jti": id, "iss": "https://keyc.usps.com/realms/USPS",
        "iat": now_ms / 1000, "iat_ms": now_ms, "exp": now_ms / 1000 + ACCESS_TTL_SECS,
    });
    if let Some(user) = user {
        let b = business_of(user);
        claims["mail_owners"] = json!([{"crid": b.crid, "master_MID": b.mid, "mids": [b.mid]}]);
        claims["payment_accounts"] = json!({"accounts": [{"account_number": b.eps_account, "account_type": "EPS"}]});
    }
    let unsigned = format!("{}.{}", b64url(br#"{"alg":"HS256","typ":"JWT"}"#), b64url(claims.to_string().as_bytes()));
    let signature = sign(&unsigned);
    format!("{unsigned}.{signature}")
}

fn token_response(
    usps: &mut Usps,
    user: Option<&str>,
    client_id: &str,
    refresh_count: Option<u32>,
    now_ms: u64,
) -> Value {
    let access = make_access_token(usps, user, now_ms);
    let mut body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "issued_at": 0,
        "expires_in": ACCESS_TTL_SECS,
        "status": "approved",
        "scope": "addresses prices payments labels tracking",
        "issuer": "api.usps.com",
        "client_id": client_id,
        "application_name": "uspslink sandbox app",
        "api_products": "[Shipping-Payments]",
        "public_key": "sandbox",
    });
    if let (Some(user), Some(count)) = (user, refresh_count) {
        let refresh = usps.next_id("RT");
        let revoked = user == "revoked";
        usps.refresh.insert(
            refresh.clone(),
            RefreshGrant { user: user.to_string(), client_id: client_id.to_string(), valid: !revoked, count },
        );
        body["refresh_token"] = json!(refresh);
        body["refresh_token_issued_at"] = json!(0);
        body["refresh_token_expires_in"] = json!(REFRESH_TTL_SECS);
        body["refresh_token_status"] = json!("approved");
        body["refresh_count"] = json!(count);
    }
    body
}

/// `/oauth2/v3/token` takes JSON or form bodies.
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Option<HashMap<String, String>> {
    let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if ct.starts_with("application/json") {
        let v: Value = serde_json::from_slice(body).ok()?;
        let obj = v.as_object()?;
        Some(obj.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
    } else {
        serde_urlencoded::from_bytes(body).ok()
    }
}

fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    (43..=128).contains(&verifier.len()) && b64url(&Sha256::digest(verifier.as_bytes())) == challenge
}

async fn token(State(state): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    state.lock().expect("sandbox state").oauth_calls += 1;
    let Some(p) = parse_body(&headers, &body) else {
        return errors::oauth(StatusCode::BAD_REQUEST, "invalid_request", "The request body could not be read.");
    };
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    if get("client_id") != CLIENT_ID || get("client_secret") != CLIENT_SECRET {
        return errors::oauth(StatusCode::UNAUTHORIZED, "invalid_client", "Client authentication failed.");
    }
    let mut s = state.lock().expect("sandbox state");
    let now = s.now();
    let now_ms = s.unix_ms();
    let pkce = s.pkce;
    let usps = &mut s.usps;
    match get("grant_type") {
        "authorization_code" => {
            let Some(grant) = usps.codes.get_mut(get("code")) else {
                return errors::oauth(StatusCode::BAD_REQUEST, "invalid_grant", "The authorization code is invalid.");
            };
            if grant.used {
                return errors::oauth(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "The authorization code has already been used.",
                );
            }
            if now.saturating_sub(grant.issued_at) > CODE_TTL {
                return errors::oauth(StatusCode::BAD_REQUEST, "invalid_grant", "The authorization code has expired.");
            }
            if grant.client_id != get("client_id") || grant.redirect_uri != get("redirect_uri") {
                return errors::oauth(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "The redirect_uri does not match the authorization request.",
                );
            }
            if pkce == Pkce::Enforce && !pkce_matches(get("code_verifier"), &grant.challenge) {
                return errors::oauth(StatusCode::BAD_REQUEST, "invalid_grant", "PKCE verification failed.");
            }
            grant.used = true;
            let user = grant.user.clone();
            Json(token_response(usps, Some(&user), CLIENT_ID, Some(0), now_ms)).into_response()
        }
        "refresh_token" => {
            let Some(old) = usps.refresh.get_mut(get("refresh_token")) else {
                return errors::oauth(StatusCode::BAD_REQUEST, "invalid_grant", "The refresh token is invalid.");
            };
            if !old.valid || old.client_id != get("client_id") {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": "invalid_refresh_token", "error_description": "refresh_token_expired: the refresh token is no longer valid", "refresh_token_status": "Unknown"})),
                )
                    .into_response();
            }
            // Rotation: the old refresh token dies, a new one is issued.
            old.valid = false;
            let (user, count) = (old.user.clone(), old.count + 1);
            Json(token_response(usps, Some(&user), CLIENT_ID, Some(count), now_ms)).into_response()
        }
        "client_credentials" => Json(token_response(usps, None, CLIENT_ID, None, now_ms)).into_response(),
        "" => errors::oauth(StatusCode::BAD_REQUEST, "invalid_request", "grant_type is required."),
        _ => errors::oauth(StatusCode::BAD_REQUEST, "unsupported_grant_type", "The grant type is not supported."),
    }
}

fn basic_auth_ok(headers: &HeaderMap) -> bool {
    let expected =
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}")));
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
}

async fn revoke(State(state): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    state.lock().expect("sandbox state").oauth_calls += 1;
    if !basic_auth_ok(&headers) {
        return errors::oauth(StatusCode::UNAUTHORIZED, "invalid_client", "Client authentication failed.");
    }
    let Some(p) = parse_body(&headers, &body) else {
        return errors::oauth(StatusCode::BAD_REQUEST, "invalid_request", "The request body could not be read.");
    };
    let token = p.get("token").cloned().unwrap_or_default();
    if token.is_empty() {
        return errors::oauth(StatusCode::BAD_REQUEST, "invalid_request", "token is required.");
    }
    let mut s = state.lock().expect("sandbox state");
    if let Some(r) = s.usps.refresh.get_mut(&token) {
        r.valid = false;
    }
    if !s.usps.revoked_access.contains(&token) {
        s.usps.revoked_access.push(token);
    }
    StatusCode::OK.into_response()
}

#[derive(Deserialize)]
struct RevokeUser {
    username: String,
}

/// Sandbox helper: what a USPS password reset does (every token issued to the user so far dies; a new
/// sign-in works).
async fn revoke_user(State(state): State<Shared>, Json(r): Json<RevokeUser>) -> StatusCode {
    let mut s = state.lock().expect("sandbox state");
    for g in s.usps.refresh.values_mut().filter(|g| g.user == r.username) {
        g.valid = false;
    }
    let now_ms = s.unix_ms();
    s.usps.reset_at.insert(r.username, now_ms);
    StatusCode::NO_CONTENT
}

pub(crate) fn api_routes() -> Router<Shared> {
    Router::new().route("/oauth2/v3/token", post(token)).route("/oauth2/v3/revoke", post(revoke))
}

pub(crate) fn page_routes() -> Router<Shared> {
    Router::new()
        .route("/cop-navigator", get(cop_navigator))
        .route("/cop-navigator/sign-in", post(sign_in))
        .route("/cop-navigator/mfa", post(mfa))
        .route("/cop-navigator/grant", post(grant))
        .route("/business-portal", get(business_portal))
        .route("/sandbox/usps/revoke-user", post(revoke_user))
}

#[cfg(test)]
mod code_tests {
    use super::*;

    #[test]
    fn codes_are_eight_alphanumerics_and_never_repeat() {
        let mut usps = Usps::default();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..30_000 {
            let code = usps.fresh_code();
            assert!(code.len() == 8 && code.chars().all(|c| c.is_ascii_alphanumeric()), "{code}");
            assert!(seen.insert(code.clone()), "{code} issued twice");
            // Issued codes stay known (spent or not), as the sandbox keeps them.
            usps.codes.insert(
                code,
                CodeGrant {
                    client_id: String::new(),
                    redirect_uri: String::new(),
                    challenge: String::new(),
                    user: String::new(),
                    issued_at: Duration::ZERO,
                    used: false,
                },
            );
        }
    }
}
