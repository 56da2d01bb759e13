//! Load on the sign-in service, loopback only: `scripts/bench-broker` builds and runs it.
//!
//! `load --broker-bin PATH [--exchanges N] [--clients C] [--fleet]` starts a sandbox (in this
//! process, on its own threads) and the real `uspslink-broker` binary in front of it, then runs N
//! whole sign-ins from C concurrent clients, each as the app and a browser make it: the app's
//! `POST /v1/usps/authorize`, the sandbox's USPS pages, USPS's redirect to `GET /usps/callback`,
//! the app's `POST /v1/usps/token`. It prints the throughput, the p50/p99 latency of each broker
//! call and the errors (must be 0), and the broker's peak memory.
//!
//! `--fleet`: one `redis-server` (from PATH) and two broker instances with the same key file and
//! Redis, as behind a load balancer. Each sign-in starts on one instance and is called back and
//! exchanged on the other (alternating), so every one of them depends on the shared bindings. It
//! also prints Redis's round trips per sign-in (from Redis's own command counts).
//!
//! Each client sends its own `X-Forwarded-For` address (the broker trusts one proxy here, as behind
//! a load balancer), so the per-client rate limit is in the path and holds each client to the
//! configured rate.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use uspslink_broker::seal::challenge_of;

struct Args {
    broker_bin: String,
    exchanges: usize,
    clients: usize,
    fleet: bool,
}

