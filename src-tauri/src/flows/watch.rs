//! The background watch, while the app runs: keeps the USPS token fresh before it expires, asks
//! USPS on schedule whether the NSA rates are approved, and says so (the dashboard, a desktop
//! notification) when either news arrives: the approval, or a link USPS no longer takes.
//!
//! It wakes at the earlier of the next approval check and the token's refresh time, and at least
//! every minute: a sleep does not count the time a laptop spends suspended, so the wall clock is
//! looked at again often (the checks themselves are decided by the wall clock).

use std::collections::HashMap;
use std::time::Duration;

use uspslink_core::approval::ApprovalState;
use uspslink_core::savings::SavingsTrigger;
use uspslink_core::usps::REFRESH_MARGIN_SECS;

use super::background::Notice;
use super::Host;
use crate::flows::approval::{self, CheckOutcome, Trigger};
use crate::state::{AppState, Scope};

const LONGEST_SLEEP: Duration = Duration::from_secs(60);

/// The approval's notification, once per environment (a crash between the two saves sends it again
/// at the next start rather than never).
pub fn announce_approval(host: &impl Host, scope: Scope) {
    let state = host.state();
    let record = state.progress.approval_record(scope);
    let Some(at) = record.approved_at else { return };
    if record.notified {
        return;
    }
    let body = format!(
        "USPS approved your NSA rates on {}. You can begin printing with NSA rates.",
        uspslink_core::clock::iso_date(at)
    );
    let title = titled("USPS approved your NSA rates", state.business_name_to_say(scope.business()));
    if host.notify(Notice::Approval(scope.business()), &title, &body) {
        if let Err(e) = approval::mark_notified(state, scope) {
            tracing::warn!("could not save that the approval was announced: {e}");
        }
    }
}

/// A notification's title, naming the business when there are several (`None` otherwise).
fn titled(title: &str, business: Option<String>) -> String {
    match business {
        Some(name) => format!("{title}: {name}"),
        None => title.to_string(),
    }
}

/// What the UI and the desktop are told after a check, by the watch or by *Check now*. The window
/// shows one business: only that business's check is its approval; every check is the overview's.
pub fn after_check(host: &impl Host, scope: Scope, outcome: &CheckOutcome) {
    if outcome.checked {
        if host.state().scope() == scope {
            host.approval_changed(&outcome.view);
        }
        host.businesses_changed(&host.state().overview());
    }
    if outcome.newly_approved {
        announce_approval(host, scope);
        // The watch prices the reference parcels now (the savings), not at its next tick.
        host.state().watch.wake();
    }
}

/// The savings, when due: priced once after the approval, the platform asked again daily while it
/// does not quote the NSA rates.
async fn price_when_due(host: &impl Host, scope: Scope, backoff: &mut RefreshBackoff) {
    let state = host.state();
    let now = state.now();
    if now < backoff.savings_not_before {
        return;
    }
    // Counted as a whole round even when only the platform (ShipEngine) or the contract is due.
    let due = crate::flows::savings::next_watch(state, scope).is_some_and(|at| at <= now);
    if due && !spend(state, pricing_calls(state)) {
        return;
    }
    match crate::flows::savings::price_in(host.state(), scope, SavingsTrigger::Watch).await {
        Ok(outcome) if outcome.asked && host.state().scope() == scope => {
            host.savings_changed(&crate::flows::savings::update(host.state(), scope))
        }
        Ok(_) => {}
        Err(e) if e.needs_reconnecting() => {}
        Err(e) => {
            // A round that reached USPS but could not be saved (a full disk) is not counted against
            // the quota by the record: wait long enough that the quota holds regardless.
            let unsaved = e.not_saved();
            let wait = if unsaved { SAVINGS_UNSAVED_WAIT_SECS } else { SAVINGS_FAILURE_WAIT_SECS };
            backoff.savings_not_before = host.state().now() + wait;
            tracing::warn!("pricing the reference parcels: {e}; trying again in {} minutes", wait / 60)
        }
    }
}

