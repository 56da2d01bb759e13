//! The USPS calls the background watch makes for every business of an install together. USPS
//! allows about 60 calls an hour per API and per app (developers.usps.com, "getting started"), and
//! each business's own schedule keeps its checks hours apart; but 50 businesses whose checks all
//! fell due while the computer was off would otherwise go out in one burst. So the watch spends at
//! most [`WATCH_CALLS_PER_HOUR`] Prices API calls an hour (half the quota: the rest is the owner's,
//! for *Check now* and the identifiers step) and at most one batch every [`WATCH_SPACING_SECS`]:
//! what does not fit waits for a later round, still due, and goes out staggered.

use std::collections::VecDeque;

pub const WATCH_CALLS_PER_HOUR: usize = 30;
pub const WATCH_SPACING_SECS: u64 = 30;
const HOUR: u64 = 3600;

/// The watch's USPS calls of the last hour (in memory: a restart starts with a full hour, which
/// at most doubles one hour's calls to the quota itself).
#[derive(Debug, Clone)]
pub struct WatchBudget {
    /// Unix seconds of each call of the last hour, oldest first.
    spent: VecDeque<u64>,
    per_hour: usize,
    spacing_secs: u64,
}

impl Default for WatchBudget {
    fn default() -> Self {
        Self::with_rules(WATCH_CALLS_PER_HOUR, WATCH_SPACING_SECS)
    }
}

impl WatchBudget {
    /// Other rules than USPS's (a test of one business's ticks, not of the quota, spaces nothing).
    pub fn with_rules(per_hour: usize, spacing_secs: u64) -> Self {
        Self { spent: VecDeque::new(), per_hour, spacing_secs }
    }

    fn forget_before(&mut self, now: u64) {
        while self.spent.front().is_some_and(|t| now.saturating_sub(*t) >= HOUR) {
            self.spent.pop_front();
        }
        // The clock was set back: calls "in the future" would hold every check until it caught up.
        self.spent.retain(|t| *t <= now);
    }

    /// When `calls` calls may go out, at `now` or later.
    pub fn next_allowed(&self, calls: usize, now: u64) -> u64 {
        let recent: Vec<u64> = self.spent.iter().copied().filter(|t| *t <= now && now - *t < HOUR).collect();
        let spaced = recent.last().map_or(now, |last| now.max(last + self.spacing_secs));
        // Room for `calls` more within the hour: once enough of the oldest are an hour old.
        let over = (recent.len() + calls).saturating_sub(self.per_hour);
        let roomy = if over == 0 { now } else { recent.get(over - 1).map_or(now, |t| t + HOUR) };
        spaced.max(roomy)
    }

    /// Take `calls` calls now if they fit; false (nothing taken) if not.
    pub fn take(&mut self, calls: usize, now: u64) -> bool {
        self.forget_before(now);
        if calls > self.per_hour || self.next_allowed(calls, now) > now {
            return false;
        }
        self.spent.extend(std::iter::repeat_n(now, calls));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifty_overdue_checks_go_out_staggered_and_within_the_hourly_share() {
        let mut budget = WatchBudget::default();
        let start = 1_800_000_000;
        let mut sent = Vec::new();
        let mut now = start;
        // A round every 10 s for two hours, each offering every business still overdue.
        let mut overdue = 50;
        while now < start + 2 * HOUR && overdue > 0 {
            while overdue > 0 && budget.take(1, now) {
                sent.push(now);
                overdue -= 1;
            }
            now += 10;
        }
        assert_eq!(overdue, 0, "every business was checked within two hours");
        for pair in sent.windows(2) {
            assert!(pair[1] - pair[0] >= WATCH_SPACING_SECS, "staggered: {pair:?}");
        }
        for (i, t) in sent.iter().enumerate() {
            let in_the_hour = sent[..=i].iter().filter(|s| t - **s < HOUR).count();
            assert!(in_the_hour <= WATCH_CALLS_PER_HOUR, "at most {WATCH_CALLS_PER_HOUR} an hour");
        }
    }

    #[test]
    fn a_batch_waits_for_room_and_says_when() {
        let mut budget = WatchBudget::default();
        let t = 1_800_000_000;
        assert!(budget.take(4, t), "a pricing round of four parcels");
        assert!(!budget.take(1, t + 5), "too soon after");
        assert_eq!(budget.next_allowed(1, t + 5), t + WATCH_SPACING_SECS);
        assert!(budget.take(WATCH_CALLS_PER_HOUR - 4, t + WATCH_SPACING_SECS));
        assert!(!budget.take(1, t + 2 * WATCH_SPACING_SECS), "the hour's share is spent");
        assert_eq!(budget.next_allowed(1, t + 100), t + HOUR, "room once the first batch is an hour old");
        assert!(budget.take(4, t + HOUR));
        assert!(!budget.take(WATCH_CALLS_PER_HOUR + 1, t + 10 * HOUR), "more than an hour's share never fits");
        // The clock set back an hour: the calls it "made in the future" hold nothing up.
        assert!(budget.take(1, t), "{budget:?}");
    }
}
