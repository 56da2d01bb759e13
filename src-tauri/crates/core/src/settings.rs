//! Non-secret preferences and the endpoints they select. Persisted by the app (tauri-plugin-store);
//! nothing here may ever hold a secret.

use serde::{Deserialize, Serialize};
use thiserror::Error;
use ts_rs::TS;
use url::Url;

use crate::error::{ErrorKind, HasKind};

/// Which services the app talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    /// The built-in local server: no credentials needed. The default on first run.
    #[default]
    Sandbox,
    /// USPS's test environment (TEM) and ShipEngine with the user's key.
    UspsTest,
    Production,
}

impl Environment {
    pub const ALL: [Environment; 3] = [Environment::Sandbox, Environment::UspsTest, Environment::Production];

    /// The name its records and keyring entries are filed under (the serde name).
    pub fn key(self) -> &'static str {
        match self {
            Environment::Sandbox => "sandbox",
            Environment::UspsTest => "usps_test",
            Environment::Production => "production",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Environment::Sandbox => "Sandbox",
            Environment::UspsTest => "USPS test",
            Environment::Production => "Production",
        }
    }
}

pub const DEFAULT_REDIRECT_URI: &str = "uspslink://oauth/callback";

/// How the app signs the merchant in to USPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum SignInMethod {
    /// Through the uspslink sign-in service (the vendor's USPS app; the merchant only signs in).
    Service,
    /// With the business's own USPS developer app (consumer key and secret in Settings).
    OwnApp,
}

/// The sign-in service a build uses for USPS test and Production, set when it is built
/// (`USPSLINK_SIGN_IN_SERVICE_URL=https://… cargo build`); a build without one asks for it in
/// Settings. The Sandbox always runs its own in the app.
pub const BUILT_IN_SIGN_IN_SERVICE: Option<&str> = option_env!("USPSLINK_SIGN_IN_SERVICE_URL");

/// Where each API lives. Every client takes its base URL from here, so the same code runs against
/// the sandbox in tests and the real hosts in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct Endpoints {
    /// USPS APIs (`/oauth2/v3/...`, `/payments/v3/...`).
    pub usps_api: String,
    /// The USPS page that signs the user in and asks for consent (COP navigator).
    pub usps_authorize: String,
    /// USPS sign-up / Business Portal, for "New to USPS?".
    pub usps_signup: String,
    /// ShipEngine (`/v1/...`).
    pub shipengine_api: String,
    /// The uspslink sign-in service (`/v1/usps/...`): the app's own in the Sandbox, the build's
    /// for live environments; None when this build has none.
    pub sign_in_service: Option<String>,
}

/// Environment-variable overrides, documented in the README, so tests and staging can point the
/// app anywhere without a rebuild.
pub const ENV_USPS_API: &str = "USPSLINK_USPS_API_BASE";
pub const ENV_USPS_AUTHORIZE: &str = "USPSLINK_USPS_AUTHORIZE_URL";
pub const ENV_USPS_SIGNUP: &str = "USPSLINK_USPS_SIGNUP_URL";
pub const ENV_SHIPENGINE_API: &str = "USPSLINK_SHIPENGINE_API_BASE";
pub const ENV_SIGN_IN_SERVICE: &str = "USPSLINK_SIGN_IN_SERVICE_URL";

/// The addresses a run replaces (the `USPSLINK_*_URL` / `_BASE` variables), read once at start with
/// the rest of the app's configuration. Only values that are URLs are kept; trailing slashes are cut.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointOverrides {
    pub usps_api: Option<String>,
    pub usps_authorize: Option<String>,
    pub usps_signup: Option<String>,
    pub shipengine_api: Option<String>,
    pub sign_in_service: Option<String>,
}

impl EndpointOverrides {
    /// From named variables (`get` is the process environment in the app, a table in tests).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Self {
        let url = |key: &str| get(key).filter(|v| Url::parse(v).is_ok()).map(|v| v.trim_end_matches('/').to_string());
        Self {
            usps_api: url(ENV_USPS_API),
            usps_authorize: url(ENV_USPS_AUTHORIZE),
            usps_signup: url(ENV_USPS_SIGNUP),
            shipengine_api: url(ENV_SHIPENGINE_API),
            sign_in_service: url(ENV_SIGN_IN_SERVICE),
        }
    }
}

