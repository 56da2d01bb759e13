//! The broker's configuration: from the environment for the deployable (the secrets from files,
//! never from arguments or variables), or built directly for the app's in-process sandbox broker.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

pub use crate::forwarded::{Cidr, TrustedProxies};
use crate::seal::Keys;

pub const ENV_USPS_API_BASE: &str = "USPSLINK_BROKER_USPS_API_BASE";
pub const ENV_USPS_AUTHORIZE_URL: &str = "USPSLINK_BROKER_USPS_AUTHORIZE_URL";
pub const ENV_CLIENT_ID: &str = "USPSLINK_BROKER_CLIENT_ID";
pub const ENV_CLIENT_SECRET_FILE: &str = "USPSLINK_BROKER_CLIENT_SECRET_FILE";
pub const ENV_KEY_FILE: &str = "USPSLINK_BROKER_KEY_FILE";
pub const ENV_PUBLIC_URL: &str = "USPSLINK_BROKER_PUBLIC_URL";
pub const ENV_APP_REDIRECT: &str = "USPSLINK_BROKER_APP_REDIRECT";
pub const ENV_ALLOWED_ORIGINS: &str = "USPSLINK_BROKER_ALLOWED_ORIGINS";
pub const ENV_RATE_PER_MINUTE: &str = "USPSLINK_BROKER_RATE_PER_MINUTE";
pub const ENV_TRUSTED_PROXIES: &str = "USPSLINK_BROKER_TRUSTED_PROXIES";
/// The earlier on/off setting, still read as one proxy in front (`TRUSTED_PROXIES=1`).
pub const ENV_TRUST_FORWARDED_FOR: &str = "USPSLINK_BROKER_TRUST_FORWARDED_FOR";
pub const ENV_USPS_TIMEOUT_SECS: &str = "USPSLINK_BROKER_USPS_TIMEOUT_SECS";
pub const ENV_PLATFORM_NAME: &str = "USPSLINK_BROKER_PLATFORM_NAME";
pub const ENV_PREVIOUS_KEY_FILE: &str = "USPSLINK_BROKER_PREVIOUS_KEY_FILE";
pub const ENV_REDIS_URL: &str = "USPSLINK_BROKER_REDIS_URL";
pub const ENV_REDIS_PASSWORD_FILE: &str = "USPSLINK_BROKER_REDIS_PASSWORD_FILE";
pub const ENV_USPS_CALLS_PER_MINUTE: &str = "USPSLINK_BROKER_USPS_CALLS_PER_MINUTE";

pub const DEFAULT_USPS_API_BASE: &str = "https://apis.usps.com";
/// The COP navigator address USPS gives platforms (shared API notes, "COP navigator flow").
pub const DEFAULT_USPS_AUTHORIZE_URL: &str = "https://cop.usps.com/cop-navigator";
pub const DEFAULT_APP_REDIRECT: &str = "uspslink://oauth/callback";
/// Per client address, on the `/v1` API. One sign-in is two requests and a day's refreshes a few,
/// so a person never comes near it; a script trying codes does.
pub const DEFAULT_RATE_PER_MINUTE: u32 = 60;
pub const DEFAULT_USPS_TIMEOUT: Duration = Duration::from_secs(15);
/// Calls to USPS per minute for the whole service (every instance together): 50 a second, far
/// above a vendor's sign-ins and refreshes, far below what would get its USPS app throttled.
pub const DEFAULT_USPS_CALLS_PER_MINUTE: u32 = 3_000;

#[derive(Clone)]
pub struct Config {
    /// USPS API base (`/oauth2/v3/token`, `/oauth2/v3/revoke`).
    pub usps_api: String,
    /// The USPS sign-in page (COP navigator).
    pub usps_authorize: Url,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Where browsers reach this service (the https address registered at USPS, without the path).
    pub public_url: String,
    /// Where the callback hands the answer on to.
    pub app_redirect: String,
    /// Web origins whose pages may call the API (none by default: the app sends no `Origin`).
    pub allowed_origins: Vec<String>,
    pub rate_per_minute: u32,
    /// Which proxies in front may say who the client is (`X-Forwarded-For`); none by default.
    pub trusted_proxies: TrustedProxies,
    /// Calls to USPS per minute, for all instances sharing `redis_url` together.
    pub usps_calls_per_minute: u32,
    pub usps_timeout: Duration,
    /// USPS's optional `platform` parameter (a display name).
    pub platform_name: Option<String>,
    pub keys: Arc<Keys>,
    /// Redis or Valkey shared by the instances (`redis://host:6379/0`, password included if any):
    /// code bindings and rate limits. None: this process's memory (one instance).
    pub redis_url: Option<SecretString>,
    /// Answer only requests whose `Host` is `127.0.0.1:<port>` or `localhost:<port>` (the port it
    /// listens on): for a broker run inside the app on loopback, where a web page could otherwise
    /// reach it under a name of its own (DNS rebinding). Off for the deployed service, which is
    /// reached by its public name.
    pub require_loopback_host: bool,
}

