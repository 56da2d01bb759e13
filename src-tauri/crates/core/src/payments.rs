//! The identifiers step: CRID, MID and the payment account (EPS or permit), checked as typed, then
//! verified with USPS Payments v3 using the linked token: the payment-account inquiry
//! (`GET /payments/v3/payment-account/{number}`) and a payment authorization
//! (`POST /payments/v3/payment-authorization` with the PAYER and LABEL_OWNER roles).
//!
//! Sources: USPS Payments API v3.1.14 (OpenAPI `payments` spec: `Parties`, `Role`, `PaymentAccount`,
//! `ErrorMessage`) and the USPS Error Inventory's Payment sheet, as summarised in the shared API notes.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use thiserror::Error;
use ts_rs::TS;

use crate::error::{ErrorKind, FieldProblem, HasKind, IpcError};
use crate::usps::AccountHints;
use crate::validate;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub enum AccountType {
    #[default]
    #[serde(rename = "EPS")]
    Eps,
    #[serde(rename = "PERMIT")]
    Permit,
}

impl AccountType {
    pub fn api_name(self) -> &'static str {
        match self {
            AccountType::Eps => "EPS",
            AccountType::Permit => "PERMIT",
        }
    }
}

/// The identifiers form as typed. Nothing here is a secret, so the draft is kept across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct IdentifiersForm {
    /// Only for the summary sent to the sales representative.
    pub business_name: String,
    pub crid: String,
    pub mid: String,
    /// Optional: the manifest (label) MID; the MID is used when it is empty.
    pub manifest_mid: String,
    /// Optional.
    pub returns_mid: String,
    pub account_type: AccountType,
    pub eps_account: String,
    pub permit_number: String,
    pub permit_zip: String,
}

/// The payment account USPS charges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PaymentAccount {
    Eps { account_number: String },
    Permit { permit_number: String, permit_zip: String },
}

impl PaymentAccount {
    fn account_type(&self) -> AccountType {
        match self {
            PaymentAccount::Eps { .. } => AccountType::Eps,
            PaymentAccount::Permit { .. } => AccountType::Permit,
        }
    }

    /// The account fields of a `Role` object.
    fn role_fields(&self, role: &mut Value) {
        role["accountType"] = json!(self.account_type().api_name());
        match self {
            PaymentAccount::Eps { account_number } => role["accountNumber"] = json!(account_number),
            PaymentAccount::Permit { permit_number, permit_zip } => {
                role["permitNumber"] = json!(permit_number);
                role["permitZIP"] = json!(permit_zip);
            }
        }
    }

    /// The form field that holds the account's number.
    fn number_field(&self) -> &'static str {
        match self {
            PaymentAccount::Eps { .. } => "eps_account",
            PaymentAccount::Permit { .. } => "permit_number",
        }
    }
}

/// Identifiers that passed every check, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Identifiers {
    pub business_name: Option<String>,
    pub crid: String,
    pub mid: String,
    pub manifest_mid: Option<String>,
    pub returns_mid: Option<String>,
    pub account: PaymentAccount,
}

