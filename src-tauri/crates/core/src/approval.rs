//! The approval watch's rules (issue 14, first part): ask USPS for a CONTRACT price for the linked
//! account, tell "approved" from "still waiting" from "could not check", and decide when to ask
//! next without spending the API quota.
//!
//! Inferred, not documented by USPS as such (shared API notes, "Contract (NSA) prices"): Domestic
//! Prices v3 `POST /prices/v3/total-rates/search` with `priceType: CONTRACT` and the account answers
//! error `160212` "An approved contract could not be found" while there is no approved contract, and
//! a price once there is. So the request is a template the app can replace, and any other answer is
//! "could not check", never "approved".

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use ts_rs::TS;

use crate::error::{ErrorKind, HasKind};
use crate::http::Retry;
use crate::payments::PaymentAccount;

/// USPS Error Inventory: "An approved contract could not be found for <mailClass>".
pub const NO_APPROVED_CONTRACT: &str = "160212";

/// What one check found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ApprovalAnswer {
    /// USPS priced the parcel at the contract's rates: the NSA rates are active.
    Approved { total_price: Option<f64> },
    /// USPS has no approved contract for the account yet.
    Waiting,
    /// Anything else: never read as approved.
    CouldNotCheck { reason: String },
}

#[derive(Debug, Error)]
pub enum ApprovalError {
    /// The token was refused: the caller refreshes once, then reports a broken link.
    #[error("USPS refused the access token ({0})")]
    Unauthorized(String),
    #[error("the approval request template is not usable: {0}")]
    BadTemplate(String),
    /// The watch starts once USPS accepted the identifiers (the guide's last step).
    #[error("Finish the steps first: uspslink starts asking USPS about your NSA rates once USPS has accepted your identifiers.")]
    NotLinkedYet,
    /// *Check now* beyond its daily ceiling: USPS counts every call against the app's quota.
    #[error("uspslink has asked USPS {checks} times in the last 24 hours, which is as often as it may; it checks again by itself at {next}.")]
    TooManyChecks { checks: u32, next: String },
}

impl HasKind for ApprovalError {
    fn kind(&self) -> ErrorKind {
        match self {
            ApprovalError::Unauthorized(_) => ErrorKind::NeedsReconnecting,
            ApprovalError::BadTemplate(_) | ApprovalError::NotLinkedYet => ErrorKind::NotConfigured,
            ApprovalError::TooManyChecks { .. } => ErrorKind::RateLimited,
        }
    }
}

fn codes(body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let error = &body["error"];
    if let Some(c) = error["code"].as_str() {
        out.push(c.to_string());
    }
    for e in error["errors"].as_array().into_iter().flatten() {
        if let Some(c) = e["code"].as_str() {
            out.push(c.to_string());
        }
    }
    out
}

/// Read USPS's answer to the CONTRACT price search.
pub fn classify(status: u16, body: &[u8]) -> Result<ApprovalAnswer, ApprovalError> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    if status == 401 {
        let words =
            parsed.as_ref().and_then(|b| b["error"]["message"].as_str().map(str::to_string)).unwrap_or_default();
        return Err(ApprovalError::Unauthorized(if words.is_empty() { "HTTP 401".into() } else { words }));
    }
    let Some(body) = parsed else {
        return Ok(ApprovalAnswer::CouldNotCheck {
            reason: format!("USPS answered HTTP {status} with a body that could not be read"),
        });
    };
    if (200..300).contains(&status) {
        // Only a priced contract rate counts: a retail price (a template asking for RETAIL, a USPS
        // that ignored priceType) or USPS's published-rate fallback is not an approval.
        return Ok(if crate::savings::is_contract_price(&body) {
            ApprovalAnswer::Approved { total_price: crate::savings::first_total(&body) }
        } else if crate::savings::first_total(&body).is_some() {
            ApprovalAnswer::CouldNotCheck { reason: "USPS answered the contract request with a published price".into() }
        } else {
            ApprovalAnswer::CouldNotCheck { reason: "USPS answered without a contract price".into() }
        });
    }
    if codes(&body).iter().any(|c| c == NO_APPROVED_CONTRACT) {
        return Ok(ApprovalAnswer::Waiting);
    }
    Ok(ApprovalAnswer::CouldNotCheck { reason: format!("USPS answered HTTP {status} ({})", codes(&body).join(", ")) })
}

