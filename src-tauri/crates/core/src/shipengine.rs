//! ShipEngine (ShipStation API) client. Request and error shapes follow the public API reference
//! (docs.shipstation.com/apis/shipengine) and the shared API notes.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use ts_rs::TS;

use crate::error::{ErrorKind, FieldProblem, HasKind, IpcError};
use crate::http::{retry_after_secs, Answer, Retry};

/// After an ambiguous registration failure, how often and how far apart the carriers are listed.
const REGISTRATION_RECHECKS: u32 = 4;
const REGISTRATION_RECHECK_GAP: Duration = Duration::from_secs(1);

/// The public test account's keys start with this (ShipEngine "sandbox" keys).
pub const TEST_KEY_PREFIX: &str = "TEST_";

/// The Stamps.com terms and conditions a registration agrees to (`agree_to_carrier_terms`), as
/// Stamps.com publishes them.
pub const STAMPS_CARRIER_TERMS_URL: &str =
    "https://content.stamps.com/ContentService/conditions/GeneralTerms/stamps.html";

/// The API key as typed, trimmed; refused before anything is sent when it is empty, not a key at all,
/// or the public test key (the guide: the test account cannot be linked).
pub fn check_api_key(typed: &str) -> Result<SecretString, ShipEngineError> {
    let key = typed.trim();
    if key.is_empty() {
        return Err(ShipEngineError::MissingApiKey);
    }
    // A header value: anything else would make the request fail to build, or smuggle a header.
    if key.len() > 128 || !key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | '+' | '=')) {
        return Err(ShipEngineError::MalformedApiKey);
    }
    if key.starts_with(TEST_KEY_PREFIX) {
        return Err(ShipEngineError::PublicTestKey);
    }
    Ok(SecretString::from(key.to_string()))
}

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
    #[error("enter your ShipStation API key")]
    MissingApiKey,
    #[error(
        "This is ShipEngine's public test key. You cannot link your accounts to the public test account: \
             enter your own ShipStation API key."
    )]
    PublicTestKey,
    #[error("wait {0} s before asking for another code")]
    ResendTooSoon(u64),
    #[error("that is not a Stamps.com carrier of this account")]
    MalformedCarrierId,
    #[error("an API key has only letters, digits and _ - / + =, at most 128 of them: copy it again from ShipStation")]
    MalformedApiKey,
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
    /// With the fields ShipEngine named and its request id, so the UI can highlight and support can trace.
    fn to_ipc(&self) -> IpcError {
        let mut e = IpcError::new(self.kind(), self.to_string());
        match self {
            ShipEngineError::Api { request_id, errors, .. } => {
                e.request_id = Some(request_id.clone());
                e.fields = errors
                    .iter()
                    .filter_map(|d| {
                        d.field_name.as_ref().map(|f| FieldProblem { field: f.clone(), message: d.message.clone() })
                    })
                    .collect();
            }
            ShipEngineError::InvalidApiKey { request_id } | ShipEngineError::RateLimited { request_id, .. } => {
                e.request_id = request_id.clone();
            }
            _ => {}
        }
        e
    }

    fn kind(&self) -> ErrorKind {
        match self {
            ShipEngineError::MissingApiKey | ShipEngineError::MalformedApiKey | ShipEngineError::MalformedCarrierId => {
                ErrorKind::InvalidInput
            }
            ShipEngineError::ResendTooSoon(_) => ErrorKind::RateLimited,
            ShipEngineError::InvalidApiKey { .. } | ShipEngineError::PublicTestKey => ErrorKind::InvalidApiKey,
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

/// The registration form as the user filled it in. The card number is a secret: it is sent once,
/// never stored, logged or returned.
#[derive(Debug, Clone, Deserialize, TS)]
pub struct RegistrationForm {
    pub nickname: String,
    pub email: String,
    pub agree_to_carrier_terms: bool,
    pub address: AddressForm,
    pub credit_card: CardForm,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct AddressForm {
    pub name: String,
    pub phone: String,
    pub company_name: String,
    pub address_line1: String,
    pub address_line2: String,
    pub city_locality: String,
    pub state_province: String,
    pub postal_code: String,
    pub country_code: String,
    /// "yes" or "no".
    pub address_residential_indicator: String,
}

#[derive(Clone, Deserialize, TS)]
pub struct CardForm {
    pub name: String,
    #[ts(type = "string")]
    pub number: SecretString,
    pub expiration_month: String,
    pub expiration_year: String,
}

impl std::fmt::Debug for CardForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardForm").field("name", &self.name).field("number", &"[REDACTED]").finish()
    }
}

/// The registration form as typed, without anything of the card: kept so that closing the app halfway
/// through the form loses nothing (docs/DESIGN.md, "Resume anywhere").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct StampsDraft {
    pub nickname: String,
    pub email: String,
    pub address: AddressForm,
}

