//! What each of the app's errors is to the window: its kind (the UI branches on it, never on words),
//! and its `{kind, message}` with the fields a form or a service named. The one place the app's
//! typed errors (state's and each flow's) meet the wire shape; the domain errors of `uspslink-core`
//! say their own kinds there.
//!
//! An error that wraps another (a flow's error around ShipEngine's, a token's around the keyring's)
//! answers with the inner one's kind and its whole `to_ipc`, so a request id or a field the service
//! named is never lost on the way.

use uspslink_core::error::{FieldProblem, HasKind};
use uspslink_core::{ErrorKind, IpcError};

use crate::flows::approval::ApprovalFlowError;
use crate::flows::businesses::RemoveError;
use crate::flows::identifiers::IdentifiersFlowError;
use crate::flows::link::LinkFlowError;
use crate::flows::savings::SavingsFlowError;
use crate::flows::stamps::StampsError;
use crate::flows::OpenError;
use crate::state::{Bug, BusinessesError, PreferencesError, ProgressError, SandboxError, SaveError};

/// The error's own words, with the fields of a form that needs attention.
fn with_fields(e: &impl HasKind, fields: &[FieldProblem]) -> IpcError {
    IpcError { fields: fields.to_vec(), ..IpcError::new(e.kind(), e.to_string()) }
}

impl HasKind for SaveError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Storage
    }
}

impl HasKind for SandboxError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

impl HasKind for Bug {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

impl HasKind for OpenError {
    fn kind(&self) -> ErrorKind {
        match self {
            OpenError::BrowserCommandEmpty(_) => ErrorKind::NotConfigured,
            OpenError::CouldNotStart { .. } | OpenError::CouldNotOpen { .. } => ErrorKind::Internal,
            OpenError::NotAWebAddress | OpenError::NotWeb | OpenError::NotMail => ErrorKind::InvalidInput,
        }
    }
}

impl HasKind for ProgressError {
    fn kind(&self) -> ErrorKind {
        match self {
            ProgressError::Step(e) => e.kind(),
            ProgressError::Save(e) => e.kind(),
        }
    }
}

impl HasKind for PreferencesError {
    fn kind(&self) -> ErrorKind {
        match self {
            PreferencesError::Invalid(e) => e.kind(),
            PreferencesError::Save(e) => e.kind(),
        }
    }
}

impl HasKind for BusinessesError {
    fn kind(&self) -> ErrorKind {
        match self {
            BusinessesError::Rule(e) => e.kind(),
            BusinessesError::Save(e) => e.kind(),
        }
    }
}

impl HasKind for RemoveError {
    fn kind(&self) -> ErrorKind {
        match self {
            RemoveError::Businesses(e) => e.kind(),
            RemoveError::Link(e) => e.kind(),
            RemoveError::Keyring(e) => e.kind(),
            RemoveError::Bug(e) => e.kind(),
        }
    }

    fn to_ipc(&self) -> IpcError {
        match self {
            RemoveError::Link(e) => e.to_ipc(),
            _ => IpcError::new(self.kind(), self.to_string()),
        }
    }
}

impl HasKind for StampsError {
    fn kind(&self) -> ErrorKind {
        match self {
            StampsError::Busy(_) => ErrorKind::Busy,
            StampsError::NoKey | StampsError::NotRegistered | StampsError::NoCodeSent => ErrorKind::NotConfigured,
            StampsError::Form(_) | StampsError::Typed(_) => ErrorKind::InvalidInput,
            StampsError::ShipEngine(e) => e.kind(),
            StampsError::Keyring(e) => e.kind(),
            StampsError::Save(e) => e.kind(),
            StampsError::Sandbox(e) => e.kind(),
            StampsError::Bug(e) => e.kind(),
            StampsError::Open(e) => e.kind(),
        }
    }

    fn to_ipc(&self) -> IpcError {
        match self {
            StampsError::ShipEngine(e) => e.to_ipc(),
            StampsError::Form(fields) => with_fields(self, fields),
            _ => IpcError::new(self.kind(), self.to_string()),
        }
    }
}

impl HasKind for LinkFlowError {
    fn kind(&self) -> ErrorKind {
        match self {
            LinkFlowError::Link(e) => e.kind(),
            LinkFlowError::SignInOpen | LinkFlowError::NotLinked | LinkFlowError::ScopeChanged => {
                ErrorKind::NotConfigured
            }
            LinkFlowError::NeedsReconnecting | LinkFlowError::TokensGone => ErrorKind::NeedsReconnecting,
            LinkFlowError::Keyring(e) => e.kind(),
            LinkFlowError::Save(e) => e.kind(),
            LinkFlowError::Sandbox(e) => e.kind(),
            LinkFlowError::Bug(e) => e.kind(),
            LinkFlowError::Open(e) => e.kind(),
        }
    }