/// The search request, as a JSON template: `"{accountType}"` and `"{accountNumber}"` are replaced
/// with the linked account. Replaceable, since the shape is inferred from the public spec.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalQuery {
    template: Value,
}

impl Default for ApprovalQuery {
    /// A small Priority Mail parcel across Texas, priced at CONTRACT rates for the account.
    fn default() -> Self {
        Self {
            template: serde_json::json!({
                "originZIPCode": "78756",
                "destinationZIPCode": "78701",
                "weight": 1.0,
                "length": 9.0,
                "width": 6.0,
                "height": 2.0,
                "mailClass": "PRIORITY_MAIL",
                "priceType": "CONTRACT",
                "accountType": "{accountType}",
                "accountNumber": "{accountNumber}",
            }),
        }
    }
}

impl ApprovalQuery {
    /// A template from configuration: a JSON object naming both placeholders.
    pub fn from_json(text: &str) -> Result<Self, ApprovalError> {
        let template: Value = serde_json::from_str(text).map_err(|e| ApprovalError::BadTemplate(e.to_string()))?;
        if !template.is_object() {
            return Err(ApprovalError::BadTemplate("it must be a JSON object".into()));
        }
        let s = template.to_string();
        if !s.contains("\"{accountType}\"") || !s.contains("\"{accountNumber}\"") {
            return Err(ApprovalError::BadTemplate("it must contain \"{accountType}\" and \"{accountNumber}\"".into()));
        }
        Ok(Self { template })
    }

    /// The body for one account.
    pub fn body(&self, account: &PaymentAccount) -> Value {
        let (kind, number) = match account {
            PaymentAccount::Eps { account_number } => ("EPS", account_number.as_str()),
            PaymentAccount::Permit { permit_number, .. } => ("PERMIT", permit_number.as_str()),
        };
        fn fill(v: &Value, kind: &str, number: &str) -> Value {
            match v {
                Value::String(s) if s == "{accountType}" => Value::String(kind.into()),
                Value::String(s) if s == "{accountNumber}" => Value::String(number.into()),
                Value::Array(a) => Value::Array(a.iter().map(|x| fill(x, kind, number)).collect()),
                Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), fill(x, kind, number))).collect()),
                other => other.clone(),
            }
        }
        fill(&self.template, kind, number)
    }
}

/// Asks USPS. A search changes nothing at USPS, so it is retried where safe.
pub struct ApprovalClient {
    api: crate::http::Api,
    query: ApprovalQuery,
}

impl ApprovalClient {
    pub fn new(base: &str, query: ApprovalQuery) -> Self {
        Self { api: crate::http::Api::new(base, Duration::from_secs(30)), query }
    }

    /// Over a shared [`crate::http::Api`] (its client and retry policy).
    pub fn over(api: crate::http::Api, query: ApprovalQuery) -> Self {
        Self { api, query }
    }

    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.api.retry = retry;
        self
    }

    pub async fn check(
        &self,
        access_token: &SecretString,
        account: &PaymentAccount,
    ) -> Result<ApprovalAnswer, ApprovalError> {
        let url = self.api.url("/prices/v3/total-rates/search");
        let body = self.query.body(account);
        let answer = self
            .api
            .retry
            .fetch_idempotent("checking whether USPS approved your NSA rates", || {
                self.api.http.post(&url).bearer_auth(access_token.expose_secret()).json(&body)
            })
            .await;
        match answer {
            Ok(a) => classify(a.status, &a.body),
            Err(e) => {
                Ok(ApprovalAnswer::CouldNotCheck { reason: format!("could not reach USPS: {}", e.without_url()) })
            }
        }
    }
}

