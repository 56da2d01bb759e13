//! What the NSA rates save, and whether Stamps.com quotes them (issue 25): once USPS approves (the
//! watch) and on the owner's *Check again*, the reference parcels are priced by USPS with the linked
//! token and quoted by the owner's Stamps.com carrier through ShipEngine. The rules (what an answer
//! means, what a round asks, the quota) are `uspslink_core::savings`.

use secrecy::SecretString;
use uspslink_core::payments::PaymentAccount;
use uspslink_core::savings::{
    classify_estimate, estimate_request, usps_request, PlatformQuote, PriceClient, PriceType, SavingsError,
    SavingsTrigger, SavingsView, UspsPrice,
};
use uspslink_core::shipengine::{ShipEngineClient, ShipEngineError};
use uspslink_core::vault::SecretSlot;

use crate::flows::link::LinkFlowError;
use crate::state::{AppState, SandboxError, SaveError, Scope};

/// Why a round was not made or not kept.
#[derive(Debug, thiserror::Error)]
pub enum SavingsFlowError {
    #[error(transparent)]
    Savings(#[from] SavingsError),
    #[error(transparent)]
    Link(#[from] LinkFlowError),
    #[error(transparent)]
    Save(#[from] SaveError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

impl SavingsFlowError {
    /// USPS no longer takes the link: the window shows *Reconnect*, the watch waits for it.
    pub fn needs_reconnecting(&self) -> bool {
        matches!(self, SavingsFlowError::Link(e) if e.needs_reconnecting())
    }

    /// The disk refused a write of the round (or of a refreshed token's record).
    pub fn not_saved(&self) -> bool {
        matches!(self, SavingsFlowError::Save(_) | SavingsFlowError::Link(LinkFlowError::Save(_)))
    }
}

#[derive(Debug, Clone)]
pub struct SavingsOutcome {
    pub view: SavingsView,
    /// Whether anything was asked (the watch asks only when due).
    pub asked: bool,
}

/// What the window is told after a round: the savings, and the summary that now carries them.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
pub struct SavingsUpdate {
    pub savings: SavingsView,
    pub identifiers: uspslink_core::payments::IdentifiersView,
}

pub fn update(state: &AppState, scope: Scope) -> SavingsUpdate {
    SavingsUpdate { savings: state.progress.savings_view(scope), identifiers: state.progress.identifiers_view(scope) }
}

const NO_STAMPS_ACCOUNT: &str = "there is no Stamps.com account in uspslink to ask";

/// The owner's Stamps.com carrier and key, or why the platform cannot be asked. Read only when a
/// round asks the platform: the watch's idle ticks never touch the keyring.
async fn platform(state: &AppState, scope: Scope) -> Result<(String, SecretString), String> {
    let Some(carrier_id) = state.progress.stamps_record(scope).carrier_id else {
        return Err(NO_STAMPS_ACCOUNT.into());
    };
    match crate::flows::link::vault_get(state, scope, SecretSlot::ShipEngineApiKey).await {
        Ok(Some(key)) => Ok((carrier_id, key)),
        Ok(None) => Err("the ShipStation API key is not in uspslink any more".into()),
        Err(e) => Err(format!("the ShipStation API key could not be read ({e})")),
    }
}

/// One price from USPS; a refused token gets one refreshed token, as the approval check does. A
/// failure to get a token (could not refresh, a sign-in open) reads as a price that could not be
/// had; only a link USPS no longer takes stops the round.
async fn usps_price(
    state: &AppState,
    scope: Scope,
    client: &PriceClient,
    body: &serde_json::Value,
    asked: PriceType,
) -> Result<UspsPrice, SavingsFlowError> {
    let answer: Result<UspsPrice, SavingsFlowError> = async {
        let token = crate::flows::link::access_token_in(state, scope, false).await?;
        let mut answer = client.price(&token, body, asked).await;
        drop(token);
        if let Err(SavingsError::Unauthorized(reason)) = &answer {
            tracing::info!("USPS answered a price search with 401 ({reason}); trying once more with a refreshed token");
            let token = crate::flows::link::access_token_in(state, scope, true).await?;
            answer = client.price(&token, body, asked).await;
        }
        match answer {
            Ok(p) => Ok(p),
            Err(e @ SavingsError::Unauthorized(_)) => {
                crate::flows::link::mark_broken(state, scope, &e.to_string()).await?;
                Err(LinkFlowError::NeedsReconnecting.into())
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    match answer {
        Err(e) if !e.needs_reconnecting() => Ok(UspsPrice::Unavailable { reason: e.to_string() }),
        other => other,
    }
}

fn quote_of(answer: Result<serde_json::Value, ShipEngineError>, service_code: &str) -> PlatformQuote {
    match answer {
        Ok(rates) => classify_estimate(&rates, service_code),
        Err(e) => PlatformQuote::CouldNotQuote { reason: e.to_string() },
    }
}

/// One round for `scope`: what is due (the watch) or allowed (*Check again*) is asked, the answers
/// recorded. A parcel that could not be priced or quoted never stops the others.
pub async fn price_in(
    state: &AppState,
    scope: Scope,
    trigger: SavingsTrigger,
) -> Result<SavingsOutcome, SavingsFlowError> {
    // USPS's quota is shared with the approval check: one of them at a time.
    let _one_at_a_time = state.in_flight.usps_check.lock().await;
    let unchanged = |state: &AppState| SavingsOutcome { view: state.progress.savings_view(scope), asked: false };
    if !state.progress.approval_record(scope).is_approved() {
        return match trigger {
            SavingsTrigger::Watch => Ok(unchanged(state)),
            SavingsTrigger::CheckAgain => Err(SavingsError::NotApprovedYet.into()),
        };
    }
    let link = state.progress.link_record(scope);
    if trigger == SavingsTrigger::Watch && (!link.linked || link.needs_reconnecting) {
        return Ok(unchanged(state));
    }
    let Some(summary) = state.progress.identifiers_record(scope).summary else {
        return Err(SavingsError::NotApprovedYet.into());
    };
    let account: PaymentAccount = summary.identifiers.account;
    let has_carrier = state.progress.stamps_record(scope).carrier_id.is_some();
    let record = state.progress.savings_record(scope);
    let parcels = state.config.approval.parcels.clone();
    let plan = record.plan(&parcels, trigger, has_carrier, state.now())?;
    if plan.is_empty() {
        return Ok(unchanged(state));
    }
    let endpoints = state.endpoints_ready(scope).await?;
    // The watch retries quietly; only the owner's own press shows the retry countdown.
    let api = |base: &str| match trigger {
        SavingsTrigger::CheckAgain => state.clients.api(scope.environment(), base),
        SavingsTrigger::Watch => state.clients.quiet_api(scope.environment(), base),
    };
    let usps = PriceClient::over(api(&endpoints.usps_api));

    let mut contract = plan.contract.then(Vec::new);
    let mut published = plan.published.then(Vec::new);
    for parcel in &parcels {
        if let Some(list) = contract.as_mut() {
            let body = usps_request(parcel, PriceType::Contract, &account);
            list.push(usps_price(state, scope, &usps, &body, PriceType::Contract).await?);
        }
        if let Some(list) = published.as_mut() {
            let mut pair = (None, None);
            for (asked, slot) in [(PriceType::Commercial, &mut pair.0), (PriceType::Retail, &mut pair.1)] {
                let body = usps_request(parcel, asked, &account);
                if let UspsPrice::Priced { cents } = usps_price(state, scope, &usps, &body, asked).await? {
                    *slot = Some(cents);
                }
            }
            list.push(pair);
        }
    }
    let platform_answers = if plan.platform {
        match platform(state, scope).await {
            Ok((carrier_id, key)) => {
                let shipengine = ShipEngineClient::over(api(&endpoints.shipengine_api));
                let mut quotes = Vec::new();
                for parcel in &parcels {
                    let answer = shipengine.estimate_rates(&key, &estimate_request(parcel, &carrier_id)).await;
                    quotes.push(quote_of(answer, &parcel.service_code));
                }
                Ok(Some(quotes))
            }
            Err(why) => Err(why),
        }
    } else if !has_carrier {
        Err(NO_STAMPS_ACCOUNT.to_string())
    } else {
        Ok(None)
    };
    let now = state.now();
    state.progress.update(scope, |r| {
        r.savings.record(&parcels, contract, published, platform_answers, now);
        Ok::<_, SaveError>(())
    })?;
    let view = state.progress.savings_view(scope);
    tracing::info!(state = ?view.state, platform = ?view.platform, "priced the reference parcels");
    Ok(SavingsOutcome { view, asked: true })
}

/// When the watch has savings to ask next, for its sleep.
pub fn next_watch(state: &AppState, scope: Scope) -> Option<u64> {
    let has_platform = state.progress.stamps_record(scope).carrier_id.is_some();
    let approved = state.progress.approval_record(scope).is_approved();
    state.progress.savings_record(scope).next_watch(&state.config.approval.parcels, approved, has_platform, state.now())
}

#[cfg(test)]
mod tests {
    //! Rounds without a window: a completed, approved link against a real sandbox.
    use uspslink_core::savings::{PlatformState, SavingsState};

    use super::*;
    use crate::flows::approval::{self, Trigger};
    #[allow(unused_imports)]
    use uspslink_core::error::HasKind;
    #[allow(unused_imports)]
    use uspslink_core::{ErrorKind, IpcError};

    const SB: crate::state::Scope = crate::state::tests::SB;

    async fn approved_with_stamps() -> AppState {
        let s = approval::tests::completed("merchant").await;
        approval::tests::approve(&s).await;
        assert!(approval::check_in(&s, SB, Trigger::CheckNow).await.unwrap().newly_approved);
        s
    }

    /// A Stamps.com carrier of the sandbox's test account, as the Stamps step leaves it.
    async fn with_stamps(s: &AppState) -> String {
        let key = "TEST_savings";
        s.secrets.open(SB).set(SecretSlot::ShipEngineApiKey, &SecretString::from(key.to_string())).unwrap();
        let carrier = "se-test-stamps".to_string();
        let endpoints = s.endpoints_ready(SB).await.unwrap();
        ShipEngineClient::new(&endpoints.shipengine_api)
            .list_carriers(&SecretString::from(key.to_string()))
            .await
            .unwrap();
        let record = uspslink_core::shipengine::StampsRecord {
            carrier_id: Some(carrier.clone()),
            ..s.progress.stamps_record(SB)
        };
        s.progress.set_stamps_record(SB, record).unwrap();
        carrier
    }

    #[tokio::test]
    async fn nothing_is_priced_before_the_approval() {
        let s = approval::tests::completed("merchant").await;
        assert!(!price_in(&s, SB, SavingsTrigger::Watch).await.unwrap().asked);
        let e = price_in(&s, SB, SavingsTrigger::CheckAgain).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotConfigured);
        assert_eq!(s.progress.savings_record(SB), Default::default());
        assert_eq!(s.progress.savings_view(SB).state, SavingsState::NotApproved);
    }

    #[tokio::test]
    async fn approved_the_savings_are_shown_and_the_platform_is_behind_until_it_applies_the_contract() {
        let s = approved_with_stamps().await;
        let carrier = with_stamps(&s).await;
        assert!(next_watch(&s, SB).is_some_and(|t| t <= s.now()), "priced at once after the approval");
        let first = price_in(&s, SB, SavingsTrigger::Watch).await.unwrap();
        assert!(first.asked);
        let v = first.view;
        assert_eq!(v.state, SavingsState::Applied, "{v:?}");
        assert_eq!(v.parcels.len(), 4);
        let near = &v.parcels[0];
        // The sandbox's list: 1 lb Priority Mail, zone 1: $9.85 retail, $8.66 commercial, $7.38 contract.
        assert_eq!((near.contract_cents, near.commercial_cents, near.retail_cents), (Some(738), Some(866), Some(985)));
        assert_eq!(
            near.sentence,
            "Your NSA rates: $7.38 instead of $8.66 for a 1 lb Priority Mail parcel, near zone (\u{2212}15%)"
        );
        assert!(
            matches!(&v.platform, PlatformState::Published { quoted_cents: 866, contract_cents: 738, .. }),
            "{:?}",
            v.platform
        );
        // The summary for the sales representative carries the figures.
        let text = s.progress.identifiers_view(SB).summary_text.unwrap();
        assert!(text.contains("$7.38 instead of $8.66") && text.contains("does not apply our NSA rates yet"), "{text}");
        let diagnostics = crate::about::about(&s, std::path::Path::new("data"), None).diagnostics;
        assert!(diagnostics.contains("$7.38 instead of $8.66"), "{diagnostics}");
        // Not due again for the watch (a day for the platform); Check again asks the platform.
        assert!(!price_in(&s, SB, SavingsTrigger::Watch).await.unwrap().asked);
        let status = s
            .servers
            .sandbox_helper("/sandbox/shipengine/apply-contract", serde_json::json!({"carrier_id": carrier}))
            .await;
        assert_eq!(status, 204);
        let again = price_in(&s, SB, SavingsTrigger::CheckAgain).await.unwrap();
        assert!(again.asked);
        assert_eq!(again.view.platform, PlatformState::AtNsaRates);
        assert_eq!(next_watch(&s, SB), None, "all good: the watch asks nothing more");
    }

    #[tokio::test]
    async fn a_published_price_for_a_contract_request_reads_as_not_applied() {
        let s = approved_with_stamps().await;
        let fault = uspslink_sandbox::Fault { published_fallback: true, ..Default::default() };
        s.servers.sandbox().inject_fault("/prices/v3/total-rates/search", fault, 1);
        let v = price_in(&s, SB, SavingsTrigger::Watch).await.unwrap().view;
        assert_eq!(v.state, SavingsState::NotApplied, "{v:?}");
        assert!(!v.parcels[0].applied && v.parcels[0].sentence.starts_with("Not applied yet"), "{:?}", v.parcels[0]);
        assert!(v.parcels[1..].iter().all(|p| p.applied), "one call fell back, the others did not");
        assert!(matches!(v.platform, PlatformState::NotAsked { .. }), "no Stamps.com account: {:?}", v.platform);
        // A USPS that cannot be reached for one parcel does not stop the others.
        let fault = uspslink_sandbox::Fault { status: Some(500), ..Default::default() };
        s.servers.sandbox().inject_fault("/prices/v3/total-rates/search", fault, 1);
        let v = price_in(&s, SB, SavingsTrigger::CheckAgain).await.unwrap().view;
        assert!(v.parcels[0].sentence.starts_with("Could not price"), "{:?}", v.parcels[0]);
        assert!(v.parcels[1].applied, "{:?}", v.parcels[1]);
    }

    #[tokio::test]
    async fn the_quota_holds_for_check_again_without_a_platform() {
        let s = approved_with_stamps().await;
        for _ in 0..uspslink_core::savings::MAX_USPS_ROUNDS_PER_DAY {
            assert!(price_in(&s, SB, SavingsTrigger::CheckAgain).await.unwrap().asked);
        }
        let before = s.progress.savings_record(SB);
        let e = price_in(&s, SB, SavingsTrigger::CheckAgain).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(s.progress.savings_record(SB), before, "a refused round changes nothing");
    }
}
