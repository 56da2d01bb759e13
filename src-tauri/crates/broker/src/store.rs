//! What the broker remembers between requests, shared by every instance when Redis (or Valkey) is
//! configured, in this process otherwise:
//!
//! - **code bindings**: a raw USPS code is bound to the first state it reaches the callback with
//!   (`SHA-256(code)` → `SHA-256(state)`, set only if absent, for [`BINDING_TTL`]). USPS does not
//!   bind a code to the sign-in it was issued for and does not check PKCE, so without this whoever
//!   saw a raw code (the https callback in the browser's history, the TLS proxy's log) could start
//!   a sign-in of their own and have the callback seal the code to their state. Only the hashes are
//!   kept: the store never holds a code or a state;
//! - **rate limits**: requests per client per minute, and calls to USPS per minute for the whole
//!   service (USPS's quota is the vendor's, not an instance's).
//!
//! With Redis, nothing is done unbound: a sign-in, a callback or an exchange while Redis cannot be
//! answered is refused (`temporarily_unavailable`). Refresh and revoke need no binding and fall
//! back to this process's limits, so linked users keep working.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::limit::RateLimiter;

/// How long a code stays bound: USPS codes die after five minutes; a reload of the callback page
/// within that time must still find its binding.
pub const BINDING_TTL: Duration = Duration::from_secs(10 * 60);
/// The most bindings kept in memory (one instance): a few MiB. Past it the oldest go first.
const MAX_BINDINGS: usize = 100_000;
/// Every Redis call is given up after this: a sign-in answered "try again" beats one left hanging
/// while the client reconnects in the background.
const REDIS_TIMEOUT: Duration = Duration::from_millis(1_500);
/// Every key the broker writes starts with this, so it can share a Redis with other services.
pub(crate) const KEY_PREFIX: &str = "uspslink-broker:";
const WINDOW: Duration = Duration::from_secs(60);

/// A fixed one-minute window per key in one round trip: count the call, and start the window's
/// expiry on its first call (or if it somehow has none).
const WINDOW_SCRIPT: &str = r"
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
";

/// Why the shared store could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A binding vanished and reappeared between two calls (a race with its expiry, twice).
    #[error("Redis kept changing the binding while it was read")]
    Unsettled,
}

/// `SHA-256` of a code or a state: what the store keeps instead of either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub(crate) fn of(text: &str) -> Fingerprint {
        Fingerprint(Sha256::digest(text.as_bytes()).into())
    }

    fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What binding a code to a state found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    /// The code was new: it is now bound to this state.
    First,
    /// Already bound to this state (the callback page reloaded).
    Again,
    /// Bound to another state: someone else has this code.
    ToAnotherState,
}

/// The bindings of one instance: a map, and the order they were made in (all live equally long,
/// so that is also the order they expire in).
struct MemoryBindings {
    by_code: HashMap<Fingerprint, (Fingerprint, Instant)>,
    order: VecDeque<(Fingerprint, Instant)>,
    capacity: usize,
}

impl MemoryBindings {
    fn new(capacity: usize) -> Self {
        MemoryBindings { by_code: HashMap::new(), order: VecDeque::new(), capacity: capacity.max(1) }
    }

    /// Drop the expired bindings, and the oldest while more than `keep` are left.
    fn prune(&mut self, now: Instant, keep: usize) {
        while let Some(&(code, expires)) = self.order.front() {
            if expires > now && self.order.len() <= keep {
                break;
            }
            self.order.pop_front();
            if self.by_code.get(&code).is_some_and(|(_, e)| *e == expires) {
                self.by_code.remove(&code);
            }
        }
    }

    fn bind(&mut self, code: Fingerprint, state: Fingerprint, now: Instant) -> Bound {
        self.prune(now, self.capacity);
        if let Some((bound, _)) = self.by_code.get(&code) {
            return if *bound == state { Bound::Again } else { Bound::ToAnotherState };
        }
        self.prune(now, self.capacity - 1);
        let expires = now + BINDING_TTL;
        self.by_code.insert(code, (state, expires));
        self.order.push_back((code, expires));
        Bound::First
    }

    fn bound_to(&self, code: Fingerprint, now: Instant) -> Option<Fingerprint> {
        self.by_code.get(&code).filter(|(_, expires)| *expires > now).map(|(state, _)| *state)
    }
}

/// Redis (or Valkey): one multiplexed connection, made on first use and remade in the background
/// when it breaks.
struct RedisStore {
    client: Result<redis::Client, redis::RedisError>,
    connection: OnceLock<Result<ConnectionManager, redis::RedisError>>,
    window: redis::Script,
}

