//! The identifiers step: CRID, MID and the payment account, checked as typed, kept as a draft, then
//! verified with USPS (payment-account inquiry + payment authorization) with the linked token. Success
//! completes the link: the status banner shows and the summary for the sales representative is kept.
//! The rules and requests live in `uspslink_core::payments`.

use secrecy::SecretString;
use serde::Serialize;
use ts_rs::TS;
use uspslink_core::error::FieldProblem;
use uspslink_core::onboarding::{DashboardView, OnboardingEvent, Step};
use uspslink_core::payments::{
    Identifiers, IdentifiersForm, IdentifiersView, LinkSummary, PaymentsClient, PaymentsError,
};

use crate::flows::link::LinkFlowError;
use crate::state::{AppState, SandboxError, SaveError, Scope};

/// Why the identifiers were not verified (or their summary not sent); nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum IdentifiersFlowError {
    #[error("some fields need attention")]
    Form(Vec<FieldProblem>),
    #[error(transparent)]
    Step(#[from] uspslink_core::onboarding::OnboardingError),
    #[error(transparent)]
    Payments(#[from] PaymentsError),
    #[error(transparent)]
    Link(#[from] LinkFlowError),
    #[error(transparent)]
    Save(#[from] SaveError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("there is no summary yet: verify your identifiers first")]
    NoSummary,
    #[error(transparent)]
    Open(#[from] super::OpenError),
}

impl IdentifiersFlowError {
    /// USPS no longer takes the link: the window shows *Reconnect*.
    pub fn needs_reconnecting(&self) -> bool {
        match self {
            IdentifiersFlowError::Link(e) => e.needs_reconnecting(),
            IdentifiersFlowError::Payments(e) => matches!(e, PaymentsError::Unauthorized(_)),
            _ => false,
        }
    }
}

/// What the identifiers step shows after an action.
#[derive(Debug, Clone, Serialize, TS)]
pub struct IdentifiersUpdate {
    pub identifiers: IdentifiersView,
    pub view: DashboardView,
}

fn update(state: &AppState, scope: Scope) -> IdentifiersUpdate {
    IdentifiersUpdate { identifiers: state.progress.identifiers_view(scope), view: state.progress.view(scope) }
}

/// Validation as the user types: every problem of the form so far, without sending anything.
pub fn check(form: &IdentifiersForm) -> Vec<FieldProblem> {
    form.validate().err().unwrap_or_default()
}

/// Keep the draft as typed (nothing in it is secret), so closing the app loses nothing.
pub fn save_draft(state: &AppState, scope: Scope, form: IdentifiersForm) -> Result<IdentifiersView, SaveError> {
    state.progress.update(scope, |r| {
        r.identifiers.draft = form;
        Ok::<_, SaveError>(())
    })?;
    Ok(state.progress.identifiers_view(scope))
}

/// The account inquiry, then the payment authorization, with one token.
async fn ask_usps(client: &PaymentsClient, token: &SecretString, ids: &Identifiers) -> Result<(), PaymentsError> {
    let account = client.lookup_account(token, &ids.account).await?;
    tracing::info!("USPS knows the {} payment account", account.account_type);
    // The payment authorization token is not needed later (labels are bought elsewhere): dropped.
    client.authorize(token, ids).await.map(drop)
}

/// *Verify with USPS*. A 401 first gets one refreshed token; only a second 401 (or a refused
/// refresh) means the link needs reconnecting.
pub async fn verify(state: &AppState, form: IdentifiersForm) -> Result<IdentifiersUpdate, IdentifiersFlowError> {
    let scope = state.scope();
    let ids = form.validate().map_err(IdentifiersFlowError::Form)?;
    // The link can only complete from the identifiers step: check before calling USPS.
    state.progress.progress(scope).apply(OnboardingEvent::GoTo(Step::Identifiers))?;
    save_draft(state, scope, form)?;
    let usps_api = state.endpoints_ready(scope).await?.usps_api;
    let client = PaymentsClient::over(state.clients.api(scope.environment(), &usps_api));
    let started = std::time::Instant::now();
    let token = crate::flows::link::access_token_in(state, scope, false).await?;
    let mut result = ask_usps(&client, &token, &ids).await;
    drop(token);
    if let Err(PaymentsError::Unauthorized(reason)) = &result {
        tracing::info!("USPS answered 401 ({reason}); trying once more with a refreshed token");
        let token = crate::flows::link::access_token_in(state, scope, true).await?;
        result = ask_usps(&client, &token, &ids).await;
    }
    match result {
        Ok(()) => {}
        Err(e @ PaymentsError::Unauthorized(_)) => {
            crate::flows::link::mark_broken(state, scope, &e.to_string()).await?;
            return Err(e.into());
        }
        Err(e) => {
            tracing::warn!("USPS did not accept the identifiers: {e}");
            return Err(e.into());
        }
    }
    tracing::info!("USPS accepted the identifiers in {:.1?}; the link is complete", started.elapsed());
    let summary = LinkSummary::new(&ids, state.now());
    // The summary and the completed link in one write.
    state.progress.update(scope, |r| {
        r.identifiers.summary = Some(summary);
        r.progress.apply(OnboardingEvent::LinkCompleted)?;
        Ok::<_, IdentifiersFlowError>(())
    })?;
    Ok(update(state, scope))
}

/// *Email summary*: the system mail client with the summary as a new message.
pub fn email_summary(host: &impl super::Host) -> Result<(), IdentifiersFlowError> {
    let state = host.state();
    let scope = state.scope();
    let summary = state.progress.identifiers_record(scope).summary.ok_or(IdentifiersFlowError::NoSummary)?;
    Ok(crate::flows::link::open_mail(host, &summary.mailto_with(&state.progress.savings_lines(scope)))?)
}

#[cfg(test)]
mod tests {
    //! Verification without a window: a linked state against a real sandbox.
    use super::*;
    #[allow(unused_imports)]
    use uspslink_core::error::HasKind;
    #[allow(unused_imports)]
    use uspslink_core::{ErrorKind, IpcError};

    fn form() -> IdentifiersForm {
        IdentifiersForm {
            crid: "20538353".into(),
            mid: "901234567".into(),
            eps_account: "1000000001".into(),
            ..IdentifiersForm::default()
        }
    }

    async fn at_identifiers(user: &str) -> AppState {
        let (s, _p) = crate::flows::link::tests::linked_state(user).await;
        let env = crate::state::tests::SB;
        for step in [Step::BeforeYouStart, Step::StampsAccount, Step::UspsBusinessAccount, Step::PaymentAccount] {
            s.progress.apply(env, OnboardingEvent::Complete(step)).unwrap();
        }
        s.progress.apply(env, OnboardingEvent::Complete(Step::LinkBusinessAccount)).ok();
        s
    }

    #[tokio::test]
    async fn verification_completes_the_link_and_a_refusal_changes_nothing() {
        let s = at_identifiers("merchant").await;
        let env = crate::state::tests::SB;
        let refused = verify(&s, IdentifiersForm { eps_account: "1000000002".into(), ..form() }).await.unwrap_err();
        assert!(refused.to_ipc().fields.iter().any(|f| f.field == "eps_account"), "{refused:?}");
        assert!(s.progress.identifiers_record(env).summary.is_none());
        let done = verify(&s, form()).await.unwrap();
        assert!(done.identifiers.summary.is_some());
        assert!(done.view.show_status_banner);
    }

    #[tokio::test]
    async fn a_401_gets_one_refresh_before_the_link_is_called_broken() {
        let s = at_identifiers("merchant").await;
        let env = crate::state::tests::SB;
        // One 401 on the inquiry: the refreshed token goes through and the link stays.
        let fault = uspslink_sandbox::Fault { status: Some(401), ..Default::default() };
        s.servers.sandbox().inject_fault("/payments/v3/payment-account/{number}", fault, 1);
        let done = verify(&s, form()).await.unwrap();
        assert!(done.identifiers.summary.is_some());
        assert!(!s.progress.link_record(env).needs_reconnecting);
    }

    #[test]
    fn the_identifiers_draft_is_saved_when_it_changes_and_prefilled_from_the_link() {
        use uspslink_core::payments::IdentifiersForm;
        use uspslink_core::usps::AccountHints;
        let p = std::sync::Arc::new(crate::state::tests::MemoryPersist::default());
        let s = crate::state::tests::state_over(p.clone());
        let hints =
            AccountHints { crids: vec!["20538353".into()], mids: vec![], eps_accounts: vec!["1000000001".into()] };
        s.progress
            .set_link_record(
                crate::state::tests::SB,
                uspslink_core::usps::LinkRecord { linked: true, hints, ..uspslink_core::usps::LinkRecord::default() },
            )
            .unwrap();
        let typed = IdentifiersForm { mid: "123456".into(), ..IdentifiersForm::default() };
        let view = save_draft(&s, crate::state::tests::SB, typed.clone()).unwrap();
        assert_eq!(
            (view.form.crid.as_str(), view.form.mid.as_str(), view.form.eps_account.as_str()),
            ("20538353", "123456", "1000000001")
        );
        assert_eq!(view.prefilled, ["crid", "eps_account"]);
        save_draft(&s, crate::state::tests::SB, typed).unwrap();
        let saved = crate::state::lock(&p.saved);
        let keys: Vec<&str> = saved.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["sandbox/usps_link", "sandbox/identifiers"], "an unchanged draft is not written again");
        assert_eq!(saved[1].1["draft"]["mid"], "123456");
        assert_eq!(saved[1].1["draft"]["crid"], "", "the store keeps what was typed; pre-fill is only shown");
    }
}
