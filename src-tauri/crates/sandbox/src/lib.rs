//! The uspslink sandbox: a local HTTP server that speaks the USPS and ShipEngine API contract
//! (docs/DESIGN.md, "The sandbox: the contract it speaks"), so the whole flow can be clicked through and
//! tested with no credentials.
//!
//! It deliberately does not depend on `uspslink-core`: it implements the contract on its own, so a
//! misunderstanding in the clients cannot be mirrored by the fake and pass unnoticed.

// Handlers answer a refused request with the error `Response` itself (`Result<_, Response>`): boxing
// it to please `result_large_err` would only add noise to a local test server.
#![allow(clippy::result_large_err)]

mod errors;
mod faults;
pub mod payments;
pub mod prices;
mod shipengine;
pub mod usps;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use faults::Fault;

/// How the sandbox's USPS treats PKCE.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Pkce {
    /// An S256 challenge is required at the sign-in page and checked at the token endpoint (the
    /// sandbox's default, so the app's own PKCE is tested).
    #[default]
    Enforce,
    /// Like real USPS: a challenge is taken (or none) and never checked; a code is exchanged with
    /// any verifier or none. For testing what stands between a caught code and its use when USPS
    /// does not help (the sign-in service's own checks).
    Ignore,
}

/// How a sandbox started with [`Sandbox::start_with`] behaves.
#[derive(Clone, Default)]
pub struct SandboxOptions {
    pub pkce: Pkce,
    /// When set, every `/sandbox/*` helper route (the fake phone inbox, faults, the clock, USPS
    /// approvals) wants `Authorization: Bearer <token>` and answers 401 otherwise, so other programs
    /// on the machine cannot read SMS codes or change the sandbox behind the app's back.
    pub helper_token: Option<String>,
}

/// Everything the sandbox remembers. One lock: the sandbox is for tests and demos, not throughput.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) faults: faults::FaultTable,
    pub(crate) shipengine: shipengine::Accounts,
    pub(crate) usps: usps::Usps,
    pub(crate) stamps: shipengine::Stamps,
    request_counter: u64,
    /// Payment authorizations granted (`GET /sandbox/usps/payment-authorizations`).
    pub(crate) usps_payment_authorizations: u64,
    /// Businesses (CRIDs) whose NSA contract USPS approved (`POST /sandbox/usps/approve-contract`).
    pub(crate) approved_contracts: std::collections::HashSet<String>,
    /// Stamps.com carriers whose platform applies the approved contract to its quotes
    /// (`POST /sandbox/shipengine/apply-contract`).
    pub(crate) platform_contracts: std::collections::HashSet<String>,
    /// Added to the real clock, so tests can expire codes without waiting (`POST /sandbox/clock`).
    clock_offset: Duration,
    started: Option<Instant>,
    pub(crate) pkce: Pkce,
    /// Requests that reached USPS's OAuth endpoints (token and revoke), for tests that prove USPS
    /// was never called.
    pub(crate) oauth_calls: u64,
}

impl State {
    /// Time since the sandbox started, plus any offset a test added.
    pub(crate) fn now(&mut self) -> Duration {
        self.started.get_or_insert_with(Instant::now).elapsed() + self.clock_offset
    }

    /// Wall-clock Unix time in milliseconds, plus any offset a test added (token expiry survives a
    /// sandbox restart, so it cannot be measured from the sandbox's start).
    pub(crate) fn unix_ms(&self) -> u64 {
        let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        (wall + self.clock_offset).as_millis() as u64
    }

    /// Deterministic, UUID-shaped request ids (ShipEngine's `request_id`).
    pub(crate) fn next_request_id(&mut self) -> String {
        self.request_counter += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.request_counter)
    }
}

pub(crate) type Shared = Arc<Mutex<State>>;

/// The HTTP routes, without a listener (used by `start` and by tests).
pub(crate) fn router(state: Shared) -> Router {
    let api = Router::new()
        .merge(shipengine::routes())
        .merge(usps::api_routes())
        .merge(payments::routes())
        .merge(prices::routes())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), faults::apply));
    Router::new()
        .merge(api)
        .route("/sandbox/health", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .merge(faults::routes())
        .merge(usps::page_routes())
        .merge(shipengine::helper_routes())
        .merge(payments::helper_routes())
        .merge(prices::helper_routes())
        .route("/sandbox/clock", axum::routing::post(advance_clock))
        .fallback(errors::not_found)
        .with_state(state)
}

#[derive(serde::Deserialize)]
struct ClockAdvance {
    advance_secs: u64,
}

