//! Wall-clock helpers, in one place: Unix seconds and the civil (UTC) date of one, through the
//! `time` crate (already in the tree through Tauri's cookie store).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The wall clock a part reads (Unix seconds): the system's in the app, one a test sets and moves
/// in tests, so a flow's waits and dates are checked without sleeping.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> u64 + Send + Sync>);

impl Clock {
    pub fn system() -> Self {
        Self(Arc::new(unix_now))
    }

    /// A clock that reads `now` (a test's: it may move it).
    pub fn reading(now: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    pub fn now(&self) -> u64 {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}

/// A Unix time as a UTC date and time; one past `time`'s range (year 9999) reads as its last second.
fn utc(unix_secs: u64) -> OffsetDateTime {
    let secs = i64::try_from(unix_secs).unwrap_or(i64::MAX);
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or_else(|_| {
        // 9999-12-31 23:59:59 UTC, the last second `time` represents without its large-dates feature.
        OffsetDateTime::from_unix_timestamp(253_402_300_799).expect("within range")
    })
}

/// Civil (UTC) year, month and day of a Unix time.
pub fn civil_date(unix_secs: u64) -> (u32, u32, u32) {
    let date = utc(unix_secs).date();
    (date.year() as u32, u8::from(date.month()) as u32, date.day() as u32)
}

/// `YYYY-MM-DD` (UTC) of a Unix time, as the summary and the approval show dates.
pub fn iso_date(unix_secs: u64) -> String {
    let (y, m, d) = civil_date(unix_secs);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM UTC` of a Unix time (for messages that name a time).
pub fn iso_time(unix_secs: u64) -> String {
    let t = utc(unix_secs);
    format!("{} {:02}:{:02} UTC", iso_date(unix_secs), t.hour(), t.minute())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(iso_date(0), "1970-01-01");
        assert_eq!(iso_date(951_782_400), "2000-02-29", "a leap day of a century year");
        assert_eq!(iso_time(4_102_444_799), "2099-12-31 23:59 UTC");
        assert_eq!(iso_time(1_780_000_000), "2026-05-28 20:26 UTC");
        assert_eq!(civil_date(1_796_256_000), (2026, 12, 3));
    }

    proptest! {
        // Any second the clock or a stored record may hold (a garbled file, a far future) gives a
        // date, and the day after is one day later.
        #[test]
        fn any_second_gives_a_date(secs in any::<u64>()) {
            let (y, m, d) = civil_date(secs);
            prop_assert!((1970..=9999).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d));
            prop_assert_eq!(iso_time(secs).len(), "YYYY-MM-DD HH:MM UTC".len());
            if secs < 253_402_214_400 {
                let next = utc(secs + 86_400).date();
                prop_assert_eq!(next.previous_day(), Some(utc(secs).date()));
            }
        }
    }
}
