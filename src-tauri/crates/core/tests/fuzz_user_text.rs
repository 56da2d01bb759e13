//! Every function that takes text a user typed or pasted, fed arbitrary Unicode: none may panic, and
//! what each accepts obeys its own rule. 10,000 cases each (docs/DESIGN.md, "No input kills the app").

use proptest::prelude::*;
use secrecy::{ExposeSecret, SecretString};
use uspslink_core::payments::{AccountType, IdentifiersForm, IdentifiersRecord, LinkSummary};
use uspslink_core::settings::{Endpoints, Environment, Preferences};
use uspslink_core::shipengine::{check_api_key, check_carrier_id, AddressForm, CardForm, RegistrationForm};
use uspslink_core::usps::{account_hints, AccountHints};
use uspslink_core::validate as v;

const CASES: u32 = 10_000;

/// Arbitrary Unicode, and text close to what each field takes (digits, dashes of every kind,
/// accents, spaces, zero-width and combining characters), so the checks past the first are reached.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9 \\-–—‐.+()é\u{200b}\u{301}a-zA-Z@]{0,24}",
        "[0-9]{4,6}[-–][0-9]{2,5}",
        "[0-9]{1,20}",
        "\\PC{0,40}",
    ]
}

fn ascii_only(s: &str) -> bool {
    s.is_ascii()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn zip_codes(s in text()) {
        if let Ok(z) = v::zip(&s) {
            prop_assert!(z.len() == 5 || z.len() == 10);
            prop_assert!(z.bytes().enumerate().all(|(i, b)| b.is_ascii_digit() || (i == 5 && b == b'-')));
        }
    }

    #[test]
    fn phones(s in text()) {
        if let Ok(p) = v::phone(&s) {
            prop_assert_eq!(p.len(), 10);
            prop_assert!(p.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn emails_states_and_required_text(s in text(), max in 0usize..120) {
        if let Ok(e) = v::email(&s) {
            prop_assert!(e.contains('@') && e.len() <= 254);
        }
        if let Ok(st) = v::us_state(&s) {
            prop_assert!(v::US_STATES.contains(&st.as_str()));
        }
        if let Ok(r) = v::required(&s, "city", max) {
            prop_assert!(!r.is_empty() && r.chars().count() <= max);
        }
    }

    #[test]
    fn card_numbers_and_expiry(s in text(), m in text(), y in text(), year in 1990u32..2200, month in 0u32..14) {
        if let Ok((digits, _kind)) = v::card_number(&s) {
            prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()));
        }
        if let Ok((mm, yyyy)) = v::card_expiry(&m, &y, (year, month)) {
            prop_assert_eq!(mm.len(), 2);
            prop_assert!(ascii_only(&yyyy));
        }
    }

    #[test]
    fn usps_identifiers(s in text()) {
        if let Ok(c) = v::crid(&s) { prop_assert!((2..=18).contains(&c.len())); }
        if let Ok(m) = v::mid(&s, "MID") { prop_assert!(m.len() == 6 || m.len() == 9); }
        if let Ok(e) = v::eps_account(&s) { prop_assert_eq!(e.len(), 10); }
        if let Ok(p) = v::permit_number(&s) { prop_assert!(p.len() <= 20 && ascii_only(&p)); }
        if let Ok(z) = v::permit_zip(&s) { prop_assert_eq!(z.len(), 5); }
        if let Ok(c) = v::sms_code(&s) { prop_assert!(!c.is_empty() && c.bytes().all(|b| b.is_ascii_alphanumeric())); }
    }

    #[test]
    fn api_keys(s in text()) {
        if let Ok(k) = check_api_key(&s) {
            prop_assert!(!k.expose_secret().is_empty() && k.expose_secret().is_ascii());
            // It must be sendable as a header value.
            prop_assert!(reqwest::header::HeaderValue::from_str(k.expose_secret()).is_ok());
        }
        if let Ok(id) = check_carrier_id(&s) {
            let path = format!("/v1/{id}/verification");
            let parsed = url::Url::parse(&format!("https://x{path}")).map(|u| u.path().to_string());
            prop_assert_eq!(parsed.ok(), Some(path));
        }
    }

    /// The Stamps.com registration form as the live check and Register see it.
    #[test]
    fn registration_form(fields in proptest::collection::vec(text(), 14), agree in any::<bool>(), y in 1990u32..2200, m in 0u32..14) {
        let f = |i: usize| fields[i].clone();
        let form = RegistrationForm {
            nickname: f(0),
            email: f(1),
            agree_to_carrier_terms: agree,
            address: AddressForm {
                name: f(2), phone: f(3), company_name: f(4), address_line1: f(5), address_line2: f(6),
                city_locality: f(7), state_province: f(8), postal_code: f(9), country_code: f(10),
                address_residential_indicator: f(11),
            },
            credit_card: CardForm { name: f(2), number: SecretString::from(f(12)), expiration_month: f(13), expiration_year: f(13) },
        };
        match form.to_request((y, m)) {
            Ok(body) => prop_assert!(body["credit_card"]["number"].as_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))),
            Err(problems) => prop_assert!(!problems.is_empty() && problems.iter().all(|p| !p.message.is_empty())),
        }
    }

    /// The identifiers form: validation, pre-fill, the summary and its mailto.
    #[test]
    fn identifiers_form(fields in proptest::collection::vec(text(), 8), permit in any::<bool>(), hints in proptest::collection::vec(text(), 3), when in any::<u32>()) {
        let f = |i: usize| fields[i].clone();
        let form = IdentifiersForm {
            business_name: f(0), crid: f(1), mid: f(2), manifest_mid: f(3), returns_mid: f(4),
            account_type: if permit { AccountType::Permit } else { AccountType::Eps },
            eps_account: f(5), permit_number: f(6), permit_zip: f(7),
        };
        let hints = AccountHints { crids: vec![hints[0].clone()], mids: vec![hints[1].clone()], eps_accounts: vec![hints[2].clone()] };
        let view = IdentifiersRecord { draft: form.clone(), summary: None }.view(&hints, &[]);
        prop_assert!(view.prefilled.len() <= 3);
        if let Ok(ids) = form.validate() {
            let summary = LinkSummary::new(&ids, u64::from(when));
            let mailto = summary.mailto();
            prop_assert!(mailto.starts_with("mailto:?subject=") && mailto.is_ascii());
            prop_assert!(!mailto.contains(' ') && !mailto.contains('\n'));
        }
    }

    /// Settings: the consumer key, the redirect URI and the sign-in service address.
    #[test]
    fn preferences(key in text(), uri in text(), service in text()) {
        let p = Preferences {
            environment: Environment::Production,
            usps_consumer_key: key,
            redirect_uri: uri,
            usps_sign_in: None,
            sign_in_service_url: service,
        };
        if p.validate().is_ok() {
            prop_assert!(p.usps_consumer_key.len() <= 128);
            let endpoints = Endpoints::for_environment(Environment::Production, "", None, &Default::default());
            if let Some(used) = p.sign_in_service(Environment::Production, &endpoints) {
                // Whatever is accepted is an address the client can be built for.
                let u = url::Url::parse(&used).unwrap();
                prop_assert!(u.scheme() == "https" || u.scheme() == "http");
                let _ = uspslink_core::usps::SignInServiceClient::new(&used);
            }
        }
    }

    /// A pasted or forged access token (the claims decoder reads whatever USPS gave).
    #[test]
    fn token_claims(s in text(), payload in any::<Vec<u8>>()) {
        use base64::Engine;
        let _ = account_hints(&SecretString::from(s));
        let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&payload);
        let _ = account_hints(&SecretString::from(format!("h.{enc}.s")));
    }

    /// The approval check's request template (`USPSLINK_APPROVAL_QUERY`, typed by whoever runs the
    /// app): anything accepted names both placeholders, and filling it never fails.
    #[test]
    fn approval_query_template(s in text(), number in text()) {
        use uspslink_core::approval::ApprovalQuery;
        use uspslink_core::payments::PaymentAccount;
        let wrapped = format!(r#"{{"priceType":"CONTRACT","accountType":"{{accountType}}","accountNumber":"{{accountNumber}}","x":{}}}"#, serde_json::Value::String(s.clone()));
        for candidate in [s.as_str(), wrapped.as_str()] {
            if let Ok(q) = ApprovalQuery::from_json(candidate) {
                let names_both = candidate.contains("{accountType}") && candidate.contains("{accountNumber}");
                prop_assert!(names_both, "accepted without both placeholders: {:?}", candidate);
                let body = q.body(&PaymentAccount::Eps { account_number: number.clone() });
                prop_assert!(body.is_object());
            }
        }
        prop_assert!(ApprovalQuery::from_json(&wrapped).is_ok(), "a JSON object naming both placeholders is taken");
    }

    /// The savings' reference parcels (`USPSLINK_SAVINGS_PARCELS`, typed by whoever runs the app):
    /// anything accepted is a short list of parcels with 5-digit ZIP Codes and positive sizes.
    #[test]
    fn savings_parcels(s in text(), description in text(), zip in text(), weight in any::<f64>()) {
        use uspslink_core::savings::{default_parcels, parcels_from_json};
        let mut parcels = serde_json::to_value(default_parcels()).unwrap();
        parcels[0]["description"] = serde_json::json!(description);
        parcels[1]["to"]["zip"] = serde_json::json!(zip);
        parcels[2]["weight_lb"] = serde_json::json!(weight);
        for candidate in [s.clone(), parcels.to_string()] {
            if let Ok(list) = parcels_from_json(&candidate) {
                prop_assert!(!list.is_empty() && list.len() <= 8);
                for p in &list {
                    prop_assert!(p.to.zip.len() == 5 && p.to.zip.bytes().all(|b| b.is_ascii_digit()));
                    prop_assert!(p.weight_lb > 0.0 && p.weight_lb <= 70.0);
                    prop_assert!(!p.description.trim().is_empty());
                }
            }
        }
    }

    /// USPS's and ShipEngine's price answers, as they come off the wire: any bytes, any JSON.
    /// Nothing panics, and a price read is a price in cents that was in the body.
    #[test]
    fn price_answers(bytes in any::<Vec<u8>>(), s in text(), status in 100u16..600, amount in any::<f64>(), code in text()) {
        use uspslink_core::savings::{classify_estimate, classify_usps, PlatformQuote, PriceType, UspsPrice};
        let priced = serde_json::json!({"rateOptions": [{"totalBasePrice": amount, "rates": [{"priceType": s, "price": amount}]}], "warnings": [s]});
        let rates = serde_json::json!([{"service_code": code, "shipping_amount": {"amount": amount}, "error_messages": []}]);
        for body in [bytes.clone(), s.clone().into_bytes(), priced.to_string().into_bytes()] {
            for asked in [PriceType::Contract, PriceType::Commercial, PriceType::Retail] {
                match classify_usps(status, &body, asked) {
                    Ok(UspsPrice::Priced { cents } | UspsPrice::PublishedInstead { cents }) => {
                        prop_assert!((200..300).contains(&status));
                        prop_assert!(f64::from(cents) < 100_000_000.0);
                    }
                    Ok(UspsPrice::NoContract) => prop_assert!(asked == PriceType::Contract && !(200..300).contains(&status)),
                    Ok(UspsPrice::Unavailable { .. }) => {}
                    Err(_) => prop_assert_eq!(status, 401),
                }
            }
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                let _ = classify_estimate(&v, &code);
            }
        }
        if let PlatformQuote::Quoted { cents } = classify_estimate(&rates, &code) {
            prop_assert!(amount.is_finite() && amount >= 0.0 && ((amount * 100.0).round() - f64::from(cents)).abs() < 1.0);
        }
    }
}
