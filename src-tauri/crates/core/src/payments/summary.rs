//! After USPS accepted the identifiers: the summary for the sales representative, and what the
//! store keeps of the step.
#[allow(unused_imports)]
use super::*;

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
        LinkSummary { identifiers: ids.clone(), linked_on: crate::clock::iso_date(unix_secs) }
    }

    pub fn subject(&self) -> String {
        match &self.identifiers.business_name {
            Some(b) => format!("NSA link for {b} (CRID {})", self.identifiers.crid),
            None => format!("NSA link for CRID {}", self.identifiers.crid),
        }
    }

    pub fn text(&self) -> String {
        self.text_with(&[])
    }

    /// The text with `extra` lines (what the NSA rates save) before the date.
    pub fn text_with(&self, extra: &[String]) -> String {
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
        if !extra.is_empty() {
            lines.push(String::new());
            lines.extend(extra.iter().cloned());
        }
        lines.push(String::new());
        lines.push("Thank you.".into());
        lines.join("\n")
    }

    /// A `mailto:` URL (RFC 6068) with the subject and the text; the user picks the recipient.
    pub fn mailto(&self) -> String {
        self.mailto_with(&[])
    }

    /// The `mailto:` URL of [`LinkSummary::text_with`].
    pub fn mailto_with(&self, extra: &[String]) -> String {
        format!(
            "mailto:?subject={}&body={}",
            percent_encode(&self.subject()),
            percent_encode(&self.text_with(extra).replace('\n', "\r\n"))
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
    /// `extra`: lines the summary carries besides the identifiers (what the NSA rates save).
    pub fn view(&self, hints: &AccountHints, extra: &[String]) -> IdentifiersView {
        let (form, prefilled) = self.draft.prefilled(hints);
        IdentifiersView {
            form,
            prefilled,
            summary: self.summary.clone(),
            summary_text: self.summary.as_ref().map(|s| s.text_with(extra)),
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
