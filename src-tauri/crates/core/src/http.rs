//! The one way the API clients build their HTTP client and send a request.
//!
//! - No redirects are followed: an `API-Key` header, a card number or a client secret must never be
//!   replayed to another host because a server (or something between) answered 3xx.
//! - Plain `http://` only to this machine (the Sandbox, a local test server): anywhere else the
//!   client refuses to send, so a mistyped or planted base URL cannot carry a secret in clear.
//! - Idempotent calls (reads) are retried on 429/502/503/504 and on a dropped connection, with
//!   backoff, honouring `Retry-After` up to [`MAX_RETRY_AFTER`]; the wait is reported to an observer
//!   so the UI can count it down. Writes are sent once, and so is a token refresh: the token rotates,
//!   and USPS may have retired it before the answer was lost.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::Serialize;
use ts_rs::TS;

/// How many times an idempotent call is sent again after the first try.
pub const MAX_RETRIES: u32 = 3;
/// A longer `Retry-After` is not waited out: the error says how long, and the user decides.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// First backoff without a `Retry-After`; doubled on each retry.
pub const BASE_BACKOFF: Duration = Duration::from_millis(500);

/// Whether the base URL points at this machine, where plain http cannot be overheard.
pub fn is_loopback(base: &str) -> bool {
    let Ok(url) = url::Url::parse(base) else { return false };
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A client for one base URL: no redirects, https only unless the base is on this machine.
pub fn client_for(base: &str, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .https_only(!is_loopback(base))
        .build()
        .expect("a reqwest client with static settings builds")
}

/// What every API client holds: the service's base URL, a client for it (see [`client_for`]) and
/// the retry policy.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub retry: Retry,
}

impl Api {
    pub fn new(base: &str, timeout: Duration) -> Self {
        Api { base: base.trim_end_matches('/').to_string(), http: client_for(base, timeout), retry: Retry::default() }
    }

    /// For `base`, over an HTTP client made by [`client_for`] and shared between calls (its
    /// connections and TLS sessions are kept), with `retry`.
    pub fn shared(base: &str, http: reqwest::Client, retry: Retry) -> Self {
        Api { base: base.trim_end_matches('/').to_string(), http, retry }
    }

    /// The base URL with `path` (starting with `/`) after it.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A whole answer: status, headers and body, read to the end (a connection dropped mid-body is an
/// error of the call, so it can be retried like one that never connected).
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Send once and read the whole answer.
pub async fn fetch(req: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await?.to_vec();
    Ok(Answer { status, headers, body })
}

/// `Retry-After` in seconds; the official ShipEngine .NET SDK reads `RetryAfter`, so accept both.
pub fn retry_after_secs(headers: &HeaderMap) -> Option<u64> {
    ["retry-after", "retryafter"]
        .iter()
        .find_map(|h| headers.get(*h))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// A retry about to wait: what the UI counts down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct RetryWait {
    /// Which call, in words ("checking your ShipStation API key").
    pub operation: String,
    /// 1 for the first retry.
    pub attempt: u32,
    pub max_attempts: u32,
    /// Milliseconds until the call is sent again.
    pub wait_ms: u32,
    /// Why ("HTTP 503", "the connection dropped").
    pub reason: String,
}

pub type RetryObserver = Arc<dyn Fn(&RetryWait) + Send + Sync>;

/// The retry policy of a client, with whoever wants to hear about the waits.
#[derive(Clone)]
pub struct Retry {
    observer: Option<RetryObserver>,
    base_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self { observer: None, base_backoff: BASE_BACKOFF }
    }
}

impl std::fmt::Debug for Retry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retry").field("base_backoff", &self.base_backoff).finish()
    }
}

fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

