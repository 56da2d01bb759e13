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
mod shipengine;
pub mod usps;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use faults::Fault;

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
    /// Added to the real clock, so tests can expire codes without waiting (`POST /sandbox/clock`).
    clock_offset: Duration,
    started: Option<Instant>,
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
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), faults::apply));
    Router::new()
        .merge(api)
        .route("/sandbox/health", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .merge(faults::routes())
        .merge(usps::page_routes())
        .merge(shipengine::helper_routes())
        .merge(payments::helper_routes())
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

/// A running sandbox. Dropping it stops the server.
pub struct Sandbox {
    addr: SocketAddr,
    state: Shared,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Sandbox {
    /// Bind `addr` (use port 0 for a free one) and serve in the background on the current runtime.
    pub async fn start(addr: &str) -> std::io::Result<Sandbox> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state: Shared = Arc::default();
        let app = router(state.clone());
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
