//! The uspslink sign-in service ("broker"), run by the vendor that distributes uspslink.
//!
//! Real USPS only lets a platform sign merchants in with one registered developer app whose secret
//! must stay on a server, and redirects only to the https Callback URL registered on that app (shared
//! API notes, "USPS authorization"). The broker is that server:
//!
//! - `POST /v1/usps/authorize` starts a sign-in for the app's PKCE challenge and returns the USPS
//!   sign-in address (the broker's client id, its https callback, a signed `state`);
//! - `GET /usps/callback` is that https callback: it binds USPS's raw code to the state it came with
//!   (the first state only, see `store.rs`), and hands `code` (sealed to the state, see [`seal`]) and
//!   `state` on to `uspslink://oauth/callback`;
//! - `POST /v1/usps/token`, `/v1/usps/refresh`, `/v1/usps/revoke` add the client credentials and call
//!   USPS; USPS's answer goes back to the app. A token exchange is refused unless the verifier matches
//!   the challenge the sign-in started with and the code was bound to that sign-in's state, so a
//!   code caught on its way to `uspslink://`, or read from the callback's address, is useless.
//!
//! It keeps no tokens. What it remembers (for minutes: code bindings, rate counts) lives in Redis
//! when instances share one, so any number of instances sharing the broker key and the Redis serve
//! the same users. No Tauri and no WebKit: it is a plain axum server.

pub mod config;
pub mod forwarded;
mod limit;
mod pages;
pub mod seal;
mod store;
mod upstream;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use uspslink_protocol::sign_in::{
    self, AuthorizeAnswer, AuthorizeRequest, OAuthError, RefreshRequest, RequestBody, RevokeRequest, TokenRequest,
};

pub use config::Config;
use seal::Refusal;
use store::{Bound, Fingerprint, Store, StoreError};

/// The largest request body taken (every API body is a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// The longest single parameter taken (codes, states, tokens, descriptions).
const MAX_FIELD: usize = seal::MAX_TOKEN_TEXT;
/// The longest USPS access or refresh token passed on to USPS (theirs are JWTs of about 1 KiB).
pub const MAX_USPS_TOKEN: usize = 2048;
/// `Retry-After` when the shared store cannot be reached: Redis restarting takes seconds.
pub(crate) const STORE_DOWN_RETRY_SECS: u64 = 5;

pub(crate) struct Shared {
    pub(crate) config: Config,
    store: Store,
    usps: upstream::Usps,
}

/// Which routes a rate-limit layer guards, and so what happens when Redis cannot count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guarded {
    /// Authorize and token: they bind or read a binding, so without the store they are refused.
    SignIn,
    /// Refresh and revoke need no binding: counted in this process meanwhile, linked users keep
    /// working.
    Tokens,
    /// The callback (a browser page): counted in this process meanwhile; its binding then fails and
    /// the page says so.
    Callback,
}

/// An OAuth-style error body, as USPS answers and as the app reads it.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = OAuthError { error: error.into(), error_description: Some(description.into()) };
    (status, Json(body)).into_response()
}

fn refused(r: Refusal) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", r.describe())
}

/// Whole seconds to wait, rounded up and never 0 (a `Retry-After: 0` invites a tight loop).
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