/// A USPS address: https, or plain http only to this machine (the sandbox).
pub fn usps_address(value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|_| format!("{value:?} is not a URL"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    let (https, http) = (url.scheme() == "https" && url.host().is_some(), url.scheme() == "http");
    if https || (http && loopback) {
        return Ok(url);
    }
    if http {
        return Err(format!(
            "{value:?} is plain http: USPS is reached over https (http only to 127.0.0.1, ::1 or localhost, for the \
             sandbox)"
        ));
    }
    Err(format!("{value:?} is not an https address"))
}

fn public_address(value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|_| format!("{value:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{value:?} is not an http(s) address"));
    }
    Ok(url)
}

/// The Redis address from the setting, with the password from its file (a password written in the
/// address is refused: secrets are files, never variables).
fn redis_address(value: &str, password: Option<&str>) -> Result<SecretString, String> {
    let mut url = Url::parse(value).map_err(|_| "not a URL like redis://10.0.0.7:6379/0".to_string())?;
    match url.scheme() {
        "redis" | "valkey" => {}
        "rediss" | "valkeys" => return Err("TLS to Redis is not built in: reach it over a private network".into()),
        _ => return Err("not a redis:// or valkey:// address".into()),
    }
    if url.password().is_some() {
        return Err(format!("the address holds a password: put it in a file named by {ENV_REDIS_PASSWORD_FILE}"));
    }
    if let Some(password) = password {
        url.set_password(Some(password)).map_err(|_| "a password cannot be added to this address".to_string())?;
    }
    redis::Client::open(url.as_str()).map_err(|e| format!("the Redis client refuses it ({})", e.category()))?;
    Ok(SecretString::from(url.to_string()))
}

impl Config {
    /// A configuration with the defaults for everything but USPS and the credentials.
    pub fn new(
        usps_api: &str,
        usps_authorize: &str,
        client_id: &str,
        secret: SecretString,
        public_url: &str,
        keys: Keys,
    ) -> Result<Config, String> {
        usps_address(usps_api).map_err(|e| format!("the USPS API base: {e}"))?;
        let usps_authorize = usps_address(usps_authorize).map_err(|e| format!("the USPS sign-in page: {e}"))?;
        public_address(public_url).map_err(|e| format!("the public URL: {e}"))?;
        Ok(Config {
            usps_api: usps_api.trim_end_matches('/').to_string(),
            usps_authorize,
            client_id: client_id.to_string(),
            client_secret: secret,
            public_url: public_url.trim_end_matches('/').to_string(),
            app_redirect: DEFAULT_APP_REDIRECT.to_string(),
            allowed_origins: Vec::new(),
            rate_per_minute: DEFAULT_RATE_PER_MINUTE,
            trusted_proxies: TrustedProxies::None,
            usps_calls_per_minute: DEFAULT_USPS_CALLS_PER_MINUTE,
            usps_timeout: DEFAULT_USPS_TIMEOUT,
            platform_name: None,
            keys: Arc::new(keys),
            redis_url: None,
            require_loopback_host: false,
        })
    }

    /// The redirect URI registered at USPS.
    pub fn callback_url(&self) -> String {
        format!("{}{}", self.public_url, uspslink_protocol::sign_in::CALLBACK_PATH)
    }

