//! Wall-clock helpers, in one place: Unix seconds and the civil (UTC) date of one.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Civil (UTC) year, month and day of a Unix time (Howard Hinnant's days-to-civil); no date crate
/// for this.
pub fn civil_date(unix_secs: u64) -> (u32, u32, u32) {
    let days = (unix_secs / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year as u32, month as u32, day as u32)
}

/// `YYYY-MM-DD` (UTC) of a Unix time, as the summary and the approval show dates.
pub fn iso_date(unix_secs: u64) -> String {
    let (y, m, d) = civil_date(unix_secs);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM UTC` of a Unix time (for messages that name a time).
pub fn iso_time(unix_secs: u64) -> String {
    format!("{} {:02}:{:02} UTC", iso_date(unix_secs), (unix_secs % 86_400) / 3600, (unix_secs % 3600) / 60)
}