fn with_retry_after(mut r: Response, secs: u64) -> Response {
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

const SLOW_DOWN: &str = "too many requests to the uspslink sign-in service; try again shortly";
const STORE_DOWN: &str = "the uspslink sign-in service is briefly unavailable; try again shortly";
const USPS_CAP_REACHED: &str = "the uspslink sign-in service is busy; try again shortly";

/// Too many requests from one client: 429 and when to come back.
fn slow_down(wait: Duration) -> Response {
    let r = oauth_error(StatusCode::TOO_MANY_REQUESTS, "slow_down", SLOW_DOWN);
    with_retry_after(r, retry_after_secs(wait))
}

/// The shared store cannot be reached: the app tries again later, nothing was done.
fn store_down(e: &StoreError) -> Response {
    tracing::warn!("refused: the shared store cannot be reached ({e})");
    let r = oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", STORE_DOWN);
    with_retry_after(r, STORE_DOWN_RETRY_SECS)
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The routes, without a listener (used by [`Broker::start`] and by tests).
pub fn router(config: Config) -> Router {
    let shared = Arc::new(Shared {
        store: Store::new(config.redis_url.as_ref(), config.rate_per_minute, config.usps_calls_per_minute),
        usps: upstream::Usps::new(&config),
        config,
    });
    let sign_in = Router::new()
        .route(sign_in::AUTHORIZE_PATH, post(authorize))
        .route(sign_in::TOKEN_PATH, post(token))
        .route_layer(from_fn_with_state((shared.clone(), Guarded::SignIn), rate_limit));
    let tokens = Router::new()
        .route(sign_in::REFRESH_PATH, post(refresh))
        .route(sign_in::REVOKE_PATH, post(revoke))
        .route_layer(from_fn_with_state((shared.clone(), Guarded::Tokens), rate_limit));
    let api = sign_in.merge(tokens).layer(from_fn_with_state(shared.clone(), origins));
    let browser = Router::new()
        .route(sign_in::CALLBACK_PATH, get(callback))
        .route_layer(from_fn_with_state((shared.clone(), Guarded::Callback), rate_limit));
    Router::new()
        .merge(api)
        .merge(browser)
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { oauth_error(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(from_fn(access_log))
        .with_state(shared)
}

/// One line per request: method, path (never the query: it holds codes), status, time. No body,
/// header or token is ever logged.
async fn access_log(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let started = Instant::now();
    let response = next.run(req).await;
    tracing::info!(
        target: "uspslink_broker::access",
        "{method} {path} {} {:.1} ms",
        response.status().as_u16(),
        started.elapsed().as_secs_f64() * 1e3
    );
    response
}

/// Who a request counts against: the peer, or (behind trusted proxies) the client they name in
/// `X-Forwarded-For`, every header line read (see [`forwarded`]); IPv6 clients by their /64.
fn client_of(shared: &Shared, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
    let peer = peer?.ip();
    // Lossy, not skipped: a line with odd bytes still holds its entries' places for the count.
    let lines: Vec<String> =
        headers.get_all("x-forwarded-for").iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
    let client = forwarded::client_address(lines.iter().map(String::as_str), peer, &shared.config.trusted_proxies);
    Some(forwarded::bucket(client))
}

async fn rate_limit(State((shared, guarded)): State<(Arc<Shared>, Guarded)>, req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let Some(client) = client_of(&shared, req.headers(), peer) else {
        return next.run(req).await;
    };
    let verdict = match shared.store.take_client(client).await {
        Ok(v) => v,
        Err(e) if guarded == Guarded::SignIn => return store_down(&e),
        Err(e) => {
            tracing::warn!("rate limit counted in this process only: the shared store cannot be reached ({e})");
            shared.store.take_client_here(client)
        }
    };
    match verdict {
        Ok(()) => next.run(req).await,
        Err(wait) if guarded == Guarded::Callback => pages::too_many(wait),
        Err(wait) => slow_down(wait),
    }
}

/// One call to USPS against the service-wide cap; over it, the call is not made.
#[allow(clippy::result_large_err)]
async fn usps_budget(shared: &Shared, guarded: Guarded) -> Result<(), Response> {
    let verdict = match shared.store.take_usps_call().await {
        Ok(v) => v,
        Err(e) if guarded == Guarded::SignIn => return Err(store_down(&e)),
        Err(e) => {
            tracing::warn!("USPS calls counted in this process only: the shared store cannot be reached ({e})");
            shared.store.take_usps_call_here()
        }
    };
    verdict.map_err(|wait| {
        tracing::warn!("the cap on calls to USPS is reached; refusing until the minute is over");
        let r = oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", USPS_CAP_REACHED);
        with_retry_after(r, retry_after_secs(wait))
    })
}

/// The API is for the app (which sends no `Origin`), not for web pages: a browser request from an
/// origin not allowed in the configuration is refused before it does anything.
async fn origins(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).map(str::to_string) else {
        return next.run(req).await;
    };
    if !shared.config.allowed_origins.iter().any(|o| o == &origin) {
        return oauth_error(StatusCode::FORBIDDEN, "invalid_request", "requests from this origin are not allowed");
    }
    let value = HeaderValue::from_str(&origin).unwrap_or(HeaderValue::from_static("null"));
    let mut response = if req.method() == Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST"));
        r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type"));
        r
    } else {
        next.run(req).await
    };
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    response.headers_mut().insert(header::VARY, HeaderValue::from_static("origin"));
    response
}

/// For a broker inside the app on loopback: only `Host: 127.0.0.1:<port>` or `localhost:<port>`
/// (DNS rebinding: a web page's own name pointed at 127.0.0.1 arrives with that name as `Host`).
async fn loopback_host_only(State(port): State<u16>, req: Request, next: Next) -> Response {
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    let host = host.or(req.uri().authority().map(|a| a.as_str()));
    if host.is_some_and(|h| is_loopback_host(h, port)) {
        return next.run(req).await;
    }
    (StatusCode::MISDIRECTED_REQUEST, "this service answers only to 127.0.0.1 or localhost\n").into_response()
}

/// `127.0.0.1:<port>` or `localhost:<port>` (any case), and nothing else.
fn is_loopback_host(host: &str, port: u16) -> bool {
    let Some((name, p)) = host.rsplit_once(':') else {
        return false;
    };
    p == port.to_string() && (name == "127.0.0.1" || name.eq_ignore_ascii_case("localhost"))
}

/// A JSON body with every field a bounded string; the answer to anything else is `invalid_request`.
// The refusal is the answer itself, built once per bad request: boxing it would only add noise.
#[allow(clippy::result_large_err)]
fn fields<T: RequestBody>(body: Result<Bytes, BytesRejection>) -> Result<T, Response> {
    let body = body.map_err(|e| {
        let status = e.status();
        oauth_error(status, "invalid_request", &format!("the request body could not be read ({})", status.as_u16()))
    })?;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "the request body is not JSON"))?;
    let refuse = |why: String| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &why);
    let Some(object) = value.as_object() else {
        return Err(refuse("the request body is not a JSON object".into()));
    };
    if object.values().any(|v| v.as_str().is_some_and(|s| s.len() > MAX_FIELD)) {
        return Err(refuse("a field is too long".into()));
    }
    if let Some(field) = T::REQUIRED.iter().find(|f| !object.get(**f).is_some_and(serde_json::Value::is_string)) {
        return Err(refuse(format!("{field} is missing or not text")));
    }
    if let Some(field) = T::OPTIONAL.iter().find(|f| object.get(**f).is_some_and(|v| !v.is_string() && !v.is_null())) {
        return Err(refuse(format!("{field} is not text")));
    }
    serde_json::from_value(value).map_err(|_| refuse("the request body does not have the expected fields".into()))
}

