//! What the app keeps of the link (never a token) and the link as the UI shows it.
#[allow(unused_imports)]
use super::*;

/// Refresh when the access token has less than this left.
pub const REFRESH_MARGIN_SECS: u64 = 5 * 60;

/// What the app remembers about the USPS link (never a token: those are in the vault).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct LinkRecord {
    pub linked: bool,
    /// A refresh failed as revoked/expired (a password reset does this).
    pub needs_reconnecting: bool,
    /// Unix seconds.
    #[ts(type = "number")]
    pub linked_at: u64,
    #[ts(type = "number")]
    pub access_expires_at: u64,
    #[ts(type = "number | null")]
    pub refresh_expires_at: Option<u64>,
    pub hints: AccountHints,
    /// Who the tokens were issued through: a refresh or revoke must go the same way (the service's
    /// USPS app and the business's own are different clients). None in records from before.
    pub issued_via: Option<crate::settings::SignInMethod>,
    /// The sign-in service that issued the tokens (its address), when they came through one: their
    /// refresh and revoke go there and nowhere else, whatever address Settings name later. None for
    /// the business's own app, and in records from before.
    pub issued_by: Option<String>,
}

impl LinkRecord {
    pub fn linked(tokens: &TokenSet, now: u64, via: crate::settings::SignInMethod, issued_by: Option<String>) -> Self {
        LinkRecord {
            linked: true,
            needs_reconnecting: false,
            linked_at: now,
            access_expires_at: tokens.access_expires_at,
            refresh_expires_at: tokens.refresh_expires_at,
            hints: account_hints(&tokens.access_token),
            issued_via: Some(via),
            issued_by,
        }
    }

    /// After a refresh: new expiry, same link date.
    pub fn refreshed(&self, tokens: &TokenSet) -> Self {
        LinkRecord {
            access_expires_at: tokens.access_expires_at,
            refresh_expires_at: tokens.refresh_expires_at.or(self.refresh_expires_at),
            needs_reconnecting: false,
            hints: account_hints(&tokens.access_token),
            ..self.clone()
        }
    }

    /// The service this live link was issued through, when Settings now name another way to sign in
    /// (`named_now`: the service they name, None for the business's own app). The link keeps using
    /// the service it came from, so the owner is told and asked to reconnect to move it.
    pub fn moved_from(&self, named_now: Option<&str>) -> Option<&str> {
        if !self.linked || self.needs_reconnecting {
            return None;
        }
        let issued = self.issued_by.as_deref()?;
        let same = named_now.is_some_and(|now| now.trim_end_matches('/') == issued.trim_end_matches('/'));
        (!same).then_some(issued)
    }

    pub fn needs_refresh(&self, now: u64) -> bool {
        self.linked && !self.needs_reconnecting && self.access_expires_at <= now + REFRESH_MARGIN_SECS
    }
}

/// The link as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LinkStatus {
    NotLinked,
    /// The browser is open on the USPS sign-in page.
    Waiting,
    Linked {
        record: LinkRecord,
    },
    /// The last attempt failed; `kind` is `login_failed`, `network`, `not_configured`, …
    Failed {
        kind: ErrorKind,
        message: String,
    },
    NeedsReconnecting {
        message: String,
    },
}