fn announce_broken_link(host: &impl Host, scope: Scope) {
    let state = host.state();
    if state.scope() == scope {
        crate::flows::link::announce(host);
    }
    host.notify(
        Notice::Reconnect(scope.business()),
        &titled("Reconnect your USPS business account", state.business_name_to_say(scope.business())),
        "USPS no longer accepts uspslink's connection (a password reset does this). Open uspslink and reconnect to keep your NSA rates.",
    );
}

/// What the loop remembers between ticks: a refresh that could not reach USPS waits before the
/// next try (1, 2, 4 … 30 minutes) instead of asking every minute.
#[derive(Default)]
struct RefreshBackoff {
    failures: u32,
    not_before: u64,
    /// A pricing round that failed before it could record anything (a full disk, the sandbox not
    /// up) waits this long rather than being tried every second.
    savings_not_before: u64,
}

const SAVINGS_FAILURE_WAIT_SECS: u64 = 15 * 60;
/// 8 hours: at most 3 unsaved rounds a day, the quota's own ceiling.
const SAVINGS_UNSAVED_WAIT_SECS: u64 = 8 * 3600;

async fn tick(host: &impl Host, scope: Scope, backoff: &mut RefreshBackoff) {
    let state = host.state();
    let before = state.progress.link_record(scope);
    let healthy = before.linked && !before.needs_reconnecting;
    let now = state.now();
    if healthy && before.needs_refresh(now) && now >= backoff.not_before {
        match crate::flows::link::refresh_in(state, scope, false).await {
            Ok(()) => (backoff.failures, backoff.not_before) = (0, 0),
            Err(e) => {
                backoff.failures = backoff.failures.saturating_add(1);
                let wait = (60u64 << (backoff.failures - 1).min(5)).min(30 * 60);
                backoff.not_before = now + wait;
                tracing::warn!("could not refresh the USPS token ({e}); trying again in {wait} s");
            }
        }
    }
    if healthy {
        // A check due while the watch's share of the quota is spent stays due for a later round.
        let due = state.approval_view(scope).next_check.is_some_and(|at| at <= state.now());
        if !due || spend(state, 1) {
            match approval::check_in(state, scope, Trigger::Watch).await {
                Ok(outcome) => after_check(host, scope, &outcome),
                Err(e) if e.needs_reconnecting() => {}
                Err(e) => tracing::warn!("approval check: {e}"),
            }
        }
        if state.progress.approval_record(scope).is_approved() {
            price_when_due(host, scope, backoff).await;
        }
    }
    let after = state.progress.link_record(scope);
    if healthy && after.needs_reconnecting {
        tracing::warn!("the USPS link broke while the app was running; telling the owner");
        announce_broken_link(host, scope);
    }
}

/// Take `calls` USPS calls from the watch's share of the quota (every business's together).
fn spend(state: &AppState, calls: usize) -> bool {
    let taken = crate::state::lock(&state.watch.budget).take(calls, state.now());
    if !taken {
        tracing::debug!(calls, "the watch's USPS share is spent for now; a later round asks");
    }
    taken
}

/// A pricing round's USPS calls at most: the contract, commercial and retail price of each parcel.
fn pricing_calls(state: &AppState) -> usize {
    3 * state.config.approval.parcels.len().max(1)
}

/// How long to sleep: until the next thing is due (and the quota lets it go out), at most a minute,
/// at least a second.
fn sleep_for(state: &AppState, scope: Scope, backoff: &RefreshBackoff) -> Duration {
    let now = state.now();
    let link = state.progress.link_record(scope);
    let mut due = now + LONGEST_SLEEP.as_secs();
    if link.linked && !link.needs_reconnecting {
        let budget = crate::state::lock(&state.watch.budget).clone();
        due = due.min(link.access_expires_at.saturating_sub(REFRESH_MARGIN_SECS).max(backoff.not_before));
        if let Some(next) = state.approval_view(scope).next_check {
            due = due.min(next.max(budget.next_allowed(1, now)));
        }
        if let Some(next) = crate::flows::savings::next_watch(state, scope) {
            due = due.min(next.max(backoff.savings_not_before).max(budget.next_allowed(pricing_calls(state), now)));
        }
    }
    Duration::from_secs(due.saturating_sub(now)).clamp(Duration::from_secs(1), LONGEST_SLEEP)
}

