//! Helpers shared by the broker's HTTP tests: a broker in front of a real sandbox, and a browser
//! walking the sandbox's USPS pages.
#![allow(dead_code)]

use std::collections::HashMap;

use secrecy::SecretString;
use serde_json::{json, Value};
use uspslink_broker::seal::{challenge_of, Keys};
use uspslink_broker::{Broker, Config};
use uspslink_sandbox::usps::{CLIENT_ID, CLIENT_SECRET, MFA_CODE, PASSWORD};
use uspslink_sandbox::Sandbox;

pub const VERIFIER: &str = "the-apps-pkce-verifier-0123456789-abcdefghijklmnop";

pub fn config(sb: &Sandbox, public_url: &str, keys: Keys) -> Config {
    Config::new(
        &sb.base_url(),
        &format!("{}/cop-navigator", sb.base_url()),
        CLIENT_ID,
        SecretString::from(CLIENT_SECRET),
        public_url,
        keys,
    )
    .unwrap()
}

pub async fn broker(sb: &Sandbox, tweak: impl FnOnce(&mut Config)) -> Broker {
    Broker::start("127.0.0.1:0", |addr| {
        let mut c = config(sb, &format!("http://{addr}"), Keys::random());
        tweak(&mut c);
        c
    })
    .await
    .unwrap()
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub async fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
    let r = http().post(format!("{base}{path}")).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// What the app does first: its challenge to the broker, the USPS address back.
pub async fn start(base: &str, verifier: &str) -> (String, String) {
    let (status, body) = post(
        base,
        "/v1/usps/authorize",
        json!({"code_challenge": challenge_of(verifier), "code_challenge_method": "S256"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (body["authorize_url"].as_str().unwrap().to_string(), body["state"].as_str().unwrap().to_string())
}

pub fn between<'a>(page: &'a str, before: &str) -> &'a str {
    page.split(before).nth(1).unwrap_or_else(|| panic!("no {before:?} in {page}")).split('"').next().unwrap()
}

/// The browser: the sandbox's USPS pages, then USPS's redirect (the page's link) to the broker.
/// Returns the broker callback URL USPS sent the browser to.
pub async fn sign_in_at_usps(authorize_url: &str, decision: &str) -> String {
    let http = http();
    let page = http.get(authorize_url).send().await.unwrap().text().await.unwrap();
    let base = authorize_url.split("/cop-navigator").next().unwrap();
    let flow = between(&page, "name=\"flow\" value=\"").to_string();
    let form = |fields: Vec<(&'static str, String)>, path: &'static str| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move { http.post(url).form(&fields).send().await.unwrap().text().await.unwrap() }
    };
    form(
        vec![("flow", flow.clone()), ("username", "merchant".into()), ("password", PASSWORD.into())],
        "/cop-navigator/sign-in",
    )
    .await;
    form(vec![("flow", flow.clone()), ("code", MFA_CODE.into())], "/cop-navigator/mfa").await;
    let page =
        form(vec![("flow", flow), ("agree", "yes".into()), ("decision", decision.into())], "/cop-navigator/grant")
            .await;
    let id = if decision == "deny" { "id=\"return\" href=\"" } else { "id=\"go\" href=\"" };
    between(&page, id).replace("&amp;", "&")
}

/// The broker's callback page: what it hands on to the app (`uspslink://…` parameters).
pub async fn callback(url: &str) -> (u16, Option<HashMap<String, String>>) {
    let r = http().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    assert_eq!(r.headers()["cache-control"], "no-store");
    let page = r.text().await.unwrap();
    if !page.contains("id=\"open-app\"") {
        return (status, None);
    }
    let target = between(&page, "id=\"open-app\" href=\"").replace("&amp;", "&");
    assert!(
        page.contains(&format!("url={}", between(&page, "id=\"open-app\" href=\""))),
        "the page redirects there by itself too"
    );
    let url = url::Url::parse(&target).unwrap();
    assert_eq!(format!("{}://{}{}", url.scheme(), url.host_str().unwrap(), url.path()), "uspslink://oauth/callback");
    (status, Some(url.query_pairs().into_owned().collect()))
}

pub async fn signed_in(sb_broker: &str, callback_broker: &str, verifier: &str) -> HashMap<String, String> {
    let (authorize_url, state) = start(sb_broker, verifier).await;
    let at_broker = sign_in_at_usps(&authorize_url, "authorize").await;
    let at_broker = at_broker.replacen(sb_broker, callback_broker, 1);
    let (status, handed) = callback(&at_broker).await;
    assert_eq!(status, 200);
    let handed = handed.expect("handed on to the app");
    assert_eq!(handed["state"], state);
    handed
}
