//! `uspslink-broker [--port P | --listen ADDR]`: the sign-in service as a process. Configuration
//! from the environment (README, "Running the sign-in service"); secrets from files only.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use uspslink_broker::{Broker, Config};

const USAGE: &str = "usage: uspslink-broker [--port P | --listen ADDR]   (default 127.0.0.1:8443)";

fn listen_address(args: &[String]) -> Result<SocketAddr, String> {
    let mut addr: SocketAddr = "127.0.0.1:8443".parse().expect("literal");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => {
                let p = it.next().and_then(|p| p.parse::<u16>().ok()).ok_or("--port needs a number from 0 to 65535")?;
                addr.set_port(p);
            }
            "--listen" => {
                addr = it.next().and_then(|a| a.parse().ok()).ok_or("--listen needs an address like 0.0.0.0:8443")?;
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(addr)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("USPSLINK_BROKER_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = match listen_address(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("uspslink-broker: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("uspslink-broker: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("uspslink-broker: could not listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let bound = listener.local_addr().unwrap_or(addr);
        let (config, warnings) = match Config::from_env(|k| std::env::var(k).ok(), |p| std::fs::read(p), bound) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("uspslink-broker: {e}");
                return ExitCode::from(2);
            }
        };
        for w in warnings {
            tracing::warn!("{w}");
        }
        tracing::info!("USPS callback URL to register: {}", config.callback_url());
        tracing::info!("broker key id {} (states and sealed codes name it)", config.keys.key_id());
        // Never the Redis address: it may carry the password.
        match config.redis_url {
            Some(_) => tracing::info!("code bindings and rate limits: Redis, shared by the instances"),
            None => tracing::info!("code bindings and rate limits: in this process (one instance only)"),
        }
        let broker = match Broker::serve(listener, config) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("uspslink-broker: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("broker listening on http://{}", broker.addr());
        let _ = std::io::stdout().flush();
        shutdown_signal().await;
        tracing::info!("stopping");
        drop(broker);
        // Requests in flight finish (graceful shutdown) within a moment.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn port_and_listen() {
        assert_eq!(listen_address(&args(&["--port", "9000"])).unwrap().to_string(), "127.0.0.1:9000");
        assert_eq!(listen_address(&args(&["--listen", "0.0.0.0:80"])).unwrap().to_string(), "0.0.0.0:80");
        assert!(listen_address(&args(&["--port", "x"])).is_err());
        assert!(listen_address(&args(&["--secret", "s"])).unwrap_err().contains("unknown argument"));
    }
}