impl RegistrationForm {
    /// Validate every field; all problems at once, so the form can mark each. Returns the request
    /// body on success.
    pub fn to_request(&self, today: (u32, u32)) -> Result<serde_json::Value, Vec<FieldProblem>> {
        use crate::validate as v;
        let mut problems = Vec::new();
        let mut check = |field: &str, r: Result<String, crate::validate::Invalid>| match r {
            Ok(s) => s,
            Err(invalid) => {
                problems.push(invalid.at(field));
                String::new()
            }
        };
        let a = &self.address;
        let nickname = check("nickname", v::required(&self.nickname, "nickname", 50));
        let email = check("email", v::email(&self.email));
        let name = check("address.name", v::required(&a.name, "name", 100));
        let phone = check("address.phone", v::phone(&a.phone));
        let line1 = check("address.address_line1", v::required(&a.address_line1, "street address", 100));
        let city = check("address.city_locality", v::required(&a.city_locality, "city", 60));
        let state = check("address.state_province", v::us_state(&a.state_province));
        let zip = check("address.postal_code", v::zip(&a.postal_code));
        let country = check(
            "address.country_code",
            if a.country_code.trim().eq_ignore_ascii_case("US") {
                Ok("US".into())
            } else {
                Err("Stamps.com accounts need a US address".into())
            },
        );
        let residential = check(
            "address.address_residential_indicator",
            match a.address_residential_indicator.as_str() {
                "yes" | "no" => Ok(a.address_residential_indicator.clone()),
                _ => Err("say whether this is a residential address".into()),
            },
        );
        let card_name = check("credit_card.name", v::required(&self.credit_card.name, "name on the card", 100));
        let card = match v::card_number(self.credit_card.number.expose_secret()) {
            Ok(c) => Some(c),
            Err(invalid) => {
                problems.push(invalid.at("credit_card.number"));
                None
            }
        };
        let mut check = |field: &str, r: Result<String, crate::validate::Invalid>| match r {
            Ok(s) => s,
            Err(invalid) => {
                problems.push(invalid.at(field));
                String::new()
            }
        };
        let expiry =
            crate::validate::card_expiry(&self.credit_card.expiration_month, &self.credit_card.expiration_year, today);
        let (month, year) = match expiry {
            Ok(e) => e,
            Err(m) => {
                check("credit_card.expiration_month", Err(m));
                (String::new(), String::new())
            }
        };
        if !self.agree_to_carrier_terms {
            problems.push(FieldProblem {
                field: "agree_to_carrier_terms".into(),
                message: "agree to the carrier terms to register".into(),
            });
        }
        let Some((number, kind)) = card.filter(|_| problems.is_empty()) else { return Err(problems) };
        let mut address = serde_json::json!({
            "name": name, "phone": phone, "address_line1": line1, "city_locality": city, "state_province": state,
            "postal_code": zip, "country_code": country, "address_residential_indicator": residential,
        });
        for (k, val) in [("company_name", &a.company_name), ("address_line2", &a.address_line2)] {
            if !val.trim().is_empty() {
                address[k] = serde_json::json!(val.trim());
            }
        }
        Ok(serde_json::json!({
            "nickname": nickname, "email": email, "agree_to_carrier_terms": true, "address": address,
            "credit_card": {"name": card_name, "number": number, "type": kind.api_name(),
                            "expiration_year": year, "expiration_month": month},
        }))
    }
}