impl RedisStore {
    fn new(url: &SecretString) -> RedisStore {
        let client = redis::Client::open(url.expose_secret());
        if let Err(e) = &client {
            // The configuration checks the address first; an address set in code that Redis's
            // client refuses leaves every sign-in refused rather than running unbound.
            tracing::error!("the Redis address cannot be used ({})", e.category());
        }
        RedisStore { client, connection: OnceLock::new(), window: redis::Script::new(WINDOW_SCRIPT) }
    }

    /// The connection (made lazily, inside the runtime: the manager starts a task of its own).
    fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let made = self.connection.get_or_init(|| {
            let client = self.client.clone()?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_millis(500)))
                .set_response_timeout(Some(Duration::from_millis(500)))
                .set_number_of_retries(2)
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_millis(500));
            ConnectionManager::new_lazy_with_config(client, config)
        });
        made.clone().map_err(StoreError::from)
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let mut connection = self.connection()?;
        let answer: Result<redis::RedisResult<T>, _> =
            tokio::time::timeout(REDIS_TIMEOUT, cmd.query_async(&mut connection)).await;
        Ok(answer.map_err(|_| StoreError::Timeout(REDIS_TIMEOUT))??)
    }

    async fn bind(&self, code: Fingerprint, state: Fingerprint) -> Result<Bound, StoreError> {
        let key = format!("{KEY_PREFIX}code:{}", code.hex());
        let value = state.hex();
        let mut set = redis::cmd("SET");
        set.arg(&key).arg(&value).arg("NX").arg("EX").arg(BINDING_TTL.as_secs());
        let mut get = redis::cmd("GET");
        get.arg(&key);
        // SET NX then GET rather than SET NX GET: Redis before 7.0 refuses the combination.
        for _ in 0..2 {
            let made: Option<String> = self.query(&set).await?;
            if made.is_some() {
                return Ok(Bound::First);
            }
            match self.query::<Option<String>>(&get).await? {
                Some(bound) if bound == value => return Ok(Bound::Again),
                Some(_) => return Ok(Bound::ToAnotherState),
                // Expired between the two calls: set it again.
                None => continue,
            }
        }
        Err(StoreError::Unsettled)
    }

    async fn bound_to(&self, code: Fingerprint) -> Result<Option<String>, StoreError> {
        let mut get = redis::cmd("GET");
        get.arg(format!("{KEY_PREFIX}code:{}", code.hex()));
        self.query(&get).await
    }

    /// Count one call against `key`'s window; `Err(wait)` past `limit`.
    async fn count(&self, key: &str, limit: u32) -> Result<Result<(), Duration>, StoreError> {
        let mut connection = self.connection()?;
        let window_ms = WINDOW.as_millis() as u64;
        let mut invocation = self.window.key(format!("{KEY_PREFIX}{key}"));
        invocation.arg(window_ms);
        let answer: Result<redis::RedisResult<(u64, i64)>, _> =
            tokio::time::timeout(REDIS_TIMEOUT, invocation.invoke_async(&mut connection)).await;
        let (count, ttl_ms) = answer.map_err(|_| StoreError::Timeout(REDIS_TIMEOUT))??;
        if count <= u64::from(limit) {
            return Ok(Ok(()));
        }
        let ttl_ms = u64::try_from(ttl_ms).unwrap_or(window_ms).clamp(1, window_ms);
        Ok(Err(Duration::from_millis(ttl_ms)))
    }
}

enum Backend {
    Memory(Mutex<MemoryBindings>),
    Redis(RedisStore),
}

/// The bindings and the rate limits, in Redis or in this process.
pub(crate) struct Store {
    backend: Backend,
    clients: RateLimiter<IpAddr>,
    usps_calls: RateLimiter<()>,
    rate_per_minute: u32,
    usps_calls_per_minute: u32,
}

impl Store {
    /// Redis at `redis_url`, or this process's memory. Redis is connected to on first use.
    pub(crate) fn new(redis_url: Option<&SecretString>, rate_per_minute: u32, usps_calls_per_minute: u32) -> Store {
        let backend = match redis_url {
            Some(url) => Backend::Redis(RedisStore::new(url)),
            None => Backend::Memory(Mutex::new(MemoryBindings::new(MAX_BINDINGS))),
        };
        Store {
            backend,
            clients: RateLimiter::new(rate_per_minute),
            usps_calls: RateLimiter::new(usps_calls_per_minute),
            rate_per_minute,
            usps_calls_per_minute,
        }
    }

    /// Bind `code` to `state`, unless it is bound already (then say to which).
    pub(crate) async fn bind(&self, code: Fingerprint, state: Fingerprint) -> Result<Bound, StoreError> {
        match &self.backend {
            Backend::Memory(m) => Ok(lock(m).bind(code, state, Instant::now())),
            Backend::Redis(r) => r.bind(code, state).await,
        }
    }

