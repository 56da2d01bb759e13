//! The error shape the UI sees: `{kind, message}`. Every domain error converts into it.

use serde::Serialize;
use ts_rs::TS;

/// Declares [`ErrorKind`] and its list [`ErrorKind::ALL`] from one list of variants, so the UI's list
/// of the kinds it knows (generated from `ALL`) can never miss one.
macro_rules! error_kinds {
    ($($(#[$doc:meta])* $kind:ident,)*) => {
        /// Every error kind the UI may receive. Stable identifiers: the UI branches on these.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorKind {
            $($(#[$doc])* $kind,)*
        }

        impl ErrorKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$kind,)*];
        }
    };
}

error_kinds! {
    /// A `uspslink://` URL that is not a well-formed OAuth callback.
    InvalidDeepLink,
    /// No Secret Service (or other OS keyring) is reachable.
    KeyringUnavailable,
    /// The keyring exists but is locked or refused access.
    KeyringLocked,
    /// Any other keyring failure.
    KeyringFailure,
    /// USPS sign-in did not give us a usable authorization (denied, wrong password, expired code…).
    LoginFailed,
    /// The USPS link was revoked or expired (a password reset does this): sign in again.
    NeedsReconnecting,
    /// Settings are missing something the action needs (e.g. the USPS consumer key).
    NotConfigured,
    /// Input that failed validation; nothing was changed.
    InvalidInput,
    /// The API key was refused (HTTP 401/403).
    InvalidApiKey,
    /// The remote service asked us to slow down.
    RateLimited,
    /// The same action is already on its way (a second press of Register or Send code).
    Busy,
    /// The remote service answered with an error body.
    RemoteError,
    /// The remote service could not be reached or timed out.
    Network,
    /// The remote service answered with something we could not read.
    MalformedResponse,
    /// The settings or progress store could not be read or written.
    Storage,
    /// Something that should not happen; logged with details.
    Internal,
}

/// A field a form got wrong, for the UI to highlight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct FieldProblem {
    /// The API's field path, e.g. `address.postal_code`.
    pub field: String,
    pub message: String,
}

/// What crosses IPC when a command fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct IpcError {
    pub kind: ErrorKind,
    pub message: String,
    /// Field-by-field problems (validation, or an API error naming a field); often empty.
    pub fields: Vec<FieldProblem>,
    /// The remote service's request id, for support (ShipEngine's `request_id`).
    pub request_id: Option<String>,
}

impl IpcError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), fields: Vec::new(), request_id: None }
    }
}

impl std::fmt::Display for IpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for IpcError {}

/// Implemented by each domain error: which kind it is for the UI.
pub trait HasKind: std::fmt::Display {
    fn kind(&self) -> ErrorKind;
    fn to_ipc(&self) -> IpcError {
        IpcError::new(self.kind(), self.to_string())
    }
}

/// Any domain error reaches the UI through `?`: its kind, its words, and whatever its `to_ipc`
/// adds (the fields a refusal names, ShipEngine's request id).
impl<E: HasKind> From<E> for IpcError {
    fn from(e: E) -> Self {
        e.to_ipc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_kind_once() {
        assert_eq!(ErrorKind::ALL.len(), 16);
        let names: std::collections::HashSet<String> =
            ErrorKind::ALL.iter().map(|k| serde_json::to_string(k).unwrap()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn serializes_as_kind_and_message() {
        let e = IpcError::new(ErrorKind::KeyringLocked, "unlock it");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"kind": "keyring_locked", "message": "unlock it", "fields": [], "request_id": null})
        );
    }
}