impl Retry {
    pub fn with_observer(mut self, observer: RetryObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Shorter waits for tests; the shape of the schedule stays the same.
    pub fn with_base_backoff(mut self, base: Duration) -> Self {
        self.base_backoff = base;
        self
    }

    /// What to wait before retry number `attempt` (1-based), or None when the answer is final.
    pub fn wait_before(&self, attempt: u32, status: Option<u16>, retry_after: Option<u64>) -> Option<Duration> {
        if attempt > MAX_RETRIES {
            return None;
        }
        if let Some(s) = status {
            if !is_retryable_status(s) {
                return None;
            }
        }
        match retry_after.map(Duration::from_secs) {
            Some(asked) if asked > MAX_RETRY_AFTER => None,
            Some(asked) => Some(asked),
            None => Some(self.base_backoff * 2u32.pow(attempt - 1)),
        }
    }

    /// Send an idempotent request, again where that is safe. `make` builds the request each time.
    /// Timeouts are not retried: the call may have been slow rather than lost, and four of them
    /// would keep the user waiting for minutes.
    pub async fn fetch_idempotent(
        &self,
        operation: &str,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Answer, reqwest::Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = fetch(make()).await;
            let (wait, reason) = match &result {
                Ok(a) => (
                    self.wait_before(attempt, Some(a.status), retry_after_secs(&a.headers)),
                    format!("HTTP {}", a.status),
                ),
                Err(e) if e.is_timeout() || e.is_builder() => (None, String::new()),
                Err(_) => (self.wait_before(attempt, None, None), "the connection dropped".to_string()),
            };
            let Some(wait) = wait else { return result };
            if let Some(observe) = &self.observer {
                observe(&RetryWait {
                    operation: operation.to_string(),
                    attempt,
                    max_attempts: MAX_RETRIES,
                    wait_ms: wait.as_millis().min(u128::from(u32::MAX)) as u32,
                    reason: reason.clone(),
                });
            }
            tracing::info!(operation, attempt, wait_ms = wait.as_millis() as u64, "{reason}: trying again");
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule() {
        let r = Retry::default();
        assert_eq!(r.wait_before(1, Some(503), None), Some(Duration::from_millis(500)));
        assert_eq!(r.wait_before(2, Some(502), None), Some(Duration::from_secs(1)));
        assert_eq!(r.wait_before(3, None, None), Some(Duration::from_secs(2)));
        assert_eq!(r.wait_before(4, Some(503), None), None, "three retries at most");
        assert_eq!(r.wait_before(1, Some(429), Some(7)), Some(Duration::from_secs(7)));
        assert_eq!(r.wait_before(1, Some(429), Some(30)), Some(Duration::from_secs(30)));
        assert_eq!(r.wait_before(1, Some(429), Some(31)), None, "a longer wait is the user's call");
        for final_status in [200, 400, 401, 404, 409, 500] {
            assert_eq!(r.wait_before(1, Some(final_status), None), None, "{final_status}");
        }
    }

    #[test]
    fn loopback_bases() {
        for yes in
            ["http://127.0.0.1:4000", "http://127.9.9.9", "http://[::1]:80/x", "http://localhost:1", "http://LOCALHOST"]
        {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in ["http://api.shipengine.com", "http://10.0.0.1", "http://127.0.0.1.evil.example", "not a url", ""] {
            assert!(!is_loopback(no), "{no}");
        }
    }

    /// A server that answers every request with a redirect to `to`, and one that records what reaches
    /// it: a secret header must never follow a redirect.
    #[tokio::test]
    async fn redirects_are_not_followed_so_a_key_never_goes_elsewhere() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let thief = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let thief_addr = thief.local_addr().unwrap();
        let stolen = tokio::spawn(async move {
            match tokio::time::timeout(Duration::from_secs(2), thief.accept()).await {
                Ok(Ok((mut s, _))) => {
                    let mut buf = vec![0; 4096];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    String::from_utf8_lossy(&buf[..n]).into_owned()
                }
                _ => String::new(),
            }
        });
        let redirector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", redirector.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = redirector.accept().await {
                let mut buf = vec![0; 4096];
                let _ = s.read(&mut buf).await;
                let answer = format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{thief_addr}/v1/carriers\r\nContent-Length: 0\r\n\r\n");
                let _ = s.write_all(answer.as_bytes()).await;
            }
        });
        let c = client_for(&base, Duration::from_secs(5));
        let a = fetch(c.get(format!("{base}/v1/carriers")).header("API-Key", "secret-key-1")).await.unwrap();
        assert_eq!(a.status, 307, "the redirect is the answer; it is not followed");
        assert_eq!(stolen.await.unwrap(), "", "nothing reached the other host");
    }

    #[tokio::test]
    async fn plain_http_elsewhere_is_refused_before_anything_is_sent() {
        let c = client_for("http://api.example.invalid", Duration::from_secs(2));
        let e = c.get("http://api.example.invalid/v1/carriers").header("API-Key", "k").send().await.unwrap_err();
        assert!(e.is_builder() || e.to_string().contains("https"), "{e}");
    }
}