/// When to check. USPS allows about 60 calls an hour per API by default; the watch uses a handful a
/// day: one at start (when the last is older than the interval), then every few hours with jitter,
/// sooner after a failed check but never more than [`Schedule::max_per_day`] a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Schedule {
    pub interval_secs: u64,
    pub jitter_secs: u64,
    pub first_retry_secs: u64,
    pub max_per_day: u32,
}

impl Default for Schedule {
    fn default() -> Self {
        Self { interval_secs: 4 * 3600, jitter_secs: 30 * 60, first_retry_secs: 15 * 60, max_per_day: 6 }
    }
}

/// What the schedule knows of the past checks (kept in the store).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct CheckHistory {
    /// Unix seconds of the last check, whatever its answer.
    #[ts(type = "number | null")]
    pub last_check: Option<u64>,
    /// Checks that could not be made in a row (reset by any real answer).
    pub failures_in_a_row: u32,
    /// Unix seconds of the checks of the last 24 hours.
    #[ts(type = "Array<number>")]
    pub recent: Vec<u64>,
}

impl CheckHistory {
    pub fn record(&mut self, at: u64, answered: bool) {
        self.last_check = Some(at);
        self.failures_in_a_row = if answered { 0 } else { self.failures_in_a_row.saturating_add(1) };
        self.recent.retain(|t| at.saturating_sub(*t) < 86_400);
        self.recent.push(at);
    }
}

impl Schedule {
    /// The Unix second of the next automatic check. `random` is any random number (jitter).
    pub fn next_check(&self, history: &CheckHistory, now: u64, random: u64) -> u64 {
        let jitter = if self.jitter_secs == 0 { 0 } else { random % (2 * self.jitter_secs + 1) };
        let wait = match history.failures_in_a_row {
            0 => (self.interval_secs + jitter).saturating_sub(self.jitter_secs),
            n => {
                let backoff = self.first_retry_secs.saturating_mul(1u64 << (n - 1).min(16));
                backoff.min(self.interval_secs) + jitter / 4
            }
        };
        let mut next = match history.last_check {
            None => now,
            Some(last) => last.saturating_add(wait).max(now),
        };
        // The quota: the oldest of the last `max_per_day` checks must be a day old first.
        let in_day: Vec<u64> = history.recent.iter().copied().filter(|t| now.saturating_sub(*t) < 86_400).collect();
        if in_day.len() as u32 >= self.max_per_day {
            if let Some(oldest) = in_day.iter().min() {
                next = next.max(oldest + 86_400);
            }
        }
        next
    }

    /// Whether a *Check now* may go out: the daily quota holds for it too.
    pub fn check_now_allowed(&self, history: &CheckHistory, now: u64) -> bool {
        (history.recent.iter().filter(|t| now.saturating_sub(**t) < 86_400).count() as u32) < self.max_per_day * 2
    }
}

/// What the watch keeps per environment (in the progress file; nothing in it is secret).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApprovalRecord {
    pub history: CheckHistory,
    /// The answer of the last check that was made.
    pub last_answer: Option<ApprovalAnswer>,
    /// Unix seconds of the first check that found the rates approved. Once set it stays: approval
    /// is not taken back by a later check that could not be made.
    pub approved_at: Option<u64>,
    /// Unix seconds of the next automatic check (drawn once, with its jitter, after each check).
    pub next_check: Option<u64>,
    /// The desktop notification of the approval went out (it is sent once).
    pub notified: bool,
}

