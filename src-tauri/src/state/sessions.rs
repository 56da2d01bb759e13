//! The link flow's sessions: the sign-ins open in the browser (this run's, and the fingerprints of
//! the last run's), the callbacks received, the last attempt's failure, and the one token refresh
//! at a time. Only `flows::link` changes them; the snapshot reads the status.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uspslink_core::callback::{self, CallbackSummary};
use uspslink_core::usps::{AttemptStore, LinkRecord, LinkStatus, ATTEMPT_TTL};
use uspslink_core::IpcError;

use super::lock;
use super::persist::SaveError;
use super::progress::ProgressStore;

const RECENT_LINKS: usize = 10;
/// What the link says once USPS no longer takes it (a status and an error say the same).
pub const NEEDS_RECONNECTING: &str =
    "Your USPS connection has expired or was revoked. A USPS password reset breaks every \
                                      connection: reconnect to continue.";

/// A valid callback the app received.
#[derive(Debug, Clone, Serialize, TS)]
pub struct DeepLinkNotice {
    pub callback: CallbackSummary,
    /// Milliseconds since the app started (for ordering and the latency benchmark).
    pub received_at_ms: u32,
}

/// A sign-in open in the browser, as remembered across a restart: never the state itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SignInInBrowser {
    state_hash: String,
    started_at: u64,
}

pub struct LinkSessions {
    /// The sign-ins of this run, with their PKCE verifiers (memory only).
    pub(crate) attempts: Mutex<AttemptStore>,
    /// Fingerprints of this run's open sign-ins and of the last run's (still within 10 minutes).
    sign_ins: Mutex<Vec<SignInInBrowser>>,
    /// The last run's, as loaded at start: a callback for one of these gets "started before a restart".
    sign_ins_before_restart: Vec<SignInInBrowser>,
    /// The last attempt's failure, until the next attempt (not persisted: a restart starts clean).
    failure: Mutex<Option<IpcError>>,
    deep_links: Mutex<VecDeque<DeepLinkNotice>>,
    /// One token refresh at a time: the refresh token rotates.
    pub(crate) refresh: tokio::sync::Mutex<()>,
}

impl LinkSessions {
    /// The sessions, with the last run's sign-ins still within their 10 minutes at `now`.
    pub fn open(progress: &ProgressStore, now: u64) -> Self {
        let before: Vec<SignInInBrowser> = progress
            .sign_ins()
            .into_iter()
            .filter(|s| now.saturating_sub(s.started_at) <= ATTEMPT_TTL.as_secs())
            .collect();
        Self {
            attempts: Mutex::new(AttemptStore::default()),
            sign_ins: Mutex::new(before.clone()),
            sign_ins_before_restart: before,
            failure: Mutex::new(None),
            deep_links: Mutex::new(VecDeque::new()),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    pub fn set_failure(&self, failure: Option<IpcError>) {
        *lock(&self.failure) = failure;
    }

    /// The link as the UI shows it: waiting > failed > stored record. A sign-in open longer than its
    /// 10 minutes is not "Waiting" any more.
    pub fn status(&self, record: LinkRecord) -> LinkStatus {
        if lock(&self.attempts).is_waiting_at(Instant::now()) {
            return LinkStatus::Waiting;
        }
        if let Some(f) = lock(&self.failure).clone() {
            return LinkStatus::Failed { kind: f.kind, message: f.message };
        }
        if record.needs_reconnecting {
            LinkStatus::NeedsReconnecting { message: NEEDS_RECONNECTING.into() }
        } else if record.linked {
            LinkStatus::Linked { record }
        } else {
            LinkStatus::NotLinked
        }
    }

    /// Every sign-in of the old environment ends: its answer must not complete in the new one.
    pub fn end_all(&self, progress: &ProgressStore) {
        lock(&self.attempts).cancel_all();
        self.set_failure(None);
        let _ = self.forget_sign_ins(progress, |_| true);
    }

    /// A sign-in opened in the browser: remembered (by fingerprint) across a restart.
    pub fn remember_sign_in(&self, progress: &ProgressStore, now: u64, state: &str) -> Result<(), SaveError> {
        let mut list = lock(&self.sign_ins);
        let mut next = list.clone();
        next.push(SignInInBrowser { state_hash: callback::state_fingerprint(state), started_at: now });
        next.retain(|s| now.saturating_sub(s.started_at) <= ATTEMPT_TTL.as_secs());
        progress.save_sign_ins(&next)?;
        *list = next;
        Ok(())
    }

    /// Forget the remembered sign-ins that `which` picks (answered, cancelled), and save that.
    pub fn forget_sign_ins(&self, progress: &ProgressStore, which: impl Fn(&str) -> bool) -> Result<(), SaveError> {
        self.forget_sign_ins_in_memory(which);
        self.save_sign_ins(progress)
    }

    /// The same without touching the disk, for the deep-link path: the window is told first, and
    /// [`Self::save_sign_ins`] follows (an fsync costs more than the whole rest of that path).
    pub fn forget_sign_ins_in_memory(&self, which: impl Fn(&str) -> bool) {
        lock(&self.sign_ins).retain(|s| !which(&s.state_hash));
    }

    /// Write the remembered sign-ins as they are in memory.
    pub fn save_sign_ins(&self, progress: &ProgressStore) -> Result<(), SaveError> {
        let list = lock(&self.sign_ins);
        progress.save_sign_ins(&list)
    }

    /// Whether a state belongs to a sign-in the previous run opened (within its 10 minutes).
    pub fn started_before_restart(&self, state: &str) -> bool {
        let hash = callback::state_fingerprint(state);
        self.sign_ins_before_restart.iter().any(|s| s.state_hash == hash)
            && lock(&self.sign_ins).iter().any(|s| s.state_hash == hash)
    }

    /// Remember a callback the app accepted, for a UI that mounts later (cold start).
    pub fn remember_deep_link(&self, summary: CallbackSummary, received_at_ms: u32) -> DeepLinkNotice {
        let notice = DeepLinkNotice { callback: summary, received_at_ms };
        let mut links = lock(&self.deep_links);
        if links.len() == RECENT_LINKS {
            links.pop_front();
        }
        links.push_back(notice.clone());
        notice
    }

    pub fn recent_deep_links(&self) -> Vec<DeepLinkNotice> {
        lock(&self.deep_links).iter().cloned().collect()
    }
}
