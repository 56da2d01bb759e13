//! Rate limits kept in this process: a token bucket per key, refilled continuously. With one
//! instance (no Redis) these are the limits; with Redis they are what refresh and revoke fall back
//! on while Redis cannot be reached (see `store.rs`). Losing them (a restart) lets a client a little
//! further, never breaks a sign-in.
//!
//! Keys are client addresses (IPv6 already cut to its /64, see `forwarded::bucket`) for the
//! per-client limit, and `()` for the one global cap on calls to USPS.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Past this many keys, the full (idle) buckets are dropped, so a flood of addresses cannot grow
/// the map without bound.
const MAX_CLIENTS: usize = 50_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub(crate) struct RateLimiter<K = IpAddr> {
    per_minute: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    pub(crate) fn new(per_minute: u32) -> Self {
        Self { per_minute: f64::from(per_minute.max(1)), buckets: Mutex::new(HashMap::new()) }
    }

    /// Take one request's token for `key`, or say how long until the next one.
    pub(crate) fn take(&self, key: K, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_CLIENTS && !buckets.contains_key(&key) {
            let per_second = self.per_minute / 60.0;
            let full = self.per_minute;
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * per_second < full);
        }
        let bucket = buckets.entry(key).or_insert(Bucket { tokens: self.per_minute, at: now });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * self.per_minute / 60.0;
        bucket.tokens = (bucket.tokens + refill).min(self.per_minute);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) * 60.0 / self.per_minute))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_rate_and_others_are_not_affected() {
        let limiter = RateLimiter::<IpAddr>::new(60);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..60 {
            limiter.take(a, t0).unwrap();
        }
        let wait = limiter.take(a, t0).unwrap_err();
        assert!(wait <= Duration::from_secs(1) && wait > Duration::ZERO, "{wait:?}");
        limiter.take(b, t0).unwrap();
        limiter.take(a, t0 + Duration::from_secs(1)).unwrap();
        assert!(limiter.take(a, t0 + Duration::from_secs(1)).is_err(), "one second buys one request");
    }

    #[test]
    fn one_global_bucket() {
        let limiter = RateLimiter::<()>::new(2);
        let t0 = Instant::now();
        limiter.take((), t0).unwrap();
        limiter.take((), t0).unwrap();
        let wait = limiter.take((), t0).unwrap_err();
        assert!(wait > Duration::from_secs(29) && wait <= Duration::from_secs(30), "{wait:?}");
        limiter.take((), t0 + Duration::from_secs(30)).unwrap();
    }

    #[test]
    fn idle_clients_are_forgotten_when_the_map_is_full() {
        let limiter = RateLimiter::<IpAddr>::new(10);
        let t0 = Instant::now();
        for i in 0..MAX_CLIENTS as u32 {
            limiter.take(IpAddr::from(i.to_be_bytes()), t0).unwrap();
        }
        let later = t0 + Duration::from_secs(60);
        limiter.take("192.0.2.1".parse().unwrap(), later).unwrap();
        assert!(limiter.buckets.lock().unwrap().len() < 10, "the refilled buckets went");
    }
}