impl IdentifiersForm {
    /// Every problem at once, each on its field; nothing is sent until there are none.
    pub fn validate(&self) -> Result<Identifiers, Vec<FieldProblem>> {
        fn optional(v: &str) -> Option<&str> {
            (!v.trim().is_empty()).then_some(v)
        }
        let mut problems = Vec::new();
        let mut check = |field: &str, r: Result<String, String>| match r {
            Ok(v) => Some(v),
            Err(message) => {
                problems.push(FieldProblem { field: field.into(), message });
                None
            }
        };
        let business_name = optional(&self.business_name)
            .and_then(|v| check("business_name", validate::required(v, "business name", 100)));
        let crid = check("crid", validate::crid(&self.crid));
        let mid = check("mid", validate::mid(&self.mid, "MID"));
        let manifest_mid =
            optional(&self.manifest_mid).map(|v| check("manifest_mid", validate::mid(v, "manifest MID")));
        let returns_mid = optional(&self.returns_mid).map(|v| check("returns_mid", validate::mid(v, "Returns MID")));
        let account = match self.account_type {
            AccountType::Eps => check("eps_account", validate::eps_account(&self.eps_account))
                .map(|account_number| PaymentAccount::Eps { account_number }),
            AccountType::Permit => {
                let number = check("permit_number", validate::permit_number(&self.permit_number));
                let zip = check("permit_zip", validate::permit_zip(&self.permit_zip));
                number.zip(zip).map(|(permit_number, permit_zip)| PaymentAccount::Permit { permit_number, permit_zip })
            }
        };
        // A bad optional field is `Some(None)` and left a problem, so the guard covers it too.
        match (crid, mid, account) {
            (Some(crid), Some(mid), Some(account)) if problems.is_empty() => Ok(Identifiers {
                business_name,
                crid,
                mid,
                manifest_mid: manifest_mid.flatten(),
                returns_mid: returns_mid.flatten(),
                account,
            }),
            _ => Err(problems),
        }
    }

    /// Fill the empty fields from what the USPS sign-in told us; returns the names of the fields
    /// filled, so the UI can ask the user to confirm them.
    pub fn prefilled(&self, hints: &AccountHints) -> (IdentifiersForm, Vec<String>) {
        let mut form = self.clone();
        let mut filled = Vec::new();
        let mut fill = |field: &mut String, name: &str, hint: Option<&String>| {
            if let Some(h) = hint.filter(|_| field.trim().is_empty()) {
                *field = h.clone();
                filled.push(name.to_string());
            }
        };
        fill(&mut form.crid, "crid", hints.crids.first());
        fill(&mut form.mid, "mid", hints.mids.first());
        if form.account_type == AccountType::Eps {
            fill(&mut form.eps_account, "eps_account", hints.eps_accounts.first());
        }
        (form, filled)
    }
}

impl Identifiers {
    /// The `roles` USPS needs to authorize payment, NSA rates and label MIDs: PAYER (payment account
    /// and CRID), LABEL_OWNER (CRID, MID and manifest MID), RATE_HOLDER (whose contract rates apply:
    /// the same business), and RETURN_LABEL_OWNER when a Returns MID is given.
    pub fn roles(&self) -> Value {
        let manifest = self.manifest_mid.as_deref().unwrap_or(&self.mid);
        let mut payer = json!({"roleName": "PAYER", "CRID": self.crid, "MID": self.mid, "manifestMID": manifest});
        self.account.role_fields(&mut payer);
        let mut rate_holder = json!({"roleName": "RATE_HOLDER", "CRID": self.crid});
        self.account.role_fields(&mut rate_holder);
        let mut roles = vec![
            payer,
            json!({"roleName": "LABEL_OWNER", "CRID": self.crid, "MID": self.mid, "manifestMID": manifest}),
            rate_holder,
        ];
        if let Some(r) = &self.returns_mid {
            roles.push(json!({"roleName": "RETURN_LABEL_OWNER", "CRID": self.crid, "MID": r, "manifestMID": r}));
        }
        json!({ "roles": roles })
    }
}

