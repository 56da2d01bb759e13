//! The broker's configuration: from the environment for the deployable (the secrets from files,
//! never from arguments or variables), or built directly for the app's in-process sandbox broker.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

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
pub const ENV_TRUST_FORWARDED_FOR: &str = "USPSLINK_BROKER_TRUST_FORWARDED_FOR";
pub const ENV_USPS_TIMEOUT_SECS: &str = "USPSLINK_BROKER_USPS_TIMEOUT_SECS";
pub const ENV_PLATFORM_NAME: &str = "USPSLINK_BROKER_PLATFORM_NAME";

pub const DEFAULT_USPS_API_BASE: &str = "https://apis.usps.com";
/// The COP navigator address USPS gives platforms (shared API notes, "COP navigator flow").
pub const DEFAULT_USPS_AUTHORIZE_URL: &str = "https://cop.usps.com/cop-navigator";
pub const DEFAULT_APP_REDIRECT: &str = "uspslink://oauth/callback";
/// Per client address, on the `/v1` API. One sign-in is two requests and a day's refreshes a few,
/// so a person never comes near it; a script trying codes does.
pub const DEFAULT_RATE_PER_MINUTE: u32 = 60;
pub const DEFAULT_USPS_TIMEOUT: Duration = Duration::from_secs(15);

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
    /// Behind a load balancer: count requests against the last `X-Forwarded-For` address.
    pub trust_forwarded_for: bool,
    pub usps_timeout: Duration,
    /// USPS's optional `platform` parameter (a display name).
    pub platform_name: Option<String>,
    pub keys: Arc<Keys>,
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
        let usps_authorize = Url::parse(usps_authorize).map_err(|_| format!("{usps_authorize:?} is not a URL"))?;
        let public = Url::parse(public_url).map_err(|_| format!("{public_url:?} is not a URL"))?;
        if !matches!(public.scheme(), "http" | "https") {
            return Err(format!("{public_url:?} is not an http(s) address"));
        }
        Ok(Config {
            usps_api: usps_api.trim_end_matches('/').to_string(),
            usps_authorize,
            client_id: client_id.to_string(),
            client_secret: secret,
            public_url: public_url.trim_end_matches('/').to_string(),
            app_redirect: DEFAULT_APP_REDIRECT.to_string(),
            allowed_origins: Vec::new(),
            rate_per_minute: DEFAULT_RATE_PER_MINUTE,
            trust_forwarded_for: false,
            usps_timeout: DEFAULT_USPS_TIMEOUT,
            platform_name: None,
            keys: Arc::new(keys),
        })
    }

    /// The redirect URI registered at USPS.
    pub fn callback_url(&self) -> String {
        format!("{}/usps/callback", self.public_url)
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
        let api = var(ENV_USPS_API_BASE).unwrap_or_else(|| DEFAULT_USPS_API_BASE.into());
        Url::parse(&api).map_err(|_| format!("{ENV_USPS_API_BASE}={api:?} is not a URL"))?;
        let authorize = var(ENV_USPS_AUTHORIZE_URL).unwrap_or_else(|| DEFAULT_USPS_AUTHORIZE_URL.into());
        let public = var(ENV_PUBLIC_URL).unwrap_or_else(|| format!("http://{listen}"));
        let mut c = Config::new(&api, &authorize, &client_id, SecretString::from(secret.to_string()), &public, keys)
            .map_err(|e| format!("{ENV_USPS_AUTHORIZE_URL} or {ENV_PUBLIC_URL}: {e}"))?;
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
        c.trust_forwarded_for =
            var(ENV_TRUST_FORWARDED_FOR).is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
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
}