/// The longest move of the clock a test may ask for (ten years): far past every expiry the sandbox
/// has, and far from the point where the offset would overflow.
const MAX_CLOCK_ADVANCE_SECS: u64 = 10 * 366 * 86_400;

async fn advance_clock(
    axum::extract::State(state): axum::extract::State<Shared>,
    Json(c): Json<ClockAdvance>,
) -> Response {
    let mut s = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let next = s.clock_offset.checked_add(Duration::from_secs(c.advance_secs));
    match next.filter(|n| n.as_secs() <= MAX_CLOCK_ADVANCE_SECS) {
        Some(next) => {
            s.now();
            s.clock_offset = next;
            axum::http::StatusCode::NO_CONTENT.into_response()
        }
        None => (
            axum::http::StatusCode::BAD_REQUEST,
            Json(serde_json::json!({
                "error": "invalid_request",
                "error_description": format!("the clock moves forward by at most {MAX_CLOCK_ADVANCE_SECS} seconds in all"),
            })),
        )
            .into_response(),
    }
}

/// What guards every request: the `Host` must be this machine's name for the sandbox (a web page
/// cannot reach it under a name of its own: DNS rebinding), and the helper routes may want a token.
#[derive(Clone)]
struct Gate {
    port: u16,
    /// SHA-256 of the helper token: compared digest to digest, in constant time.
    helper_token: Option<[u8; 32]>,
}

const NOT_THIS_HOST: &str = "the sandbox answers only to 127.0.0.1 or localhost\n";

async fn gate(axum::extract::State(gate): axum::extract::State<Gate>, req: Request, next: Next) -> Response {
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    let host = host.or(req.uri().authority().map(|a| a.as_str()));
    if !host.is_some_and(|h| is_local_host(h, gate.port)) {
        return (StatusCode::MISDIRECTED_REQUEST, NOT_THIS_HOST).into_response();
    }
    if let Some(expected) = &gate.helper_token {
        if req.uri().path().starts_with("/sandbox/") && !bearer_matches(req.headers(), expected) {
            return (StatusCode::UNAUTHORIZED, "the sandbox's helper routes want its token\n").into_response();
        }
    }
    next.run(req).await
}

/// `127.0.0.1:<port>`, `localhost:<port>` (any case) or `[::1]:<port>`: names only this machine has.
fn is_local_host(host: &str, port: u16) -> bool {
    let Some((name, p)) = host.rsplit_once(':') else {
        return false;
    };
    p == port.to_string() && (name == "127.0.0.1" || name == "[::1]" || name.eq_ignore_ascii_case("localhost"))
}

fn bearer_matches(headers: &HeaderMap, expected: &[u8; 32]) -> bool {
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let Some(given) = given.and_then(|v| v.strip_prefix("Bearer ")) else {
        return false;
    };
    let digest: [u8; 32] = Sha256::digest(given.as_bytes()).into();
    // Every byte compared, whatever differs first.
    digest.iter().zip(expected).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}