async fn authorize(State(shared): State<Arc<Shared>>, body: Result<Bytes, BytesRejection>) -> Response {
    let b = match fields::<AuthorizeRequest>(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if b.code_challenge_method.as_deref().is_some_and(|m| m != sign_in::PKCE_METHOD) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "code_challenge_method must be S256");
    }
    let state = match shared.config.keys.issue_state(&b.code_challenge, now()) {
        Ok(s) => s,
        Err(r) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", r.describe()),
    };
    let c = &shared.config;
    let mut url = c.usps_authorize.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("wf", "apis_merchant_user")
            .append_pair("client_id", &c.client_id)
            .append_pair("state", &state)
            .append_pair("redirect_uri", &c.callback_url())
            // USPS does not check PKCE; passing the challenge on costs nothing if it ever does.
            .append_pair("code_challenge", &b.code_challenge)
            .append_pair("code_challenge_method", sign_in::PKCE_METHOD);
        if let Some(p) = &c.platform_name {
            q.append_pair("platform", p);
        }
    }
    Json(AuthorizeAnswer { authorize_url: url.into(), state, expires_in: seal::STATE_TTL_SECS }).into_response()
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return pages::not_valid();
    };
    let too_long = [&q.code, &q.state, &q.error, &q.error_description]
        .iter()
        .any(|f| f.as_ref().is_some_and(|s| s.len() > MAX_FIELD));
    let Some(state) = q.state.filter(|_| !too_long) else {
        return pages::not_valid();
    };
    // Only a state this service issued is handed on: the page cannot be used to send made-up
    // answers into the app.
    if shared.config.keys.verify_state(&state, now()).is_err() {
        return pages::not_valid();
    }
    let app = &shared.config.app_redirect;
    match (q.code, q.error) {
        (_, Some(error)) => {
            // Within the rule the app's deep-link parser holds to, or it would drop the whole
            // answer and the user would never learn why the sign-in failed.
            let denied = error == "access_denied";
            let error = pages::error_for_app(&error);
            let description = q.error_description.as_deref().and_then(pages::description_for_app);
            let mut params = vec![("error", error.as_str()), ("state", state.as_str())];
            if let Some(d) = &description {
                params.insert(1, ("error_description", d.as_str()));
            }
            pages::hand_on(app, &params, &pages::Outcome::Refused { denied })
        }
        // A USPS code is eight characters; the sealed form of one this long still fits the app's limit.
        (Some(code), None) if !code.is_empty() && code.len() <= MAX_CODE => {
            match shared.store.bind(Fingerprint::of(&code), Fingerprint::of(&state)).await {
                Ok(Bound::First | Bound::Again) => {
                    let sealed = shared.config.keys.seal_code(&code, &state);
                    pages::hand_on(app, &[("code", &sealed), ("state", &state)], &pages::Outcome::SignedIn)
                }
                Ok(Bound::ToAnotherState) => {
                    tracing::warn!("refused a callback: its code came with another sign-in's state first");
                    pages::code_taken()
                }
                Err(e) => {
                    tracing::warn!("refused a callback: the shared store cannot be reached ({e})");
                    pages::busy()
                }
            }
        }
        _ => pages::not_valid(),
    }
}

