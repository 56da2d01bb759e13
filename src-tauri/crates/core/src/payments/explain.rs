//! USPS's error answers: the body's shape, the domain error, and each code as a sentence on its field.
#[allow(unused_imports)]
use super::*;

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
pub(super) struct ErrorBody {
    pub(super) error: ErrorInner,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ErrorInner {
    pub(super) message: String,
    pub(super) errors: Vec<UspsErrorDetail>,
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
