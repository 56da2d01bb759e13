//! ShipEngine (ShipStation API) client. Request and error shapes follow the public API reference
//! (docs.shipstation.com/apis/shipengine) and the shared API notes.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use ts_rs::TS;

use crate::error::{ErrorKind, HasKind};

/// The public test account's keys start with this (ShipEngine "sandbox" keys).
pub const TEST_KEY_PREFIX: &str = "TEST_";

/// One entry of ShipEngine's `errors` array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ApiErrorDetail {
    pub error_source: String,
    pub error_type: String,
    pub error_code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    request_id: String,
    errors: Vec<ApiErrorDetail>,
}

#[derive(Debug, Error)]
pub enum ShipEngineError {
    #[error("ShipEngine refused the API key: check that it is your own ShipStation API key")]
    InvalidApiKey { request_id: Option<String> },
    #[error("ShipEngine asks to slow down; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64, request_id: Option<String> },
    #[error("{}", first_message(.errors))]
    Api { status: u16, request_id: String, errors: Vec<ApiErrorDetail> },
    #[error("could not reach ShipEngine: {0}")]
    Network(String),
    #[error("ShipEngine answered with HTTP {status} and a body that could not be read")]
    Malformed { status: u16 },
}

fn first_message(errors: &[ApiErrorDetail]) -> String {
    errors.first().map(|e| e.message.clone()).unwrap_or_else(|| "ShipEngine reported an error".into())
}

impl HasKind for ShipEngineError {
    fn kind(&self) -> ErrorKind {
        match self {
            ShipEngineError::InvalidApiKey { .. } => ErrorKind::InvalidApiKey,
            ShipEngineError::RateLimited { .. } => ErrorKind::RateLimited,
            ShipEngineError::Api { .. } => ErrorKind::RemoteError,
            ShipEngineError::Network(_) => ErrorKind::Network,
            ShipEngineError::Malformed { .. } => ErrorKind::MalformedResponse,
        }
    }
}

/// The fields of a carrier the app uses (the API returns many more).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Carrier {
    pub carrier_id: String,
    pub carrier_code: String,
    #[serde(default)]
    pub nickname: Option<String>,
    #[serde(default)]
    pub friendly_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CarriersBody {
    carriers: Vec<Carrier>,
}

#[derive(Clone)]
pub struct ShipEngineClient {
    base: String,
    http: reqwest::Client,
}

impl ShipEngineClient {
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .expect("a reqwest client with static settings builds");
        Self { base: base.trim_end_matches('/').to_string(), http }
    }

    /// `GET /v1/carriers`: also the cheapest way to check an API key.
    pub async fn list_carriers(&self, api_key: &SecretString) -> Result<Vec<Carrier>, ShipEngineError> {
        let resp = self
            .http
            .get(format!("{}/v1/carriers", self.base))
            .header("API-Key", api_key.expose_secret())
            .send()
            .await
            .map_err(|e| ShipEngineError::Network(e.without_url().to_string()))?;
        let body: CarriersBody = read_json(resp).await?;
        Ok(body.carriers)
    }
}

/// Turn a response into `T` or the right error. 2xx bodies may still carry `errors` (207); those are
/// partial successes and are read as success here.
async fn read_json<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T, ShipEngineError> {
    let status = resp.status().as_u16();
    let retry_after = retry_after_secs(resp.headers());
    let bytes = resp.bytes().await.map_err(|e| ShipEngineError::Network(e.without_url().to_string()))?;
    if (200..300).contains(&status) {
        return serde_json::from_slice(&bytes).map_err(|_| ShipEngineError::Malformed { status });
    }
    let body: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
    let request_id = body.as_ref().map(|b| b.request_id.clone());
    match status {
        401 | 403 => Err(ShipEngineError::InvalidApiKey { request_id }),
        429 => Err(ShipEngineError::RateLimited { retry_after_secs: retry_after.unwrap_or(5), request_id }),
        _ => match body {
            Some(b) if !b.errors.is_empty() => {
                Err(ShipEngineError::Api { status, request_id: b.request_id, errors: b.errors })
            }
            _ => Err(ShipEngineError::Malformed { status }),
        },
    }
}

/// `Retry-After` in seconds; the official .NET SDK reads `RetryAfter`, so accept both spellings.
fn retry_after_secs(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    ["retry-after", "retryafter"]
        .iter()
        .find_map(|h| headers.get(*h))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use uspslink_sandbox::Sandbox;

    async fn sandbox() -> (Sandbox, ShipEngineClient) {
        let sb = Sandbox::start("127.0.0.1:0").await.unwrap();
        let client = ShipEngineClient::new(&sb.base_url());
        (sb, client)
    }

    #[tokio::test]
    async fn lists_carriers_with_a_sandbox_key() {
        let (_sb, c) = sandbox().await;
        let carriers = c.list_carriers(&SecretString::from("sandbox_key_one")).await.unwrap();
        assert!(carriers.is_empty(), "a new sandbox account has no carriers: {carriers:?}");
    }

    #[tokio::test]
    async fn invalid_key_is_reported_as_such() {
        let (_sb, c) = sandbox().await;
        let e = c.list_carriers(&SecretString::from("wrong")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidApiKey);
        assert!(matches!(e, ShipEngineError::InvalidApiKey { request_id: Some(_) }));
    }

    #[tokio::test]
    async fn rate_limit_honours_retry_after() {
        let (sb, c) = sandbox().await;
        sb.inject_fault("/v1/carriers", uspslink_sandbox::Fault { status: Some(429), retry_after: Some(7), ..Default::default() }, 1);
        let e = c.list_carriers(&SecretString::from("sandbox_key_one")).await.unwrap_err();
        assert!(matches!(e, ShipEngineError::RateLimited { retry_after_secs: 7, .. }), "{e:?}");
        // The fault was for one call only.
        c.list_carriers(&SecretString::from("sandbox_key_one")).await.unwrap();
    }

    #[tokio::test]
    async fn malformed_body_and_server_errors() {
        let (sb, c) = sandbox().await;
        sb.inject_fault("/v1/carriers", uspslink_sandbox::Fault { malformed: true, ..Default::default() }, 1);
        let e = c.list_carriers(&SecretString::from("sandbox_key_one")).await.unwrap_err();
        assert!(matches!(e, ShipEngineError::Malformed { status: 200 }), "{e:?}");
        sb.inject_fault("/v1/carriers", uspslink_sandbox::Fault { status: Some(500), ..Default::default() }, 1);
        let e = c.list_carriers(&SecretString::from("sandbox_key_one")).await.unwrap_err();
        match e {
            ShipEngineError::Api { status: 500, errors, .. } => assert_eq!(errors[0].error_type, "system"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn dropped_connection_is_a_network_error() {
        let (sb, c) = sandbox().await;
        sb.inject_fault("/v1/carriers", uspslink_sandbox::Fault { drop_connection: true, ..Default::default() }, 1);
        let e = c.list_carriers(&SecretString::from("sandbox_key_one")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Network, "{e:?}");
    }

    #[test]
    fn error_display_never_contains_the_key() {
        let e = ShipEngineError::InvalidApiKey { request_id: None };
        assert!(!e.to_string().contains("sandbox_key_one"));
    }
}