    /// From the environment (`get`) and files (`read`); `listen` is the bound address, the public
    /// URL's default. Returns the warnings to log beside the configuration.
    pub fn from_env(
        get: impl Fn(&str) -> Option<String>,
        read: impl Fn(&Path) -> std::io::Result<Vec<u8>>,
        listen: SocketAddr,
    ) -> Result<(Config, Vec<String>), String> {
        let mut warnings = Vec::new();
        let var = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let client_id =
            var(ENV_CLIENT_ID).ok_or_else(|| format!("{ENV_CLIENT_ID} is not set (the USPS app's consumer key)"))?;
        let secret_file = var(ENV_CLIENT_SECRET_FILE).ok_or_else(|| {
            format!("{ENV_CLIENT_SECRET_FILE} is not set (a file holding the USPS app's consumer secret)")
        })?;
        let secret =
            read(Path::new(&secret_file)).map_err(|e| format!("{ENV_CLIENT_SECRET_FILE}: cannot read it: {e}"))?;
        let secret = String::from_utf8(secret).map_err(|_| format!("{ENV_CLIENT_SECRET_FILE}: not UTF-8 text"))?;
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(format!("{ENV_CLIENT_SECRET_FILE}: the file is empty"));
        }
        let keys = match var(ENV_KEY_FILE) {
            Some(path) => {
                let bytes = read(Path::new(&path)).map_err(|e| format!("{ENV_KEY_FILE}: cannot read it: {e}"))?;
                Keys::from_secret(&bytes).map_err(|e| format!("{ENV_KEY_FILE}: {e}"))?
            }
            None => {
                warnings.push(format!(
                    "{ENV_KEY_FILE} is not set: a random key is used, so sign-ins started on another instance or \
                     before a restart are refused"
                ));
                Keys::random()
            }
        };
        let keys = match var(ENV_PREVIOUS_KEY_FILE) {
            Some(_) if var(ENV_KEY_FILE).is_none() => {
                return Err(format!("{ENV_PREVIOUS_KEY_FILE} is set without {ENV_KEY_FILE} (the key rotated to)"));
            }
            Some(path) => {
                let bytes =
                    read(Path::new(&path)).map_err(|e| format!("{ENV_PREVIOUS_KEY_FILE}: cannot read it: {e}"))?;
                keys.with_previous(&bytes).map_err(|e| format!("{ENV_PREVIOUS_KEY_FILE}: {e}"))?
            }
            None => keys,
        };
        let api = var(ENV_USPS_API_BASE).unwrap_or_else(|| DEFAULT_USPS_API_BASE.into());
        usps_address(&api).map_err(|e| format!("{ENV_USPS_API_BASE}: {e}"))?;
        let authorize = var(ENV_USPS_AUTHORIZE_URL).unwrap_or_else(|| DEFAULT_USPS_AUTHORIZE_URL.into());
        usps_address(&authorize).map_err(|e| format!("{ENV_USPS_AUTHORIZE_URL}: {e}"))?;
        let public = var(ENV_PUBLIC_URL).unwrap_or_else(|| format!("http://{listen}"));
        public_address(&public).map_err(|e| format!("{ENV_PUBLIC_URL}: {e}"))?;
        let mut c = Config::new(&api, &authorize, &client_id, SecretString::from(secret.to_string()), &public, keys)?;
        if !c.public_url.starts_with("https://") {
            warnings.push(format!(
                "{ENV_PUBLIC_URL} is {:?}: USPS expects an https callback; put TLS in front and set it",
                c.public_url
            ));
        }
        if let Some(r) = var(ENV_APP_REDIRECT) {
            Url::parse(&r).map_err(|_| format!("{ENV_APP_REDIRECT}={r:?} is not a URL"))?;
            c.app_redirect = r;
        }
        if let Some(o) = var(ENV_ALLOWED_ORIGINS) {
            c.allowed_origins =
                o.split(',').map(|s| s.trim().trim_end_matches('/').to_string()).filter(|s| !s.is_empty()).collect();
        }
        if let Some(r) = var(ENV_RATE_PER_MINUTE) {
            c.rate_per_minute = r
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{ENV_RATE_PER_MINUTE}={r:?} is not a whole number above 0"))?;
        }
        match (var(ENV_TRUSTED_PROXIES), var(ENV_TRUST_FORWARDED_FOR)) {
            (Some(t), old) => {
                c.trusted_proxies =
                    TrustedProxies::parse(&t).map_err(|e| format!("{ENV_TRUSTED_PROXIES}={t:?}: {e}"))?;
                if old.is_some() {
                    warnings.push(format!("{ENV_TRUST_FORWARDED_FOR} is ignored: {ENV_TRUSTED_PROXIES} is set"));
                }
            }
            // The earlier setting meant "trust the last address the load balancer appended".
            (None, Some(v)) if v == "1" || v.eq_ignore_ascii_case("true") => {
                c.trusted_proxies = TrustedProxies::Hops(1);
                warnings.push(format!(
                    "{ENV_TRUST_FORWARDED_FOR} is read as {ENV_TRUSTED_PROXIES}=1 (one proxy in front); set that \
                     instead"
                ));
            }
            _ => {}
        }
        if let Some(n) = var(ENV_USPS_CALLS_PER_MINUTE) {
            c.usps_calls_per_minute = n
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{ENV_USPS_CALLS_PER_MINUTE}={n:?} is not a whole number above 0"))?;
        }
        let redis_password = match var(ENV_REDIS_PASSWORD_FILE) {
            Some(path) => {
                let bytes =
                    read(Path::new(&path)).map_err(|e| format!("{ENV_REDIS_PASSWORD_FILE}: cannot read it: {e}"))?;
                let text =
                    String::from_utf8(bytes).map_err(|_| format!("{ENV_REDIS_PASSWORD_FILE}: not UTF-8 text"))?;
                Some(SecretString::from(text.trim().to_string()))
            }
            None => None,
        };
        match var(ENV_REDIS_URL) {
            Some(url) => {
                let password = redis_password.as_ref().map(|p| p.expose_secret());
                c.redis_url = Some(redis_address(&url, password).map_err(|e| format!("{ENV_REDIS_URL}: {e}"))?);
            }
            None if redis_password.is_some() => {
                return Err(format!("{ENV_REDIS_PASSWORD_FILE} is set without {ENV_REDIS_URL}"));
            }
            None => {}
        }
        if let Some(t) = var(ENV_USPS_TIMEOUT_SECS) {
            let secs: u64 = t
                .parse()
                .ok()
                .filter(|n| (1..=120).contains(n))
                .ok_or_else(|| format!("{ENV_USPS_TIMEOUT_SECS}={t:?} must be 1 to 120 seconds"))?;
            c.usps_timeout = Duration::from_secs(secs);
        }
        c.platform_name = var(ENV_PLATFORM_NAME);
        Ok((c, warnings))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    fn files(path: &Path) -> std::io::Result<Vec<u8>> {
        match path.to_str() {
            Some("secret") => Ok(b"the-consumer-secret\n".to_vec()),
            Some("key") => Ok(vec![9u8; 32]),
            Some("short-key") => Ok(vec![9u8; 8]),
            Some("old-key") => Ok(vec![8u8; 32]),
            Some("redis-password") => Ok(b"p@ss/word\n".to_vec()),
            _ => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")),
        }
    }

