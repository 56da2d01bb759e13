//! Fault injection: make the next N calls of a route fail in a chosen way, so tests can prove
//! retries and error messages. Set from tests directly or over HTTP (`POST /sandbox/faults`).

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use crate::{errors, Shared};

/// How a call misbehaves. Fields combine: a delay then a status, for instance.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Fault {
    /// Answer with this status and the owning service's error body.
    pub status: Option<u16>,
    /// `Retry-After` header (seconds) on that answer.
    pub retry_after: Option<u64>,
    /// Wait this long before answering (or before running the real handler).
    pub delay_ms: Option<u64>,
    /// Send headers, then break the connection mid-body (the real handler does not run).
    pub drop_connection: bool,
    /// Run the real handler (the change happens), then break the connection: the answer is lost.
    pub lose_response: bool,
    /// Answer 200 with a body that is not valid JSON.
    pub malformed: bool,
    /// On USPS's OAuth routes, the `error` of that answer (`invalid_grant`, `invalid_client`, ...)
    /// instead of the generic one, to stand in for what USPS says.
    pub error: Option<String>,
    /// On USPS's price search, answer a CONTRACT request with the published (COMMERCIAL) price and
    /// USPS's warning "Contract rate not found for request. Published rate returned.", as USPS does
    /// when a contract does not cover the request.
    pub published_fallback: bool,
}

/// Set on a request whose fault is [`Fault::published_fallback`], for the price search to read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PublishedFallback;

#[derive(Default)]
pub(crate) struct FaultTable {
    by_route: HashMap<String, (Fault, u32)>,
}

impl FaultTable {
    pub(crate) fn insert(&mut self, route: &str, fault: Fault, count: u32) {
        if count > 0 {
            self.by_route.insert(route.to_string(), (fault, count));
        } else {
            self.by_route.remove(route);
        }
    }

    /// Take one use of the fault for `route`, if any.
    fn take(&mut self, route: &str) -> Option<Fault> {
        let (fault, left) = self.by_route.get_mut(route)?;
        let fault = fault.clone();
        *left -= 1;
        if *left == 0 {
            self.by_route.remove(route);
        }
        Some(fault)
    }
}

#[derive(Deserialize)]
struct FaultRequest {
    route: String,
    #[serde(default = "one")]
    count: u32,
    #[serde(flatten)]
    fault: Fault,
}

fn one() -> u32 {
    1
}

pub(crate) fn routes() -> Router<Shared> {
    Router::new().route(
        "/sandbox/faults",
        post(|State(state): State<Shared>, Json(req): Json<FaultRequest>| async move {
            state.lock().expect("sandbox state").faults.insert(&req.route, req.fault, req.count);
            StatusCode::NO_CONTENT
        })
        .delete(|State(state): State<Shared>| async move {
            state.lock().expect("sandbox state").faults = FaultTable::default();
            StatusCode::NO_CONTENT
        }),
    )
}

/// Middleware on every API route: looks the route template up (and the concrete path, so a test can
/// target one id) and applies the fault before or instead of the real handler.
pub(crate) async fn apply(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let template = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string());
    let path = req.uri().path().to_string();
    let fault = {
        let mut s = state.lock().expect("sandbox state");
        let by_path = s.faults.take(&path);
        by_path.or_else(|| template.and_then(|t| s.faults.take(&t)))
    };
    let Some(fault) = fault else {
        return next.run(req).await;
    };
    let mut req = req;
    if fault.published_fallback {
        req.extensions_mut().insert(PublishedFallback);
    }
    if let Some(ms) = fault.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if fault.drop_connection || fault.lose_response {
        if fault.lose_response {
            let _ = next.run(req).await;
        }
        let broken = futures_util::stream::once(async {
            Err::<axum::body::Bytes, _>(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "sandbox: dropped"))
        });
        return Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .header("content-length", "1000")
            .body(Body::from_stream(broken))
            .expect("static response");
    }
    if fault.malformed {
        return (StatusCode::OK, [("content-type", "application/json")], "{\"carriers\": [ {\"carrier_id\"")
            .into_response();
    }
    if let Some(code) = fault.status {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = match code {
            429 => "You have exceeded the rate limit. Please see https://www.shipengine.com/docs/rate-limits",
            c if c >= 500 => "An internal error occurred (injected by the sandbox).",
            _ => "The request failed (injected by the sandbox).",
        };
        let mut resp = match &fault.error {
            Some(error) if path.starts_with("/oauth2/") => errors::oauth(status, error, message),
            _ => errors::for_path(&state, &path, status, message),
        };
        if let Some(secs) = fault.retry_after {
            resp.headers_mut().insert("retry-after", HeaderValue::from(secs));
        }
        return resp;
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use crate::testutil::start;

    #[tokio::test]
    async fn http_fault_api_applies_to_the_next_n_calls() {
        let (sb, http) = start().await;
        let r = http
            .post(format!("{}/sandbox/faults", sb.base_url()))
            .json(&serde_json::json!({"route": "/v1/carriers", "count": 2, "status": 503, "retry_after": 3}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        for _ in 0..2 {
            let r = http
                .get(format!("{}/v1/carriers", sb.base_url()))
                .header("API-Key", "sandbox_key1")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 503);
            assert_eq!(r.headers()["retry-after"], "3");
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["errors"][0]["error_type"], "system");
        }
        let r =
            http.get(format!("{}/v1/carriers", sb.base_url())).header("API-Key", "sandbox_key1").send().await.unwrap();
        assert_eq!(r.status(), 200);
    }

    #[tokio::test]
    async fn delay_then_real_answer() {
        let (sb, http) = start().await;
        sb.inject_fault("/v1/carriers", crate::Fault { delay_ms: Some(300), ..Default::default() }, 1);
        let t = std::time::Instant::now();
        let r =
            http.get(format!("{}/v1/carriers", sb.base_url())).header("API-Key", "sandbox_key1").send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(t.elapsed() >= std::time::Duration::from_millis(300));
    }

    #[tokio::test]
    async fn clearing_faults() {
        let (sb, http) = start().await;
        sb.inject_fault("/v1/carriers", crate::Fault { status: Some(500), ..Default::default() }, 5);
        let r = http.delete(format!("{}/sandbox/faults", sb.base_url())).send().await.unwrap();
        assert_eq!(r.status(), 204);
        let r =
            http.get(format!("{}/v1/carriers", sb.base_url())).header("API-Key", "sandbox_key1").send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
}