/// One entry of a USPS `ErrorMessage.error.errors` array.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct UspsErrorDetail {
    pub status: String,
    pub code: String,
    pub title: String,
    pub detail: String,
    pub source: Option<ErrorSource>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ErrorSource {
    pub parameter: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ErrorBody {
    error: ErrorInner,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ErrorInner {
    message: String,
    errors: Vec<UspsErrorDetail>,
}

#[derive(Debug, Error)]
pub enum PaymentsError {
    /// USPS refused the identifiers; each problem is a plain sentence on its field where one applies.
    #[error("{}", summary(.0))]
    Rejected(Vec<FieldProblem>),
    #[error("USPS no longer accepts the connection ({0}). Reconnect your USPS business account, then verify again.")]
    Unauthorized(String),
    #[error("Your USPS app may not use the Payments API ({0}). In the USPS developer portal, add the Payments product to your app.")]
    MissingScope(String),
    #[error("USPS asks to slow down; try again in {0} s")]
    RateLimited(u64),
    #[error("could not reach USPS: {0}")]
    Network(String),
    #[error("USPS answered with HTTP {0} and a body that could not be read")]
    Malformed(u16),
}

fn summary(problems: &[FieldProblem]) -> String {
    match problems {
        [one] => one.message.clone(),
        _ => "USPS did not accept these identifiers; see the marked fields.".into(),
    }
}

impl HasKind for PaymentsError {
    fn kind(&self) -> ErrorKind {
        match self {
            PaymentsError::Rejected(_) => ErrorKind::RemoteError,
            PaymentsError::Unauthorized(_) => ErrorKind::NeedsReconnecting,
            PaymentsError::MissingScope(_) => ErrorKind::NotConfigured,
            PaymentsError::RateLimited(_) => ErrorKind::RateLimited,
            PaymentsError::Network(_) => ErrorKind::Network,
            PaymentsError::Malformed(_) => ErrorKind::MalformedResponse,
        }
    }

    fn to_ipc(&self) -> IpcError {
        let mut e = IpcError::new(self.kind(), self.to_string());
        if let PaymentsError::Rejected(problems) = self {
            e.fields = problems.iter().filter(|p| !p.field.is_empty()).cloned().collect();
        }
        e
    }
}

/// USPS's parameter names to the form's fields.
fn field_of_parameter(parameter: &str, account: &PaymentAccount) -> Option<&'static str> {
    Some(match parameter {
        "CRID" => "crid",
        "MID" => "mid",
        "manifestMID" => "manifest_mid",
        "accountNumber" | "account-number" => account.number_field(),
        "permitNumber" => "permit_number",
        "permitZIP" | "permitZIPCode" | "permitZipCode" => "permit_zip",
        _ => return None,
    })
}

/// A USPS error code as a plain sentence on the field it is about (Error Inventory, Payment sheet).
/// Unknown codes keep USPS's own words.
pub fn explain(detail: &UspsErrorDetail, account: &PaymentAccount) -> FieldProblem {
    let number = account.number_field();
    let kind = match account {
        PaymentAccount::Eps { .. } => "EPS account",
        PaymentAccount::Permit { .. } => "permit",
    };
    let (field, sentence): (&str, String) = match detail.code.as_str() {
        "100001" => (number, format!("USPS has no {kind} with this number. Check it in the Business Customer Gateway, or ask your USPS sales representative.")),
        "100002" => (number, format!("This {kind} is not active. Activate it in the USPS Business Portal, or ask your USPS sales representative.")),
        "100003" => (number, format!("This {kind} has no payment method. In the USPS Business Portal, add ACH Debit under your payment account.")),
        "100004" => (number, format!("The payment method of this {kind} is not active yet. An ACH Debit can stay Pending for a few days: verify again once USPS shows it Active.")),
        "100005" | "100006" => (number, "USPS could not validate the credit card on this payment account. Update it in the USPS Business Portal.".into()),
        "100007" => (number, "This payment account does not have enough funds. Add funds in the USPS Business Portal.".into()),
        "160218" => ("crid", "USPS needs your CRID.".into()),
        "160221" => ("mid", "USPS needs your MID.".into()),
        "160222" => ("manifest_mid", "USPS needs a manifest MID; leave it empty to use your MID.".into()),
        "160224" => ("eps_account", "USPS needs your EPS account number.".into()),
        "160225" => ("permit_number", "USPS needs your permit number.".into()),
        "160226" | "160215" => ("permit_zip", "USPS needs the ZIP Code of your permit.".into()),
        _ => {
            let field = detail.source.as_ref().and_then(|s| field_of_parameter(&s.parameter, account)).unwrap_or("");
            let words = [&detail.detail, &detail.title].into_iter().find(|s| !s.trim().is_empty()).cloned();
            (field, words.unwrap_or_else(|| "USPS did not accept this.".into()))
        }
    };
    let code = if detail.code.is_empty() { String::new() } else { format!(" (USPS error {})", detail.code) };
    FieldProblem { field: field.into(), message: format!("{sentence}{code}") }
}

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
    base: String,
    http: reqwest::Client,
    retry: crate::http::Retry,
}

