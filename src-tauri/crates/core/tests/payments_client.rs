//! The payments client against the sandbox: the linked token, each USPS error code as a sentence on
//! its field, and the transport failures.

use std::time::Instant;

use secrecy::SecretString;
use uspslink_core::callback::{self, CallbackOutcome};
use uspslink_core::error::{ErrorKind, HasKind};
use uspslink_core::payments::{AccountType, IdentifiersForm, PaymentAccount, PaymentsClient, PaymentsError};
use uspslink_core::usps::{AttemptStore, TokenExchange, UspsOAuthClient};
use uspslink_sandbox::payments::{
    EPS_CARD_INVALID, EPS_INACTIVE, EPS_INSUFFICIENT_FUNDS, EPS_NO_PAYMENT_METHOD, EPS_PAYMENT_PENDING, PERMIT_NUMBER,
    PERMIT_ZIP,
};
use uspslink_sandbox::usps::{CLIENT_ID, CLIENT_SECRET, CRID, EPS_ACCOUNT, MFA_CODE, MID, PASSWORD};
use uspslink_sandbox::{Fault, Sandbox};

const REDIRECT: &str = "uspslink://oauth/callback";

fn attr_after(html: &str, marker: &str, attr: &str) -> String {
    let rest = &html[html.find(marker).unwrap_or_else(|| panic!("{marker} not in {html}"))..];
    let start = rest.find(&format!("{attr}=\"")).unwrap() + attr.len() + 2;
    rest[start..start + rest[start..].find('"').unwrap()].replace("&amp;", "&")
}

/// A sandbox and an access token of its `merchant` user, through the real sign-in pages.
async fn linked() -> (Sandbox, PaymentsClient, SecretString) {
    let sb = Sandbox::start("127.0.0.1:0").await.unwrap();
    let oauth = UspsOAuthClient::new(&sb.base_url(), CLIENT_ID, SecretString::from(CLIENT_SECRET));
    let mut attempts = AttemptStore::default();
    let started =
        attempts.begin(&format!("{}/cop-navigator", sb.base_url()), CLIENT_ID, REDIRECT, Instant::now()).unwrap();
    let http = reqwest::Client::new();
    let page = http.get(&started.authorize_url).send().await.unwrap().text().await.unwrap();
    let flow = attr_after(&page, "name=\"flow\"", "value");
    let post = |path: &str, form: Vec<(&str, &str)>| http.post(format!("{}{path}", sb.base_url())).form(&form).send();
    post("/cop-navigator/sign-in", vec![("flow", &flow), ("username", "merchant"), ("password", PASSWORD)])
        .await
        .unwrap();
    post("/cop-navigator/mfa", vec![("flow", &flow), ("code", MFA_CODE)]).await.unwrap();
    let page = post("/cop-navigator/grant", vec![("flow", &flow), ("agree", "yes"), ("decision", "authorize")])
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let cb = callback::parse(&attr_after(&page, "id=\"go\"", "href")).unwrap();
    let attempt = attempts.take(&cb.state, Instant::now()).unwrap();
    let CallbackOutcome::Code(code) = cb.outcome else { panic!("expected a code") };
    let tokens = oauth.exchange_code(&code, attempt.verifier(), REDIRECT, "").await.unwrap();
    let client = PaymentsClient::new(&sb.base_url());
    (sb, client, tokens.access_token)
}

fn form(eps: &str) -> IdentifiersForm {
    IdentifiersForm { crid: CRID.into(), mid: MID.into(), eps_account: eps.into(), ..Default::default() }
}

#[tokio::test]
async fn verified_eps_and_permit_accounts() {
    let (_sb, client, token) = linked().await;
    let ids = form(EPS_ACCOUNT).validate().unwrap();
    let info = client.lookup_account(&token, &ids.account).await.unwrap();
    assert_eq!((info.account_type.as_str(), info.account_number.as_deref()), ("EPS", Some(EPS_ACCOUNT)));
    let auth = client.authorize(&token, &ids).await.unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&auth.token).split('.').count(), 3);

    let permit = IdentifiersForm {
        account_type: AccountType::Permit,
        permit_number: PERMIT_NUMBER.into(),
        permit_zip: PERMIT_ZIP.into(),
        ..form("")
    }
    .validate()
    .unwrap();
    client.lookup_account(&token, &permit.account).await.unwrap();
    client.authorize(&token, &permit).await.unwrap();
}