/// A running sandbox. Dropping it stops the server.
pub struct Sandbox {
    addr: SocketAddr,
    state: Shared,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Sandbox {
    /// Bind `addr` (use port 0 for a free one) and serve in the background on the current runtime,
    /// with PKCE enforced and no helper token. Only requests for `127.0.0.1:<port>` or
    /// `localhost:<port>` are answered (421 otherwise).
    pub async fn start(addr: &str) -> std::io::Result<Sandbox> {
        Sandbox::start_with(addr, SandboxOptions::default()).await
    }

    /// [`Sandbox::start`] with options: USPS's PKCE behaviour, and a token the `/sandbox/*` helper
    /// routes want (`Authorization: Bearer <token>`).
    pub async fn start_with(addr: &str, options: SandboxOptions) -> std::io::Result<Sandbox> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state: Shared = Arc::new(Mutex::new(State { pkce: options.pkce, ..State::default() }));
        let gate_state =
            Gate { port: addr.port(), helper_token: options.helper_token.map(|t| Sha256::digest(t.as_bytes()).into()) };
        let app = router(state.clone()).layer(axum::middleware::from_fn_with_state(gate_state, gate));
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!("sandbox server stopped: {e}");
            }
        });
        Ok(Sandbox { addr, state, shutdown: Some(tx) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many requests reached USPS's OAuth endpoints (`/oauth2/v3/token` and `/oauth2/v3/revoke`)
    /// so far.
    pub fn oauth_calls(&self) -> u64 {
        self.state.lock().expect("sandbox state").oauth_calls
    }

    /// USPS approves the sandbox business's NSA contract (as `POST /sandbox/usps/approve-contract`).
    pub fn approve_contract(&self) {
        self.state.lock().expect("sandbox state").approved_contracts.insert(usps::CRID.to_string());
    }

    /// Make the next `count` calls of `route` (a path template like `/v1/carriers`) misbehave.
    pub fn inject_fault(&self, route: &str, fault: Fault, count: u32) {
        self.state.lock().expect("sandbox state").faults.insert(route, fault, count);
    }

    /// Run until the process is killed (the `uspslink sandbox` command).
    pub async fn wait_forever(mut self) {
        let _keep = self.shutdown.take();
        std::future::pending::<()>().await;
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;

    pub async fn start() -> (Sandbox, reqwest::Client) {
        (Sandbox::start("127.0.0.1:0").await.unwrap(), reqwest::Client::new())
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::start;

    #[tokio::test]
    async fn health_and_unknown_routes() {
        let (sb, http) = start().await;
        let r = http.get(format!("{}/sandbox/health", sb.base_url())).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let r = http.get(format!("{}/v1/nothing-here", sb.base_url())).send().await.unwrap();
        assert_eq!(r.status(), 404);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["errors"][0]["error_code"], "not_found");
        assert!(body["request_id"].as_str().unwrap().len() == 36);
        let r = http.get(format!("{}/payments/v3/nothing", sb.base_url())).send().await.unwrap();
        assert_eq!(r.status(), 404);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "404");
        assert!(body["apiVersion"].is_string());
        let r = http.post(format!("{}/oauth2/v3/nothing", sb.base_url())).send().await.unwrap();
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
    }

    /// `GET path` with this `Host`, over a plain socket (an HTTP client would set `Host` itself).
    async fn status_with_host(addr: std::net::SocketAddr, path: &str, host: &str, bearer: Option<&str>) -> u16 {
        let auth = bearer.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n");
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut socket = std::net::TcpStream::connect(addr).unwrap();
            socket.write_all(request.as_bytes()).unwrap();
            let mut answer = String::new();
            let _ = socket.read_to_string(&mut answer);
            answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn only_this_machines_names_are_answered() {
        let (sb, _) = start().await;
        let port = sb.addr().port();
        for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("LocalHost:{port}")] {
            assert_eq!(status_with_host(sb.addr(), "/sandbox/health", &host, None).await, 200, "{host}");
        }
        // A web page's own name resolving to 127.0.0.1 (DNS rebinding), or another port: refused.
        let refused: [String; 3] = [format!("evil.example:{port}"), "127.0.0.1:1".into(), "127.0.0.1".into()];
        for host in refused {
            assert_eq!(status_with_host(sb.addr(), "/sandbox/health", &host, None).await, 421, "{host:?}");
        }
    }

    #[tokio::test]
    async fn a_helper_token_guards_every_helper_route_and_nothing_else() {
        let options = crate::SandboxOptions { helper_token: Some("the-token".into()), ..Default::default() };
        let sb = crate::Sandbox::start_with("127.0.0.1:0", options).await.unwrap();
        let host = format!("127.0.0.1:{}", sb.addr().port());
        for path in ["/sandbox/health", "/sandbox/phone-inbox/1111111111", "/sandbox/usps/payment-authorizations"] {
            assert_eq!(status_with_host(sb.addr(), path, &host, None).await, 401, "{path}");
            assert_eq!(status_with_host(sb.addr(), path, &host, Some("the-toke")).await, 401, "{path}");
            assert_eq!(status_with_host(sb.addr(), path, &host, Some("the-token-and-more")).await, 401, "{path}");
            assert_ne!(status_with_host(sb.addr(), path, &host, Some("the-token")).await, 401, "{path}");
        }
        let clock = format!("{}/sandbox/clock", sb.base_url());
        let r = reqwest::Client::new().post(clock).json(&serde_json::json!({"advance_secs": 1})).send().await.unwrap();
        assert_eq!(r.status(), 401);
        // The services it imitates are not behind the token (their own credentials guard them).
        assert_eq!(status_with_host(sb.addr(), "/cop-navigator?wf=x", &host, None).await, 200);
        // Without a token configured, the helpers are open as before.
        let (open, _) = start().await;
        let host = format!("127.0.0.1:{}", open.addr().port());
        assert_eq!(status_with_host(open.addr(), "/sandbox/health", &host, None).await, 200);
    }

    #[tokio::test]
    async fn stops_when_dropped() {
        let (sb, http) = start().await;
        let url = format!("{}/sandbox/health", sb.base_url());
        drop(sb);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(http.get(url).send().await.is_err());
    }
}

#[cfg(test)]
mod usps_tests;
