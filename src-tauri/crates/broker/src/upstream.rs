//! The calls to USPS, with the broker's client credentials added. USPS's answer goes back to the app
//! as it came (status and OAuth error body), so the app keeps telling "Login failed" from "needs
//! reconnecting"; only what the app cannot act on is rewritten: USPS refusing the broker's own
//! credentials, USPS down or slow.

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
        let body = match answer.bytes().await {
            Ok(b) if b.len() <= MAX_ANSWER => b,
            _ => {
                return oauth_error(
                    StatusCode::BAD_GATEWAY,
                    "temporarily_unavailable",
                    "USPS's answer could not be read",
                )
            }
        };
        let parsed: Option<Value> = serde_json::from_slice(&body).ok();
        let error = parsed.as_ref().and_then(|v| v["error"].as_str()).unwrap_or("");
        if matches!(error, "invalid_client" | "unauthorized_client") || status == 401 {
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
