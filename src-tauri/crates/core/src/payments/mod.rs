//! The identifiers step: CRID, MID and the payment account (EPS or permit), checked as typed, then
//! verified with USPS Payments v3 using the linked token: the payment-account inquiry
//! (`GET /payments/v3/payment-account/{number}`) and a payment authorization
//! (`POST /payments/v3/payment-authorization` with the PAYER and LABEL_OWNER roles).
//!
//! Sources: USPS Payments API v3.1.14 (OpenAPI `payments` spec: `Parties`, `Role`, `PaymentAccount`,
//! `ErrorMessage`) and the USPS Error Inventory's Payment sheet, as summarised in the shared API notes.
//!
//! Split by concern: `form` (fields and checks), `explain` (USPS errors as sentences), `client`
//! (the two calls), `summary` (what is sent to the sales representative and what is kept).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use thiserror::Error;
use ts_rs::TS;

use crate::error::{ErrorKind, FieldProblem, HasKind, IpcError};
use crate::usps::AccountHints;
use crate::validate;

mod client;
mod explain;
mod form;
mod summary;

pub use client::*;
pub use explain::*;
pub use form::*;
pub use summary::*;

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