impl PaymentsClient {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            http: crate::http::client_for(base, Duration::from_secs(30)),
            retry: crate::http::Retry::default(),
        }
    }

    /// Who hears about the waits between retries (the UI counts them down).
    pub fn with_retry(mut self, retry: crate::http::Retry) -> Self {
        self.retry = retry;
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
        let mut url = url::Url::parse(&format!("{}/payments/v3/payment-account/", self.base))
            .map_err(|_| PaymentsError::Network(format!("{:?} is not a valid USPS address", self.base)))?;
        url.path_segments_mut()
            .map_err(|_| PaymentsError::Network("bad USPS address".into()))?
            .pop_if_empty()
            .push(number);
        url.query_pairs_mut().extend_pairs(query);
        // A read: retried where safe.
        let answer = self
            .retry
            .fetch_idempotent("looking up your payment account at USPS", || {
                self.http.get(url.clone()).bearer_auth(access_token.expose_secret())
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
            self.http
                .post(format!("{}/payments/v3/payment-authorization", self.base))
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

/// What the user sends the USPS sales representative once USPS accepted the identifiers: no
/// tokens, no keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct LinkSummary {
    #[serde(flatten)]
    pub identifiers: Identifiers,
    /// `YYYY-MM-DD` (UTC) of the verification.
    pub linked_on: String,
}

impl LinkSummary {
    pub fn new(ids: &Identifiers, unix_secs: u64) -> Self {
        let (y, m, d) = crate::usps::civil_date(unix_secs);
        LinkSummary { identifiers: ids.clone(), linked_on: format!("{y:04}-{m:02}-{d:02}") }
    }

    pub fn subject(&self) -> String {
        match &self.identifiers.business_name {
            Some(b) => format!("NSA link for {b} (CRID {})", self.identifiers.crid),
            None => format!("NSA link for CRID {}", self.identifiers.crid),
        }
    }

    pub fn text(&self) -> String {
        let mut lines = vec!["Hello,".to_string(), String::new(),
            "We linked our USPS Business Account to our shipping platform (Stamps.com / ShipStation API) for our NSA rates. \
             Could you please confirm that our Enterprise Payment Account (EPA) and our contract are linked?".to_string(),
            String::new()];
        if let Some(b) = &self.identifiers.business_name {
            lines.push(format!("Business name: {b}"));
        }
        lines.push(format!("CRID: {}", self.identifiers.crid));
        lines.push(format!("MID: {}", self.identifiers.mid));
        if let Some(m) = &self.identifiers.manifest_mid {
            lines.push(format!("Manifest MID: {m}"));
        }
        if let Some(r) = &self.identifiers.returns_mid {
            lines.push(format!("Returns MID: {r}"));
        }
        match &self.identifiers.account {
            PaymentAccount::Eps { account_number } => {
                lines.push("Account type: EPS".into());
                lines.push(format!("EPS account number: {account_number}"));
            }
            PaymentAccount::Permit { permit_number, permit_zip } => {
                lines.push("Account type: PERMIT".into());
                lines.push(format!("Permit number: {permit_number}"));
                lines.push(format!("Permit ZIP Code: {permit_zip}"));
            }
        }
        lines.push(format!("Linked on: {}", self.linked_on));
        lines.push(String::new());
        lines.push("Thank you.".into());
        lines.join("\n")
    }

    /// A `mailto:` URL (RFC 6068) with the subject and the text; the user picks the recipient.
    pub fn mailto(&self) -> String {
        format!(
            "mailto:?subject={}&body={}",
            percent_encode(&self.subject()),
            percent_encode(&self.text().replace('\n', "\r\n"))
        )
    }
}

/// What the store keeps for the identifiers step: the draft as typed (so a restart resumes it) and,
/// once USPS accepted it, the summary. Never a token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct IdentifiersRecord {
    pub draft: IdentifiersForm,
    pub summary: Option<LinkSummary>,
}

/// What the identifiers step and the summary show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct IdentifiersView {
    /// The draft, with empty fields filled from the USPS sign-in.
    pub form: IdentifiersForm,
    /// Fields filled from the USPS sign-in, for the user to confirm.
    pub prefilled: Vec<String>,
    pub summary: Option<LinkSummary>,
    /// The summary as the e-mail body / clipboard text.
    pub summary_text: Option<String>,
}

