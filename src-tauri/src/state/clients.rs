//! The HTTP clients: one per environment (and per kind of address: this machine's, where plain
//! http is allowed, or anywhere else, https only), made once and shared by every call, so its
//! connections and TLS sessions are kept between calls instead of built for each one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use uspslink_core::http::{is_loopback, Api, Retry, RetryObserver};
use uspslink_core::settings::Environment;

use super::lock;

/// How long a call may take before it is given up.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Default)]
pub struct Clients {
    /// By environment, and whether the address is on this machine (the client's https-only rule):
    /// the first call's, whose HTTP client the later calls share.
    made: Mutex<HashMap<(Environment, bool), Api>>,
    retry_observer: Mutex<Option<RetryObserver>>,
}

impl Clients {
    /// Where retried calls report their waits (the UI counts them down).
    pub fn set_retry_observer(&self, observer: RetryObserver) {
        *lock(&self.retry_observer) = Some(observer);
    }

    /// The retry policy of calls the owner is waiting for: the UI hears about their waits.
    pub fn retry(&self) -> Retry {
        match lock(&self.retry_observer).clone() {
            Some(o) => Retry::default().with_observer(o),
            None => Retry::default(),
        }
    }

    fn shared(&self, env: Environment, base: &str, retry: Retry) -> Api {
        let mut made = lock(&self.made);
        let first = made.entry((env, is_loopback(base))).or_insert_with(|| Api::new(base, CALL_TIMEOUT));
        // An HTTP client is a handle to one pool: cloning it is cheap.
        Api::shared(base, first.http.clone(), retry)
    }

    /// A call to `base` in `env`, whose retries the UI counts down.
    pub fn api(&self, env: Environment, base: &str) -> Api {
        self.shared(env, base, self.retry())
    }

    /// A call to `base` in `env` that nobody waits for (the background watch): its retries are not
    /// shown.
    pub fn quiet_api(&self, env: Environment, base: &str) -> Api {
        self.shared(env, base, Retry::default())
    }

    /// How many clients were made (tests: one per environment and kind of address, not per call).
    #[cfg(test)]
    pub(crate) fn made(&self) -> usize {
        lock(&self.made).len()
    }
}