    const LISTEN: &str = "127.0.0.1:8443";

    #[test]
    fn the_secret_comes_from_a_file_and_defaults_fill_the_rest() {
        let (c, warnings) = Config::from_env(
            env(&[(ENV_CLIENT_ID, "platform-key"), (ENV_CLIENT_SECRET_FILE, "secret"), (ENV_KEY_FILE, "key")]),
            files,
            LISTEN.parse().unwrap(),
        )
        .unwrap();
        use secrecy::ExposeSecret;
        assert_eq!(c.client_secret.expose_secret(), "the-consumer-secret", "trimmed");
        assert_eq!(c.callback_url(), "http://127.0.0.1:8443/usps/callback");
        assert_eq!(c.usps_api, DEFAULT_USPS_API_BASE);
        assert_eq!(c.app_redirect, DEFAULT_APP_REDIRECT);
        assert_eq!(warnings.len(), 1, "http public URL: {warnings:?}");
    }

    #[test]
    fn missing_or_bad_settings_are_named() {
        let l = LISTEN.parse().unwrap();
        let e = Config::from_env(env(&[]), files, l).err().unwrap();
        assert!(e.contains(ENV_CLIENT_ID), "{e}");
        let e = Config::from_env(env(&[(ENV_CLIENT_ID, "k")]), files, l).err().unwrap();
        assert!(e.contains(ENV_CLIENT_SECRET_FILE), "{e}");
        let e =
            Config::from_env(env(&[(ENV_CLIENT_ID, "k"), (ENV_CLIENT_SECRET_FILE, "nope")]), files, l).err().unwrap();
        assert!(e.contains("cannot read"), "{e}");
        let base = [(ENV_CLIENT_ID, "k"), (ENV_CLIENT_SECRET_FILE, "secret")];
        let with = |extra: (&'static str, &'static str)| {
            let mut v = base.to_vec();
            v.push(extra);
            Config::from_env(env(&v), files, l).err().unwrap()
        };
        assert!(with((ENV_KEY_FILE, "short-key")).contains("at least 32 bytes"));
        assert!(with((ENV_RATE_PER_MINUTE, "0")).contains(ENV_RATE_PER_MINUTE));
        assert!(with((ENV_USPS_TIMEOUT_SECS, "500")).contains(ENV_USPS_TIMEOUT_SECS));
        assert!(with((ENV_PUBLIC_URL, "ftp://x")).contains(ENV_PUBLIC_URL));
        let (_, warnings) = Config::from_env(env(&base), files, l).unwrap();
        assert!(warnings.iter().any(|w| w.contains(ENV_KEY_FILE)), "a random key is warned about: {warnings:?}");
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![(ENV_CLIENT_ID, "k"), (ENV_CLIENT_SECRET_FILE, "secret"), (ENV_KEY_FILE, "key")]
    }

