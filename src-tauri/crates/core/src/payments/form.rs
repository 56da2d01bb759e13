//! The identifiers form: what is typed, the payment account, and the checks as typed.
#[allow(unused_imports)]
use super::*;

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
    pub(super) fn number_field(&self) -> &'static str {
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
        let mut check = |field: &str, r: Result<String, crate::validate::Invalid>| match r {
            Ok(v) => Some(v),
            Err(invalid) => {
                problems.push(invalid.at(field));
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
