//! The start-up timeline (issue 13): with `USPSLINK_LOG=uspslink_app::startup=debug` (or `debug`)
//! each phase of the start logs "startup: <phase> at <ms> ms", counted from `run()`; scripts/bench
//! reads these lines to say where the time to the first screen goes.

use std::sync::OnceLock;
use std::time::Instant;

static STARTED: OnceLock<Instant> = OnceLock::new();

/// The moment the app started (the first call fixes it).
pub fn started() -> Instant {
    *STARTED.get_or_init(Instant::now)
}

/// Milliseconds since the start.
pub fn elapsed_ms() -> u64 {
    started().elapsed().as_millis() as u64
}

pub fn phase(name: &str) {
    tracing::debug!("{name} at {} ms", elapsed_ms());
}
