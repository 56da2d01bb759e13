//! Load on the sign-in service, loopback only: `scripts/bench-broker` builds and runs it.
//!
//! `load --broker-bin PATH [--exchanges N] [--clients C]` starts a sandbox (in this process, on its
//! own threads) and the real `uspslink-broker` binary in front of it, then runs N whole sign-ins from
//! C concurrent clients, each as the app and a browser make it: the app's `POST /v1/usps/authorize`,
//! the sandbox's USPS pages, USPS's redirect to `GET /usps/callback`, the app's `POST /v1/usps/token`.
//! It prints the throughput, the p50/p99 latency of each broker call and the errors (must be 0), and
//! the broker's peak memory.
//!
//! Each client sends its own `X-Forwarded-For` address (the broker trusts it here, as behind a load
//! balancer), so the per-client rate limit is in the path and holds each client to the configured rate.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use uspslink_broker::seal::challenge_of;

struct Args {
    broker_bin: String,
    exchanges: usize,
    clients: usize,
}

fn args() -> Result<Args, String> {
    let mut a = Args { broker_bin: String::new(), exchanges: 5_000, clients: 100 };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or(format!("{k} needs a value"))?;
        match k.as_str() {
            "--broker-bin" => a.broker_bin = v,
            "--exchanges" => a.exchanges = v.parse().map_err(|_| "--exchanges: a number")?,
            "--clients" => a.clients = v.parse().map_err(|_| "--clients: a number")?,
            _ => return Err(format!("unknown argument {k}")),
        }
    }
    if a.broker_bin.is_empty() {
        return Err("usage: load --broker-bin PATH [--exchanges N] [--clients C]".into());
    }
    if a.exchanges == 0 || a.clients == 0 || a.exchanges > 100_000 || a.clients > 1_000 {
        return Err("--exchanges 1..100000, --clients 1..1000".into());
    }
    Ok(a)
}

#[derive(Default)]
struct Timings {
    authorize: Vec<Duration>,
    callback: Vec<Duration>,
    token: Vec<Duration>,
    /// Each client's first authorize (it opens the client's connection), apart.
    first_authorize: Vec<Duration>,
}

fn between(page: &str, before: &str) -> Option<String> {
    Some(page.split(before).nth(1)?.split('"').next()?.replace("&amp;", "&"))
}

