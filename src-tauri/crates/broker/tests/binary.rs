//! The deployable as the vendor runs it: `uspslink-broker --port P`, configured from the
//! environment, the secret from a file.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_uspslink-broker");

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("uspslink-broker-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn it_prints_where_it_listens_and_answers_health_checks() {
    let dir = scratch("run");
    std::fs::write(dir.join("secret"), "the-vendor-secret\n").unwrap();
    std::fs::write(dir.join("key"), [5u8; 32]).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(BIN)
        .args(["--port", &port.to_string()])
        .env("USPSLINK_BROKER_CLIENT_ID", "vendor-key")
        .env("USPSLINK_BROKER_CLIENT_SECRET_FILE", dir.join("secret"))
        .env("USPSLINK_BROKER_KEY_FILE", dir.join("key"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), format!("broker listening on http://127.0.0.1:{port}"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status =
        rt.block_on(async { reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.unwrap().status() });
    assert_eq!(status, 200);
    // SIGTERM: a clean stop. (Windows has no SIGTERM and the broker is deployed on Linux; there the
    // test ends it and reads its log.)
    #[cfg(unix)]
    Command::new("kill").arg(child.id().to_string()).status().unwrap();
    #[cfg(not(unix))]
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    #[cfg(unix)]
    assert!(out.status.success(), "{out:?}");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("USPS callback URL to register: http://127.0.0.1:"), "{log}");
    assert!(!log.contains("the-vendor-secret"), "{log}");
}

#[test]
fn a_missing_secret_file_is_named_and_nothing_listens() {
    let out = Command::new(BIN)
        .args(["--port", "0"])
        .env("USPSLINK_BROKER_CLIENT_ID", "vendor-key")
        .env("USPSLINK_BROKER_CLIENT_SECRET_FILE", scratch("missing").join("no-such-file"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("USPSLINK_BROKER_CLIENT_SECRET_FILE: cannot read it"), "{err}");
    assert!(out.stdout.is_empty(), "no 'listening' line");
    let out = Command::new(BIN).args(["--client-secret", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a secret is never taken as an argument");
}
