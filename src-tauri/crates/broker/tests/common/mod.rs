//! Helpers shared by the broker's HTTP tests: a broker in front of a real sandbox, a browser
//! walking the sandbox's USPS pages, and a real Redis.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{json, Value};
use uspslink_broker::seal::{challenge_of, Keys};
use uspslink_broker::{Broker, Config};
use uspslink_sandbox::usps::{CLIENT_ID, CLIENT_SECRET, MFA_CODE, PASSWORD};
use uspslink_sandbox::{Pkce, Sandbox, SandboxOptions};

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

/// An instance with these keys and public URL (None: its own address), as `tweak` leaves it.
pub async fn instance(sb: &Sandbox, keys: Keys, public_url: Option<&str>, tweak: impl FnOnce(&mut Config)) -> Broker {
    let public_url = public_url.map(str::to_string);
    Broker::start("127.0.0.1:0", move |addr| {
        let mut c = config(sb, &public_url.unwrap_or_else(|| format!("http://{addr}")), keys);
        tweak(&mut c);
        c
    })
    .await
    .unwrap()
}

/// A sandbox whose USPS treats PKCE as real USPS does: never checks it.
pub async fn sandbox_like_usps() -> Sandbox {
    Sandbox::start_with("127.0.0.1:0", SandboxOptions { pkce: Pkce::Ignore, helper_token: None }).await.unwrap()
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

/// The app's code exchange.
pub async fn exchange(base: &str, code: &str, state: &str, verifier: &str) -> (u16, Value) {
    post(base, "/v1/usps/token", json!({"code": code, "state": state, "code_verifier": verifier})).await
}

/// The raw USPS code and the state in the address USPS sent the browser to (what the browser's
/// history and the TLS proxy's log hold).
pub fn code_and_state(callback_url: &str) -> (String, String) {
    let q: HashMap<String, String> = url::Url::parse(callback_url).unwrap().query_pairs().into_owned().collect();
    (q["code"].clone(), q["state"].clone())
}

/// The browser: the sandbox's USPS pages, then USPS's redirect (the page's link) to the broker.
/// Returns the broker callback URL USPS sent the browser to.
pub async fn sign_in_at_usps(authorize_url: &str, decision: &str) -> String {
    sign_in_at_usps_as(authorize_url, "merchant", decision).await
}

/// The same as one of the sandbox's users (`merchant`, `revoked`, ...).
pub async fn sign_in_at_usps_as(authorize_url: &str, user: &str, decision: &str) -> String {
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
        vec![("flow", flow.clone()), ("username", user.to_string()), ("password", PASSWORD.into())],
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

/// `GET path` with this `Host` over a plain socket (an HTTP client sets `Host` itself); the status.
pub async fn status_with_host(addr: SocketAddr, path: &str, host: &str) -> u16 {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tokio::task::spawn_blocking(move || {
        let mut socket = TcpStream::connect(addr).unwrap();
        socket.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        let _ = socket.read_to_string(&mut answer);
        answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
    })
    .await
    .unwrap()
}

/// A loopback port nobody listens on (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

const NO_REDIS: &str = "the Redis tests need a real redis-server on PATH (Debian: apt-get install redis-server)";

/// A real `redis-server` on a loopback port of its own, without persistence, stopped when dropped.
/// These tests need one: without it on PATH they fail, saying so (the test command installs it).
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_on(free_port())
    }

    /// On `port` (again, after [`RedisServer::stop`]: Redis coming back).
    pub fn start_on(port: u16) -> RedisServer {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("redis-server could not be started ({e}): {NO_REDIS}"));
        let mut server = RedisServer { child: Some(child), port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.command("PING").is_some_and(|a| a.starts_with("+PONG")) {
            if let Ok(Some(status)) = server.child.as_mut().expect("started").try_wait() {
                panic!("redis-server on port {port} stopped at once ({status})");
            }
            assert!(Instant::now() < deadline, "redis-server on port {port} did not answer PING within 10 s");
            std::thread::sleep(Duration::from_millis(25));
        }
        server
    }

    pub fn url(&self) -> SecretString {
        SecretString::from(format!("redis://127.0.0.1:{}/0", self.port))
    }

    /// One inline command over a plain socket; its raw answer.
    pub fn command(&self, line: &str) -> Option<String> {
        let mut socket = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        socket.write_all(format!("{line}\r\n").as_bytes()).ok()?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        // Until the answer stops coming (small answers: one read; KEYS of a test: a few).
        socket.set_read_timeout(Some(Duration::from_millis(200))).ok()?;
        while let Ok(n) = socket.read(&mut buf) {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        Some(String::from_utf8_lossy(&answer).into_owned()).filter(|a| !a.is_empty())
    }

    /// Every key in it.
    pub fn keys(&self) -> Vec<String> {
        let answer = self.command("KEYS *").unwrap_or_default();
        answer.lines().filter(|l| !l.starts_with('*') && !l.starts_with('$')).map(str::to_string).collect()
    }

    /// Stop it now, as a crash would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
