//! The identifiers step: CRID, MID and the payment account, checked as typed, kept as a draft, then
//! verified with USPS (payment-account inquiry + payment authorization) with the linked token. Success
//! completes the link: the status banner shows and the summary for the sales representative is kept.
//! The rules and requests live in `uspslink_core::payments`.

use serde::Serialize;
use tauri::{Manager, Runtime};
use ts_rs::TS;
use uspslink_core::error::{FieldProblem, HasKind};
use uspslink_core::onboarding::{DashboardView, OnboardingEvent, Step};
use uspslink_core::payments::{IdentifiersForm, IdentifiersRecord, IdentifiersView, LinkSummary, PaymentsClient, PaymentsError};
use uspslink_core::usps::unix_now;
use uspslink_core::{ErrorKind, IpcError};

use crate::state::AppState;

/// What the identifiers step shows after an action.
#[derive(Debug, Clone, Serialize, TS)]
pub struct IdentifiersUpdate {
    pub identifiers: IdentifiersView,
    pub view: DashboardView,
}

fn update(state: &AppState) -> IdentifiersUpdate {
    IdentifiersUpdate { identifiers: state.identifiers_view(), view: state.view() }
}

/// Validation as the user types: every problem of the form so far, without sending anything.
pub fn check(form: &IdentifiersForm) -> Vec<FieldProblem> {
    form.validate().err().unwrap_or_default()
}

/// Keep the draft as typed (nothing in it is secret), so closing the app loses nothing.
pub fn save_draft(state: &AppState, form: IdentifiersForm) -> Result<IdentifiersView, IpcError> {
    let record = state.identifiers_record();
    if record.draft != form {
        state.set_identifiers_record(IdentifiersRecord { draft: form, ..record })?;
    }
    Ok(state.identifiers_view())
}

/// *Verify with USPS*.
pub async fn verify<R: Runtime>(app: &tauri::AppHandle<R>, form: IdentifiersForm) -> Result<IdentifiersUpdate, IpcError> {
    let state = app.state::<AppState>();
    let ids = form.validate().map_err(|fields| {
        let mut e = IpcError::new(ErrorKind::InvalidInput, "some fields need attention");
        e.fields = fields;
        e
    })?;
    // The link can only complete from the identifiers step: check before calling USPS.
    state.progress().apply(OnboardingEvent::GoTo(Step::Identifiers)).map_err(|e| e.to_ipc())?;
    save_draft(&state, form)?;
    let token = crate::link::access_token(app).await?;
    let client = PaymentsClient::new(&state.endpoints_ready().await?.usps_api);
    let started = std::time::Instant::now();
    let result = async {
        let account = client.lookup_account(&token, &ids.account).await?;
        tracing::info!("USPS knows the {} payment account", account.account_type);
        client.authorize(&token, &ids).await
    }
    .await;
    drop(token);
    match result {
        // The payment authorization token is not needed later (labels are bought elsewhere): dropped.
        Ok(_authorization) => {}
        Err(e @ PaymentsError::Unauthorized(_)) => {
            crate::link::broken(app, &e.to_string()).await?;
            return Err(e.to_ipc());
        }
        Err(e) => {
            tracing::warn!("USPS did not accept the identifiers: {e}");
            return Err(e.to_ipc());
        }
    }
    tracing::info!("USPS accepted the identifiers in {:.1?}; the link is complete", started.elapsed());
    let summary = LinkSummary::new(&ids, unix_now());
    state.set_identifiers_record(IdentifiersRecord { summary: Some(summary), ..state.identifiers_record() })?;
    state.apply(OnboardingEvent::LinkCompleted)?;
    Ok(update(&state))
}

/// *Email summary*: the system mail client with the summary as a new message.
pub fn email_summary<R: Runtime>(app: &tauri::AppHandle<R>) -> Result<(), IpcError> {
    let summary = app
        .state::<AppState>()
        .identifiers_record()
        .summary
        .ok_or_else(|| IpcError::new(ErrorKind::NotConfigured, "there is no summary yet: verify your identifiers first"))?;
    crate::link::open_mail(app, &summary.mailto())
}
