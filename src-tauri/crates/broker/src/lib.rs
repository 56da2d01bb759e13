//! The uspslink sign-in service ("broker"), run by the vendor that distributes uspslink.
//!
//! Real USPS only lets a platform sign merchants in with one registered developer app whose secret
//! must stay on a server, and redirects only to the https Callback URL registered on that app (shared
//! API notes, "USPS authorization"). The broker is that server:
//!
//! - `POST /v1/usps/authorize` starts a sign-in for the app's PKCE challenge and returns the USPS
//!   sign-in address (the broker's client id, its https callback, a signed `state`);
//! - `GET /usps/callback` is that https callback: it hands `code` (sealed to the state, see [`seal`])
//!   and `state` on to `uspslink://oauth/callback`;
//! - `POST /v1/usps/token`, `/v1/usps/refresh`, `/v1/usps/revoke` add the client credentials and call
//!   USPS; USPS's answer goes back to the app. A token exchange is refused unless the verifier matches
//!   the challenge the sign-in started with, so a code caught on its way to `uspslink://` is useless.
//!
//! It keeps no tokens and no per-user state: any number of instances sharing the broker key serve
//! the same users. No Tauri and no WebKit: it is a plain axum server.

pub mod config;
mod limit;
mod pages;
pub mod seal;
mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use config::Config;
use seal::Refusal;

/// The largest request body taken (every API body is a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// The longest single parameter taken (codes, states, tokens, descriptions).
const MAX_FIELD: usize = seal::MAX_TOKEN_TEXT;

pub(crate) struct Shared {
    pub(crate) config: Config,
    limiter: limit::RateLimiter,
    usps: upstream::Usps,
}

/// An OAuth-style error body, as USPS answers and as the app reads it.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (status, Json(json!({"error": error, "error_description": description}))).into_response()
}

fn refused(r: Refusal) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", r.describe())
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The routes, without a listener (used by [`Broker::start`] and by tests).
pub fn router(config: Config) -> Router {
    let shared = Arc::new(Shared {
        limiter: limit::RateLimiter::new(config.rate_per_minute),
        usps: upstream::Usps::new(&config),
        config,
    });
    let api = Router::new()
        .route("/v1/usps/authorize", post(authorize))
        .route("/v1/usps/token", post(token))
        .route("/v1/usps/refresh", post(refresh))
        .route("/v1/usps/revoke", post(revoke))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), rate_limit))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), origins));
    Router::new()
        .merge(api)
        .route("/healthz", get(|| async { "ok" }))
        .route("/usps/callback", get(callback))
        .fallback(|| async { oauth_error(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(access_log))
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

/// Who a request counts against: the peer, or (behind a trusted load balancer) the address it
/// appended last to `X-Forwarded-For`.
fn client_of(shared: &Shared, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<std::net::IpAddr> {
    if shared.config.trust_forwarded_for {
        let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        if let Some(ip) = forwarded.and_then(|f| f.rsplit(',').next()).and_then(|ip| ip.trim().parse().ok()) {
            return Some(ip);
        }
    }
    peer.map(|p| p.ip())
}

async fn rate_limit(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    if let Some(client) = client_of(&shared, req.headers(), peer) {
        if let Err(wait) = shared.limiter.take(client, Instant::now()) {
            let mut r = oauth_error(
                StatusCode::TOO_MANY_REQUESTS,
                "slow_down",
                "too many requests to the uspslink sign-in service; try again shortly",
            );
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
            return r;
        }
    }
    next.run(req).await
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

/// A JSON body with every field a bounded string; the answer to anything else is `invalid_request`.
// The refusal is the answer itself, built once per bad request: boxing it would only add noise.
#[allow(clippy::result_large_err)]
fn fields<T: serde::de::DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, Response> {
    let body = body.map_err(|e| {
        let status = e.status();
        oauth_error(status, "invalid_request", &format!("the request body could not be read ({})", status.as_u16()))
    })?;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "the request body is not JSON"))?;
    let too_long =
        value.as_object().is_some_and(|o| o.values().any(|v| v.as_str().is_some_and(|s| s.len() > MAX_FIELD)));
    if too_long {
        return Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "a field is too long"));
    }
    serde_json::from_value(value).map_err(|e| {
        let what = e.to_string();
        let field = what.split('`').nth(1).unwrap_or("a field");
        oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &format!("{field} is missing or not text"))
    })
}

#[derive(Deserialize)]
struct AuthorizeBody {
    code_challenge: String,
    #[serde(default)]
    code_challenge_method: Option<String>,
}

async fn authorize(State(shared): State<Arc<Shared>>, body: Result<Bytes, BytesRejection>) -> Response {
    let b: AuthorizeBody = match fields(body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if b.code_challenge_method.as_deref().is_some_and(|m| m != "S256") {
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
            .append_pair("code_challenge_method", "S256");
        if let Some(p) = &c.platform_name {
            q.append_pair("platform", p);
        }
    }
    Json(json!({"authorize_url": url.as_str(), "state": state, "expires_in": seal::STATE_TTL_SECS})).into_response()
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
            // Within what the app's deep-link parser takes (64 and 512 bytes), or it would drop the
            // whole answer and the user would never learn why the sign-in failed.
            let error: String =
                shorten(&error, 64).chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let error = if error.is_empty() { "server_error".to_string() } else { error };
            let description = shorten(&q.error_description.unwrap_or_default(), 300).to_string();
            let mut params = vec![("error", error.as_str()), ("state", state.as_str())];
            if !description.is_empty() {
                params.insert(1, ("error_description", description.as_str()));
            }
            pages::hand_on(app, &params, &pages::Outcome::Refused(&description))
        }
        // A USPS code is eight characters; the sealed form of one this long still fits the app's limit.
        (Some(code), None) if !code.is_empty() && code.len() <= MAX_CODE => {
            let sealed = shared.config.keys.seal_code(&code, &state);
            pages::hand_on(app, &[("code", &sealed), ("state", &state)], &pages::Outcome::SignedIn)
        }
        _ => pages::not_valid(),
    }
}

/// The longest USPS code handed on (sealed, it stays within the app's 512-byte limit).
const MAX_CODE: usize = 256;

/// At most `max` bytes of `s`, cut at a character boundary.
fn shorten(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[derive(Deserialize)]
struct TokenBody {
    code: String,
    state: String,
    code_verifier: String,
}

async fn token(State(shared): State<Arc<Shared>>, body: Result<Bytes, BytesRejection>) -> Response {
    let b: TokenBody = match fields(body) {
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
    shared.usps.exchange(&code, &b.code_verifier).await
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

async fn refresh(State(shared): State<Arc<Shared>>, body: Result<Bytes, BytesRejection>) -> Response {
    match fields::<RefreshBody>(body) {
        Ok(b) if !b.refresh_token.is_empty() => shared.usps.refresh(&b.refresh_token).await,
        Ok(_) => oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "refresh_token is empty"),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct RevokeBody {
    token: String,
    #[serde(default)]
    token_type_hint: Option<String>,
}

async fn revoke(State(shared): State<Arc<Shared>>, body: Result<Bytes, BytesRejection>) -> Response {
    match fields::<RevokeBody>(body) {
        Ok(b) if !b.token.is_empty() => {
            let hint = match b.token_type_hint.as_deref() {
                Some("refresh_token") => "refresh_token",
                _ => "access_token",
            };
            shared.usps.revoke(&b.token, hint).await
        }
        Ok(_) => oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "token is empty"),
        Err(r) => r,
    }
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
        let app = router(config).into_make_service_with_connect_info::<SocketAddr>();
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