#[tokio::test]
async fn each_refusal_is_a_sentence_on_its_field() {
    let (_sb, client, token) = linked().await;
    let cases = [
        (form(EPS_INACTIVE), "eps_account", "This EPS account is not active", "(USPS error 100002)"),
        (form(EPS_NO_PAYMENT_METHOD), "eps_account", "has no payment method", "(USPS error 100003)"),
        (form(EPS_PAYMENT_PENDING), "eps_account", "can stay Pending", "(USPS error 100004)"),
        (form(EPS_CARD_INVALID), "eps_account", "could not validate the credit card", "(USPS error 100005)"),
        (form(EPS_INSUFFICIENT_FUNDS), "eps_account", "does not have enough funds", "(USPS error 100007)"),
        (form("5555555555"), "eps_account", "USPS has no EPS account with this number", "(USPS error 100001)"),
        (
            IdentifiersForm { crid: "12345678".into(), ..form(EPS_ACCOUNT) },
            "crid",
            "The CRID 12345678 is not associated",
            "(USPS error 403)",
        ),
        (
            IdentifiersForm { mid: "123456".into(), ..form(EPS_ACCOUNT) },
            "mid",
            "The MID 123456 is not associated",
            "(USPS error 403)",
        ),
    ];
    for (form, field, words, code) in cases {
        let ids = form.validate().unwrap();
        let e = client.authorize(&token, &ids).await.err().unwrap();
        let ipc = e.to_ipc();
        assert_eq!(ipc.kind, ErrorKind::RemoteError, "{ipc:?}");
        assert_eq!(ipc.fields.len(), 1, "{ipc:?}");
        assert_eq!(ipc.fields[0].field, field);
        assert!(ipc.fields[0].message.contains(words) && ipc.fields[0].message.ends_with(code), "{ipc:?}");
        assert_eq!(ipc.message, ipc.fields[0].message);
    }
    // The inquiry: an unknown account (404) and a permit at the wrong ZIP.
    let e = client
        .lookup_account(&token, &PaymentAccount::Eps { account_number: "5555555555".into() })
        .await
        .err()
        .unwrap();
    assert_eq!(e.to_ipc().fields[0].field, "eps_account");
    let wrong_zip = PaymentAccount::Permit { permit_number: PERMIT_NUMBER.into(), permit_zip: "10001".into() };
    let e = client.lookup_account(&token, &wrong_zip).await.err().unwrap();
    assert!(e.to_ipc().fields[0].message.starts_with("USPS has no permit with this number"), "{e}");
    assert_eq!(e.to_ipc().fields[0].field, "permit_number");
}

#[tokio::test]
async fn a_dead_token_rate_limits_and_outages() {
    let (sb, client, token) = linked().await;
    let ids = form(EPS_ACCOUNT).validate().unwrap();
    let e = client.authorize(&SecretString::from("not-a-token"), &ids).await.err().unwrap();
    assert!(matches!(e, PaymentsError::Unauthorized(_)), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::NeedsReconnecting);
    sb.inject_fault(
        "/payments/v3/payment-authorization",
        Fault { status: Some(429), retry_after: Some(7), ..Default::default() },
        1,
    );
    let e = client.authorize(&token, &ids).await.err().unwrap();
    assert!(matches!(e, PaymentsError::RateLimited(7)), "{e:?}");
    // The inquiry is a read: one 503 is retried and goes through; four in a row are an outage.
    sb.inject_fault("/payments/v3/payment-account/{number}", Fault { status: Some(503), ..Default::default() }, 1);
    client.lookup_account(&token, &ids.account).await.unwrap();
    sb.inject_fault("/payments/v3/payment-account/{number}", Fault { status: Some(503), ..Default::default() }, 4);
    assert_eq!(client.lookup_account(&token, &ids.account).await.err().unwrap().kind(), ErrorKind::Network);
    sb.inject_fault("/payments/v3/payment-authorization", Fault { malformed: true, ..Default::default() }, 1);
    assert_eq!(client.authorize(&token, &ids).await.err().unwrap().kind(), ErrorKind::MalformedResponse);
    sb.inject_fault("/payments/v3/payment-authorization", Fault { drop_connection: true, ..Default::default() }, 1);
    assert_eq!(client.authorize(&token, &ids).await.err().unwrap().kind(), ErrorKind::Network);
    // After all that, the same request still goes through: nothing was left half-done.
    client.authorize(&token, &ids).await.unwrap();
}