    fn to_ipc(&self) -> IpcError {
        match self {
            LinkFlowError::Link(e) => e.to_ipc(),
            _ => IpcError::new(self.kind(), self.to_string()),
        }
    }
}

impl HasKind for IdentifiersFlowError {
    fn kind(&self) -> ErrorKind {
        match self {
            IdentifiersFlowError::Form(_) => ErrorKind::InvalidInput,
            IdentifiersFlowError::Step(e) => e.kind(),
            IdentifiersFlowError::Payments(e) => e.kind(),
            IdentifiersFlowError::Link(e) => e.kind(),
            IdentifiersFlowError::Save(e) => e.kind(),
            IdentifiersFlowError::Sandbox(e) => e.kind(),
            IdentifiersFlowError::NoSummary => ErrorKind::NotConfigured,
            IdentifiersFlowError::Open(e) => e.kind(),
        }
    }

    fn to_ipc(&self) -> IpcError {
        match self {
            IdentifiersFlowError::Form(fields) => with_fields(self, fields),
            IdentifiersFlowError::Payments(e) => e.to_ipc(),
            IdentifiersFlowError::Link(e) => e.to_ipc(),
            _ => IpcError::new(self.kind(), self.to_string()),
        }
    }
}

impl HasKind for ApprovalFlowError {
    fn kind(&self) -> ErrorKind {
        match self {
            ApprovalFlowError::Approval(e) => e.kind(),
            ApprovalFlowError::Link(e) => e.kind(),
            ApprovalFlowError::Save(e) => e.kind(),
            ApprovalFlowError::Sandbox(e) => e.kind(),
        }
    }

    fn to_ipc(&self) -> IpcError {
        match self {
            ApprovalFlowError::Approval(e) => e.to_ipc(),
            ApprovalFlowError::Link(e) => e.to_ipc(),
            _ => IpcError::new(self.kind(), self.to_string()),
        }
    }
}

impl HasKind for SavingsFlowError {
    fn kind(&self) -> ErrorKind {
        match self {
            SavingsFlowError::Savings(e) => e.kind(),
            SavingsFlowError::Link(e) => e.kind(),
            SavingsFlowError::Save(e) => e.kind(),
            SavingsFlowError::Sandbox(e) => e.kind(),
        }
    }

    fn to_ipc(&self) -> IpcError {
        match self {
            SavingsFlowError::Savings(e) => e.to_ipc(),
            SavingsFlowError::Link(e) => e.to_ipc(),
            _ => IpcError::new(self.kind(), self.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uspslink_core::shipengine::ShipEngineError;
    use uspslink_core::usps::LinkError;

    /// A wrapped error keeps what the service named (its request id, its fields) and its kind.
    #[test]
    fn a_wrapped_error_keeps_the_services_request_id_fields_and_kind() {
        let refused = ShipEngineError::InvalidApiKey { request_id: Some("req-7".into()) };
        let wire = IpcError::from(StampsError::ShipEngine(refused));
        assert_eq!((wire.kind, wire.request_id.as_deref()), (ErrorKind::InvalidApiKey, Some("req-7")));
        let form = vec![FieldProblem { field: "crid".into(), message: "8 to 15 digits".into() }];
        let wire = IpcError::from(IdentifiersFlowError::Form(form.clone()));
        assert_eq!((wire.kind, wire.fields), (ErrorKind::InvalidInput, form));
        let broken = ApprovalFlowError::Link(LinkFlowError::Link(LinkError::NeedsReconnecting("revoked".into())));
        assert!(broken.needs_reconnecting());
        assert_eq!(IpcError::from(broken).kind, ErrorKind::NeedsReconnecting);
        let full =
            SavingsFlowError::Link(LinkFlowError::Save(SaveError(crate::state::PersistError::Io("full".into()))));
        assert!(full.not_saved() && !full.needs_reconnecting());
        assert_eq!(IpcError::from(full).kind, ErrorKind::Storage);
    }
}
