//! The background watch, while the app runs: keeps the USPS token fresh before it expires, asks
//! USPS on schedule whether the NSA rates are approved, and says so (the dashboard, a desktop
//! notification) when either news arrives: the approval, or a link USPS no longer takes.
//!
//! It wakes at the earlier of the next approval check and the token's refresh time, and at least
//! every minute: a sleep does not count the time a laptop spends suspended, so the wall clock is
//! looked at again often (the checks themselves are decided by the wall clock).

use std::time::Duration;

use tauri::{Emitter, Manager, Runtime};
use tauri_plugin_notification::NotificationExt;
use uspslink_core::approval::ApprovalView;
use uspslink_core::settings::Environment;
use uspslink_core::usps::{unix_now, REFRESH_MARGIN_SECS};
use uspslink_core::ErrorKind;

use crate::approval::{self, CheckOutcome, Trigger};
use crate::state::AppState;

/// Sent to the UI after every check (the dashboard's "Last checked …, next check …").
pub const EVENT_APPROVAL: &str = "approval";
const LONGEST_SLEEP: Duration = Duration::from_secs(60);

pub fn emit_approval<R: Runtime>(app: &tauri::AppHandle<R>, view: &ApprovalView) {
    if let Err(e) = app.emit(EVENT_APPROVAL, view) {
        tracing::error!("could not emit {EVENT_APPROVAL}: {e}");
    }
}

/// A desktop notification (the notification server may be missing: logged, never fatal).
fn notify<R: Runtime>(app: &tauri::AppHandle<R>, title: &str, body: &str) -> bool {
    match app.notification().builder().title(title).body(body).show() {
        Ok(()) => {
            tracing::info!("desktop notification requested: {title}");
            true
        }
        Err(e) => {
            tracing::warn!("could not show a desktop notification: {e}");
            false
        }
    }
}

/// The approval's notification, once per environment (a crash between the two saves sends it again
/// at the next start rather than never).
pub fn announce_approval<R: Runtime>(app: &tauri::AppHandle<R>, env: Environment) {
    let state = app.state::<AppState>();
    let record = state.approval_record(env);
    let Some(at) = record.approved_at else { return };
    if record.notified {
        return;
    }
    let (y, m, d) = uspslink_core::usps::civil_date(at);
    let body = format!("USPS approved your NSA rates on {y:04}-{m:02}-{d:02}. You can begin printing with NSA rates.");
    if notify(app, "USPS approved your NSA rates", &body) {
        if let Err(e) = approval::mark_notified(&state, env) {
            tracing::warn!("could not save that the approval was announced: {}", e.message);
        }
    }
}

/// What the UI and the desktop are told after a check, by the watch or by *Check now*.
pub fn after_check<R: Runtime>(app: &tauri::AppHandle<R>, env: Environment, outcome: &CheckOutcome) {
    if outcome.checked {
        emit_approval(app, &outcome.view);
    }
    if outcome.newly_approved {
        announce_approval(app, env);
    }
}

fn announce_broken_link<R: Runtime>(app: &tauri::AppHandle<R>) {
    crate::link::announce(app);
    notify(
        app,
        "Reconnect your USPS business account",
        "USPS no longer accepts uspslink's connection (a password reset does this). Open uspslink and reconnect to keep your NSA rates.",
    );
}

/// What the loop remembers between ticks: a refresh that could not reach USPS waits before the
/// next try (1, 2, 4 … 30 minutes) instead of asking every minute.
#[derive(Default)]
struct RefreshBackoff {
    failures: u32,
    not_before: u64,
}

async fn tick<R: Runtime>(app: &tauri::AppHandle<R>, env: Environment, backoff: &mut RefreshBackoff) {
    let state = app.state::<AppState>();
    let before = state.link_record(env);
    let healthy = before.linked && !before.needs_reconnecting;
    let now = unix_now();
    if healthy && before.needs_refresh(now) && now >= backoff.not_before {
        match crate::link::refresh_in(&state, env, false).await {
            Ok(()) => *backoff = RefreshBackoff::default(),
            Err(e) => {
                backoff.failures = backoff.failures.saturating_add(1);
                let wait = (60u64 << (backoff.failures - 1).min(5)).min(30 * 60);
                backoff.not_before = now + wait;
                tracing::warn!("could not refresh the USPS token ({}); trying again in {wait} s", e.message);
            }
        }
    }
    if healthy {
        match approval::check_in(&state, env, Trigger::Watch).await {
            Ok(outcome) => after_check(app, env, &outcome),
            Err(e) if e.kind == ErrorKind::NeedsReconnecting => {}
            Err(e) => tracing::warn!("approval check: {}", e.message),
        }
    }
    let after = state.link_record(env);
    if healthy && after.needs_reconnecting {
        tracing::warn!("the USPS link broke while the app was running; telling the owner");
        announce_broken_link(app);
    }
}

/// How long to sleep: until the next thing is due, at most a minute, at least a second.
fn sleep_for(state: &AppState, env: Environment, backoff: &RefreshBackoff) -> Duration {
    let now = unix_now();
    let link = state.link_record(env);
    let mut due = now + LONGEST_SLEEP.as_secs();
    if link.linked && !link.needs_reconnecting {
        due = due.min(link.access_expires_at.saturating_sub(REFRESH_MARGIN_SECS).max(backoff.not_before));
        if let Some(next) = state.approval_view(env).next_check {
            due = due.min(next);
        }
    }
    Duration::from_secs(due.saturating_sub(now)).clamp(Duration::from_secs(1), LONGEST_SLEEP)
}

/// Runs for the life of the app (started after the first screen, with the sandbox).
pub async fn run<R: Runtime>(app: tauri::AppHandle<R>) {
    let mut backoff = RefreshBackoff::default();
    let mut last_env = None;
    loop {
        let state = app.state::<AppState>();
        let env = state.environment();
        if last_env != Some(env) {
            // An approval found when the notification could not go out (or just before a crash).
            announce_approval(&app, env);
            backoff = RefreshBackoff::default();
            last_env = Some(env);
        }
        tick(&app, env, &mut backoff).await;
        let wait = sleep_for(&state, env, &backoff);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = state.watch_wake.notified() => {}
        }
    }
}