/// The approval watch's check against the sandbox: waiting (160212) until USPS approves the
/// contract, then a contract price; a dead token is refused; an outage is "could not check".
#[tokio::test]
async fn approval_check_waits_until_the_contract_is_approved() {
    use uspslink_core::approval::{ApprovalAnswer, ApprovalClient, ApprovalError, ApprovalQuery};
    let (sb, _client, token) = linked().await;
    let approval = ApprovalClient::new(&sb.base_url(), ApprovalQuery::default())
        .with_retry(uspslink_core::http::Retry::default().with_base_backoff(std::time::Duration::from_millis(10)));
    let eps = PaymentAccount::Eps { account_number: EPS_ACCOUNT.into() };
    assert_eq!(approval.check(&token, &eps).await.unwrap(), ApprovalAnswer::Waiting);
    assert!(matches!(approval.check(&SecretString::from("dead"), &eps).await, Err(ApprovalError::Unauthorized(_))));
    sb.inject_fault("/prices/v3/total-rates/search", Fault { status: Some(503), ..Default::default() }, 4);
    assert!(matches!(approval.check(&token, &eps).await.unwrap(), ApprovalAnswer::CouldNotCheck { .. }));
    let r = reqwest::Client::new()
        .post(format!("{}/sandbox/usps/approve-contract", sb.base_url()))
        .json(&serde_json::json!({"crid": CRID}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(approval.check(&token, &eps).await.unwrap(), ApprovalAnswer::Approved { total_price: Some(7.38) });
    let permit = PaymentAccount::Permit { permit_number: PERMIT_NUMBER.into(), permit_zip: PERMIT_ZIP.into() };
    assert!(matches!(approval.check(&token, &permit).await.unwrap(), ApprovalAnswer::Approved { .. }));
    // A template that asks for retail prices gets a price, but not a contract one: not an approval.
    let retail = ApprovalQuery::from_json(r#"{"mailClass":"PRIORITY_MAIL","weight":1,"priceType":"RETAIL","accountType":"{accountType}","accountNumber":"{accountNumber}"}"#).unwrap();
    let retail = ApprovalClient::new(&sb.base_url(), retail);
    assert!(matches!(retail.check(&token, &eps).await.unwrap(), ApprovalAnswer::CouldNotCheck { .. }));
}

/// The savings' clients against the sandbox: USPS's three prices of one parcel, the published-rate
/// fallback, and Stamps.com's quote through ShipEngine before and after the platform applies the
/// contract.
#[tokio::test]
async fn the_reference_parcels_are_priced_and_quoted() {
    use uspslink_core::savings::{
        classify_estimate, default_parcels, estimate_request, usps_request, PlatformQuote, PriceClient, PriceType,
        UspsPrice,
    };
    use uspslink_core::shipengine::ShipEngineClient;
    let (sb, _client, token) = linked().await;
    let usps = PriceClient::new(&sb.base_url());
    let eps = PaymentAccount::Eps { account_number: EPS_ACCOUNT.into() };
    let near = &default_parcels()[0];
    let ask = |price: PriceType| {
        let (usps, token, body) = (&usps, &token, usps_request(near, price, &eps));
        async move { usps.price(token, &body, price).await.unwrap() }
    };
    assert_eq!(ask(PriceType::Contract).await, UspsPrice::NoContract);
    sb.approve_contract();
    assert_eq!(ask(PriceType::Contract).await, UspsPrice::Priced { cents: 738 });
    assert_eq!(ask(PriceType::Commercial).await, UspsPrice::Priced { cents: 866 });
    assert_eq!(ask(PriceType::Retail).await, UspsPrice::Priced { cents: 985 });
    sb.inject_fault("/prices/v3/total-rates/search", Fault { published_fallback: true, ..Default::default() }, 1);
    assert_eq!(ask(PriceType::Contract).await, UspsPrice::PublishedInstead { cents: 866 });
    sb.inject_fault("/prices/v3/total-rates/search", Fault { status: Some(500), ..Default::default() }, 1);
    assert!(matches!(ask(PriceType::Contract).await, UspsPrice::Unavailable { .. }));
    assert!(usps
        .price(&SecretString::from("dead"), &usps_request(near, PriceType::Contract, &eps), PriceType::Contract)
        .await
        .is_err());

    let shipengine = ShipEngineClient::new(&sb.base_url());
    let key = SecretString::from("TEST_quotes".to_string());
    let carrier =
        shipengine.list_carriers(&key).await.unwrap().into_iter().find(|c| c.carrier_code == "stamps_com").unwrap();
    let quote = || async {
        let rates = shipengine.estimate_rates(&key, &estimate_request(near, &carrier.carrier_id)).await.unwrap();
        classify_estimate(&rates, &near.service_code)
    };
    assert_eq!(
        quote().await,
        PlatformQuote::Quoted { cents: 866 },
        "published until the platform applies the contract"
    );
    let r = reqwest::Client::new()
        .post(format!("{}/sandbox/shipengine/apply-contract", sb.base_url()))
        .json(&serde_json::json!({"carrier_id": carrier.carrier_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(quote().await, PlatformQuote::Quoted { cents: 738 });
    let refused = shipengine.estimate_rates(&key, &estimate_request(near, "se-not-mine")).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::RemoteError);
}
