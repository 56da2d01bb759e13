//! Where the window is: open, or closed into the tray, and the screen it opens on next.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::lock;
use crate::flows::background::Route;

#[derive(Default)]
pub struct WindowPlace {
    /// The screen the window opens on next (a notification was clicked while it was closed).
    open_on: Mutex<Option<Route>>,
    /// The window was closed into the tray: the app keeps running without one.
    in_tray: AtomicBool,
}

impl WindowPlace {
    /// A notification was clicked: the window opens on `route` (read once by the window).
    pub fn set_open_on(&self, route: Route) {
        *lock(&self.open_on) = Some(route);
    }

    pub fn take_open_on(&self) -> Option<Route> {
        lock(&self.open_on).take()
    }

    pub fn in_tray(&self) -> bool {
        self.in_tray.load(Ordering::SeqCst)
    }

    pub fn set_in_tray(&self, on: bool) {
        self.in_tray.store(on, Ordering::SeqCst);
    }
}
