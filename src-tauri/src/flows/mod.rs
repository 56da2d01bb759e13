//! The flows: what each step of the guide does, as plain Rust over [`AppState`] and a [`Host`]
//! (the window and the desktop). No Tauri type appears here: `ipc::events::TauriHost` is the host
//! in the app, a recording host in the unit tests, which run every flow against the sandbox without
//! a window.
//!
//! Layers point one way (docs/DESIGN.md, "Architecture"): `ipc` (commands, events: the only Tauri code)
//! → `flows` → `state` → `uspslink-core`.

pub mod approval;
pub mod background;
pub mod businesses;
pub mod identifiers;
pub mod link;
pub mod savings;
pub mod stamps;
pub mod watch;

use uspslink_core::approval::ApprovalView;

use crate::state::AppState;
use link::LinkUpdate;

/// An address the system did not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0} is empty")]
    BrowserCommandEmpty(&'static str),
    #[error("could not start the browser ({program}): {why}")]
    CouldNotStart { program: String, why: String },
    #[error("could not open {what}: {why}")]
    CouldNotOpen { what: String, why: String },
    #[error("not a web address")]
    NotAWebAddress,
    #[error("only web addresses are opened in the browser")]
    NotWeb,
    #[error("not an e-mail address")]
    NotMail,
}

/// What a flow needs of the app around it besides the state: telling the window, opening the
/// system browser or mail client, a desktop notification. Cloned into tasks that outlive a command
/// (the sign-in's expiry timer, the background watch).
pub trait Host: Clone + Send + Sync + 'static {
    fn state(&self) -> &AppState;
    /// The link changed (status, guidelines, pre-fill): the window redraws it.
    fn link_changed(&self, update: &LinkUpdate);
    /// The approval watch made a check.
    fn approval_changed(&self, view: &ApprovalView);
    /// The reference parcels were priced (the savings, the platform's quote, the summary).
    fn savings_changed(&self, update: &savings::SavingsUpdate);
    /// A business's place in its guide or its approval changed (the overview of every business).
    fn businesses_changed(&self, overview: &[crate::state::BusinessOverview]);
    /// Hand an address the flow checked (`http(s):`, `mailto:`) to the system.
    fn open_url(&self, url: &str) -> Result<(), OpenError>;
    /// A desktop notification about `notice` (a click on it leads to its screen); false when it
    /// could not be shown (no notification server).
    fn notify(&self, notice: background::Notice, title: &str, body: &str) -> bool;
}

#[cfg(test)]
pub(crate) mod tests {
    //! A host that records what the flows asked of it.
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone)]
    pub(crate) struct RecordingHost {
        pub state: Arc<AppState>,
        pub links: Arc<Mutex<Vec<LinkUpdate>>>,
        pub approvals: Arc<Mutex<Vec<ApprovalView>>>,
        pub savings: Arc<Mutex<Vec<savings::SavingsUpdate>>>,
        pub opened: Arc<Mutex<Vec<String>>>,
        pub notifications: Arc<Mutex<Vec<(String, String)>>>,
        pub overviews: Arc<Mutex<Vec<Vec<crate::state::BusinessOverview>>>>,
        pub notices: Arc<Mutex<Vec<background::Notice>>>,
    }

    impl RecordingHost {
        pub(crate) fn new(state: AppState) -> Self {
            Self {
                state: Arc::new(state),
                links: Arc::default(),
                approvals: Arc::default(),
                savings: Arc::default(),
                opened: Arc::default(),
                notifications: Arc::default(),
                overviews: Arc::default(),
                notices: Arc::default(),
            }
        }
    }

    impl Host for RecordingHost {
        fn state(&self) -> &AppState {
            &self.state
        }
        fn link_changed(&self, update: &LinkUpdate) {
            crate::state::lock(&self.links).push(update.clone());
        }
        fn approval_changed(&self, view: &ApprovalView) {
            crate::state::lock(&self.approvals).push(view.clone());
        }
        fn savings_changed(&self, update: &savings::SavingsUpdate) {
            crate::state::lock(&self.savings).push(update.clone());
        }
        fn businesses_changed(&self, overview: &[crate::state::BusinessOverview]) {
            crate::state::lock(&self.overviews).push(overview.to_vec());
        }
        fn open_url(&self, url: &str) -> Result<(), OpenError> {
            crate::state::lock(&self.opened).push(url.to_string());
            Ok(())
        }
        fn notify(&self, notice: background::Notice, title: &str, body: &str) -> bool {
            crate::state::lock(&self.notices).push(notice);
            crate::state::lock(&self.notifications).push((title.into(), body.into()));
            true
        }
    }
}