impl IdentifiersRecord {
    pub fn view(&self, hints: &AccountHints) -> IdentifiersView {
        let (form, prefilled) = self.draft.prefilled(hints);
        IdentifiersView {
            form,
            prefilled,
            summary: self.summary.clone(),
            summary_text: self.summary.as_ref().map(LinkSummary::text),
        }
    }
}

/// Everything but RFC 3986 unreserved characters, percent-encoded (spaces as %20, which every mail
/// client reads; `+` would show as a plus sign).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps_form() -> IdentifiersForm {
        IdentifiersForm {
            business_name: "Acme Shipping".into(),
            crid: "20538353".into(),
            mid: "901234567".into(),
            eps_account: "1000000001".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_valid_eps_form_and_its_roles() {
        let ids = eps_form().validate().unwrap();
        assert_eq!(ids.account, PaymentAccount::Eps { account_number: "1000000001".into() });
        let roles = ids.roles();
        let roles = roles["roles"].as_array().unwrap();
        let names: Vec<&str> = roles.iter().map(|r| r["roleName"].as_str().unwrap()).collect();
        assert_eq!(names, ["PAYER", "LABEL_OWNER", "RATE_HOLDER"]);
        assert_eq!(roles[0]["accountType"], "EPS");
        assert_eq!(roles[0]["accountNumber"], "1000000001");
        assert_eq!(roles[1]["manifestMID"], "901234567", "the MID stands in for an empty manifest MID");
        assert!(roles[1].get("accountNumber").is_none());
    }

    #[test]
    fn a_permit_form_sends_number_and_zip_and_a_returns_mid_adds_its_role() {
        let form = IdentifiersForm {
            account_type: AccountType::Permit,
            permit_number: "1234".into(),
            permit_zip: "78756".into(),
            eps_account: "ignored for permits".into(),
            manifest_mid: "123456".into(),
            returns_mid: "912345678".into(),
            ..eps_form()
        };
        let ids = form.validate().unwrap();
        let roles = ids.roles();
        assert_eq!(roles["roles"][0]["accountType"], "PERMIT");
        assert_eq!(roles["roles"][0]["permitZIP"], "78756");
        assert_eq!(roles["roles"][0]["manifestMID"], "123456");
        assert_eq!(roles["roles"][3]["roleName"], "RETURN_LABEL_OWNER");
        assert_eq!(roles["roles"][3]["MID"], "912345678");
    }

    #[test]
    fn every_problem_is_reported_on_its_field() {
        let form = IdentifiersForm {
            crid: "1".into(),
            mid: "912345".into(),
            manifest_mid: "12".into(),
            account_type: AccountType::Permit,
            permit_number: "".into(),
            permit_zip: "7875".into(),
            ..Default::default()
        };
        let problems = form.validate().unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["crid", "mid", "manifest_mid", "permit_number", "permit_zip"]);
        // An empty optional field is fine; an empty required one is not.
        let problems = IdentifiersForm::default().validate().unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["crid", "mid", "eps_account"]);
    }

    #[test]
    fn prefill_fills_only_empty_fields_and_says_which() {
        let hints = AccountHints {
            crids: vec!["20538353".into()],
            mids: vec!["901234567".into()],
            eps_accounts: vec!["1000000001".into()],
        };
        let (form, filled) = IdentifiersForm { mid: "123456".into(), ..Default::default() }.prefilled(&hints);
        assert_eq!(
            (form.crid.as_str(), form.mid.as_str(), form.eps_account.as_str()),
            ("20538353", "123456", "1000000001")
        );
        assert_eq!(filled, ["crid", "eps_account"]);
        let permit = IdentifiersForm { account_type: AccountType::Permit, ..Default::default() };
        assert_eq!(permit.prefilled(&hints).1, ["crid", "mid"]);
    }

    #[test]
    fn usps_codes_become_sentences_on_fields() {
        let eps = PaymentAccount::Eps { account_number: "1".into() };
        let permit = PaymentAccount::Permit { permit_number: "1".into(), permit_zip: "78756".into() };
        let d = |code: &str| UspsErrorDetail { code: code.into(), ..Default::default() };
        let cases = [
            (d("100001"), &eps, "eps_account", "USPS has no EPS account with this number"),
            (d("100001"), &permit, "permit_number", "USPS has no permit with this number"),
            (d("100002"), &eps, "eps_account", "is not active"),
            (d("100003"), &eps, "eps_account", "has no payment method"),
            (d("100004"), &eps, "eps_account", "Pending"),
            (d("100005"), &eps, "eps_account", "credit card"),
            (d("100006"), &permit, "permit_number", "credit card"),
            (d("100007"), &eps, "eps_account", "enough funds"),
            (d("160218"), &eps, "crid", "needs your CRID"),
            (d("160221"), &eps, "mid", "needs your MID"),
            (d("160222"), &eps, "manifest_mid", "leave it empty to use your MID"),
            (d("160224"), &eps, "eps_account", "needs your EPS account number"),
            (d("160225"), &permit, "permit_number", "needs your permit number"),
            (d("160215"), &permit, "permit_zip", "ZIP Code of your permit"),
            (d("160226"), &permit, "permit_zip", "ZIP Code of your permit"),
        ];
        for (detail, account, field, words) in cases {
            let p = explain(&detail, account);
            assert_eq!(p.field, field, "{}", detail.code);
            assert!(
                p.message.contains(words) && p.message.ends_with(&format!("(USPS error {})", detail.code)),
                "{}",
                p.message
            );
        }
        let unknown = UspsErrorDetail {
            code: "160999".into(),
            detail: "CRID isn't enrolled in USPS Ship Outbound".into(),
            source: Some(ErrorSource { parameter: "CRID".into() }),
            ..Default::default()
        };
        let p = explain(&unknown, &eps);
        assert_eq!(
            (p.field.as_str(), p.message.as_str()),
            ("crid", "CRID isn't enrolled in USPS Ship Outbound (USPS error 160999)")
        );
    }

    #[test]
    fn summary_has_the_identifiers_and_a_mailto() {
        let ids = eps_form().validate().unwrap();
        let s = LinkSummary::new(&ids, 1_795_378_509);
        assert_eq!(s.linked_on, "2026-11-22");
        let text = s.text();
        for line in [
            "Business name: Acme Shipping",
            "CRID: 20538353",
            "MID: 901234567",
            "Account type: EPS",
            "EPS account number: 1000000001",
            "Linked on: 2026-11-22",
        ] {
            assert!(text.contains(line), "{line}");
        }
        let mailto = s.mailto();
        assert!(
            mailto.starts_with(
                "mailto:?subject=NSA%20link%20for%20Acme%20Shipping%20%28CRID%2020538353%29&body=Hello%2C%0D%0A"
            ),
            "{mailto}"
        );
        assert!(!mailto.contains(' ') && !mailto.contains('+'));
    }
}
