//! Everything a run takes from environment variables, read once at start ([`AppConfig::from_env`],
//! in `run`) and handed to the parts that use it: the state gets it whole, the sandbox its PKCE
//! rule, the browser opener its command. Nothing else reads the process environment for what the
//! app does (the remaining reads are the operating system's own: data folders, `GDK_GL`, and the
//! relaunch's attempt counter, which the app sets for itself).

use uspslink_core::approval::{ApprovalQuery, Schedule};
use uspslink_core::savings::{default_parcels, parcels_from_json, ReferenceParcel};
use uspslink_core::scheme;
use uspslink_core::settings::{EndpointOverrides, Environment};

/// Forces the environment for this run (tests, demos) without touching the stored preference.
pub const ENV_ENVIRONMENT: &str = "USPSLINK_ENVIRONMENT";
/// The approval check's schedule, as JSON (`Schedule`): USPS's quota may differ per app.
pub const ENV_APPROVAL_SCHEDULE: &str = "USPSLINK_APPROVAL_SCHEDULE";
/// The approval check's request body, as a JSON template (`ApprovalQuery`): inferred from the
/// public spec, so replaceable without a new build.
pub const ENV_APPROVAL_QUERY: &str = "USPSLINK_APPROVAL_QUERY";
/// The reference parcels the savings are priced with, as JSON (a list of `ReferenceParcel`).
pub const ENV_SAVINGS_PARCELS: &str = "USPSLINK_SAVINGS_PARCELS";
/// `enforce` (the default: PKCE S256 required and checked, as the sandbox always did) or `ignore`
/// (as real USPS does: a challenge is taken and never checked), for the in-app sandbox.
pub const ENV_SANDBOX_PKCE: &str = "USPSLINK_SANDBOX_PKCE";
/// A command that replaces the system browser (the URL is appended as its last argument).
pub const ENV_BROWSER: &str = "USPSLINK_BROWSER";
/// Keeps WebKitGTK's own compositing policy (`1`) instead of painting without GPU compositing.
pub const ENV_WEBKIT_COMPOSITING: &str = "USPSLINK_WEBKIT_COMPOSITING";
/// `1`: no single-instance (it needs the session bus); a second launch then starts a second app.
pub const ENV_NO_SINGLE_INSTANCE: &str = "USPSLINK_NO_SINGLE_INSTANCE";

/// How the approval watch asks USPS.
#[derive(Debug, Clone)]
pub struct ApprovalConfig {
    pub schedule: Schedule,
    pub query: ApprovalQuery,
    /// The parcels priced to show what the NSA rates save.
    pub parcels: Vec<ReferenceParcel>,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        Self { schedule: Schedule::default(), query: ApprovalQuery::default(), parcels: default_parcels() }
    }
}

impl ApprovalConfig {
    /// From named variables; a value that does not parse is logged and the default used.
    fn from_vars(get: &impl Fn(&str) -> Option<String>) -> Self {
        let mut c = Self::default();
        if let Some(text) = get(ENV_APPROVAL_SCHEDULE) {
            match serde_json::from_str::<Schedule>(&text) {
                Ok(s) if s.max_per_day > 0 && s.interval_secs > 0 => c.schedule = s,
                Ok(_) => tracing::warn!(
                    "{ENV_APPROVAL_SCHEDULE}: interval_secs and max_per_day must be above 0; using the default"
                ),
                Err(e) => tracing::warn!("{ENV_APPROVAL_SCHEDULE} is not a schedule ({e}); using the default"),
            }
        }
        if let Some(text) = get(ENV_APPROVAL_QUERY) {
            match ApprovalQuery::from_json(&text) {
                Ok(q) => c.query = q,
                Err(e) => tracing::warn!("{ENV_APPROVAL_QUERY}: {e}; using the default"),
            }
        }
        if let Some(text) = get(ENV_SAVINGS_PARCELS) {
            match parcels_from_json(&text) {
                Ok(p) => c.parcels = p,
                Err(e) => tracing::warn!("{ENV_SAVINGS_PARCELS}: {e}; using the default parcels"),
            }
        }
        c
    }
}

/// The PKCE behaviour a `--pkce` argument or [`ENV_SANDBOX_PKCE`] names.
pub fn sandbox_pkce(value: Option<&str>) -> Result<uspslink_sandbox::Pkce, String> {
    match value.map(str::trim) {
        None | Some("") | Some("enforce") => Ok(uspslink_sandbox::Pkce::Enforce),
        Some("ignore") => Ok(uspslink_sandbox::Pkce::Ignore),
        Some(other) => {
            let shown: String = other.chars().filter(|c| !c.is_control()).take(40).collect();
            Err(format!("PKCE must be \"enforce\" or \"ignore\", not \"{shown}\""))
        }
    }
}

/// The run's configuration. A value that does not parse is logged and its default used: a typo in
/// a test's variable must not stop the app a user opens.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The environment this run forces, whatever Settings say.
    pub environment_override: Option<Environment>,
    pub approval: ApprovalConfig,
    /// Addresses that replace an environment's own.
    pub endpoints: EndpointOverrides,
    pub sandbox_pkce: uspslink_sandbox::Pkce,
    /// The command that opens web pages instead of the system browser.
    pub browser: Option<String>,
    /// Forces (`1`) or forbids (`0`) registering `uspslink://` for this binary (scheme.rs).
    pub register_scheme: Option<String>,
    pub single_instance: bool,
    /// WebKitGTK's own compositing policy instead of painting without GPU compositing.
    pub webkit_compositing: bool,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self::from_vars(|_| None)
    }
}