/// *Check now* from the tray, for every business waiting for USPS: each within its own daily
/// ceiling and, together, within the watch's share of the quota (what does not fit now, the watch
/// checks in its next rounds).
pub async fn check_all_now(host: &impl Host) {
    let state = host.state();
    let gate = state.watch.gate.lock().await;
    if *gate {
        return; // quitting
    }
    for (scope, _) in state.businesses_in_force() {
        let view = state.approval_view(scope);
        let waiting = matches!(
            view.state,
            ApprovalState::Unchecked | ApprovalState::Waiting | ApprovalState::CouldNotCheck { .. }
        );
        if !waiting || !view.check_now_allowed || !spend(state, 1) {
            continue;
        }
        match approval::check_in(state, scope, Trigger::CheckNow).await {
            Ok(outcome) => after_check(host, scope, &outcome),
            Err(e) => tracing::warn!(business = scope.business().0, "tray check: {e}"),
        }
    }
}

/// Runs for the life of the app (started after the first screen, with the sandbox). Every
/// business is watched in the environment in force, each with its own token and schedule (their
/// checks fall due at different times: the schedule's jitter spreads them), one after the other
/// within a round: a business whose check fails or hangs up to its timeout never stops the others'.
pub async fn run(host: impl Host) {
    let mut backoffs = HashMap::new();
    while let Some(wait) = round(&host, &mut backoffs).await {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = host.state().watch.woken() => {}
        }
    }
}

/// One round over every business: each ticks; returns how long to sleep, or None once quitting.
async fn round(host: &impl Host, backoffs: &mut HashMap<Scope, RefreshBackoff>) -> Option<Duration> {
    let state = host.state();
    let scopes: Vec<Scope> = state.businesses_in_force().into_iter().map(|(scope, _)| scope).collect();
    // A business removed, or an environment left, is forgotten; one met anew starts fresh.
    backoffs.retain(|scope, _| scopes.contains(scope));
    for scope in &scopes {
        // Held for the tick: *Quit* waits for it, and once it has set the gate no tick starts.
        let gate = state.watch.gate.lock().await;
        if *gate {
            return None;
        }
        if !backoffs.contains_key(scope) {
            // An approval found when the notification could not go out (or just before a crash).
            announce_approval(host, *scope);
        }
        let backoff = backoffs.entry(*scope).or_default();
        // A business removed while the round ran (the gate was free between ticks) is skipped.
        if state.progress.businesses().get(scope.business()).is_some() {
            tick(host, *scope, backoff).await;
        }
    }
    let fresh = RefreshBackoff::default();
    let wait = scopes.iter().map(|scope| sleep_for(state, *scope, backoffs.get(scope).unwrap_or(&fresh))).min();
    Some(wait.unwrap_or(LONGEST_SLEEP))
}

#[cfg(test)]
mod tests {
    //! The watch's ticks on a recording host, against the sandbox: what it tells and notifies.
    use uspslink_core::approval::ApprovalState;

    use super::*;
    use crate::flows::tests::RecordingHost;
    use crate::state::lock;

    const SB: crate::state::Scope = crate::state::tests::SB;

    /// One business's ticks (the quota's spacing between businesses is the round test's).
    async fn completed_host() -> RecordingHost {
        let s = crate::flows::approval::tests::completed("merchant").await;
        *lock(&s.watch.budget) = uspslink_core::quota::WatchBudget::with_rules(60, 0);
        RecordingHost::new(s)
    }

    #[tokio::test]
    async fn a_tick_checks_once_and_the_approval_is_notified_once() {
        let host = completed_host().await;
        let mut backoff = RefreshBackoff::default();
        tick(&host, SB, &mut backoff).await;
        assert_eq!(lock(&host.approvals).len(), 1);
        assert_eq!(lock(&host.approvals)[0].state, ApprovalState::Waiting);
        tick(&host, SB, &mut backoff).await;
        assert_eq!(lock(&host.approvals).len(), 1, "not due again");
        crate::flows::approval::tests::approve(host.state()).await;
        let now = approval::check_in(host.state(), SB, Trigger::CheckNow).await.unwrap();
        after_check(&host, SB, &now);
        assert_eq!(lock(&host.notifications).len(), 1);
        assert_eq!(lock(&host.notifications)[0].0, "USPS approved your NSA rates");
        assert!(host.state().progress.approval_record(SB).notified);
        // A restart's catch-up, and later ticks, say nothing more.
        announce_approval(&host, SB);
        tick(&host, SB, &mut backoff).await;
        assert_eq!(lock(&host.notifications).len(), 1);
        // That tick priced the reference parcels (once): the window was told the savings.
        assert_eq!(lock(&host.savings).len(), 1);
        assert_eq!(lock(&host.savings)[0].savings.state, uspslink_core::savings::SavingsState::Applied);
        tick(&host, SB, &mut backoff).await;
        assert_eq!(lock(&host.savings).len(), 1, "priced once; no Stamps.com carrier to ask daily");
    }