    /// Whether `code` is bound to exactly `state`.
    pub(crate) async fn is_bound_to(&self, code: Fingerprint, state: Fingerprint) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Memory(m) => Ok(lock(m).bound_to(code, Instant::now()) == Some(state)),
            Backend::Redis(r) => Ok(r.bound_to(code).await?.is_some_and(|bound| bound == state.hex())),
        }
    }

    /// One request from `client` (an address from [`crate::forwarded::bucket`]).
    pub(crate) async fn take_client(&self, client: IpAddr) -> Result<Result<(), Duration>, StoreError> {
        match &self.backend {
            Backend::Memory(_) => Ok(self.take_client_here(client)),
            Backend::Redis(r) => r.count(&format!("rate:{client}"), self.rate_per_minute).await,
        }
    }

    /// The same, counted in this process only (Redis unreachable).
    pub(crate) fn take_client_here(&self, client: IpAddr) -> Result<(), Duration> {
        self.clients.take(client, Instant::now())
    }

    /// One call to USPS, against the service-wide cap.
    pub(crate) async fn take_usps_call(&self) -> Result<Result<(), Duration>, StoreError> {
        match &self.backend {
            Backend::Memory(_) => Ok(self.take_usps_call_here()),
            Backend::Redis(r) => r.count("usps-calls", self.usps_calls_per_minute).await,
        }
    }

    /// The same, counted in this process only (Redis unreachable).
    pub(crate) fn take_usps_call_here(&self) -> Result<(), Duration> {
        self.usps_calls.take((), Instant::now())
    }
}

fn lock(m: &Mutex<MemoryBindings>) -> std::sync::MutexGuard<'_, MemoryBindings> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(s: &str) -> Fingerprint {
        Fingerprint::of(s)
    }

    #[test]
    fn a_code_is_bound_to_its_first_state() {
        let mut m = MemoryBindings::new(10);
        let t0 = Instant::now();
        assert_eq!(m.bind(fp("CODE1234"), fp("S1"), t0), Bound::First);
        assert_eq!(m.bind(fp("CODE1234"), fp("S1"), t0), Bound::Again, "a reload");
        assert_eq!(m.bind(fp("CODE1234"), fp("S2"), t0), Bound::ToAnotherState);
        assert_eq!(m.bound_to(fp("CODE1234"), t0), Some(fp("S1")));
        assert_eq!(m.bound_to(fp("OTHER"), t0), None);
        // Past the time to live it is gone, and the code may be bound afresh.
        let later = t0 + BINDING_TTL + Duration::from_secs(1);
        assert_eq!(m.bound_to(fp("CODE1234"), later), None);
        assert_eq!(m.bind(fp("CODE1234"), fp("S2"), later), Bound::First);
        assert_eq!(m.by_code.len(), 1, "the expired binding was dropped");
    }

    #[test]
    fn memory_is_bounded_and_the_oldest_go_first() {
        let mut m = MemoryBindings::new(3);
        let t0 = Instant::now();
        for (i, code) in ["A", "B", "C", "D"].iter().enumerate() {
            m.bind(fp(code), fp("S"), t0 + Duration::from_secs(i as u64));
        }
        assert_eq!((m.by_code.len(), m.order.len()), (3, 3));
        assert_eq!(m.bound_to(fp("A"), t0), None, "the oldest went");
        assert_eq!(m.bound_to(fp("D"), t0), Some(fp("S")));
        // Expired ones go before any live one is pushed out.
        let later = t0 + BINDING_TTL + Duration::from_millis(1_500);
        m.bind(fp("E"), fp("S"), later);
        assert!(m.bound_to(fp("C"), later).is_some() && m.bound_to(fp("B"), later).is_none());
    }

    #[test]
    fn fingerprints_are_sha256() {
        // SHA-256("abc"), FIPS 180-2's first example.
        assert_eq!(fp("abc").hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_ne!(fp("S1"), fp("S2"));
    }

    #[tokio::test]
    async fn an_unusable_redis_address_refuses_rather_than_running_unbound() {
        let store = Store::new(Some(&SecretString::from("http://127.0.0.1:6379")), 60, 60);
        assert!(store.bind(fp("C"), fp("S")).await.is_err());
        assert!(store.is_bound_to(fp("C"), fp("S")).await.is_err());
        assert!(store.take_client("192.0.2.1".parse().unwrap()).await.is_err());
        assert!(store.take_client_here("192.0.2.1".parse().unwrap()).is_ok(), "the local fallback still counts");
    }
}