/// Progress of the Stamps.com step, kept in the store (no secret: the key is in the vault, the card
/// number is never kept).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct StampsRecord {
    /// The API key in the vault was checked with ShipEngine.
    pub key_checked: bool,
    /// Set as soon as registration succeeds (or an existing carrier is chosen), so a retry never
    /// registers again.
    pub carrier_id: Option<String>,
    pub phone: Option<String>,
    pub verification_id: Option<String>,
    /// Unix seconds of the last code sent, for the resend cool-down.
    #[ts(type = "number | null")]
    pub code_sent_at: Option<u64>,
    pub verified: bool,
    /// `YYYY-MM-DD` (UTC) of the SMS verification, for the dashboard.
    pub verified_on: Option<String>,
    /// The registration form as typed so far (no card), until the account is registered.
    pub draft: Option<StampsDraft>,
}

/// Seconds between two SMS codes.
pub const RESEND_COOLDOWN_SECS: u64 = 30;

/// Whether another SMS code may be asked for now (ShipEngine limits how often).
pub fn resend_allowed(code_sent_at: Option<u64>, now: u64) -> Result<(), ShipEngineError> {
    match code_sent_at.map(|sent| sent.saturating_add(RESEND_COOLDOWN_SECS).saturating_sub(now)) {
        Some(wait) if wait > 0 => Err(ShipEngineError::ResendTooSoon(wait)),
        _ => Ok(()),
    }
}