    #[tokio::test]
    async fn rounds_check_every_business_staggered_and_one_broken_link_stops_no_other() {
        // A clock the test moves: the second business's first check went out as its link completed.
        let ahead = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let offset = ahead.clone();
        let clock = uspslink_core::clock::Clock::reading(move || {
            uspslink_core::clock::unix_now() + offset.load(std::sync::atomic::Ordering::SeqCst)
        });
        let host = RecordingHost::new(crate::flows::approval::tests::completed("merchant").await.with_clock(clock));
        let state = host.state();
        let second = state.change_businesses(|b| b.add("Second Shop")).unwrap();
        let second = Scope::new(second, uspslink_core::settings::Environment::Sandbox);
        crate::flows::approval::tests::complete_in(state, second, "merchant2").await;
        let last_check = |scope| state.progress.approval_record(scope).history.last_check;
        let before = (last_check(SB), last_check(second));
        // The first business's USPS user reset the password: its check fails; the second's goes on.
        let body = serde_json::json!({"username": "merchant"});
        assert_eq!(state.servers.sandbox_helper("/sandbox/usps/revoke-user", body).await, 204);
        ahead.store(5 * 3600, std::sync::atomic::Ordering::SeqCst);
        let mut backoffs = HashMap::new();
        let wait = round(&host, &mut backoffs).await.expect("not quitting");
        assert!(state.progress.link_record(SB).needs_reconnecting);
        assert_eq!(last_check(SB), before.0, "a broken link is not a check");
        assert_eq!(last_check(second), before.1, "both were due: the second waits its turn (staggered)");
        assert!(wait <= Duration::from_secs(uspslink_core::quota::WATCH_SPACING_SECS), "{wait:?}");
        ahead.store(5 * 3600 + uspslink_core::quota::WATCH_SPACING_SECS, std::sync::atomic::Ordering::SeqCst);
        round(&host, &mut backoffs).await.expect("not quitting");
        assert!(last_check(second) > before.1, "the broken link stopped nothing: the second was checked");
        assert_eq!(backoffs.len(), 2, "each business has its own backoff");
        let notes = lock(&host.notifications).clone();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(notes[0].0, "Reconnect your USPS business account: My business", "it names the business");
        assert!(lock(&host.links).is_empty(), "the window shows the second business: it was not told");
        // Quitting: no round starts.
        *state.watch.gate.lock().await = true;
        assert_eq!(round(&host, &mut backoffs).await, None);
    }

    #[tokio::test]
    async fn a_password_reset_is_found_by_the_next_tick_and_said() {
        let host = completed_host().await;
        let body = serde_json::json!({"username": "merchant"});
        let status = host.state().servers.sandbox_helper("/sandbox/usps/revoke-user", body).await;
        assert!((200..300).contains(&status), "{status}");
        tick(&host, SB, &mut RefreshBackoff::default()).await;
        assert!(host.state().progress.link_record(SB).needs_reconnecting);
        assert!(matches!(
            lock(&host.links).last().unwrap().status,
            uspslink_core::usps::LinkStatus::NeedsReconnecting { .. }
        ));
        assert_eq!(lock(&host.notifications).len(), 1);
        assert_eq!(lock(&host.notifications)[0].0, "Reconnect your USPS business account");
        // Broken: the next ticks ask nothing and say nothing again.
        tick(&host, SB, &mut RefreshBackoff::default()).await;
        assert_eq!(lock(&host.notifications).len(), 1);
    }
}
