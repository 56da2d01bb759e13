//! Whether USPS approved the NSA rates yet: one check of the CONTRACT price search with the linked
//! token, recorded so the schedule (and the dashboard) know when it was and what it found. Plain
//! Rust over the state; the background loop that calls it is `watch.rs`. The rules (what an answer
//! means, when to ask) are `uspslink_core::approval`.

use uspslink_core::approval::{ApprovalAnswer, ApprovalClient, ApprovalError, ApprovalView};
use uspslink_core::payments::PaymentAccount;

use crate::flows::link::LinkFlowError;
use crate::state::{AppState, SandboxError, SaveError, Scope};

/// Why a check was not made or not kept.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalFlowError {
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    #[error(transparent)]
    Link(#[from] LinkFlowError),
    #[error(transparent)]
    Save(#[from] SaveError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

impl ApprovalFlowError {
    /// USPS no longer takes the link: the window shows *Reconnect*, the watch waits for it.
    pub fn needs_reconnecting(&self) -> bool {
        matches!(self, ApprovalFlowError::Link(e) if e.needs_reconnecting())
    }
}

/// Who asks: the background watch (only when due, quietly) or the owner's *Check now*.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Watch,
    CheckNow,
}

#[derive(Debug, Clone)]
pub struct CheckOutcome {
    pub view: ApprovalView,
    /// Whether a request went to USPS (the watch asks only when due).
    pub checked: bool,
    /// This check found the approval, the first time.
    pub newly_approved: bool,
}

/// Ask USPS once (a 401 first gets one refreshed token, as every payments call does).
async fn ask(
    state: &AppState,
    scope: Scope,
    client: &ApprovalClient,
    account: &PaymentAccount,
) -> Result<ApprovalAnswer, ApprovalFlowError> {
    let token = crate::flows::link::access_token_in(state, scope, false).await?;
    let mut answer = client.check(&token, account).await;
    drop(token);
    if let Err(ApprovalError::Unauthorized(reason)) = &answer {
        tracing::info!("USPS answered the approval check with 401 ({reason}); trying once more with a refreshed token");
        let token = crate::flows::link::access_token_in(state, scope, true).await?;
        answer = client.check(&token, account).await;
    }
    match answer {
        Ok(a) => Ok(a),
        Err(e @ ApprovalError::Unauthorized(_)) => {
            crate::flows::link::mark_broken(state, scope, &e.to_string()).await?;
            Err(LinkFlowError::NeedsReconnecting.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// One check for `scope`. The watch's is skipped (changing nothing) unless it is due and the link is
/// healthy; a *Check now* is refused past its daily ceiling. A check that could not be made is
/// recorded too, so the schedule backs off instead of asking again at once. A link USPS no longer
/// takes answers `needs_reconnecting` (and the link shows it); the watch waits for a reconnect.
pub async fn check_in(state: &AppState, scope: Scope, trigger: Trigger) -> Result<CheckOutcome, ApprovalFlowError> {
    let _one_at_a_time = state.in_flight.usps_check.lock().await;
    let config = &state.config.approval;
    let now = state.now();
    let record = state.progress.approval_record(scope);
    let complete = state.progress.progress(scope).link_complete;
    let unchanged =
        |state: &AppState| CheckOutcome { view: state.approval_view(scope), checked: false, newly_approved: false };
    if record.is_approved() {
        return Ok(unchanged(state));
    }
    match trigger {
        Trigger::CheckNow => record.may_check_now(&config.schedule, complete, now)?,
        Trigger::Watch => {
            let link = state.progress.link_record(scope);
            if !record.due(complete, now) || !link.linked || link.needs_reconnecting {
                return Ok(unchanged(state));
            }
        }
    }
    let Some(summary) = state.progress.identifiers_record(scope).summary else {
        return Err(ApprovalError::NotLinkedYet.into());
    };
    let endpoints = state.endpoints_ready(scope).await?;
    // The watch retries quietly; only the owner's own press shows the retry countdown.
    let api = match trigger {
        Trigger::CheckNow => state.clients.api(scope.environment(), &endpoints.usps_api),
        Trigger::Watch => state.clients.quiet_api(scope.environment(), &endpoints.usps_api),
    };
    let client = ApprovalClient::over(api, config.query.clone());
    let answer = match ask(state, scope, &client, &summary.identifiers.account).await {
        Ok(a) => a,
        Err(e) if e.needs_reconnecting() => return Err(e),
        // Could not refresh, could not reach USPS: a check that could not be made.
        Err(e) => ApprovalAnswer::CouldNotCheck { reason: e.to_string() },
    };
    match &answer {
        ApprovalAnswer::Approved { total_price } => {
            tracing::info!(?total_price, "USPS priced the parcel at contract rates: the NSA rates are approved")
        }
        ApprovalAnswer::Waiting => tracing::info!("USPS has no approved contract for the account yet"),
        ApprovalAnswer::CouldNotCheck { reason } => tracing::warn!("could not check the approval: {reason}"),
    }
    let newly_approved = state.progress.update(scope, |r| {
        Ok::<_, SaveError>(r.approval.record(answer, &config.schedule, state.now(), rand::random()))
    })?;
    Ok(CheckOutcome { view: state.approval_view(scope), checked: true, newly_approved })
}

/// The approval's desktop notification went out: it is not sent again.
pub fn mark_notified(state: &AppState, scope: Scope) -> Result<(), SaveError> {
    state.progress.update(scope, |r| {
        r.approval.notified = true;
        Ok(())
    })
}

#[cfg(test)]
pub(crate) mod tests {
    //! The check without a window: a completed link against a real sandbox.
    use uspslink_core::approval::ApprovalState;
    use uspslink_core::onboarding::{OnboardingEvent, Step};
    use uspslink_core::payments::IdentifiersForm;

    use super::*;
    #[allow(unused_imports)]
    use uspslink_core::error::HasKind;
    #[allow(unused_imports)]
    use uspslink_core::{ErrorKind, IpcError};

    const SB: crate::state::Scope = crate::state::tests::SB;

    pub(crate) async fn completed(user: &str) -> AppState {
        let (s, _p) = crate::flows::link::tests::linked_state(user).await;
        finish_guide(&s, SB, user).await;
        s
    }

    /// Link `scope` (the business shown) as `user` and finish its guide with that user's identifiers.
    pub(crate) async fn complete_in(s: &AppState, scope: crate::state::Scope, user: &str) {
        crate::flows::link::tests::link_in(s, scope, user).await;
        finish_guide(s, scope, user).await;
    }

    async fn finish_guide(s: &AppState, scope: crate::state::Scope, user: &str) {
        assert_eq!(s.scope(), scope, "the identifiers are verified in the business shown");
        for step in [Step::BeforeYouStart, Step::StampsAccount, Step::UspsBusinessAccount, Step::PaymentAccount] {
            s.progress.apply(scope, OnboardingEvent::Complete(step)).unwrap();
        }
        s.progress.apply(scope, OnboardingEvent::Complete(Step::LinkBusinessAccount)).ok();
        let business = uspslink_sandbox::usps::business_of(user);
        let form = IdentifiersForm {
            crid: business.crid.into(),
            mid: business.mid.into(),
            eps_account: business.eps_account.into(),
            ..Default::default()
        };
        crate::flows::identifiers::verify(s, form).await.unwrap();
    }

    pub(crate) async fn approve(s: &AppState) {
        approve_user(s, "merchant").await
    }

    /// USPS approves the NSA contract of the business `user` signs in for.
    pub(crate) async fn approve_user(s: &AppState, user: &str) {
        let crid = uspslink_sandbox::usps::business_of(user).crid;
        let status =
            s.servers.sandbox_helper("/sandbox/usps/approve-contract", serde_json::json!({"crid": crid})).await;
        assert!((200..300).contains(&status), "{status}");
    }

    #[tokio::test]
    async fn waiting_then_approved_and_the_watch_stops() {
        let s = completed("merchant").await;
        let first = check_in(&s, SB, Trigger::Watch).await.unwrap();
        assert!(first.checked && !first.newly_approved);
        assert_eq!(first.view.state, ApprovalState::Waiting);
        assert!(first.view.next_check.unwrap() > s.now() + 3 * 3600);
        // Not due again: the watch does not ask.
        let again = check_in(&s, SB, Trigger::Watch).await.unwrap();
        assert!(!again.checked);
        approve(&s).await;
        let now = check_in(&s, SB, Trigger::CheckNow).await.unwrap();
        assert!(now.checked && now.newly_approved);
        assert!(matches!(now.view.state, ApprovalState::Approved { .. }));
        assert_eq!(now.view.next_check, None);
        let after = check_in(&s, SB, Trigger::CheckNow).await.unwrap();
        assert!(!after.checked && !after.newly_approved, "once approved, nothing more is asked");
        assert!(!s.progress.approval_record(SB).notified);
        mark_notified(&s, SB).unwrap();
        assert!(s.progress.approval_record(SB).notified);
    }

    #[tokio::test]
    async fn nothing_is_asked_before_the_link_is_complete() {
        let (s, _p) = crate::flows::link::tests::linked_state("merchant").await;
        assert!(!check_in(&s, SB, Trigger::Watch).await.unwrap().checked);
        let refused = check_in(&s, SB, Trigger::CheckNow).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::NotConfigured);
        assert_eq!(s.progress.approval_record(SB), Default::default());
    }

    #[tokio::test]
    async fn a_revoked_user_turns_the_link_to_reconnect_and_the_watch_waits() {
        let s = completed("merchant").await;
        let status =
            s.servers.sandbox_helper("/sandbox/usps/revoke-user", serde_json::json!({"username": "merchant"})).await;
        assert!((200..300).contains(&status), "{status}");
        let e = check_in(&s, SB, Trigger::Watch).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NeedsReconnecting);
        assert!(s.progress.link_record(SB).needs_reconnecting);
        assert_eq!(s.progress.approval_record(SB).history.last_check, None, "a broken link is not a check");
        assert!(!check_in(&s, SB, Trigger::Watch).await.unwrap().checked, "the watch waits for a reconnect");
    }

    #[tokio::test]
    async fn a_failed_check_is_recorded_and_backs_off() {
        let s = completed("merchant").await;
        let fault = uspslink_sandbox::Fault { status: Some(500), ..Default::default() };
        s.servers.sandbox().inject_fault("/prices/v3/total-rates/search", fault, 1);
        let o = check_in(&s, SB, Trigger::Watch).await.unwrap();
        assert!(
            matches!(&o.view.state, ApprovalState::CouldNotCheck { reason } if reason.contains("500")),
            "{:?}",
            o.view
        );
        let wait = o.view.next_check.unwrap() - o.view.last_checked.unwrap();
        assert!((900..=1800).contains(&wait), "15 minutes and up to a quarter of the jitter: {wait}");
        // A retail price is never an approval.
        let q = uspslink_core::approval::ApprovalQuery::from_json(
            r#"{"originZIPCode":"78756","destinationZIPCode":"78701","weight":1,"mailClass":"PRIORITY_MAIL","priceType":"RETAIL","accountType":"{accountType}","accountNumber":"{accountNumber}"}"#,
        )
        .unwrap();
        let mut s = s;
        s.config.approval.query = q;
        approve(&s).await;
        let o = check_in(&s, SB, Trigger::CheckNow).await.unwrap();
        assert!(matches!(o.view.state, ApprovalState::CouldNotCheck { .. }), "{:?}", o.view);
    }
}