    fn with(extra: &[(&'static str, &'static str)]) -> Result<(Config, Vec<String>), String> {
        let mut v = base();
        v.extend_from_slice(extra);
        Config::from_env(env(&v), files, LISTEN.parse().unwrap())
    }

    #[test]
    fn usps_is_reached_over_https_or_on_this_machine() {
        for ok in ["https://apis.usps.com", "http://127.0.0.1:8080", "http://[::1]:9", "http://localhost:3000"] {
            assert!(usps_address(ok).is_ok(), "{ok}");
        }
        for bad in ["http://apis.usps.com", "http://10.0.0.5", "ftp://x.usps.com", "usps.com", "http://127.1.nip.io"] {
            assert!(usps_address(bad).is_err(), "{bad}");
        }
        let e = with(&[(ENV_USPS_API_BASE, "http://apis.usps.com")]).err().unwrap();
        assert!(e.starts_with(ENV_USPS_API_BASE) && e.contains("https"), "{e}");
        let e = with(&[(ENV_USPS_AUTHORIZE_URL, "http://cop.usps.com/cop-navigator")]).err().unwrap();
        assert!(e.starts_with(ENV_USPS_AUTHORIZE_URL), "{e}");
        assert!(with(&[(ENV_USPS_API_BASE, "http://127.0.0.1:4000")]).is_ok(), "the sandbox on loopback");
        let plain = "http://apis.usps.com";
        let e = Config::new(plain, DEFAULT_USPS_AUTHORIZE_URL, "k", "s".into(), "https://x", Keys::random());
        assert!(e.err().unwrap().contains("USPS API base"));
    }

    #[test]
    fn trusted_proxies_and_the_earlier_setting() {
        let (c, _) = with(&[]).unwrap();
        assert_eq!(c.trusted_proxies, TrustedProxies::None);
        let (c, _) = with(&[(ENV_TRUSTED_PROXIES, "2")]).unwrap();
        assert_eq!(c.trusted_proxies, TrustedProxies::Hops(2));
        let (c, _) = with(&[(ENV_TRUSTED_PROXIES, "10.0.0.0/8, 2001:db8::/32")]).unwrap();
        assert!(matches!(c.trusted_proxies, TrustedProxies::Cidrs(ref l) if l.len() == 2));
        let e = with(&[(ENV_TRUSTED_PROXIES, "10.0.0.0/40")]).err().unwrap();
        assert!(e.starts_with(ENV_TRUSTED_PROXIES), "{e}");
        // The earlier on/off setting still works, as one proxy, and says so.
        let (c, warnings) = with(&[(ENV_TRUST_FORWARDED_FOR, "1")]).unwrap();
        assert_eq!(c.trusted_proxies, TrustedProxies::Hops(1));
        assert!(warnings.iter().any(|w| w.contains(ENV_TRUSTED_PROXIES)), "{warnings:?}");
        let (c, _) = with(&[(ENV_TRUST_FORWARDED_FOR, "0")]).unwrap();
        assert_eq!(c.trusted_proxies, TrustedProxies::None);
        let (c, warnings) = with(&[(ENV_TRUST_FORWARDED_FOR, "true"), (ENV_TRUSTED_PROXIES, "3")]).unwrap();
        assert_eq!(c.trusted_proxies, TrustedProxies::Hops(3), "the new setting wins");
        assert!(warnings.iter().any(|w| w.contains("ignored")), "{warnings:?}");
    }