impl Endpoints {
    /// The endpoints of an environment. `sandbox_base` is the running sandbox's base URL,
    /// `sandbox_service` the sign-in service the app runs in front of it; `overrides` replace them.
    pub fn for_environment(
        env: Environment,
        sandbox_base: &str,
        sandbox_service: Option<&str>,
        overrides: &EndpointOverrides,
    ) -> Self {
        let sandbox_base = sandbox_base.trim_end_matches('/');
        let built_in =
            BUILT_IN_SIGN_IN_SERVICE.filter(|u| Url::parse(u).is_ok()).map(|u| u.trim_end_matches('/').to_string());
        let defaults = match env {
            Environment::Sandbox => Endpoints {
                usps_api: sandbox_base.to_string(),
                usps_authorize: format!("{sandbox_base}/cop-navigator"),
                usps_signup: format!("{sandbox_base}/business-portal"),
                shipengine_api: sandbox_base.to_string(),
                sign_in_service: sandbox_service.map(|s| s.trim_end_matches('/').to_string()),
            },
            Environment::UspsTest => Endpoints {
                usps_api: "https://apis-tem.usps.com".into(),
                usps_authorize: "https://cop.usps.com/cop-navigator".into(),
                usps_signup: "https://gateway.usps.com/".into(),
                shipengine_api: "https://api.shipengine.com".into(),
                sign_in_service: built_in.clone(),
            },
            Environment::Production => Endpoints {
                usps_api: "https://apis.usps.com".into(),
                usps_authorize: "https://cop.usps.com/cop-navigator".into(),
                usps_signup: "https://gateway.usps.com/".into(),
                shipengine_api: "https://api.shipengine.com".into(),
                sign_in_service: built_in.clone(),
            },
        };
        defaults.with_overrides(overrides)
    }

    fn with_overrides(mut self, o: &EndpointOverrides) -> Self {
        if let Some(v) = &o.sign_in_service {
            self.sign_in_service = Some(v.clone());
        }
        for (over, field) in [
            (&o.usps_api, &mut self.usps_api),
            (&o.usps_authorize, &mut self.usps_authorize),
            (&o.usps_signup, &mut self.usps_signup),
            (&o.shipengine_api, &mut self.shipengine_api),
        ] {
            if let Some(v) = over {
                field.clone_from(v);
            }
        }
        self
    }
}

/// What the user chose in Settings. No secrets: the consumer secret and API key live in the vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct Preferences {
    pub environment: Environment,
    /// USPS developer app consumer key (public by nature: it appears in authorize URLs).
    pub usps_consumer_key: String,
    pub redirect_uri: String,
    /// How to sign in; None in files from before the choice existed (see [`Preferences::sign_in_method`]).
    pub usps_sign_in: Option<SignInMethod>,
    /// The sign-in service to use instead of the build's (empty: the build's).
    pub sign_in_service_url: String,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            environment: Environment::Sandbox,
            usps_consumer_key: String::new(),
            redirect_uri: DEFAULT_REDIRECT_URI.into(),
            usps_sign_in: None,
            sign_in_service_url: String::new(),
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("the redirect URI must be {DEFAULT_REDIRECT_URI} or an https:// address")]
    BadRedirectUri,
    #[error("the consumer key may only hold letters, digits, '-' and '_' (at most 128)")]
    BadConsumerKey,
    #[error("the sign-in service address must be an https:// address (or http:// on this computer)")]
    BadSignInService,
}

impl HasKind for SettingsError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}

impl Preferences {
    /// Validate a changed copy before it replaces the stored one, so bad input changes nothing.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let uri = self.redirect_uri.trim();
        let ok_uri = uri == DEFAULT_REDIRECT_URI
            || Url::parse(uri).map(|u| u.scheme() == "https" && u.host_str().is_some()).unwrap_or(false);
        if !ok_uri {
            return Err(SettingsError::BadRedirectUri);
        }
        let key = &self.usps_consumer_key;
        if key.len() > 128 || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(SettingsError::BadConsumerKey);
        }
        let service = self.sign_in_service_url.trim();
        if !service.is_empty() && !sign_in_service_allowed(service) {
            return Err(SettingsError::BadSignInService);
        }
        Ok(())
    }

    /// The sign-in method in force. Files from before the choice existed: whoever had entered a
    /// consumer key was using their own app and keeps it; everyone else gets the service.
    pub fn sign_in_method(&self) -> SignInMethod {
        self.usps_sign_in.unwrap_or(if self.usps_consumer_key.is_empty() {
            SignInMethod::Service
        } else {
            SignInMethod::OwnApp
        })
    }

    /// The sign-in service for `endpoints`: the one typed in Settings, else the environment's.
    /// The Sandbox always uses its own (a typed address is for live environments).
    pub fn sign_in_service(&self, env: Environment, endpoints: &Endpoints) -> Option<String> {
        let typed = self.sign_in_service_url.trim().trim_end_matches('/');
        if env != Environment::Sandbox && !typed.is_empty() {
            return Some(typed.to_string());
        }
        endpoints.sign_in_service.clone()
    }
}