fn args() -> Result<Args, String> {
    let mut a = Args { broker_bin: String::new(), exchanges: 5_000, clients: 100, fleet: false };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        if k == "--fleet" {
            a.fleet = true;
            continue;
        }
        let v = it.next().ok_or(format!("{k} needs a value"))?;
        match k.as_str() {
            "--broker-bin" => a.broker_bin = v,
            "--exchanges" => a.exchanges = v.parse().map_err(|_| "--exchanges: a number")?,
            "--clients" => a.clients = v.parse().map_err(|_| "--clients: a number")?,
            _ => return Err(format!("unknown argument {k}")),
        }
    }
    if a.broker_bin.is_empty() {
        return Err("usage: load --broker-bin PATH [--exchanges N] [--clients C] [--fleet]".into());
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

/// One whole sign-in, started on `start_at` and called back and exchanged on `finish_at` (the same
/// instance, or another one sharing its key and Redis); the three broker calls' times, or what went
/// wrong.
async fn sign_in(
    http: &reqwest::Client,
    start_at: &str,
    finish_at: &str,
    forwarded: &str,
    n: usize,
) -> Result<[Duration; 3], String> {
    let verifier = format!("load-test-verifier-{n:08}-0123456789abcdefghijklmnopqrstuvwxyz");
    let t = Instant::now();
    let r = http
        .post(format!("{start_at}/v1/usps/authorize"))
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
    // Every instance has the same public URL (the first one's here): USPS sends the browser there,
    // and the load balancer passes it to `finish_at`.
    let to_broker = between(&page, "id=\"go\" href=\"").ok_or("no redirect to the broker")?;
    let public = to_broker.split("/usps/callback").next().unwrap_or_default().to_string();
    let to_broker = to_broker.replacen(&public, finish_at, 1);
    let t = Instant::now();
    let r =
        http.get(&to_broker).header("x-forwarded-for", forwarded).send().await.map_err(|e| format!("callback: {e}"))?;
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
        .post(format!("{finish_at}/v1/usps/token"))
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

/// A broker process in front of `sandbox`, configured by `env`; its address.
fn start_broker(bin: &str, sandbox: &str, dir: &std::path::Path, env: &[(&str, String)]) -> (Child, String) {
    let mut command = Command::new(bin);
    command
        .args(["--port", "0"])
        .env("USPSLINK_BROKER_USPS_API_BASE", sandbox)
        .env("USPSLINK_BROKER_USPS_AUTHORIZE_URL", format!("{sandbox}/cop-navigator"))
        .env("USPSLINK_BROKER_CLIENT_ID", uspslink_sandbox::usps::CLIENT_ID)
        .env("USPSLINK_BROKER_CLIENT_SECRET_FILE", dir.join("secret"))
        .env("USPSLINK_BROKER_KEY_FILE", dir.join("key"))
        .env("USPSLINK_BROKER_TRUSTED_PROXIES", "1")
        .env("USPSLINK_BROKER_RATE_PER_MINUTE", "600")
        // The service-wide cap on USPS calls is not what is measured: far above the run's.
        .env("USPSLINK_BROKER_USPS_CALLS_PER_MINUTE", "10000000")
        .env("USPSLINK_BROKER_LOG", "warn")
        .stdout(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut broker = command.spawn().expect("the broker binary starts");
    let mut line = String::new();
    BufReader::new(broker.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("broker listening on ").expect("the listening line").to_string();
    (broker, base)
}

/// A `redis-server` of the run's own on a free loopback port, without persistence.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Result<Redis, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server could not be started ({e}); --fleet needs it on PATH"))?;
        let redis = Redis { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !redis.command("PING").is_some_and(|a| a.starts_with("+PONG")) {
            if Instant::now() > deadline {
                return Err("redis-server did not answer PING within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Ok(redis)
    }

    /// One inline command; its raw answer.
    fn command(&self, line: &str) -> Option<String> {
        let mut socket = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        socket.write_all(format!("{line}\r\n").as_bytes()).ok()?;
        socket.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = socket.read(&mut buf) {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        Some(String::from_utf8_lossy(&answer).into_owned())
    }

    /// Calls per command so far (`INFO commandstats`).
    fn calls(&self) -> BTreeMap<String, u64> {
        let info = self.command("INFO commandstats").unwrap_or_default();
        let mut calls = BTreeMap::new();
        for line in info.lines() {
            let Some((name, rest)) = line.strip_prefix("cmdstat_").and_then(|l| l.split_once(':')) else {
                continue;
            };
            let n = rest.strip_prefix("calls=").and_then(|r| r.split(',').next()).and_then(|n| n.parse().ok());
            calls.insert(name.to_string(), n.unwrap_or(0));
        }
        calls
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The commands the broker sends itself, each one round trip; the ones Redis counts inside its
/// scripts (INCR, PTTL, PEXPIRE) are not round trips.
const ROUND_TRIP_COMMANDS: &[&str] = &["evalsha", "eval", "script|load", "set", "get"];

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
    let redis = if a.fleet {
        match Redis::start() {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("load: {e}");
                std::process::exit(2);
            }
        }
    } else {
        None
    };
    let redis_env: Vec<(&str, String)> =
        redis.iter().map(|r| ("USPSLINK_BROKER_REDIS_URL", format!("redis://127.0.0.1:{}/0", r.port))).collect();
    let mut brokers = vec![start_broker(&a.broker_bin, &sandbox.base_url(), &dir, &redis_env)];
    if a.fleet {
        // Behind one load balancer every instance has the same public URL (the first one's here).
        let mut env = redis_env.clone();
        env.push(("USPSLINK_BROKER_PUBLIC_URL", brokers[0].1.clone()));
        brokers.push(start_broker(&a.broker_bin, &sandbox.base_url(), &dir, &env));
    }
    let bases: Vec<String> = brokers.iter().map(|(_, base)| base.clone()).collect();
    let calls_before = redis.as_ref().map(Redis::calls);

    let client_rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let results = client_rt.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..a.clients {
            let (next, bases, total) = (next.clone(), bases.clone(), a.exchanges);
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
                    // One instance: start and finish there. Two: start on one, finish on the other.
                    let (start_at, finish_at) = (&bases[n % bases.len()], &bases[(n + 1) % bases.len()]);
                    match sign_in(&http, start_at, finish_at, &forwarded, n).await {
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
    let calls_after = redis.as_ref().map(Redis::calls);
    let peaks: Vec<Option<f64>> = brokers.iter().map(|(child, _)| peak_rss_mib(child.id())).collect();
    for (child, _) in &mut brokers {
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let _ = child.wait();
    }
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);

    let setup = if a.fleet {
        "two instances sharing one Redis, each sign-in started on one and finished on the other"
    } else {
        "one instance"
    };
    let (n, clients) = (a.exchanges, a.clients);
    println!("sign-in service load: {n} whole sign-ins, {clients} concurrent clients, loopback, {setup}");
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
    for (i, peak) in peaks.iter().enumerate() {
        if let Some(p) = peak {
            println!("broker {} peak RSS   {p:.1} MiB", i + 1);
        }
    }
    if let (Some(before), Some(after)) = (calls_before, calls_after) {
        let signed_in = t.token.len().max(1) as f64;
        let mut total = 0;
        let mut each = Vec::new();
        for name in ROUND_TRIP_COMMANDS {
            let n = after.get(*name).copied().unwrap_or(0) - before.get(*name).copied().unwrap_or(0);
            total += n;
            if n > 0 {
                each.push(format!("{} {:.2}", name.to_uppercase(), n as f64 / signed_in));
            }
        }
        println!("Redis round trips   {:.2} per sign-in ({})", total as f64 / signed_in, each.join(", "));
    }
    for e in errors.iter().take(5) {
        println!("  e.g. {e}");
    }
    drop(sandbox);
    if !errors.is_empty() {
        std::process::exit(1);
    }
}
