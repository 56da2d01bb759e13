//! The approval watch's part: waking it early, the gate *Quit* takes so no tick is cut short, and
//! its share of the USPS quota over every business.

use std::sync::Mutex;

use uspslink_core::quota::WatchBudget;

/// Owned by `flows::watch`; the flows that change what it watches (the link, Settings) wake it.
#[derive(Default)]
pub struct Watch {
    /// Wakes the background watch early: the link completed, the environment changed.
    wake: tokio::sync::Notify,
    /// Held by the watch for each tick; taken for good (set to true) by *Quit*, which then waits
    /// for a tick in progress to end, so no save is cut short.
    pub(crate) gate: tokio::sync::Mutex<bool>,
    /// The watch's USPS calls of the last hour, for every business together.
    pub(crate) budget: Mutex<WatchBudget>,
}

impl Watch {
    /// Look again now instead of at the next tick.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Until someone calls [`Self::wake`] (a call made while nobody waited counts too).
    pub async fn woken(&self) {
        self.wake.notified().await
    }
}

/// Calls that must never run twice at once, whatever the UI sends.
#[derive(Default)]
pub struct InFlight {
    /// One Stamps.com registration at a time (a second would open a second account).
    pub(crate) register: tokio::sync::Mutex<()>,
    /// One SMS request at a time.
    pub(crate) sms: tokio::sync::Mutex<()>,
    /// One USPS check at a time (the watch's and *Check now*, approval and prices), so two never
    /// spend the quota twice or race on the record.
    pub(crate) usps_check: tokio::sync::Mutex<()>,
}