/// The longest USPS code handed on (sealed, it stays within the app's 512-byte limit).
const MAX_CODE: usize = 256;

async fn token(State(shared): State<Arc<Shared>>, body: Result<Bytes, BytesRejection>) -> Response {
    let b = match fields::<TokenRequest>(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let keys = &shared.config.keys;
    let claims = match keys.verify_state(&b.state, now()) {
        Ok(c) => c,
        Err(r) => return refused(r),
    };
    if !claims.verifier_matches(&b.code_verifier) {
        tracing::warn!("refused a code exchange whose verifier does not match its sign-in");
        return refused(Refusal::VerifierMismatch);
    }
    let code = match keys.open_code(&b.code, &b.state) {
        Ok(c) => c,
        Err(r) => return refused(r),
    };
    // Only a code this store saw arrive with exactly this state: unbound (seen elsewhere, or never)
    // is refused, never exchanged.
    match shared.store.is_bound_to(Fingerprint::of(&code), Fingerprint::of(&b.state)).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!("refused a code exchange: the code was not received for this sign-in");
            return refused(Refusal::CodeNotBound);
        }
        Err(e) => return store_down(&e),
    }
    if let Err(r) = usps_budget(&shared, Guarded::SignIn).await {
        return r;
    }
    shared.usps.exchange(&code, &b.code_verifier).await
}

/// The characters of a USPS token (JWTs and opaque tokens: base64, base64url, dots), at most
/// [`MAX_USPS_TOKEN`] bytes. Nothing else is sent to USPS with the vendor's credentials.
pub fn is_usps_token(token: &str) -> bool {
    (1..=MAX_USPS_TOKEN).contains(&token.len())
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))
}

#[allow(clippy::result_large_err)]
fn usps_token(field: &str, token: &str) -> Result<(), Response> {
    if is_usps_token(token) {
        return Ok(());
    }
    Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &format!("{field} is not a USPS token")))
}

async fn refresh(State(shared): State<Arc<Shared>>, body: Result<Bytes, BytesRejection>) -> Response {
    let b = match fields::<RefreshRequest>(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = usps_token("refresh_token", &b.refresh_token) {
        return r;
    }
    if let Err(r) = usps_budget(&shared, Guarded::Tokens).await {
        return r;
    }
    shared.usps.refresh(&b.refresh_token).await
}

async fn revoke(State(shared): State<Arc<Shared>>, body: Result<Bytes, BytesRejection>) -> Response {
    let b = match fields::<RevokeRequest>(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = usps_token("token", &b.token) {
        return r;
    }
    let hint = match b.token_type_hint.as_deref() {
        None | Some("access_token") => "access_token",
        Some("refresh_token") => "refresh_token",
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "token_type_hint must be access_token or refresh_token",
            )
        }
    };
    if let Err(r) = usps_budget(&shared, Guarded::Tokens).await {
        return r;
    }
    shared.usps.revoke(&b.token, hint).await
}

