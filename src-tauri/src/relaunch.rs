//! Launching while the previous uspslink window is still closing.
//!
//! tauri-plugin-single-instance sees our D-Bus name taken and forwards this launch's arguments (a
//! `uspslink://` URL, say) to the owner. An instance that is in the middle of exiting still owns the
//! name but no longer answers, so the forward fails with "recipient disconnected" and the plugin
//! fails the start: the user's click (or the browser's redirect) does nothing at all. Reopening the
//! app right after closing it is ordinary, and on a busy machine an exit takes long enough to hit.
//!
//! The remedy: when that failure comes fast (a closing instance answers at once by going away; a hung
//! one makes D-Bus wait its full timeout, and retrying that would only hide a dead launch for
//! minutes), start again, in place, after a short pause. By then the name is free and this launch
//! becomes the app, or a live instance takes the arguments. Started again with `exec`, so the process
//! id, the arguments and the environment (a WebDriver session's too) stay the same.

use std::time::Duration;

/// Which launch this is (1 = the first); set only on the re-executed process.
pub const ENV_LAUNCH_ATTEMPT: &str = "USPSLINK_LAUNCH_ATTEMPT";
/// Launches in all, the first included.
pub const MAX_LAUNCH_ATTEMPTS: u32 = 4;
/// A forward failing later than this met an instance that hangs rather than one that is closing.
pub const FAST_FAILURE: Duration = Duration::from_secs(5);

/// The attempt number from the environment (absent or garbled: the first).
pub fn attempt_from(value: Option<&str>) -> u32 {
    value.and_then(|v| v.trim().parse::<u32>().ok()).filter(|n| (1..=MAX_LAUNCH_ATTEMPTS).contains(n)).unwrap_or(1)
}

/// What to do after attempt `attempt` failed to hand over to another instance, `took` after it began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterHandoverFailure {
    /// Pause, then launch again as attempt `next`.
    Retry { pause: Duration, next: u32 },
    /// Stop and tell the user: the other instance does not answer.
    GiveUp,
}

pub fn after_handover_failure(attempt: u32, took: Duration) -> AfterHandoverFailure {
    if took > FAST_FAILURE || attempt >= MAX_LAUNCH_ATTEMPTS {
        return AfterHandoverFailure::GiveUp;
    }
    // 250, 500, 750 ms: an exit seen on a loaded 2-core machine took a few hundred milliseconds.
    AfterHandoverFailure::Retry { pause: Duration::from_millis(250 * u64::from(attempt)), next: attempt + 1 }
}

/// Read (and clear, so nothing the app starts inherits it) the attempt number of this launch.
pub fn take_attempt() -> u32 {
    let attempt = attempt_from(std::env::var(ENV_LAUNCH_ATTEMPT).ok().as_deref());
    // Runs first thing in `run`, before any thread exists.
    std::env::remove_var(ENV_LAUNCH_ATTEMPT);
    attempt
}

/// Replace this process with a fresh launch of the same binary and arguments. Returns only if that
/// could not be done.
#[cfg(unix)]
pub fn exec_again(next: u32) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return e,
    };
    std::process::Command::new(exe).args(std::env::args_os().skip(1)).env(ENV_LAUNCH_ATTEMPT, next.to_string()).exec()
}

/// Replace this process with a start at login's (`uspslink --background`: the tray, no window): the
/// lightest way to keep watching once the window is closed (see ipc::background). Same process id,
/// same environment. Returns only if that could not be done.
#[cfg(target_os = "linux")]
pub fn exec_into_background() -> std::io::Error {
    use std::os::unix::process::CommandExt;
    match std::env::current_exe() {
        Ok(exe) => std::process::Command::new(exe).arg(crate::flows::background::BACKGROUND_ARG).exec(),
        Err(e) => e,
    }
}

#[cfg(not(unix))]
pub fn exec_again(_next: u32) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::Unsupported, "starting again in place needs exec")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_number_from_the_environment() {
        assert_eq!(attempt_from(None), 1);
        assert_eq!(attempt_from(Some("2")), 2);
        assert_eq!(attempt_from(Some(" 4 ")), 4);
        // Out of range or not a number: a first launch, never an endless loop.
        for bad in ["0", "5", "99", "-1", "two", ""] {
            assert_eq!(attempt_from(Some(bad)), 1, "{bad:?}");
        }
    }

    #[test]
    fn a_fast_failure_is_retried_with_growing_pauses_then_given_up() {
        let quick = Duration::from_millis(40);
        assert_eq!(
            after_handover_failure(1, quick),
            AfterHandoverFailure::Retry { pause: Duration::from_millis(250), next: 2 }
        );
        assert_eq!(
            after_handover_failure(2, quick),
            AfterHandoverFailure::Retry { pause: Duration::from_millis(500), next: 3 }
        );
        assert_eq!(
            after_handover_failure(3, quick),
            AfterHandoverFailure::Retry { pause: Duration::from_millis(750), next: 4 }
        );
        assert_eq!(after_handover_failure(MAX_LAUNCH_ATTEMPTS, quick), AfterHandoverFailure::GiveUp);
    }

    #[test]
    fn an_instance_that_hangs_is_not_waited_for_again() {
        // D-Bus gave up on it after its timeout: another try would hang just as long.
        assert_eq!(after_handover_failure(1, Duration::from_secs(25)), AfterHandoverFailure::GiveUp);
        assert_eq!(after_handover_failure(1, FAST_FAILURE + Duration::from_millis(1)), AfterHandoverFailure::GiveUp);
    }
}