/// One whole sign-in; the three broker calls' times, or what went wrong.
async fn sign_in(http: &reqwest::Client, broker: &str, forwarded: &str, n: usize) -> Result<[Duration; 3], String> {
    let verifier = format!("load-test-verifier-{n:08}-0123456789abcdefghijklmnopqrstuvwxyz");
    let t = Instant::now();
    let r = http
        .post(format!("{broker}/v1/usps/authorize"))
        .header("x-forwarded-for", forwarded)
        .json(&json!({"code_challenge": challenge_of(&verifier), "code_challenge_method": "S256"}))
        .send()
        .await
        .map_err(|e| format!("authorize: {e}"))?;
    if r.status() != 200 {
        return Err(format!("authorize: HTTP {}", r.status()));
    }
    let started: Value = r.json().await.map_err(|e| format!("authorize: {e}"))?;
    let authorize = t.elapsed();
    let url = started["authorize_url"].as_str().ok_or("authorize: no URL")?;
    let usps = url.split("/cop-navigator").next().unwrap_or_default().to_string();
    let page = http.get(url).send().await.map_err(|e| e.to_string())?.text().await.map_err(|e| e.to_string())?;
    let flow = between(&page, "name=\"flow\" value=\"").ok_or("no sign-in form")?;
    let form =
        |path: &str, fields: Vec<(&'static str, String)>| http.post(format!("{usps}{path}")).form(&fields).send();
    form(
        "/cop-navigator/sign-in",
        vec![
            ("flow", flow.clone()),
            ("username", "merchant".into()),
            ("password", uspslink_sandbox::usps::PASSWORD.into()),
        ],
    )
    .await
    .map_err(|e| e.to_string())?;
    form("/cop-navigator/mfa", vec![("flow", flow.clone()), ("code", uspslink_sandbox::usps::MFA_CODE.into())])
        .await
        .map_err(|e| e.to_string())?;
    let page =
        form("/cop-navigator/grant", vec![("flow", flow), ("agree", "yes".into()), ("decision", "authorize".into())])
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
    let to_broker = between(&page, "id=\"go\" href=\"").ok_or("no redirect to the broker")?;
    let t = Instant::now();
    let r = http.get(&to_broker).send().await.map_err(|e| format!("callback: {e}"))?;
    if r.status() != 200 {
        return Err(format!("callback: HTTP {}", r.status()));
    }
    let page = r.text().await.map_err(|e| e.to_string())?;
    let callback = t.elapsed();
    let handed = url::Url::parse(&between(&page, "id=\"open-app\" href=\"").ok_or("callback: nothing handed on")?)
        .map_err(|e| e.to_string())?;
    let q: std::collections::HashMap<String, String> = handed.query_pairs().into_owned().collect();
    let t = Instant::now();
    let r = http
        .post(format!("{broker}/v1/usps/token"))
        .header("x-forwarded-for", forwarded)
        .json(&json!({"code": q.get("code"), "state": q.get("state"), "code_verifier": verifier}))
        .send()
        .await
        .map_err(|e| format!("token: {e}"))?;
    let status = r.status();
    let body: Value = r.json().await.map_err(|e| format!("token: {e}"))?;
    let token = t.elapsed();
    if status != 200 || body["access_token"].as_str().is_none() {
        return Err(format!("token: HTTP {status} {body}"));
    }
    Ok([authorize, callback, token])
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("load: {e}");
            std::process::exit(2);
        }
    };
    // The sandbox on its own runtime (one thread: it serialises on one lock anyway).
    let sandbox_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let sandbox = sandbox_rt.block_on(uspslink_sandbox::Sandbox::start("127.0.0.1:0")).unwrap();
    let dir = std::env::temp_dir().join(format!("uspslink-broker-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("secret"), uspslink_sandbox::usps::CLIENT_SECRET).unwrap();
    std::fs::write(dir.join("key"), [3u8; 32]).unwrap();
    let mut broker = Command::new(&a.broker_bin)
        .args(["--port", "0"])
        .env("USPSLINK_BROKER_USPS_API_BASE", sandbox.base_url())
        .env("USPSLINK_BROKER_USPS_AUTHORIZE_URL", format!("{}/cop-navigator", sandbox.base_url()))
        .env("USPSLINK_BROKER_CLIENT_ID", uspslink_sandbox::usps::CLIENT_ID)
        .env("USPSLINK_BROKER_CLIENT_SECRET_FILE", dir.join("secret"))
        .env("USPSLINK_BROKER_KEY_FILE", dir.join("key"))
        .env("USPSLINK_BROKER_TRUST_FORWARDED_FOR", "1")
        .env("USPSLINK_BROKER_RATE_PER_MINUTE", "600")
        .env("USPSLINK_BROKER_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the broker binary starts");
    let mut line = String::new();
    BufReader::new(broker.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("broker listening on ").expect("the listening line").to_string();
    // The public URL defaults to the listen address: USPS (the sandbox) redirects browsers there.

    let client_rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let results = client_rt.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..a.clients {
            let (next, base, total) = (next.clone(), base.clone(), a.exchanges);
            tasks.push(tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap();
                let forwarded = format!("10.{}.{}.{}", c / 65_536, (c / 256) % 256, c % 256);
                let mut out = (Timings::default(), Vec::new());
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= total {
                        break;
                    }
                    match sign_in(&http, &base, &forwarded, n).await {
                        Ok([au, cb, tk]) => {
                            if out.0.authorize.is_empty() && out.0.first_authorize.is_empty() {
                                out.0.first_authorize.push(au);
                            }
                            out.0.authorize.push(au);
                            out.0.callback.push(cb);
                            out.0.token.push(tk);
                        }
                        Err(e) => out.1.push(e),
                    }
                }
                out
            }));
        }
        let mut all = (Timings::default(), Vec::new());
        for t in tasks {
            let (t, e) = t.await.unwrap();
            all.0.authorize.extend(t.authorize);
            all.0.callback.extend(t.callback);
            all.0.token.extend(t.token);
            all.0.first_authorize.extend(t.first_authorize);
            all.1.extend(e);
        }
        all
    });
    let wall = started.elapsed();
    let (mut t, errors) = results;
    let peak = peak_rss_mib(broker.id());
    let _ = Command::new("kill").arg(broker.id().to_string()).status();
    let _ = broker.wait();
    let _ = std::fs::remove_dir_all(&dir);

    println!("sign-in service load: {} whole sign-ins, {} concurrent clients, loopback", a.exchanges, a.clients);
    println!("wall time           {:.2} s", wall.as_secs_f64());
    println!(
        "exchanges/s         {:.0} (whole sign-ins: authorize + USPS pages + callback + token)",
        t.token.len() as f64 / wall.as_secs_f64()
    );
    for (name, v) in [("authorize", &mut t.authorize), ("callback", &mut t.callback), ("token", &mut t.token)] {
        v.sort();
        println!(
            "{name:<10} p50 {:>7.2} ms   p99 {:>7.2} ms   n {}",
            percentile(v, 0.50),
            percentile(v, 0.99),
            v.len()
        );
    }
    // The authorize p99 again without each client's first call (its connection being opened).
    let mut warm: Vec<Duration> = t.authorize.clone();
    t.first_authorize.sort();
    for first in &t.first_authorize {
        if let Ok(i) = warm.binary_search(first) {
            warm.remove(i);
        }
    }
    println!(
        "authorize, connections open: p50 {:.2} ms   p99 {:.2} ms   (first calls: p50 {:.2} ms, n {})",
        percentile(&warm, 0.50),
        percentile(&warm, 0.99),
        percentile(&t.first_authorize, 0.50),
        t.first_authorize.len()
    );
    println!("errors              {}", errors.len());
    if let Some(p) = peak {
        println!("broker peak RSS     {p:.1} MiB");
    }
    for e in errors.iter().take(5) {
        println!("  e.g. {e}");
    }
    drop(sandbox);
    if !errors.is_empty() {
        std::process::exit(1);
    }
}
