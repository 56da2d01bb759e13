//! The calls to USPS, with the broker's client credentials added. USPS's answer goes back to the app
//! as it came (status and OAuth error body), so the app keeps telling "Login failed" from "needs
//! reconnecting"; only what the app cannot act on is rewritten: USPS refusing the broker's own
//! credentials (`invalid_client`, `unauthorized_client`: nothing else says that), USPS down or slow.
//! A 401 `invalid_grant` or `invalid_token` is about the user's grant, so it goes back as it came
//! and the app asks the user to reconnect.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::{oauth_error, Config};

/// The largest USPS answer relayed (a token answer is about 2 KiB).
const MAX_ANSWER: usize = 64 * 1024;

pub(crate) struct Usps {
    token_url: String,
    revoke_url: String,
    callback_url: String,
    client_id: String,
    client_secret: SecretString,
    http: reqwest::Client,
}

impl Usps {
    pub(crate) fn new(c: &Config) -> Self {
        let http = reqwest::Client::builder()
            .timeout(c.usps_timeout)
            .connect_timeout(c.usps_timeout.min(std::time::Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a reqwest client with rustls");
        Usps {
            token_url: format!("{}/oauth2/v3/token", c.usps_api),
            revoke_url: format!("{}/oauth2/v3/revoke", c.usps_api),
            callback_url: c.callback_url(),
            client_id: c.client_id.clone(),
            client_secret: c.client_secret.clone(),
            http,
        }
    }

    pub(crate) async fn exchange(&self, code: &str, verifier: &str) -> Response {
        let body = json!({
            "grant_type": "authorization_code",
            "client_id": self.client_id,
            "client_secret": self.client_secret.expose_secret(),
            "code": code,
            "redirect_uri": self.callback_url,
            "code_verifier": verifier,
        });
        self.relay(self.http.post(&self.token_url).json(&body)).await
    }

    pub(crate) async fn refresh(&self, refresh_token: &str) -> Response {
        let body = json!({
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "client_secret": self.client_secret.expose_secret(),
            "refresh_token": refresh_token,
        });
        self.relay(self.http.post(&self.token_url).json(&body)).await
    }

    pub(crate) async fn revoke(&self, token: &str, hint: &str) -> Response {
        let req = self
            .http
            .post(&self.revoke_url)
            .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
            .json(&json!({"token": token, "token_type_hint": hint}));
        self.relay(req).await
    }

    async fn relay(&self, req: reqwest::RequestBuilder) -> Response {
        let answer = match req.send().await {
            Ok(a) => a,
            Err(e) if e.is_timeout() => {
                tracing::warn!("USPS did not answer in time");
                return oauth_error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "temporarily_unavailable",
                    "USPS did not answer in time",
                );
            }
            Err(e) => {
                tracing::warn!("could not reach USPS: {}", e.without_url());
                return oauth_error(StatusCode::BAD_GATEWAY, "temporarily_unavailable", "USPS cannot be reached");
            }
        };
        let status = answer.status().as_u16();
        let Some(body) = read_capped(answer, MAX_ANSWER).await else {
            return oauth_error(StatusCode::BAD_GATEWAY, "temporarily_unavailable", "USPS's answer could not be read");
        };
        let parsed: Option<Value> = serde_json::from_slice(&body).ok();
        let error = parsed.as_ref().and_then(|v| v["error"].as_str()).unwrap_or("");
        if matches!(error, "invalid_client" | "unauthorized_client") {
            // The vendor's problem, not the user's: the app must not tell them to check credentials
            // they never entered.
            tracing::error!("USPS refused the sign-in service's client credentials (HTTP {status}, {error})");
            return oauth_error(
                StatusCode::BAD_GATEWAY,
                "temporarily_unavailable",
                "the uspslink sign-in service could not authenticate to USPS",
            );
        }
        if status >= 500 || status == 429 {
            return oauth_error(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                "temporarily_unavailable",
                &format!("USPS answered HTTP {status}"),
            );
        }
        if (200..300).contains(&status) || !error.is_empty() {
            let mut r = (StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY), body).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return r;
        }
        oauth_error(StatusCode::BAD_GATEWAY, "temporarily_unavailable", &format!("USPS answered HTTP {status}"))
    }
}

/// The body of `answer`, read a chunk at a time and given up as soon as it passes `max` bytes (a
/// declared length over it is refused unread), so an answer of any size costs at most `max`.
async fn read_capped(mut answer: reqwest::Response, max: usize) -> Option<Vec<u8>> {
    if answer.content_length().is_some_and(|n| n > max as u64) {
        return None;
    }
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.ok()? {
        if body.len() + chunk.len() > max {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// A server that answers one request with at least `total` bytes of spaces, chunked (no length
    /// said up front), and reports how many it got to send before the reader hung up.
    fn chunked_server(total: usize) -> (String, std::sync::mpsc::Receiver<usize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/oauth2/v3/token", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let _ = socket.read(&mut [0u8; 4096]);
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
            let _ = socket.write_all(head.as_bytes());
            let chunk = [b' '; 16 * 1024];
            let mut sent = 0;
            while sent < total {
                let size = format!("{:x}\r\n", chunk.len());
                let wrote = socket.write_all(size.as_bytes()).and_then(|_| socket.write_all(&chunk));
                if wrote.and_then(|_| socket.write_all(b"\r\n")).is_err() {
                    break;
                }
                sent += chunk.len();
            }
            let _ = socket.write_all(b"0\r\n\r\n");
            let _ = tx.send(sent);
        });
        (url, rx)
    }

    #[tokio::test]
    async fn a_long_answer_is_given_up_while_it_streams() {
        let (url, sent) = chunked_server(512 * 1024 * 1024);
        let answer = reqwest::get(&url).await.unwrap();
        assert!(read_capped(answer, MAX_ANSWER).await.is_none());
        let sent = tokio::task::spawn_blocking(move || sent.recv().unwrap()).await.unwrap();
        assert!(sent < 64 * 1024 * 1024, "the rest was never read: only {sent} bytes went out");
        let (url, _) = chunked_server(1);
        let answer = reqwest::get(&url).await.unwrap();
        assert_eq!(read_capped(answer, MAX_ANSWER).await.map(|b| b.len()), Some(16 * 1024));
    }
}