/// The approval watch as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ApprovalState {
    /// The link is not complete yet: nothing to watch.
    NotStarted,
    /// Not checked yet (the first check is on its way).
    Unchecked,
    Waiting,
    CouldNotCheck {
        reason: String,
    },
    /// `approved_on`: `YYYY-MM-DD` (UTC) of the check that found the rates approved.
    Approved {
        approved_on: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct ApprovalView {
    #[serde(flatten)]
    pub state: ApprovalState,
    /// Unix seconds.
    #[ts(type = "number | null")]
    pub last_checked: Option<u64>,
    /// Unix seconds; None once approved (the watch stops) or before the link is complete.
    #[ts(type = "number | null")]
    pub next_check: Option<u64>,
    /// Whether *Check now* may go out now (the daily ceiling).
    pub check_now_allowed: bool,
}

/// `HH:MM UTC` of a Unix second, or the date too when it is not today (for messages).
fn when(unix_secs: u64, now: u64) -> String {
    let hm = format!("{:02}:{:02} UTC", (unix_secs % 86_400) / 3600, (unix_secs % 3600) / 60);
    if unix_secs / 86_400 == now / 86_400 {
        hm
    } else {
        format!("{} {hm}", crate::clock::iso_date(unix_secs))
    }
}

impl ApprovalRecord {
    pub fn is_approved(&self) -> bool {
        self.approved_at.is_some()
    }

    /// Whether the watch should ask USPS now (automatically).
    pub fn due(&self, link_complete: bool, now: u64) -> bool {
        link_complete && !self.is_approved() && self.next_check.is_none_or(|t| now >= t)
    }

    /// A *Check now*: refused (changing nothing) beyond the daily ceiling.
    pub fn may_check_now(&self, schedule: &Schedule, link_complete: bool, now: u64) -> Result<(), ApprovalError> {
        if !link_complete {
            return Err(ApprovalError::NotLinkedYet);
        }
        if schedule.check_now_allowed(&self.history, now) {
            return Ok(());
        }
        let checks = self.history.recent.iter().filter(|t| now.saturating_sub(**t) < 86_400).count() as u32;
        let next = self.next_check.unwrap_or_else(|| schedule.next_check(&self.history, now, 0));
        Err(ApprovalError::TooManyChecks { checks, next: when(next, now) })
    }

    /// Take one check's answer. Returns whether this answer is the approval (the first time).
    pub fn record(&mut self, answer: ApprovalAnswer, schedule: &Schedule, now: u64, random: u64) -> bool {
        let answered = !matches!(answer, ApprovalAnswer::CouldNotCheck { .. });
        self.history.record(now, answered);
        let newly_approved = matches!(answer, ApprovalAnswer::Approved { .. }) && self.approved_at.is_none();
        if newly_approved {
            self.approved_at = Some(now);
        }
        self.last_answer = Some(answer);
        self.next_check = if self.is_approved() { None } else { Some(schedule.next_check(&self.history, now, random)) };
        newly_approved
    }

    pub fn view(&self, schedule: &Schedule, link_complete: bool, now: u64) -> ApprovalView {
        let state = match (&self.approved_at, &self.last_answer) {
            (Some(at), _) => ApprovalState::Approved { approved_on: crate::clock::iso_date(*at) },
            _ if !link_complete => ApprovalState::NotStarted,
            (None, None) => ApprovalState::Unchecked,
            (None, Some(ApprovalAnswer::CouldNotCheck { reason })) => {
                ApprovalState::CouldNotCheck { reason: reason.clone() }
            }
            (None, Some(_)) => ApprovalState::Waiting,
        };
        let watching = link_complete && !self.is_approved();
        ApprovalView {
            state,
            last_checked: self.history.last_check,
            next_check: if watching { Some(self.next_check.unwrap_or(now)) } else { None },
            check_now_allowed: watching && schedule.check_now_allowed(&self.history, now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_and_only_a_contract_price_is_approval() {
        let priced = br#"{"rateOptions":[{"totalBasePrice":8.85,"rates":[{"price":8.85,"priceType":"CONTRACT","mailClass":"PRIORITY_MAIL"}]}]}"#;
        assert_eq!(classify(200, priced).unwrap(), ApprovalAnswer::Approved { total_price: Some(8.85) });
        let retail = br#"{"rateOptions":[{"totalBasePrice":10.4,"rates":[{"price":10.4,"priceType":"RETAIL"}]}]}"#;
        assert!(matches!(classify(200, retail).unwrap(), ApprovalAnswer::CouldNotCheck { .. }));
        assert!(matches!(classify(200, br#"{"rateOptions":[]}"#).unwrap(), ApprovalAnswer::CouldNotCheck { .. }));
        // USPS's published-rate fallback on a contract request is never an approval.
        let fallback = br#"{"rateOptions":[{"totalBasePrice":10.4,"rates":[{"price":10.4,"priceType":"CONTRACT"}]}],"warnings":[{"warningDescription":"Contract rate not found for request. Published rate returned."}]}"#;
        assert!(
            matches!(classify(200, fallback).unwrap(), ApprovalAnswer::CouldNotCheck { reason } if reason.contains("published price"))
        );
        let waiting = br#"{"apiVersion":"/prices/v3","error":{"code":"400","message":"Bad Request","errors":[{"code":"160212","title":"An approved contract could not be found for PRIORITY_MAIL."}]}}"#;
        assert_eq!(classify(400, waiting).unwrap(), ApprovalAnswer::Waiting);
        let top_level = br#"{"error":{"code":"160212","message":"An approved contract could not be found"}}"#;
        assert_eq!(classify(400, top_level).unwrap(), ApprovalAnswer::Waiting);
        let other = br#"{"error":{"code":"400","errors":[{"code":"160201"}]}}"#;
        assert!(
            matches!(classify(400, other).unwrap(), ApprovalAnswer::CouldNotCheck { reason } if reason.contains("160201"))
        );
        for (status, body) in [(503, &b"<html>"[..]), (200, b"not json"), (500, b"{}"), (429, b"{}")] {
            assert!(matches!(classify(status, body).unwrap(), ApprovalAnswer::CouldNotCheck { .. }), "{status}");
        }
        assert!(
            matches!(classify(401, br#"{"error":{"message":"invalid token"}}"#), Err(ApprovalError::Unauthorized(m)) if m == "invalid token")
        );
    }

    #[test]
    fn the_request_template_is_filled_and_checked() {
        let eps = PaymentAccount::Eps { account_number: "1000000001".into() };
        let body = ApprovalQuery::default().body(&eps);
        assert_eq!(
            (body["accountType"].as_str(), body["accountNumber"].as_str(), body["priceType"].as_str()),
            (Some("EPS"), Some("1000000001"), Some("CONTRACT"))
        );
        let permit = PaymentAccount::Permit { permit_number: "1234".into(), permit_zip: "78756".into() };
        let custom = ApprovalQuery::from_json(
            r#"{"priceType":"NSA","account":{"type":"{accountType}","n":["{accountNumber}"]}}"#,
        )
        .unwrap();
        let body = custom.body(&permit);
        assert_eq!(body["account"]["type"], "PERMIT");
        assert_eq!(body["account"]["n"][0], "1234");
        for bad in ["[]", "{", r#"{"accountType":"{accountType}"}"#] {
            assert!(ApprovalQuery::from_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_schedule_checks_at_start_then_every_few_hours_and_backs_off_after_failures() {
        let s = Schedule::default();
        let now = 1_800_000_000;
        let mut h = CheckHistory::default();
        assert_eq!(s.next_check(&h, now, 12345), now, "at start");
        h.record(now, true);
        for random in [0, 1, 900, 1800, 3600, u64::MAX] {
            let next = s.next_check(&h, now, random);
            assert!((now + 3 * 3600 + 1800..=now + 4 * 3600 + 1800).contains(&next), "{random}: {}", next - now);
        }
        // Jitter: different random numbers, different times.
        assert_ne!(s.next_check(&h, now, 7), s.next_check(&h, now, 1007));
        // Failures: 15 min, 30 min, 1 h, 2 h, then capped at the interval.
        let mut waits = Vec::new();
        let mut h = CheckHistory::default();
        for i in 0..6 {
            let at = now + i * 100_000;
            h.record(at, false);
            waits.push(s.next_check(&h, at, 0) - at);
        }
        assert_eq!(waits, [900, 1800, 3600, 7200, 14400, 14400]);
        // Any real answer resets the backoff.
        h.record(now + 700_000, true);
        assert_eq!(h.failures_in_a_row, 0);
    }

    #[test]
    fn the_daily_quota_holds() {
        let s = Schedule { interval_secs: 600, jitter_secs: 0, first_retry_secs: 60, max_per_day: 6 };
        let now = 1_800_000_000;
        let mut h = CheckHistory::default();
        for i in 0..6 {
            h.record(now + i * 600, true);
        }
        let last = now + 5 * 600;
        assert_eq!(s.next_check(&h, last, 0), now + 86_400, "the seventh waits for the first to be a day old");
        assert!(s.check_now_allowed(&h, last));
        for i in 0..6 {
            h.record(last + 1 + i, true);
        }
        assert!(!s.check_now_allowed(&h, last + 10), "Check now has a ceiling too");
        assert!(h.recent.len() <= 12);
    }

    #[test]
    fn the_record_keeps_the_approval_and_stops_the_watch() {
        let s = Schedule::default();
        let now = 1_800_000_000;
        let mut r = ApprovalRecord::default();
        assert_eq!(r.view(&s, false, now).state, ApprovalState::NotStarted);
        assert!(!r.due(false, now), "nothing to watch before the link is complete");
        assert!(matches!(r.may_check_now(&s, false, now), Err(ApprovalError::NotLinkedYet)));
        assert!(r.due(true, now), "the first check goes out at once");
        assert_eq!(r.view(&s, true, now).state, ApprovalState::Unchecked);
        assert!(!r.record(ApprovalAnswer::Waiting, &s, now, 0));
        let v = r.view(&s, true, now);
        assert_eq!(v.state, ApprovalState::Waiting);
        assert_eq!(v.last_checked, Some(now));
        let next = v.next_check.unwrap();
        assert!(next > now + 3 * 3600 && !r.due(true, now + 60) && r.due(true, next));
        assert!(!r.record(ApprovalAnswer::CouldNotCheck { reason: "USPS answered HTTP 503".into() }, &s, now + 10, 0));
        assert!(
            matches!(r.view(&s, true, now + 10).state, ApprovalState::CouldNotCheck { reason } if reason.contains("503"))
        );
        assert_eq!(r.next_check, Some(now + 10 + 900), "a failed check is tried again sooner");
        assert!(
            r.record(ApprovalAnswer::Approved { total_price: Some(8.85) }, &s, now + 20, 0),
            "the first approval is news"
        );
        assert!(!r.record(ApprovalAnswer::Approved { total_price: Some(8.85) }, &s, now + 30, 0), "the second is not");
        // A later check that could not be made does not take the approval back.
        r.record(ApprovalAnswer::CouldNotCheck { reason: "HTTP 500".into() }, &s, now + 40, 0);
        let v = r.view(&s, true, now + 50);
        assert_eq!(v.state, ApprovalState::Approved { approved_on: "2027-01-15".into() });
        assert_eq!((v.next_check, v.check_now_allowed), (None, false));
        assert!(!r.due(true, now + 10 * 86_400), "the watch has stopped");
        // The record survives the progress file.
        let back: ApprovalRecord = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn check_now_is_refused_past_its_ceiling_with_the_time_of_the_next_check() {
        let s = Schedule::default();
        let now = 1_800_000_000;
        let mut r = ApprovalRecord::default();
        for i in 0..12 {
            assert!(r.may_check_now(&s, true, now + i).is_ok(), "{i}");
            r.record(ApprovalAnswer::Waiting, &s, now + i, 0);
        }
        let refused = r.may_check_now(&s, true, now + 20).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::RateLimited);
        let words = refused.to_string();
        assert!(words.contains("12 times") && words.contains("UTC"), "{words}");
        assert!(!r.view(&s, true, now + 20).check_now_allowed);
        assert!(r.may_check_now(&s, true, now + 86_400 + 20).is_ok(), "a day later it may again");
    }
}
