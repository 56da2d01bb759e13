//! The payment-account inquiry and the payment authorization, with the linked token.
#[allow(unused_imports)]
use super::*;

/// What the payment-account inquiry says.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentAccountInfo {
    pub account_type: String,
    #[serde(default)]
    pub account_number: Option<String>,
    #[serde(default)]
    pub non_profit_status: Option<bool>,
}

/// A granted payment authorization. The token authorizes labels for eight hours; uspslink only
/// needs to know it was granted, so it is never stored.
pub struct PaymentAuthorization {
    pub token: SecretString,
}

pub struct PaymentsClient {
    api: crate::http::Api,
}

impl PaymentsClient {
    pub fn new(base: &str) -> Self {
        Self { api: crate::http::Api::new(base, Duration::from_secs(30)) }
    }

    /// Over a shared [`crate::http::Api`] (its client and retry policy).
    pub fn over(api: crate::http::Api) -> Self {
        Self { api }
    }

    /// Who hears about the waits between retries (the UI counts them down).
    pub fn with_retry(mut self, retry: crate::http::Retry) -> Self {
        self.api.retry = retry;
        self
    }

    /// `GET /payments/v3/payment-account/{number}?accountType=EPS|PERMIT[&permitZIPCode=]`.
    pub async fn lookup_account(
        &self,
        access_token: &SecretString,
        account: &PaymentAccount,
    ) -> Result<PaymentAccountInfo, PaymentsError> {
        let (number, query): (&str, Vec<(&str, &str)>) = match account {
            PaymentAccount::Eps { account_number } => (account_number, vec![("accountType", "EPS")]),
            PaymentAccount::Permit { permit_number, permit_zip } => {
                (permit_number, vec![("accountType", "PERMIT"), ("permitZIPCode", permit_zip)])
            }
        };
        let mut url = url::Url::parse(&self.api.url("/payments/v3/payment-account/"))
            .map_err(|_| PaymentsError::Network(format!("{:?} is not a valid USPS address", self.api.base)))?;
        url.path_segments_mut()
            .map_err(|_| PaymentsError::Network("bad USPS address".into()))?
            .pop_if_empty()
            .push(number);
        url.query_pairs_mut().extend_pairs(query);
        // A read: retried where safe.
        let answer = self
            .api
            .retry
            .fetch_idempotent("looking up your payment account at USPS", || {
                self.api.http.get(url.clone()).bearer_auth(access_token.expose_secret())
            })
            .await;
        let bytes = read(answer, account)?;
        serde_json::from_slice(&bytes).map_err(|_| PaymentsError::Malformed(200))
    }

    /// `POST /payments/v3/payment-authorization` with the roles of [`Identifiers::roles`].
    pub async fn authorize(
        &self,
        access_token: &SecretString,
        ids: &Identifiers,
    ) -> Result<PaymentAuthorization, PaymentsError> {
        // A write: sent once.
        let answer = crate::http::fetch(
            self.api
                .http
                .post(self.api.url("/payments/v3/payment-authorization"))
                .bearer_auth(access_token.expose_secret())
                .json(&ids.roles()),
        )
        .await;
        let bytes = read(answer, &ids.account)?;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Parties {
            payment_authorization_token: String,
        }
        let p: Parties = serde_json::from_slice(&bytes).map_err(|_| PaymentsError::Malformed(200))?;
        Ok(PaymentAuthorization { token: SecretString::from(p.payment_authorization_token) })
    }
}

/// The body of a 2xx answer, or the USPS error explained.
fn read(
    answer: Result<crate::http::Answer, reqwest::Error>,
    account: &PaymentAccount,
) -> Result<Vec<u8>, PaymentsError> {
    let answer = answer.map_err(|e| PaymentsError::Network(e.without_url().to_string()))?;
    let status = answer.status;
    let retry_after = crate::http::retry_after_secs(&answer.headers);
    let bytes = answer.body;
    if (200..300).contains(&status) {
        return Ok(bytes);
    }
    if status == 429 {
        return Err(PaymentsError::RateLimited(retry_after.unwrap_or(30)));
    }
    if status >= 500 {
        return Err(PaymentsError::Network(format!(
            "USPS is unavailable right now (HTTP {status}); try again shortly"
        )));
    }
    let body: ErrorBody = serde_json::from_slice(&bytes).map_err(|_| PaymentsError::Malformed(status))?;
    let first = body.error.errors.first().cloned().unwrap_or_default();
    let words = [&first.title, &first.detail, &body.error.message]
        .into_iter()
        .find(|s| !s.is_empty())
        .cloned()
        .unwrap_or_default();
    if status == 401 || status == 403 {
        // USPS answers a token without the `payments` scope with `invalid_oauth_scope`; every other
        // 401 means the token itself is no good (expired, revoked, reset password).
        let scope = [&first.title, &first.detail, &first.code].iter().any(|s| s.contains("scope"));
        if scope {
            return Err(PaymentsError::MissingScope(words));
        }
        if status == 401 {
            return Err(PaymentsError::Unauthorized(words));
        }
    }
    if body.error.errors.is_empty() {
        let message = if words.is_empty() { format!("USPS refused the request (HTTP {status})") } else { words };
        return Err(PaymentsError::Rejected(vec![FieldProblem { field: String::new(), message }]));
    }
    Err(PaymentsError::Rejected(body.error.errors.iter().map(|d| explain(d, account)).collect()))
}
