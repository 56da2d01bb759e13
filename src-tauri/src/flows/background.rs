//! With the window closed: whether uspslink keeps watching from the tray or quits, what the tray
//! says, and which screen a notification leads back to. USPS approval takes days and an unused
//! refresh token can die within a day, so an owner who closes the window after the last step must
//! still hear "USPS approved your NSA rates". Plain Rust: `ipc::background` does it with Tauri.

use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uspslink_core::approval::ApprovalState;
use uspslink_core::business::BusinessId;

use crate::state::{AppState, Scope};

/// What needs the app while its window is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watched {
    /// USPS took the identifiers and has not approved the NSA rates yet: the approval watch.
    Approval,
    /// A working link: its token is kept alive (an unused USPS refresh token can die within a day).
    Link,
    /// Nothing: closing the window quits.
    Nothing,
}

/// What the environment in force needs while the window is closed: the most any business needs
/// (one waiting for USPS keeps uspslink in the tray, whichever business the window showed).
pub fn watched(state: &AppState) -> Watched {
    let needs: Vec<Watched> =
        state.businesses_in_force().into_iter().map(|(scope, _)| watched_in(state, scope)).collect();
    if needs.contains(&Watched::Approval) {
        Watched::Approval
    } else if needs.contains(&Watched::Link) {
        Watched::Link
    } else {
        Watched::Nothing
    }
}

/// What one business needs while the window is closed.
fn watched_in(state: &AppState, scope: Scope) -> Watched {
    let link = state.progress.link_record(scope);
    if !link.linked || link.needs_reconnecting {
        return Watched::Nothing;
    }
    match state.approval_view(scope).state {
        ApprovalState::Unchecked | ApprovalState::Waiting | ApprovalState::CouldNotCheck { .. } => Watched::Approval,
        ApprovalState::NotStarted | ApprovalState::Approved { .. } => Watched::Link,
    }
}

/// Where one business stands, in the words of the dashboard.
fn status_line_in(state: &AppState, scope: Scope) -> &'static str {
    let link = state.progress.link_record(scope);
    if link.linked && link.needs_reconnecting {
        return "Reconnect your USPS business account";
    }
    match state.approval_view(scope).state {
        ApprovalState::Approved { .. } => "NSA rates approved",
        ApprovalState::Unchecked | ApprovalState::Waiting | ApprovalState::CouldNotCheck { .. } => {
            "Waiting for USPS approval"
        }
        ApprovalState::NotStarted if link.linked => "USPS business account linked",
        ApprovalState::NotStarted => "Not linked to USPS yet",
    }
}

/// The tray's first lines: where things stand, one line per business, named once there are several.
pub fn status_lines(state: &AppState) -> Vec<String> {
    let all = state.businesses_in_force();
    if let [(scope, _)] = all.as_slice() {
        return vec![status_line_in(state, *scope).to_string()];
    }
    all.into_iter().map(|(scope, name)| format!("{name}: {}", status_line_in(state, scope))).collect()
}

/// The tray icon's tooltip (where the desktop shows one).
pub fn tooltip(state: &AppState) -> String {
    match status_lines(state).as_slice() {
        [one] => format!("uspslink: {one}"),
        many => format!("uspslink: {} businesses\n{}", many.len(), many.join("\n")),
    }
}

/// What closing the window does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnClose {
    /// Keep running in the tray: the window (and its web content) goes, the watch stays.
    Tray,
    /// Nothing is watched: quit, as a window's close always did.
    Quit,
    /// Something is watched but the desktop has no tray to wait in: quit rather than become a
    /// process nobody can reach, and say so.
    QuitAndSay,
}

pub fn on_close(watched: Watched, tray_available: bool) -> OnClose {
    match (watched, tray_available) {
        (Watched::Nothing, _) => OnClose::Quit,
        (_, true) => OnClose::Tray,
        (_, false) => OnClose::QuitAndSay,
    }
}

/// A desktop notification of uspslink's, by what it is about (and which business): a click on it
/// leads to its screen, in its business.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Approval(BusinessId),
    Reconnect(BusinessId),
    /// The first time the window closes into the tray.
    InTray,
    /// The window closed, something was watched, and there is no tray.
    Quitting,
}

/// Kinds in the low bits of a notification's id, the business above them.
const KIND_BITS: i32 = 8;

impl Notice {
    /// The notification's id: a later one of the same kind and business replaces it; two
    /// businesses' approvals stand side by side.
    pub fn id(self) -> i32 {
        let (kind, business) = match self {
            Notice::Approval(b) => (1, Some(b)),
            Notice::Reconnect(b) => (2, Some(b)),
            Notice::InTray => (3, None),
            Notice::Quitting => (4, None),
        };
        // An id too large to carry (never given in practice) falls back to the kind alone.
        let business = business.and_then(|b| i32::try_from(b.0).ok()).filter(|b| *b < i32::MAX / KIND_BITS);
        kind + KIND_BITS * business.unwrap_or(0)
    }

    pub fn from_id(id: i32) -> Option<Notice> {
        if id < 0 {
            return None;
        }
        let business = || u32::try_from(id / KIND_BITS).ok().filter(|b| *b > 0).map(BusinessId);
        match id % KIND_BITS {
            1 => business().map(Notice::Approval),
            2 => business().map(Notice::Reconnect),
            3 if id == 3 => Some(Notice::InTray),
            4 if id == 4 => Some(Notice::Quitting),
            _ => None,
        }
    }

