//! The events the window listens to, and [`TauriHost`]: the flows' [`Host`] in the app (emits those
//! events, opens the system browser, shows desktop notifications).

use tauri::{Emitter, Manager, Runtime};
use tauri_plugin_notification::NotificationExt;
use uspslink_core::approval::ApprovalView;
use uspslink_core::{ErrorKind, IpcError};

use crate::config::ENV_BROWSER;
use crate::flows::background::Notice;
use crate::flows::link::LinkUpdate;
use crate::flows::Host;
use crate::state::AppState;

/// A `uspslink://` callback answering one of our sign-ins arrived.
pub const EVENT_DEEP_LINK: &str = "deep-link";
/// The link changed (`LinkUpdate`).
pub const EVENT_USPS_LINK: &str = "usps-link";
/// A retried call is about to wait (`RetryWait`; the UI counts the wait down).
pub const EVENT_RETRY_WAIT: &str = "retry-wait";
/// The approval watch made a check (`ApprovalView`).
pub const EVENT_APPROVAL: &str = "approval";
/// The reference parcels were priced (`SavingsUpdate`).
pub const EVENT_SAVINGS: &str = "savings";
/// Whether progress can be saved right now (`StorageHealth`): a problem, or none once a save works.
pub const EVENT_STORAGE: &str = "storage";
/// Open this screen (`Route`): a notification was clicked while the window was open.
pub const EVENT_OPEN_ROUTE: &str = "open-route";

pub fn emit<R: Runtime, T: serde::Serialize + Clone>(app: &tauri::AppHandle<R>, event: &str, payload: &T) {
    if let Err(e) = app.emit(event, payload) {
        tracing::error!("could not emit {event}: {e}");
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
        emit(&self.0, EVENT_USPS_LINK, update);
        crate::ipc::background::tray::refresh(&self.0);
    }

    fn approval_changed(&self, view: &ApprovalView) {
        emit(&self.0, EVENT_APPROVAL, view);
        crate::ipc::background::tray::refresh(&self.0);
    }

    fn savings_changed(&self, update: &crate::flows::savings::SavingsUpdate) {
        emit(&self.0, EVENT_SAVINGS, update);
    }

    fn open_url(&self, url: &str) -> Result<(), IpcError> {
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
pub fn open_in_browser(url: &str, browser: Option<&str>) -> Result<(), IpcError> {
    if let Some(cmd) = browser {
        let mut parts = cmd.split_whitespace();
        let program =
            parts.next().ok_or_else(|| IpcError::new(ErrorKind::NotConfigured, format!("{ENV_BROWSER} is empty")))?;
        std::process::Command::new(program)
            .args(parts)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .spawn()
            .map_err(|e| IpcError::new(ErrorKind::Internal, format!("could not start the browser ({program}): {e}")))?;
        return Ok(());
    }
    tauri_plugin_opener::open_url(url, None::<&str>).map_err(|e| {
        IpcError::new(ErrorKind::Internal, format!("could not open {}: {e}", url.split(':').next().unwrap_or("it")))
    })
}
