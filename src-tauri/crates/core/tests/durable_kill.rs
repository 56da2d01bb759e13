//! `kill -9` at random moments while saves happen, 50 times: the file always parses and holds the
//! last completed save (or the one in flight when the kill came). A real process is killed: the
//! test binary runs itself as the writer (`DURABLE_WRITER_DIR` set) and the parent kills it.
//!
//! A custom harness (`harness = false`) so the writer mode is not a test of its own.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use uspslink_core::durable;

const KILLS: u32 = 50;

/// Saves a growing "form" as fast as it can, printing the number of each completed save.
fn writer(dir: &Path) -> ! {
    let path = dir.join("uspslink.json");
    let mut out = std::io::stdout();
    for n in 1u64.. {
        // A form being typed: one more character each save, with some non-ASCII text.
        let typed: String = "Jöhn Dœ – 78756 ".chars().cycle().take((n % 400) as usize).collect();
        let body = serde_json::json!({"saves": n, "draft": {"name": typed}, "pad": "x".repeat((n % 5000) as usize)});
        durable::write_atomic(&path, &serde_json::to_vec_pretty(&body).unwrap()).unwrap();
        writeln!(out, "{n}").unwrap();
        out.flush().unwrap();
    }
    unreachable!()
}

/// A small xorshift, seeded from the clock: random kill moments without a dependency.
fn random(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn main() {
    if let Ok(dir) = std::env::var("DURABLE_WRITER_DIR") {
        writer(Path::new(&dir));
    }
    // `cargo test -- --ignored` runs the ignored tests only: this file has none.
    if std::env::args().any(|a| a == "--ignored") {
        println!("kill_9_while_saving: 0 passed, 0 failed, 1 skipped");
        return;
    }
    let dir = std::env::temp_dir().join(format!("uspslink-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("uspslink.json");
    let mut seed = Instant::now().elapsed().as_nanos() as u64 ^ 0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id());
    let (mut in_flight, mut min_saves, mut max_saves) = (0u32, u64::MAX, 0u64);
    let mut failures = Vec::new();
    for round in 0..KILLS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("DURABLE_WRITER_DIR", &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(n) = line.trim().parse::<u64>() {
                    let _ = tx.send(n);
                }
            }
        });
        // Wait for the first save of this round, then kill at a random moment 0-40 ms later.
        let first = rx.recv_timeout(Duration::from_secs(20)).expect("the writer saves");
        std::thread::sleep(Duration::from_micros(random(&mut seed) % 40_000));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        reader.join().unwrap();
        let last_reported = rx.try_iter().last().unwrap_or(first);
        let bytes = std::fs::read(&path).unwrap();
        match durable::parse_object(&bytes) {
            None => failures.push(format!("round {round}: the file does not parse ({} bytes)", bytes.len())),
            Some(obj) => {
                let saves = obj["saves"].as_u64().unwrap_or(0);
                // The last save reported complete, or the one that was between its rename and its print.
                if saves == last_reported + 1 {
                    in_flight += 1;
                } else if saves != last_reported {
                    failures.push(format!(
                        "round {round}: the file holds save {saves}, the last completed was {last_reported}"
                    ));
                }
                min_saves = min_saves.min(saves);
                max_saves = max_saves.max(saves);
            }
        }
        assert_eq!(
            durable::recover(&path, 1).unwrap(),
            durable::Recovery::Clean,
            "round {round}: recovery finds it clean"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "durable kill -9 loop: {KILLS} kills, file parsed every time, saves completed before the kill {min_saves}..{max_saves}, \
         {in_flight} kills landed between a save's rename and its report"
    );
    if failures.is_empty() {
        println!("kill_9_while_saving: 1 passed, 0 failed");
    } else {
        for f in &failures {
            eprintln!("{f}");
        }
        println!("kill_9_while_saving: 0 passed, 1 failed");
        std::process::exit(1);
    }
}