/// A carrier id the UI hands back (ShipEngine's `se-123456`): it becomes part of request paths.
pub fn check_carrier_id(v: &str) -> Result<String, ShipEngineError> {
    let ok = !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(v.to_string())
    } else {
        Err(ShipEngineError::MalformedCarrierId)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Verification {
    pub verification_id: String,
    pub phone: String,
    pub status: String,
}

#[derive(Clone)]
pub struct ShipEngineClient {
    api: crate::http::Api,
}

fn network(e: reqwest::Error) -> ShipEngineError {
    ShipEngineError::Network(e.without_url().to_string())
}

impl ShipEngineClient {
    pub fn new(base: &str) -> Self {
        Self::with_timeout(base, Duration::from_secs(30))
    }

    pub fn with_timeout(base: &str, timeout: Duration) -> Self {
        Self { api: crate::http::Api::new(base, timeout) }
    }

    /// Over a shared [`crate::http::Api`] (its client and retry policy).
    pub fn over(api: crate::http::Api) -> Self {
        Self { api }
    }

    /// Who hears about the waits between retries (the UI counts them down).
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.api.retry = retry;
        self
    }

    /// `GET /v1/carriers`: also the cheapest way to check an API key. A read: retried where safe.
    pub async fn list_carriers(&self, api_key: &SecretString) -> Result<Vec<Carrier>, ShipEngineError> {
        let url = self.api.url("/v1/carriers");
        let answer = self
            .api
            .retry
            .fetch_idempotent("checking your ShipStation account", || {
                self.api.http.get(&url).header("API-Key", api_key.expose_secret())
            })
            .await
            .map_err(network)?;
        let body: CarriersBody = read_json(answer)?;
        Ok(body.carriers)
    }

    /// `POST /v1/rates/estimate` (`crate::savings::estimate_request`): the list of rates the carrier
    /// quotes. It changes nothing at ShipEngine, so it is retried where safe.
    pub async fn estimate_rates(
        &self,
        api_key: &SecretString,
        request: &serde_json::Value,
    ) -> Result<serde_json::Value, ShipEngineError> {
        let url = self.api.url("/v1/rates/estimate");
        let answer = self
            .api
            .retry
            .fetch_idempotent("asking Stamps.com for a rate", || {
                self.api.http.post(&url).header("API-Key", api_key.expose_secret()).json(request)
            })
            .await
            .map_err(network)?;
        read_json(answer)
    }

    /// A write: sent once.
    async fn send(&self, req: reqwest::RequestBuilder, api_key: &SecretString) -> Result<Answer, ShipEngineError> {
        crate::http::fetch(req.header("API-Key", api_key.expose_secret())).await.map_err(network)
    }

    /// Register the free Stamps.com account, at most once: an existing Stamps.com carrier is reused,
    /// and after a failure that may have reached ShipEngine (timeout, dropped connection) the carriers
    /// are listed again before the error is reported, so a retry never registers twice
    /// (ShipEngine documents no idempotency key).
    pub async fn register_stamps_once(
        &self,
        api_key: &SecretString,
        request: &serde_json::Value,
    ) -> Result<String, ShipEngineError> {
        if let Some(existing) = self.existing_stamps(api_key).await? {
            return Ok(existing);
        }
        let url = self.api.url("/v1/registration/stamps_com");
        let sent = self.send(self.api.http.post(url).json(request), api_key).await;
        let result = sent.and_then(read_json::<serde_json::Value>);
        match result {
            Ok(body) => {
                body["carrier_id"].as_str().map(str::to_string).ok_or(ShipEngineError::Malformed { status: 200 })
            }
            Err(e @ (ShipEngineError::Network(_) | ShipEngineError::Malformed { .. })) => {
                // The request may still be running at ShipEngine: look a few times before giving up.
                for _ in 0..REGISTRATION_RECHECKS {
                    if let Ok(Some(id)) = self.existing_stamps(api_key).await {
                        return Ok(id);
                    }
                    tokio::time::sleep(REGISTRATION_RECHECK_GAP).await;
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    async fn existing_stamps(&self, api_key: &SecretString) -> Result<Option<String>, ShipEngineError> {
        Ok(self
            .list_carriers(api_key)
            .await?
            .into_iter()
            .find(|c| c.carrier_code == "stamps_com")
            .map(|c| c.carrier_id))
    }

    /// `POST .../verification` with `verification_type: sms`.
    pub async fn start_sms_verification(
        &self,
        api_key: &SecretString,
        carrier_id: &str,
        phone: &str,
    ) -> Result<Verification, ShipEngineError> {
        let url = self.api.url(&format!("/v1/connections/carriers/stamps_com/{carrier_id}/verification"));
        let body = serde_json::json!({"phone": phone, "verification_type": "sms"});
        read_json(self.send(self.api.http.post(url).json(&body), api_key).await?)
    }

    /// `PUT .../verification/{id}` with the code the user received.
    pub async fn submit_verification_code(
        &self,
        api_key: &SecretString,
        carrier_id: &str,
        verification_id: &str,
        code: &SecretString,
    ) -> Result<Verification, ShipEngineError> {
        let url =
            self.api.url(&format!("/v1/connections/carriers/stamps_com/{carrier_id}/verification/{verification_id}"));
        let body = serde_json::json!({"verification_code": code.expose_secret()});
        read_json(self.send(self.api.http.put(url).json(&body), api_key).await?)
    }
}

/// Turn a response into `T` or the right error. 2xx bodies may still carry `errors` (207); those are
/// partial successes and are read as success here.
fn read_json<T: serde::de::DeserializeOwned>(answer: Answer) -> Result<T, ShipEngineError> {
    let Answer { status, headers, body: bytes } = answer;
    let retry_after = retry_after_secs(&headers);
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

    /// A client whose retry waits are short and recorded.
    fn quick(sb: &Sandbox) -> (ShipEngineClient, std::sync::Arc<std::sync::Mutex<Vec<crate::http::RetryWait>>>) {
        let waits = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = waits.clone();
        let retry = Retry::default()
            .with_base_backoff(Duration::from_millis(10))
            .with_observer(std::sync::Arc::new(move |w| seen.lock().unwrap().push(w.clone())));
        (ShipEngineClient::new(&sb.base_url()).with_retry(retry), waits)
    }

    #[tokio::test]
    async fn rate_limit_honours_retry_after() {
        let (sb, _) = sandbox().await;
        let (c, waits) = quick(&sb);
        let key = SecretString::from("sandbox_key_one");
        // A wait longer than 30 s is not waited out: the user is told how long.
        sb.inject_fault(
            "/v1/carriers",
            uspslink_sandbox::Fault { status: Some(429), retry_after: Some(31), ..Default::default() },
            1,
        );
        let e = c.list_carriers(&key).await.unwrap_err();
        assert!(matches!(e, ShipEngineError::RateLimited { retry_after_secs: 31, .. }), "{e:?}");
        assert!(waits.lock().unwrap().is_empty());
        // A short one is waited out, as asked, and the call goes through.
        sb.inject_fault(
            "/v1/carriers",
            uspslink_sandbox::Fault { status: Some(429), retry_after: Some(1), ..Default::default() },
            1,
        );
        let t0 = std::time::Instant::now();
        c.list_carriers(&key).await.unwrap();
        assert!(t0.elapsed() >= Duration::from_secs(1));
        let w = waits.lock().unwrap().clone();
        assert_eq!(w.len(), 1);
        assert_eq!((w[0].wait_ms, w[0].reason.as_str(), w[0].max_attempts), (1000, "HTTP 429", 3));
    }

    #[tokio::test]
    async fn server_errors_and_dropped_connections_on_reads_are_retried_three_times() {
        let (sb, _) = sandbox().await;
        let (c, waits) = quick(&sb);
        let key = SecretString::from("sandbox_key_one");
        sb.inject_fault("/v1/carriers", uspslink_sandbox::Fault { status: Some(503), ..Default::default() }, 2);
        c.list_carriers(&key).await.unwrap();
        assert_eq!(waits.lock().unwrap().iter().map(|w| w.attempt).collect::<Vec<_>>(), [1, 2]);
        waits.lock().unwrap().clear();
        sb.inject_fault("/v1/carriers", uspslink_sandbox::Fault { drop_connection: true, ..Default::default() }, 1);
        c.list_carriers(&key).await.unwrap();
        assert_eq!(waits.lock().unwrap()[0].reason, "the connection dropped");
        waits.lock().unwrap().clear();
        // Four in a row: the first try and three retries fail, and the error says so.
        sb.inject_fault("/v1/carriers", uspslink_sandbox::Fault { status: Some(502), ..Default::default() }, 4);
        assert!(c.list_carriers(&key).await.is_err());
        assert_eq!(waits.lock().unwrap().len(), 3);
        c.list_carriers(&key).await.unwrap();
    }

    #[tokio::test]
    async fn writes_are_never_retried() {
        let (sb, _) = sandbox().await;
        let (c, waits) = quick(&sb);
        let key = SecretString::from("sandbox_key_one");
        let id = c.register_stamps_once(&key, &form().to_request((2026, 11)).unwrap()).await.unwrap();
        sb.inject_fault(
            "/v1/connections/carriers/stamps_com/{carrier_id}/verification",
            uspslink_sandbox::Fault { status: Some(503), ..Default::default() },
            1,
        );
        assert!(c.start_sms_verification(&key, &id, "1111111111").await.is_err());
        assert!(waits.lock().unwrap().is_empty(), "an SMS is not sent twice by the client");
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
        let (sb, _) = sandbox().await;
        let (c, _) = quick(&sb);
        sb.inject_fault("/v1/carriers", uspslink_sandbox::Fault { drop_connection: true, ..Default::default() }, 4);
        let e = c.list_carriers(&SecretString::from("sandbox_key_one")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Network, "{e:?}");
    }

    fn form() -> RegistrationForm {
        RegistrationForm {
            nickname: "My Stamps.com account".into(),
            email: "john.doe@example.com".into(),
            agree_to_carrier_terms: true,
            address: AddressForm {
                name: "John Doe".into(),
                phone: "111-111-1111".into(),
                company_name: "Example Corp.".into(),
                address_line1: "4009 Marathon Blvd".into(),
                address_line2: "Suite 300".into(),
                city_locality: "Austin".into(),
                state_province: "tx".into(),
                postal_code: "78756".into(),
                country_code: "US".into(),
                address_residential_indicator: "no".into(),
            },
            credit_card: CardForm {
                name: "my credit card".into(),
                number: SecretString::from("4111 1111 1111 1111"),
                expiration_month: "7".into(),
                expiration_year: "2030".into(),
            },
        }
    }

    #[test]
    fn form_validation_collects_every_problem() {
        let body = form().to_request((2026, 11)).unwrap();
        assert_eq!(body["credit_card"]["type"], "Visa");
        assert_eq!(body["credit_card"]["number"], "4111111111111111");
        assert_eq!(body["credit_card"]["expiration_month"], "07");
        assert_eq!(body["address"]["state_province"], "TX");
        let mut bad = form();
        bad.email = "nope".into();
        bad.address.postal_code = "123".into();
        bad.credit_card.number = SecretString::from("4111111111111112");
        bad.agree_to_carrier_terms = false;
        let fields: Vec<String> = bad.to_request((2026, 11)).unwrap_err().into_iter().map(|p| p.field).collect();
        assert_eq!(fields, ["email", "address.postal_code", "credit_card.number", "agree_to_carrier_terms"]);
        assert!(!format!("{bad:?}").contains("4111"), "Debug never shows the card number");
    }

    #[tokio::test]
    async fn register_verify_and_never_twice() {
        let (sb, c) = sandbox().await;
        let key = SecretString::from("sandbox_register1");
        let body = form().to_request((2026, 11)).unwrap();
        // The first attempt registers at ShipEngine but its answer is lost on the way back.
        sb.inject_fault(
            "/v1/registration/stamps_com",
            uspslink_sandbox::Fault { lose_response: true, ..Default::default() },
            1,
        );
        let id = c.register_stamps_once(&key, &body).await.unwrap();
        let again = c.register_stamps_once(&key, &body).await.unwrap();
        assert_eq!(id, again, "a retry reuses the carrier instead of registering twice");
        let carriers = c.list_carriers(&key).await.unwrap();
        assert_eq!(carriers.iter().filter(|c| c.carrier_code == "stamps_com").count(), 1);

        // A dropped connection before ShipEngine acted: the error is reported, and the retry registers.
        let other = SecretString::from("sandbox_register2");
        sb.inject_fault(
            "/v1/registration/stamps_com",
            uspslink_sandbox::Fault { drop_connection: true, ..Default::default() },
            1,
        );
        assert_eq!(c.register_stamps_once(&other, &body).await.unwrap_err().kind(), ErrorKind::Network);
        let id2 = c.register_stamps_once(&other, &body).await.unwrap();
        assert_ne!(id2, id);

        let v = c.start_sms_verification(&key, &id, "1111111111").await.unwrap();
        assert_eq!(v.status, "unverified");
        let wrong =
            c.submit_verification_code(&key, &id, &v.verification_id, &SecretString::from("000000")).await.unwrap_err();
        match &wrong {
            ShipEngineError::Api { errors, .. } => {
                assert_eq!(errors[0].field_name.as_deref(), Some("verification_code"))
            }
            other => panic!("{other:?}"),
        }
        let inbox: serde_json::Value = reqwest::get(format!("{}/sandbox/phone-inbox/1111111111", sb.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let code = SecretString::from(inbox["code"].as_str().unwrap().to_string());
        let done = c.submit_verification_code(&key, &id, &v.verification_id, &code).await.unwrap();
        assert_eq!(done.status, "verified");
    }

    #[tokio::test]
    async fn test_keys_cannot_register_and_field_errors_name_the_field() {
        let (_sb, c) = sandbox().await;
        let body = form().to_request((2026, 11)).unwrap();
        // The public test account already has a Stamps.com carrier: it is reused, never registered.
        let id = c.register_stamps_once(&SecretString::from("TEST_public"), &body).await.unwrap();
        assert_eq!(id, "se-test-stamps");
        let mut bad = body.clone();
        bad["address"]["phone"] = serde_json::json!("12");
        match c.register_stamps_once(&SecretString::from("sandbox_fields1"), &bad).await.unwrap_err() {
            ShipEngineError::Api { status: 400, errors, request_id } => {
                assert_eq!(errors[0].field_name.as_deref(), Some("address.phone"));
                assert_eq!(request_id.len(), 36);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn error_display_never_contains_the_key() {
        let e = ShipEngineError::InvalidApiKey { request_id: None };
        assert!(!e.to_string().contains("sandbox_key_one"));
    }
}