/// https anywhere; plain http only to this computer (a service run beside the app, for testing).
fn sign_in_service_allowed(url: &str) -> bool {
    let Ok(u) = Url::parse(url) else { return false };
    let loopback = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    u.host_str().is_some()
        && u.query().is_none()
        && u.username().is_empty()
        && (u.scheme() == "https" || (u.scheme() == "http" && loopback))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_endpoints_point_at_the_sandbox() {
        let none = EndpointOverrides::default();
        let e = Endpoints::for_environment(
            Environment::Sandbox,
            "http://127.0.0.1:4000/",
            Some("http://127.0.0.1:4001/"),
            &none,
        );
        assert_eq!(e.sign_in_service.as_deref(), Some("http://127.0.0.1:4001"));
        assert_eq!(e.shipengine_api, "http://127.0.0.1:4000");
        assert_eq!(e.usps_authorize, "http://127.0.0.1:4000/cop-navigator");
    }

    #[test]
    fn overrides_replace_only_valid_urls() {
        let overrides = EndpointOverrides::from_vars(|k| match k {
            ENV_SHIPENGINE_API => Some("http://127.0.0.1:9/".into()),
            ENV_USPS_API => Some("not a url".into()),
            ENV_SIGN_IN_SERVICE => Some("https://signin.vendor.example/".into()),
            _ => None,
        });
        assert_eq!(overrides.usps_api, None, "not a URL: not kept");
        let e = Endpoints::for_environment(Environment::Production, "http://x", None, &overrides);
        assert_eq!(e.shipengine_api, "http://127.0.0.1:9");
        assert_eq!(e.usps_api, "https://apis.usps.com");
        assert_eq!(e.sign_in_service.as_deref(), Some("https://signin.vendor.example"));
        let plain =
            Endpoints::for_environment(Environment::Production, "http://x", None, &EndpointOverrides::default());
        assert_eq!(plain.shipengine_api, "https://api.shipengine.com");
    }

    #[test]
    fn preferences_validation() {
        let mut p = Preferences::default();
        assert_eq!(p.validate(), Ok(()));
        p.redirect_uri = "https://example.com/usps/bounce".into();
        assert_eq!(p.validate(), Ok(()));
        for bad in ["http://example.com/cb", "uspslink://other", "javascript:alert(1)", ""] {
            p.redirect_uri = bad.into();
            assert_eq!(p.validate(), Err(SettingsError::BadRedirectUri), "{bad}");
        }
        p.redirect_uri = DEFAULT_REDIRECT_URI.into();
        p.usps_consumer_key = "abc def".into();
        assert_eq!(p.validate(), Err(SettingsError::BadConsumerKey));
        p.usps_consumer_key.clear();
        for ok in ["https://signin.vendor.example", "http://127.0.0.1:8443/", ""] {
            p.sign_in_service_url = ok.into();
            assert_eq!(p.validate(), Ok(()), "{ok}");
        }
        for bad in
            ["http://signin.vendor.example", "ftp://x", "https://user@x.example", "https://x.example/?a=1", "nope"]
        {
            p.sign_in_service_url = bad.into();
            assert_eq!(p.validate(), Err(SettingsError::BadSignInService), "{bad}");
        }
    }

    #[test]
    fn the_sign_in_method_and_service_in_force() {
        let mut p = Preferences::default();
        assert_eq!(p.sign_in_method(), SignInMethod::Service, "a new user signs in through the service");
        p.usps_consumer_key = "their-own-key".into();
        assert_eq!(p.sign_in_method(), SignInMethod::OwnApp, "someone who had set up their own app keeps it");
        p.usps_sign_in = Some(SignInMethod::Service);
        assert_eq!(p.sign_in_method(), SignInMethod::Service, "an explicit choice wins");
        let none = EndpointOverrides::default();
        let live = Endpoints::for_environment(Environment::Production, "", None, &none);
        let sandbox =
            Endpoints::for_environment(Environment::Sandbox, "http://127.0.0.1:1", Some("http://127.0.0.1:2"), &none);
        p.sign_in_service_url = "https://signin.vendor.example/".into();
        assert_eq!(p.sign_in_service(Environment::Production, &live).as_deref(), Some("https://signin.vendor.example"));
        assert_eq!(p.sign_in_service(Environment::Sandbox, &sandbox).as_deref(), Some("http://127.0.0.1:2"));
    }

    #[test]
    fn old_store_files_with_missing_fields_still_load() {
        let p: Preferences = serde_json::from_str(r#"{"environment":"production"}"#).unwrap();
        assert_eq!(p.environment, Environment::Production);
        assert_eq!(p.redirect_uri, DEFAULT_REDIRECT_URI);
    }
}