    /// The business it spoke of.
    pub fn business(self) -> Option<BusinessId> {
        match self {
            Notice::Approval(b) | Notice::Reconnect(b) => Some(b),
            Notice::InTray | Notice::Quitting => None,
        }
    }

    /// Where a click on it leads.
    pub fn route(self) -> Route {
        match self {
            Notice::Reconnect(_) => Route::Reconnect,
            Notice::Approval(_) | Notice::InTray | Notice::Quitting => Route::Dashboard,
        }
    }
}

pub const IN_TRAY_TITLE: &str = "uspslink keeps watching in the tray";
pub const IN_TRAY_BODY: &str =
    "It tells you when USPS approves your NSA rates. To stop it, choose Quit in its tray menu.";
pub const QUITTING_TITLE: &str = "uspslink has closed";
pub const QUITTING_BODY: &str = "Your desktop has no tray for uspslink to wait in, so it stopped watching for USPS \
approval. Open uspslink again to check.";

/// The screen the window opens on when something leads back to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    Dashboard,
    /// The link step, to reconnect the USPS business account.
    Reconnect,
}

/// What a launch's arguments ask: `--background` is the start at login, straight into the tray.
pub fn background_launch<S: AsRef<str>>(args: &[S]) -> bool {
    args.iter().skip(1).any(|a| a.as_ref() == BACKGROUND_ARG)
}

pub const BACKGROUND_ARG: &str = "--background";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::approval::tests::{approve, completed};
    use crate::flows::approval::{check_in, Trigger};
    use crate::state::tests::{state_over, MemoryPersist};

    #[tokio::test]
    async fn what_is_watched_and_said_from_a_fresh_start_to_the_approval_and_a_broken_link() {
        let fresh = state_over(std::sync::Arc::new(MemoryPersist::default()));
        assert_eq!(watched(&fresh), Watched::Nothing);
        assert_eq!(status_lines(&fresh), ["Not linked to USPS yet"]);
        assert_eq!(on_close(watched(&fresh), true), OnClose::Quit, "nothing watched: closing quits");

        let s = completed("merchant").await;
        assert_eq!(watched(&s), Watched::Approval);
        assert_eq!(status_lines(&s), ["Waiting for USPS approval"]);
        assert_eq!(tooltip(&s), "uspslink: Waiting for USPS approval");
        assert_eq!(on_close(Watched::Approval, true), OnClose::Tray);
        assert_eq!(on_close(Watched::Approval, false), OnClose::QuitAndSay, "never unreachable");

        approve(&s).await;
        check_in(&s, crate::state::tests::SB, Trigger::CheckNow).await.unwrap();
        assert_eq!(status_lines(&s), ["NSA rates approved"]);
        assert_eq!(watched(&s), Watched::Link, "the link is still kept alive");

        // A second business, shown and not linked: the tray names both, and the first one's link is
        // still what keeps uspslink in the tray.
        s.change_businesses(|b| b.add("Second Shop")).unwrap();
        assert_eq!(status_lines(&s), ["My business: NSA rates approved", "Second Shop: Not linked to USPS yet"]);
        assert!(tooltip(&s).starts_with("uspslink: 2 businesses\n"), "{}", tooltip(&s));
        assert_eq!(watched(&s), Watched::Link, "a business not shown is watched too");

        let status =
            s.servers.sandbox_helper("/sandbox/usps/revoke-user", serde_json::json!({"username": "merchant"})).await;
        assert_eq!(status, 204);
        let _ = crate::flows::link::access_token_in(&s, crate::state::tests::SB, true).await;
        assert_eq!(status_lines(&s)[0], "My business: Reconnect your USPS business account");
        assert_eq!(watched(&s), Watched::Nothing);
    }

    #[test]
    fn a_notification_leads_to_its_screen_in_its_business() {
        let all = [
            Notice::Approval(BusinessId::FIRST),
            Notice::Approval(BusinessId(2)),
            Notice::Reconnect(BusinessId(2)),
            Notice::Reconnect(BusinessId(268_435_454)),
            Notice::InTray,
            Notice::Quitting,
        ];
        for n in all {
            assert_eq!(Notice::from_id(n.id()), Some(n), "{n:?} as {}", n.id());
        }
        let ids: std::collections::HashSet<i32> = all.iter().map(|n| n.id()).collect();
        assert_eq!(ids.len(), all.len(), "two businesses' notifications never replace each other");
        for id in [0, -1, 5, 8, 11, 19] {
            assert_eq!(Notice::from_id(id), None, "{id}");
        }
        assert_eq!(Notice::Reconnect(BusinessId(2)).route(), Route::Reconnect);
        assert_eq!(Notice::Approval(BusinessId(2)).route(), Route::Dashboard);
        assert_eq!(Notice::Approval(BusinessId(2)).business(), Some(BusinessId(2)));
        // An id too large to carry: the kind still leads to its screen.
        assert_eq!(Notice::from_id(Notice::Approval(BusinessId(u32::MAX)).id()), None);
        assert_eq!(Notice::Approval(BusinessId(u32::MAX)).id() % 8, 1);
    }

    #[test]
    fn the_start_at_login_is_told_by_its_argument() {
        assert!(background_launch(&["uspslink", "--background"]));
        assert!(!background_launch(&["uspslink"]));
        assert!(!background_launch(&["--background"]), "the program's own name is not an argument");
        assert!(!background_launch(&["uspslink", "uspslink://oauth/callback?x=--background"]));
    }
}
