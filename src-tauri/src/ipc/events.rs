//! The events the window listens to, and [`TauriHost`]: the flows' [`Host`] in the app (emits those
//! events, opens the system browser, shows desktop notifications).

use crate::flows::OpenError;
use tauri::{Emitter, Manager, Runtime};
use tauri_plugin_notification::NotificationExt;
use uspslink_core::approval::ApprovalView;

use crate::config::ENV_BROWSER;
use crate::flows::background::Notice;
use crate::flows::link::LinkUpdate;
use crate::flows::Host;
use crate::state::AppState;

/// One event the window listens to: its name on the wire and the one payload type it carries, so
/// emitting another type under its name does not compile.
pub trait AppEvent {
    const NAME: &'static str;
    type Payload: serde::Serialize + Clone;
}

// The events, declared once: the type that names each, its name on the wire, and its payload. The
// TypeScript names and the `Events` map (name -> payload) in bindings.ts are generated from here.
macro_rules! for_each_event {
    ($then:ident) => {
        $then! {
            /// A `uspslink://` callback answering one of our sign-ins arrived.
            DeepLink = "deep-link": crate::state::DeepLinkNotice,
            /// The link changed.
            UspsLink = "usps-link": crate::flows::link::LinkUpdate,
            /// A retried call is about to wait (the UI counts the wait down).
            RetryWait = "retry-wait": uspslink_core::http::RetryWait,
            /// The approval watch made a check.
            Approval = "approval": uspslink_core::approval::ApprovalView,
            /// The reference parcels were priced.
            Savings = "savings": crate::flows::savings::SavingsUpdate,
            /// Whether progress can be saved right now: a problem, or none once a save works.
            Storage = "storage": crate::state::StorageHealth,
            /// A business's guide or approval changed: the overview of every business.
            Businesses = "businesses": Vec<crate::state::BusinessOverview>,
            /// Open this screen: a notification was clicked while the window was open.
            OpenRoute = "open-route": crate::flows::background::Route,
        }
    };
}
pub(crate) use for_each_event;

macro_rules! declare_events {
    ($($(#[$doc:meta])* $name:ident = $wire:literal : $payload:ty,)*) => {
        $(
            $(#[$doc])*
            pub struct $name;

            impl AppEvent for $name {
                const NAME: &'static str = $wire;
                type Payload = $payload;
            }
        )*
    };
}
for_each_event!(declare_events);

/// Send `payload` to the window as event `E`.
pub fn emit<E: AppEvent, R: Runtime>(app: &tauri::AppHandle<R>, payload: &E::Payload) {
    if let Err(e) = app.emit(E::NAME, payload) {
        tracing::error!("could not emit {}: {e}", E::NAME);
    }
}

pub struct TauriHost<R: Runtime>(pub tauri::AppHandle<R>);

// By hand: a derive would ask `R: Clone` of the runtime, while the handle clones regardless.
impl<R: Runtime> Clone for TauriHost<R> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<R: Runtime> Host for TauriHost<R> {
    fn state(&self) -> &AppState {
        self.0.state::<AppState>().inner()
    }

    fn link_changed(&self, update: &LinkUpdate) {
        emit::<UspsLink, R>(&self.0, update);
        crate::ipc::background::tray::refresh(&self.0);
    }

    fn approval_changed(&self, view: &ApprovalView) {
        emit::<Approval, R>(&self.0, view);
        crate::ipc::background::tray::refresh(&self.0);
    }

    fn savings_changed(&self, update: &crate::flows::savings::SavingsUpdate) {
        emit::<Savings, R>(&self.0, update);
    }

    fn businesses_changed(&self, overview: &[crate::state::BusinessOverview]) {
        emit::<Businesses, R>(&self.0, &overview.to_vec());
        crate::ipc::background::tray::refresh(&self.0);
    }

    fn open_url(&self, url: &str) -> Result<(), OpenError> {
        let browser = self.0.try_state::<crate::AppState>().and_then(|s| s.config.browser.clone());
        open_in_browser(url, browser.as_deref())
    }

    fn notify(&self, notice: Notice, title: &str, body: &str) -> bool {
        // The id tells the click handler (lib.rs) which screen the notification leads to.
        match self.0.notification().builder().id(notice.id()).title(title).body(body).show() {
            Ok(()) => {
                tracing::info!("desktop notification requested: {title}");
                true
            }
            Err(e) => {
                tracing::warn!("could not show a desktop notification: {e}");
                false
            }
        }
    }
}

/// Open `url` in the system browser, or with `browser`, the command [`ENV_BROWSER`] names (the URL
/// its last argument). The one way uspslink opens a web page.
pub fn open_in_browser(url: &str, browser: Option<&str>) -> Result<(), OpenError> {
    if let Some(cmd) = browser {
        let mut parts = cmd.split_whitespace();
        let program = parts.next().ok_or(OpenError::BrowserCommandEmpty(ENV_BROWSER))?;
        std::process::Command::new(program)
            .args(parts)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .spawn()
            .map_err(|e| OpenError::CouldNotStart { program: program.to_string(), why: e.to_string() })?;
        return Ok(());
    }
    tauri_plugin_opener::open_url(url, None::<&str>).map_err(|e| OpenError::CouldNotOpen {
        what: url.split(':').next().unwrap_or("it").to_string(),
        why: e.to_string(),
    })
}
