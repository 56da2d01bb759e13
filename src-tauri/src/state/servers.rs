//! The Sandbox environment's servers in this process, and where every environment's services are.

use secrecy::SecretString;
use uspslink_core::settings::{EndpointOverrides, Endpoints, Environment};
use uspslink_sandbox::Sandbox;

/// The sandbox's own USPS developer app: the Sandbox signs in with it when the owner named no app
/// of their own, and its sign-in service holds it.
pub struct SandboxApp {
    pub client_id: String,
    pub secret: SecretString,
}

impl SandboxApp {
    /// The app the in-process sandbox accepts (its crate's, in one place here).
    pub(crate) fn of_the_sandbox() -> Self {
        Self {
            client_id: uspslink_sandbox::usps::CLIENT_ID.into(),
            secret: SecretString::from(uspslink_sandbox::usps::CLIENT_SECRET),
        }
    }
}

/// The Sandbox environment's servers, in this process: the fake USPS and ShipEngine, and the real
/// sign-in service (`uspslink-broker`) in front of it with the sandbox's USPS app, so the default
/// first run signs in exactly the way a live one does.
struct SandboxServices {
    sandbox: Sandbox,
    sign_in_service: uspslink_broker::Broker,
    /// The per-run token the sandbox's `/sandbox/*` helpers require.
    #[cfg_attr(not(test), allow(dead_code))]
    helper_token: String,
}

impl SandboxServices {
    /// The sandbox and the sign-in service in front of it, both answering only this computer's
    /// loopback names (no DNS rebinding) and the sandbox's helpers only with this run's token,
    /// which `token_file` (private to the user) hands to whoever drives the Sandbox (the tests).
    async fn start(
        token_file: Option<std::path::PathBuf>,
        pkce: uspslink_sandbox::Pkce,
    ) -> std::io::Result<SandboxServices> {
        let helper_token = uspslink_core::usps::random_token();
        let options = uspslink_sandbox::SandboxOptions { pkce, helper_token: Some(helper_token.clone()) };
        let sandbox = Sandbox::start_with("127.0.0.1:0", options).await?;
        if let Some(file) = token_file {
            if let Err(e) = uspslink_core::durable::write_atomic(&file, helper_token.as_bytes()) {
                tracing::warn!("could not write the sandbox helpers' token to {}: {e}", file.display());
            }
        }
        let (api, authorize) = (sandbox.base_url(), format!("{}/cop-navigator", sandbox.base_url()));
        let sign_in_service = uspslink_broker::Broker::start("127.0.0.1:0", |addr| {
            let app = SandboxApp::of_the_sandbox();
            let mut config = uspslink_broker::Config::new(
                &api,
                &authorize,
                &app.client_id,
                app.secret,
                &format!("http://{addr}"),
                uspslink_broker::seal::Keys::random(),
            )
            .expect("the sandbox's addresses are URLs");
            config.require_loopback_host = true;
            config
        })
        .await?;
        tracing::info!(
            "sandbox listening on {}, its sign-in service on {}",
            sandbox.base_url(),
            sign_in_service.base_url()
        );
        Ok(SandboxServices { sandbox, sign_in_service, helper_token })
    }
}

/// The Sandbox's servers could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("the sandbox could not start: {0}")]
    DidNotStart(String),
    #[error("the sandbox is still starting; try again")]
    Starting,
}

/// Where each environment's services are: the Sandbox's, started in this process on first use, and
/// the live ones (with any overrides the run was given).
pub struct Servers {
    sandbox: tokio::sync::OnceCell<SandboxServices>,
    /// Where the in-app sandbox's helper token is written (the data folder); none in unit tests.
    token_file: std::sync::OnceLock<std::path::PathBuf>,
    pkce: uspslink_sandbox::Pkce,
    overrides: EndpointOverrides,
}

impl Servers {
    pub fn new(pkce: uspslink_sandbox::Pkce, overrides: EndpointOverrides) -> Self {
        Self { sandbox: tokio::sync::OnceCell::new(), token_file: std::sync::OnceLock::new(), pkce, overrides }
    }

    /// Start the in-process sandbox, and the sign-in service in front of it. Idempotent.
    pub async fn start_sandbox(&self) -> Result<String, SandboxError> {
        let services = self
            .sandbox
            .get_or_try_init(|| SandboxServices::start(self.token_file.get().cloned(), self.pkce))
            .await
            .map_err(|e| SandboxError::DidNotStart(e.to_string()))?;
        Ok(services.sandbox.base_url())
    }

    /// The Sandbox's own USPS app (the sandbox started first).
    pub async fn sandbox_app(&self) -> Result<SandboxApp, SandboxError> {
        self.start_sandbox().await?;
        Ok(SandboxApp::of_the_sandbox())
    }

    /// The in-process sandbox, for tests that make it misbehave.
    #[cfg(test)]
    pub(crate) fn sandbox(&self) -> &Sandbox {
        &self.sandbox.get().expect("the sandbox was started (endpoints_ready)").sandbox
    }

    /// POST to one of the in-process sandbox's `/sandbox/*` helpers, with this run's token.
    #[cfg(test)]
    pub(crate) async fn sandbox_helper(&self, path: &str, body: serde_json::Value) -> u16 {
        let services = self.sandbox.get().expect("the sandbox was started (endpoints_ready)");
        let url = format!("{}{path}", services.sandbox.base_url());
        let r = reqwest::Client::new().post(url).bearer_auth(&services.helper_token).json(&body).send().await;
        r.expect("the sandbox answers").status().as_u16()
    }

    /// Write the in-app sandbox's helper token to `file` when it starts (see [`SandboxServices::start`]).
    pub fn set_sandbox_token_file(&self, file: std::path::PathBuf) {
        let _ = self.token_file.set(file);
    }

    /// The endpoints of an environment; None for the Sandbox while it has not started yet.
    pub fn endpoints_of(&self, env: Environment) -> Option<Endpoints> {
        match (env, self.sandbox.get()) {
            (Environment::Sandbox, None) => None,
            (Environment::Sandbox, Some(s)) => {
                let service = s.sign_in_service.base_url();
                Some(Endpoints::for_environment(env, &s.sandbox.base_url(), Some(&service), &self.overrides))
            }
            _ => Some(Endpoints::for_environment(env, "", None, &self.overrides)),
        }
    }

    /// The endpoints of `env`, starting the sandbox first where it is needed.
    pub async fn endpoints_ready(&self, env: Environment) -> Result<Endpoints, SandboxError> {
        if env == Environment::Sandbox {
            self.start_sandbox().await?;
        }
        self.endpoints_of(env).ok_or(SandboxError::Starting)
    }
}