impl AppConfig {
    pub fn from_env() -> Self {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// From named variables (`get` is the process environment in the app, a table in tests).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Self {
        let environment_override = get(ENV_ENVIRONMENT).and_then(|v| {
            serde_json::from_value(serde_json::Value::String(v.clone()))
                .map_err(|_| tracing::warn!("{ENV_ENVIRONMENT}={v:?} is not sandbox, usps_test or production; ignored"))
                .ok()
        });
        let sandbox_pkce = sandbox_pkce(get(ENV_SANDBOX_PKCE).as_deref()).unwrap_or_else(|e| {
            tracing::warn!("{ENV_SANDBOX_PKCE}: {e}; the sandbox checks PKCE");
            uspslink_sandbox::Pkce::Enforce
        });
        Self {
            environment_override,
            approval: ApprovalConfig::from_vars(&get),
            endpoints: EndpointOverrides::from_vars(&get),
            sandbox_pkce,
            browser: get(ENV_BROWSER),
            register_scheme: get(scheme::ENV_REGISTER_SCHEME),
            single_instance: get(ENV_NO_SINGLE_INSTANCE).as_deref() != Some("1"),
            webkit_compositing: get(ENV_WEBKIT_COMPOSITING).as_deref() == Some("1"),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn from(pairs: &[(&str, &str)]) -> AppConfig {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        AppConfig::from_vars(|k| pairs.iter().find(|(name, _)| name == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn nothing_set_is_the_defaults() {
        let c = from(&[]);
        assert_eq!(c.environment_override, None);
        assert_eq!(c.sandbox_pkce, uspslink_sandbox::Pkce::Enforce);
        assert_eq!(c.endpoints, EndpointOverrides::default());
        assert!(c.single_instance && !c.webkit_compositing && c.browser.is_none());
        assert_eq!(c.approval.parcels, default_parcels());
    }

    #[test]
    fn each_variable_reaches_its_field() {
        let c = from(&[
            (ENV_ENVIRONMENT, "usps_test"),
            (ENV_SANDBOX_PKCE, "ignore"),
            (ENV_BROWSER, "/bin/echo"),
            (ENV_NO_SINGLE_INSTANCE, "1"),
            (ENV_WEBKIT_COMPOSITING, "1"),
            (ENV_APPROVAL_SCHEDULE, r#"{"interval_secs": 7, "max_per_day": 3}"#),
            (uspslink_core::settings::ENV_SHIPENGINE_API, "http://127.0.0.1:9/"),
        ]);
        assert_eq!(c.environment_override, Some(Environment::UspsTest));
        assert_eq!(c.sandbox_pkce, uspslink_sandbox::Pkce::Ignore);
        assert_eq!(c.browser.as_deref(), Some("/bin/echo"));
        assert!(!c.single_instance && c.webkit_compositing);
        assert_eq!((c.approval.schedule.interval_secs, c.approval.schedule.max_per_day), (7, 3));
        assert_eq!(c.endpoints.shipengine_api.as_deref(), Some("http://127.0.0.1:9"));
    }

    #[test]
    fn values_that_do_not_parse_leave_the_defaults() {
        let c = from(&[
            (ENV_ENVIRONMENT, "Production"),
            (ENV_SANDBOX_PKCE, "Ignore"),
            (ENV_APPROVAL_SCHEDULE, r#"{"interval_secs": 0, "max_per_day": 3}"#),
            (ENV_SAVINGS_PARCELS, "[not json"),
        ]);
        assert_eq!(c.environment_override, None);
        assert_eq!(c.sandbox_pkce, uspslink_sandbox::Pkce::Enforce);
        assert_eq!(c.approval.schedule.interval_secs, Schedule::default().interval_secs);
        assert_eq!(c.approval.parcels, default_parcels());
    }

    #[test]
    fn the_sandboxs_pkce_setting() {
        assert_eq!(sandbox_pkce(None), Ok(uspslink_sandbox::Pkce::Enforce));
        assert_eq!(sandbox_pkce(Some(" ignore ")), Ok(uspslink_sandbox::Pkce::Ignore));
        assert_eq!(sandbox_pkce(Some("enforce")), Ok(uspslink_sandbox::Pkce::Enforce));
        assert!(sandbox_pkce(Some("Ignore")).unwrap_err().contains("\"enforce\" or \"ignore\""));
    }

    proptest::proptest! {
        /// Whatever is typed (an environment variable, a command-line argument): an answer, never a
        /// panic, and an error quotes at most 40 characters of it.
        #[test]
        fn any_pkce_setting_is_answered(typed in "\\PC{0,200}") {
            match sandbox_pkce(Some(&typed)) {
                Ok(_) => proptest::prop_assert!(matches!(typed.trim(), "" | "enforce" | "ignore")),
                Err(e) => proptest::prop_assert!(e.chars().count() <= 100),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        // Whatever text a variable holds (a user's shell, a test's typo), the run starts.
        #[test]
        fn any_text_in_any_variable_starts(text in "\\PC*") {
            let c = AppConfig::from_vars(|_| Some(text.clone()));
            prop_assert_eq!(c.single_instance, text != "1");
        }
    }
}