    #[test]
    fn redis_previous_key_and_the_usps_cap() {
        let (c, _) = with(&[]).unwrap();
        assert!(c.redis_url.is_none());
        assert_eq!(c.usps_calls_per_minute, DEFAULT_USPS_CALLS_PER_MINUTE);
        let (c, _) = with(&[(ENV_REDIS_URL, "redis://10.0.0.7:6379/0"), (ENV_USPS_CALLS_PER_MINUTE, "120")]).unwrap();
        assert_eq!(c.redis_url.unwrap().expose_secret(), "redis://10.0.0.7:6379/0");
        assert_eq!(c.usps_calls_per_minute, 120);
        // The password comes from its file (trimmed, and escaped into the address).
        let (c, _) =
            with(&[(ENV_REDIS_URL, "redis://10.0.0.7:6379/0"), (ENV_REDIS_PASSWORD_FILE, "redis-password")]).unwrap();
        let url = c.redis_url.unwrap();
        assert_eq!(Url::parse(url.expose_secret()).unwrap().password(), Some("p%40ss%2Fword"));
        for (value, says) in [
            ("redis://:hunter2@10.0.0.7:6379/0", ENV_REDIS_PASSWORD_FILE),
            ("rediss://10.0.0.7:6379", "TLS"),
            ("http://10.0.0.7:6379", "redis://"),
            ("10.0.0.7:6379", "URL"),
        ] {
            let e = with(&[(ENV_REDIS_URL, value)]).err().unwrap();
            assert!(e.starts_with(ENV_REDIS_URL) && e.contains(says), "{value}: {e}");
            assert!(!e.contains("hunter2"), "the password is not repeated: {e}");
        }
        let e = with(&[(ENV_REDIS_PASSWORD_FILE, "redis-password")]).err().unwrap();
        assert!(e.contains(ENV_REDIS_URL), "{e}");
        assert!(with(&[(ENV_USPS_CALLS_PER_MINUTE, "0")]).err().unwrap().contains(ENV_USPS_CALLS_PER_MINUTE));
        // A previous key verifies what it signed; new states use the current key.
        let old = Keys::from_secret(&[8u8; 32]).unwrap();
        let state = old.issue_state(&crate::seal::challenge_of(&"v".repeat(43)), 0).unwrap();
        let (c, _) = with(&[(ENV_PREVIOUS_KEY_FILE, "old-key")]).unwrap();
        assert!(c.keys.verify_state(&state, 0).is_ok());
        let fresh = c.keys.issue_state(&crate::seal::challenge_of(&"v".repeat(43)), 0).unwrap();
        assert!(old.verify_state(&fresh, 0).is_err());
        let e = with(&[(ENV_PREVIOUS_KEY_FILE, "nope")]).err().unwrap();
        assert!(e.starts_with(ENV_PREVIOUS_KEY_FILE), "{e}");
        let e = Config::from_env(
            env(&[(ENV_CLIENT_ID, "k"), (ENV_CLIENT_SECRET_FILE, "secret"), (ENV_PREVIOUS_KEY_FILE, "old-key")]),
            files,
            LISTEN.parse().unwrap(),
        )
        .err()
        .unwrap();
        assert!(e.contains(ENV_KEY_FILE), "{e}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1_000))]
        // Whatever text an operator puts in the address settings: an answer, never a panic, and an
        // accepted USPS address is https or loopback http.
        #[test]
        fn any_address_text(text in "\\PC*") {
            if let Ok(url) = usps_address(&text) {
                proptest::prop_assert!(url.scheme() == "https" || url.scheme() == "http");
            }
            let _ = redis_address(&text, Some("pw"));
            let _ = TrustedProxies::parse(&text);
        }
    }
}