/// A running broker. Dropping it stops the server.
pub struct Broker {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Broker {
    /// Serve `router(config)` on `listener` in the background of the current runtime.
    pub fn serve(listener: TcpListener, config: Config) -> std::io::Result<Broker> {
        let addr = listener.local_addr()?;
        let loopback_only = config.require_loopback_host;
        let mut app = router(config);
        if loopback_only {
            app = app.layer(axum::middleware::from_fn_with_state(addr.port(), loopback_host_only));
        }
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!("sign-in service stopped: {e}");
            }
        });
        Ok(Broker { addr, shutdown: Some(tx) })
    }

    /// Bind `addr` (port 0 for a free one) and serve. `config` must name this address as its public
    /// URL or leave it to [`Config::public_url_for`].
    pub async fn start(addr: &str, config: impl FnOnce(SocketAddr) -> Config) -> std::io::Result<Broker> {
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        Broker::serve(listener, config(bound))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn usps_tokens_have_a_shape() {
        assert!(is_usps_token("RT0001abcdef"));
        assert!(is_usps_token("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl-_~+/="));
        assert!(is_usps_token(&"a".repeat(MAX_USPS_TOKEN)));
        for bad in ["", "has space", "new\nline", "caf\u{e9}", "a&b=c", "quote\"", &"a".repeat(MAX_USPS_TOKEN + 1)] {
            assert!(!is_usps_token(bad), "{bad:?}");
        }
    }

    /// A body missing a required field, or with a number for text, is refused with 400 before serde
    /// reads it (that the lists are the bodies' own fields is uspslink-protocol's test).
    fn named_fields_match<T: RequestBody>() {
        let full: serde_json::Map<String, serde_json::Value> =
            T::REQUIRED.iter().chain(T::OPTIONAL).map(|f| (f.to_string(), "x".into())).collect();
        let parse = |o: &serde_json::Map<String, serde_json::Value>| {
            fields::<T>(Ok(Bytes::from(serde_json::to_vec(o).unwrap()))).map(|_| ()).map_err(|r| r.status())
        };
        assert!(parse(&full).is_ok());
        for f in T::REQUIRED {
            let mut without = full.clone();
            without.remove(*f);
            assert_eq!(parse(&without), Err(StatusCode::BAD_REQUEST));
            let mut number = full.clone();
            number.insert(f.to_string(), 7.into());
            assert_eq!(parse(&number), Err(StatusCode::BAD_REQUEST));
        }
        for f in T::OPTIONAL {
            let mut without = full.clone();
            without.remove(*f);
            assert!(parse(&without).is_ok(), "{f} is optional");
            let mut number = full.clone();
            number.insert(f.to_string(), 7.into());
            assert_eq!(parse(&number), Err(StatusCode::BAD_REQUEST));
        }
    }

    #[test]
    fn refusals_name_the_bodies_own_fields() {
        named_fields_match::<AuthorizeRequest>();
        named_fields_match::<TokenRequest>();
        named_fields_match::<RefreshRequest>();
        named_fields_match::<RevokeRequest>();
    }

    #[test]
    fn hosts_on_loopback() {
        assert!(is_loopback_host("127.0.0.1:4000", 4000));
        assert!(is_loopback_host("LOCALHOST:4000", 4000));
        for bad in ["127.0.0.1:4001", "127.0.0.1", "evil.example:4000", "127.0.0.1.evil.example:4000", "[::1]:4000"] {
            assert!(!is_loopback_host(bad, 4000), "{bad:?}");
        }
    }

    #[test]
    fn retry_after_is_whole_seconds_and_never_zero() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2_001)), 3);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]
        // A refresh or revoke token from the app (any text) is judged without panicking, and only
        // the token alphabet passes.
        #[test]
        fn any_token_text(token in "\\PC*", host in "\\PC*") {
            if is_usps_token(&token) {
                prop_assert!(token.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'&'));
            }
            let _ = is_loopback_host(&host, 4000);
        }
    }
}
