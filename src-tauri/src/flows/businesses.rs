//! Several businesses in one install (docs/DESIGN.md, "Businesses are apart"): adding, renaming and
//! showing one are changes of the list ([`AppState::change_businesses`]); removing one is this flow,
//! because it reaches USPS and the keyring first.

use uspslink_core::business::{Business, BusinessId};
use uspslink_core::settings::Environment;
use uspslink_core::vault::{SecretSlot, VaultError};

use super::link::{self, LinkFlowError};
use super::Host;
use crate::state::{blocking, install_wide, AppState, Bug, BusinessesError, Scope};

/// A business that was not removed: refused by the list's rules, or the keyring (or the disk)
/// did not let go of it. Nothing of it was removed then but what USPS revoked.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error(transparent)]
    Businesses(#[from] BusinessesError),
    #[error(transparent)]
    Link(#[from] LinkFlowError),
    #[error(transparent)]
    Keyring(#[from] VaultError),
    #[error(transparent)]
    Bug(#[from] Bug),
}

/// Remove business `id`: its USPS tokens are revoked at USPS (best effort), its keyring entries
/// deleted and its records emptied, in every environment. Its Stamps.com account is the owner's
/// and stays as it is (uspslink only forgets its ShipEngine key). The window asked the owner first.
pub async fn remove(host: &impl Host, id: BusinessId) -> Result<Business, RemoveError> {
    let state = host.state();
    // Refused before anything is revoked: the last business, or one that is gone already.
    state.progress.businesses().remove(id).map_err(BusinessesError::from)?;
    // No watch tick, no USPS check and no token refresh runs for it while it goes away (in the
    // order every other path takes them: the gate, the check, the refresh). A flow of it that
    // still runs after this writes nothing ([`crate::state::ProgressStore::is_removed`]).
    let _no_tick = state.watch.gate.lock().await;
    let _no_check = state.in_flight.usps_check.lock().await;
    let _no_refresh = state.sessions.refresh.lock().await;
    for environment in Environment::ALL {
        forget_scope(state, Scope::new(id, environment)).await?;
    }
    let removed = state.remove_business(id)?;
    tracing::info!(business = id.0, "a business was removed");
    Ok(removed)
}

/// Revoke and delete one scope's secrets.
async fn forget_scope(state: &AppState, scope: Scope) -> Result<(), RemoveError> {
    link::revoke_in(state, scope).await?;
    state.secrets.clear_unsaved_tokens(scope);
    let secrets = state.secrets.clone();
    blocking(move || {
        let vault = secrets.open(scope);
        // A secret of the install's kept under the first business's names (the owner's USPS
        // developer app signs in every business) stays when that business goes.
        for slot in SecretSlot::ALL.into_iter().filter(|s| !(install_wide(*s) && scope == scope.app_wide())) {
            vault.delete(slot)?;
        }
        Ok::<_, RemoveError>(())
    })
    .await
}

#[cfg(test)]
mod tests {
    //! Two businesses through the sandbox, with different USPS users and identifiers.
    use secrecy::ExposeSecret;
    use uspslink_core::approval::ApprovalState;
    use uspslink_core::business::BusinessError;
    use uspslink_core::settings::Environment;
    use uspslink_core::vault::SecretSlot;

    use super::*;
    use crate::flows::approval::{self, Trigger};
    use crate::flows::tests::RecordingHost;
    use crate::state::lock;

    #[tokio::test]
    async fn two_businesses_approve_one_and_remove_the_other() {
        let host = RecordingHost::new(crate::flows::approval::tests::completed("merchant").await);
        let state = host.state();
        let first = state.scope();
        let second_id = state.change_businesses(|b| b.add("Second Shop")).unwrap();
        let second = state.scope();
        assert_eq!(second, Scope::new(second_id, Environment::Sandbox));
        crate::flows::approval::tests::complete_in(state, second, "merchant2").await;
        assert_ne!(
            state.progress.identifiers_record(first).draft.crid,
            state.progress.identifiers_record(second).draft.crid,
            "each business has its own USPS user's identifiers"
        );

        // A sign-in open in the browser for the business shown holds up only that business's checks.
        let endpoints = state.endpoints_ready(second).await.unwrap();
        lock(&state.sessions.attempts)
            .begin(&endpoints.usps_authorize, "client", "uspslink://oauth/callback", std::time::Instant::now())
            .unwrap();
        let held = approval::check_in(state, second, Trigger::CheckNow).await.unwrap().view.state;
        assert!(
            matches!(&held, ApprovalState::CouldNotCheck { reason } if reason.contains("Finish signing in")),
            "{held:?}"
        );
        let other = approval::check_in(state, first, Trigger::CheckNow).await.unwrap().view.state;
        assert_eq!(other, ApprovalState::Waiting, "the other business is not held up");
        lock(&state.sessions.attempts).cancel_all();

        // Both are watched; one is approved: only its record, and one notification that names it.
        for scope in [first, second] {
            let outcome = approval::check_in(state, scope, Trigger::Watch).await.unwrap();
            crate::flows::watch::after_check(&host, scope, &outcome);
        }
        crate::flows::approval::tests::approve_user(state, "merchant").await;
        for scope in [first, second] {
            let outcome = approval::check_in(state, scope, Trigger::CheckNow).await.unwrap();
            crate::flows::watch::after_check(&host, scope, &outcome);
        }
        assert!(state.progress.approval_record(first).is_approved());
        assert!(!state.progress.approval_record(second).is_approved(), "the other business is still waiting");
        let notes = lock(&host.notifications).clone();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].0.contains("My business"), "the notification names the business: {notes:?}");
        let notices = lock(&host.notices).clone();
        assert_eq!(notices, [crate::flows::background::Notice::Approval(first.business())], "a click shows it");
        let overview = state.overview();
        assert!(matches!(overview[0].approval.state, ApprovalState::Approved { .. }));
        assert!(matches!(overview[1].approval.state, ApprovalState::Waiting));
        assert!(
            lock(&host.approvals).iter().all(|v| !matches!(v.state, ApprovalState::Approved { .. })),
            "the window shows the second business: it was not told the first one's approval"
        );

        // Remove the second: its keyring entries and records are gone, the first's untouched.
        let keyring = |scope: Scope| {
            let vault = state.secrets.open(scope);
            SecretSlot::ALL.iter().filter(|s| vault.has(**s).unwrap()).count()
        };
        assert!(keyring(second) > 0 && keyring(first) > 0);
        let first_keys = state.progress.stored_keys(first);
        let second_access = state.secrets.open(second).get(SecretSlot::UspsAccessToken).unwrap().unwrap();
        let removed = remove(&host, second_id).await.unwrap();
        assert_eq!(removed.name, "Second Shop");
        assert_eq!(keyring(second), 0, "its secrets are deleted");
        assert!(state.progress.stored_keys(second).is_empty(), "its records are emptied");
        assert!(keyring(first) > 0);
        assert_eq!(state.progress.stored_keys(first), first_keys, "the first business is untouched");
        assert_eq!(state.scope(), first, "the one left is shown");
        // A flow of the removed business that was still running writes nothing back.
        let late = state.progress.set_stamps_record(second, Default::default()).unwrap_err();
        assert_eq!(late.0, crate::state::PersistError::BusinessRemoved);
        assert!(state.progress.stored_keys(second).is_empty());
        assert!(state.progress.approval_record(first).is_approved());
        // USPS no longer takes the removed business's access token: it was revoked.
        let status = reqwest::Client::new()
            .post(format!("{}/prices/v3/total-rates/search", state.endpoints_ready(first).await.unwrap().usps_api))
            .bearer_auth(second_access.expose_secret())
            .json(&serde_json::json!({"mailClass": "PRIORITY_MAIL", "weight": 1, "priceType": "RETAIL"}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 401, "revoked at USPS");

        // The last business is refused, with nothing changed.
        let last = remove(&host, first.business()).await.unwrap_err();
        assert!(matches!(last, RemoveError::Businesses(BusinessesError::Rule(BusinessError::LastOne))), "{last:?}");
        assert!(keyring(first) > 0);
    }
}
