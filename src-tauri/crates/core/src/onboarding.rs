//! The onboarding state machine: which guideline step the user is on, what they have finished, and
//! which of the dashboard's pop-up and banners show. Pure: the app persists [`Progress`] and renders
//! [`DashboardView`].

use serde::{Deserialize, Serialize};
use thiserror::Error;
use ts_rs::TS;

use crate::error::{ErrorKind, HasKind};

/// The guideline steps (docs/DESIGN.md, "The flow", items 2–8), in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    BeforeYouStart,
    StampsAccount,
    UspsBusinessAccount,
    PaymentAccount,
    LinkBusinessAccount,
    Identifiers,
    WaitingForApproval,
}

impl Step {
    pub const ALL: [Step; 7] = [
        Step::BeforeYouStart,
        Step::StampsAccount,
        Step::UspsBusinessAccount,
        Step::PaymentAccount,
        Step::LinkBusinessAccount,
        Step::Identifiers,
        Step::WaitingForApproval,
    ];

    pub fn index(self) -> usize {
        Step::ALL.iter().position(|s| *s == self).expect("every step is in ALL")
    }

    pub fn title(self) -> &'static str {
        match self {
            Step::BeforeYouStart => "Before you start",
            Step::StampsAccount => "Stamps.com account",
            Step::UspsBusinessAccount => "USPS Business Account",
            Step::PaymentAccount => "Payment account (EPA)",
            Step::LinkBusinessAccount => "Link your business account",
            Step::Identifiers => "CRID, MID and EPS",
            Step::WaitingForApproval => "Waiting for USPS approval",
        }
    }

    fn next(self) -> Option<Step> {
        Step::ALL.get(self.index() + 1).copied()
    }
}

/// Everything about the user's progress that survives a restart. Never a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct Progress {
    pub popup_dismissed: bool,
    pub current_step: Step,
    /// Finished steps, kept in step order without duplicates.
    pub completed: Vec<Step>,
    /// The user said they already have a Business Account and a linked EPA.
    pub skipped_to_link: bool,
    /// Identifiers verified with USPS: the link is done and the connect prompts go away for good.
    pub link_complete: bool,
    /// "Please wait for approval…" was dismissed; it never returns.
    pub status_banner_dismissed: bool,
    /// What the user ticked on "Before you start", in [`ChecklistItem`] order.
    pub checklist: Vec<ChecklistItem>,
}

/// "Before you start": what the user has at hand (or asked the sales representative for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ChecklistItem {
    Crid,
    Mid,
    Eps,
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            popup_dismissed: false,
            current_step: Step::BeforeYouStart,
            completed: Vec::new(),
            skipped_to_link: false,
            link_complete: false,
            status_banner_dismissed: false,
            checklist: Vec::new(),
        }
    }
}

/// Something the user (or a finished API call) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "type", content = "step", rename_all = "snake_case")]
pub enum OnboardingEvent {
    /// *Not now* on the pop-up.
    DismissPopup,
    /// *See Instructions* / *See Guidelines*: also closes the pop-up.
    OpenGuidelines,
    GoTo(Step),
    Complete(Step),
    /// "Already have a USPS Business Account AND a linked EPA?"
    SkipToLink,
    /// USPS accepted the identifiers.
    LinkCompleted,
    DismissStatusBanner,
    /// A "Before you start" checklist box was ticked (`step` holds the item) …
    Check(ChecklistItem),
    /// … or cleared.
    Uncheck(ChecklistItem),
}

impl OnboardingEvent {
    /// Whether the UI may send this event. Finishing the Stamps.com step, the link step and the
    /// whole link happens only when the backend saw the API succeed; otherwise a UI call could
    /// claim a link that USPS never accepted.
    pub fn is_user_event(&self) -> bool {
        !matches!(
            self,
            OnboardingEvent::LinkCompleted
                | OnboardingEvent::Complete(
                    Step::StampsAccount | Step::LinkBusinessAccount | Step::Identifiers | Step::WaitingForApproval
                )
        )
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum OnboardingError {
    #[error("that step is finished by uspslink itself once the service confirms it")]
    NotAUserEvent,
    #[error("finish \"{}\" first", .0.title())]
    StepLocked(Step),
    #[error("the link is not complete yet")]
    NotLinked,
    #[error("there is no status banner to dismiss")]
    NoStatusBanner,
}

impl HasKind for OnboardingError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Done,
    Current,
    Available,
    Locked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct StepView {
    pub step: Step,
    pub number: u32,
    pub title: String,
    pub status: StepStatus,
}

/// What the dashboard and the guidelines view render.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct DashboardView {
    pub show_popup: bool,
    pub show_connect_banner: bool,
    pub show_status_banner: bool,
    pub current_step: Step,
    pub steps: Vec<StepView>,
    pub completed_count: u32,
    pub total_steps: u32,
    /// The "Before you start" boxes the user ticked.
    pub checklist: Vec<ChecklistItem>,
}

/// The steps that must be done before `step` opens: every earlier one, except that the USPS side
/// (steps 3–5) does not wait for the Stamps.com account.
fn prerequisites(step: Step) -> impl Iterator<Item = Step> {
    Step::ALL[..step.index()].iter().copied().filter(move |s| !(*s == Step::StampsAccount && step < Step::Identifiers))
}

impl Progress {
    fn is_done(&self, step: Step) -> bool {
        self.completed.contains(&step)
    }

    /// A step can be opened when every step it depends on is done (the skip counts as doing steps
    /// 3–4), and "waiting for approval" only once the link is complete. The USPS side (steps 3–5) does
    /// not need the Stamps.com account, so a user whose Stamps.com registration is stuck (say, waiting
    /// for the SMS) can go on with USPS; the identifiers step, which completes the link, needs both.
    pub fn is_reachable(&self, step: Step) -> bool {
        if step == Step::WaitingForApproval {
            return self.link_complete;
        }
        prerequisites(step).all(|s| self.is_done(s))
    }

    fn mark_done(&mut self, step: Step) {
        if !self.is_done(step) {
            self.completed.push(step);
            self.completed.sort();
        }
    }

    /// Apply an event. On error the progress is unchanged.
    pub fn apply(&mut self, event: OnboardingEvent) -> Result<(), OnboardingError> {
        match event {
            OnboardingEvent::DismissPopup | OnboardingEvent::OpenGuidelines => self.popup_dismissed = true,
            OnboardingEvent::GoTo(step) => {
                if !self.is_reachable(step) {
                    return Err(OnboardingError::StepLocked(self.first_unfinished_before(step)));
                }
                self.current_step = step;
            }
            OnboardingEvent::Complete(step) => {
                if !self.is_reachable(step) {
                    return Err(OnboardingError::StepLocked(self.first_unfinished_before(step)));
                }
                if step == Step::Identifiers || step == Step::WaitingForApproval {
                    // Only a verified link finishes these (LinkCompleted).
                    return Err(OnboardingError::NotLinked);
                }
                self.mark_done(step);
                // Move on only where the user can go; otherwise stay (the step shows it is done).
                if let Some(next) = step.next().filter(|n| self.is_reachable(*n)) {
                    self.current_step = next;
                }
            }
            OnboardingEvent::SkipToLink => {
                if !self.is_done(Step::BeforeYouStart) {
                    return Err(OnboardingError::StepLocked(Step::BeforeYouStart));
                }
                self.mark_done(Step::UspsBusinessAccount);
                self.mark_done(Step::PaymentAccount);
                self.skipped_to_link = true;
                self.current_step = Step::LinkBusinessAccount;
            }
            OnboardingEvent::LinkCompleted => {
                if !self.is_reachable(Step::Identifiers) {
                    return Err(OnboardingError::StepLocked(self.first_unfinished_before(Step::Identifiers)));
                }
                self.mark_done(Step::Identifiers);
                self.link_complete = true;
                self.popup_dismissed = true;
                self.current_step = Step::WaitingForApproval;
            }
            OnboardingEvent::DismissStatusBanner => {
                if !self.link_complete || self.status_banner_dismissed {
                    return Err(OnboardingError::NoStatusBanner);
                }
                self.status_banner_dismissed = true;
            }
            OnboardingEvent::Check(item) => {
                if !self.checklist.contains(&item) {
                    self.checklist.push(item);
                    self.checklist.sort();
                }
            }
            OnboardingEvent::Uncheck(item) => self.checklist.retain(|i| *i != item),
        }
        Ok(())
    }

    fn first_unfinished_before(&self, step: Step) -> Step {
        prerequisites(step).find(|s| !self.is_done(*s)).unwrap_or(Step::Identifiers)
    }

    pub fn view(&self) -> DashboardView {
        let steps: Vec<StepView> = Step::ALL
            .iter()
            .map(|&step| StepView {
                step,
                number: step.index() as u32 + 1,
                title: step.title().to_string(),
                status: if self.is_done(step)
                    || (step == Step::WaitingForApproval && self.link_complete && self.status_banner_dismissed)
                {
                    StepStatus::Done
                } else if step == self.current_step {
                    StepStatus::Current
                } else if self.is_reachable(step) {
                    StepStatus::Available
                } else {
                    StepStatus::Locked
                },
            })
            .collect();
        DashboardView {
            show_popup: !self.popup_dismissed && !self.link_complete,
            show_connect_banner: !self.link_complete,
            show_status_banner: self.link_complete && !self.status_banner_dismissed,
            current_step: self.current_step,
            completed_count: steps.iter().filter(|s| s.status == StepStatus::Done).count() as u32,
            total_steps: steps.len() as u32,
            steps,
            checklist: self.checklist.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OnboardingEvent::*;

    /// Every step before the identifiers.
    const UP_TO_THE_LINK: [Step; 5] = [
        Step::BeforeYouStart,
        Step::StampsAccount,
        Step::UspsBusinessAccount,
        Step::PaymentAccount,
        Step::LinkBusinessAccount,
    ];

    fn through(steps: &[Step]) -> Progress {
        let mut p = Progress::default();
        for s in steps {
            p.apply(Complete(*s)).unwrap();
        }
        p
    }

    #[test]
    fn first_launch_shows_popup_and_connect_banner() {
        let v = Progress::default().view();
        assert!(v.show_popup && v.show_connect_banner && !v.show_status_banner);
        assert_eq!(v.current_step, Step::BeforeYouStart);
        assert_eq!(v.steps[0].status, StepStatus::Current);
        assert_eq!(v.steps[1].status, StepStatus::Locked);
        assert_eq!((v.completed_count, v.total_steps), (0, 7));
    }

    #[test]
    fn see_instructions_closes_popup_but_banner_stays() {
        let mut p = Progress::default();
        p.apply(OpenGuidelines).unwrap();
        let v = p.view();
        assert!(!v.show_popup);
        assert!(v.show_connect_banner, "the connect banner cannot be dismissed while not linked");
        let mut q = Progress::default();
        q.apply(DismissPopup).unwrap();
        assert!(!q.view().show_popup);
    }

    #[test]
    fn cannot_jump_ahead_and_failure_changes_nothing() {
        let mut p = Progress::default();
        let before = p.clone();
        assert_eq!(p.apply(GoTo(Step::PaymentAccount)), Err(OnboardingError::StepLocked(Step::BeforeYouStart)));
        assert_eq!(
            p.apply(Complete(Step::LinkBusinessAccount)),
            Err(OnboardingError::StepLocked(Step::BeforeYouStart))
        );
        assert_eq!(p.apply(DismissStatusBanner), Err(OnboardingError::NoStatusBanner));
        assert_eq!(p, before);
    }

    #[test]
    fn completing_moves_forward_and_back_navigation_works() {
        let mut p = through(&[Step::BeforeYouStart, Step::StampsAccount]);
        assert_eq!(p.current_step, Step::UspsBusinessAccount);
        p.apply(GoTo(Step::BeforeYouStart)).unwrap();
        assert_eq!(p.view().steps[0].status, StepStatus::Done);
        p.apply(GoTo(Step::UspsBusinessAccount)).unwrap();
        assert_eq!(p.view().completed_count, 2);
    }

    #[test]
    fn skip_to_link_needs_before_you_start() {
        let mut p = Progress::default();
        assert_eq!(p.apply(SkipToLink), Err(OnboardingError::StepLocked(Step::BeforeYouStart)));
        p.apply(Complete(Step::BeforeYouStart)).unwrap();
        p.apply(SkipToLink).unwrap();
        assert_eq!(p.current_step, Step::LinkBusinessAccount);
        assert!(p.is_reachable(Step::LinkBusinessAccount));
        assert!(p.skipped_to_link);
    }

    #[test]
    fn usps_steps_do_not_wait_for_stamps_but_identifiers_do() {
        let mut p = through(&[Step::BeforeYouStart]);
        assert_eq!(p.view().steps[2].status, StepStatus::Available);
        for s in [Step::UspsBusinessAccount, Step::PaymentAccount, Step::LinkBusinessAccount] {
            p.apply(Complete(s)).unwrap();
        }
        assert_eq!(p.current_step, Step::LinkBusinessAccount, "stays where the next step is locked");
        assert_eq!(p.apply(GoTo(Step::Identifiers)), Err(OnboardingError::StepLocked(Step::StampsAccount)));
        assert_eq!(p.apply(LinkCompleted), Err(OnboardingError::StepLocked(Step::StampsAccount)));
        p.apply(Complete(Step::StampsAccount)).unwrap();
        p.apply(GoTo(Step::Identifiers)).unwrap();
    }

    #[test]
    fn identifiers_finish_only_through_a_verified_link() {
        let mut p = through(&UP_TO_THE_LINK);
        assert_eq!(p.apply(Complete(Step::Identifiers)), Err(OnboardingError::NotLinked));
        assert_eq!(p.apply(GoTo(Step::WaitingForApproval)), Err(OnboardingError::StepLocked(Step::Identifiers)));
        p.apply(LinkCompleted).unwrap();
        let v = p.view();
        assert!(!v.show_popup && !v.show_connect_banner && v.show_status_banner);
        assert_eq!(v.current_step, Step::WaitingForApproval);
    }

    #[test]
    fn status_banner_dismissal_is_permanent_across_a_restart() {
        let mut p = Progress { link_complete: true, ..Progress::default() };
        p.apply(DismissStatusBanner).unwrap();
        let stored = serde_json::to_string(&p).unwrap();
        let restored: Progress = serde_json::from_str(&stored).unwrap();
        assert!(!restored.view().show_status_banner);
        assert!(!restored.view().show_connect_banner);
        let mut again = restored.clone();
        assert_eq!(again.apply(DismissStatusBanner), Err(OnboardingError::NoStatusBanner));
    }

    #[test]
    fn events_deserialize_from_the_ui_shape() {
        let e: OnboardingEvent = serde_json::from_str(r#"{"type":"go_to","step":"payment_account"}"#).unwrap();
        assert_eq!(e, GoTo(Step::PaymentAccount));
        let e: OnboardingEvent = serde_json::from_str(r#"{"type":"dismiss_popup"}"#).unwrap();
        assert_eq!(e, DismissPopup);
    }

    #[test]
    fn skip_to_link_then_link_completes_without_the_business_account_steps() {
        let mut p = through(&[Step::BeforeYouStart, Step::StampsAccount]);
        p.apply(SkipToLink).unwrap();
        assert_eq!(p.view().steps[Step::UspsBusinessAccount.index()].status, StepStatus::Done);
        assert_eq!(p.view().steps[Step::PaymentAccount.index()].status, StepStatus::Done);
        p.apply(Complete(Step::LinkBusinessAccount)).unwrap();
        assert_eq!(p.current_step, Step::Identifiers);
        p.apply(LinkCompleted).unwrap();
        assert!(p.link_complete && p.view().show_status_banner);
        assert_eq!(p.view().completed_count, 6, "every step but the waiting one");
    }

    #[test]
    fn back_from_identifiers_and_resume_there_after_a_restart() {
        let mut p = through(&UP_TO_THE_LINK);
        assert_eq!(p.current_step, Step::Identifiers);
        p.apply(GoTo(Step::PaymentAccount)).unwrap();
        p.apply(GoTo(Step::Identifiers)).unwrap();
        let restored: Progress = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(restored, p);
        assert_eq!(restored.view().current_step, Step::Identifiers);
        assert_eq!(restored.view().steps[Step::Identifiers.index()].status, StepStatus::Current);
        // A store written before a field existed still loads (serde default).
        let old: Progress =
            serde_json::from_str(r#"{"current_step":"identifiers","completed":["before_you_start"]}"#).unwrap();
        assert_eq!((old.current_step, old.checklist.len()), (Step::Identifiers, 0));
    }

    #[test]
    fn after_the_link_the_connect_prompts_never_return_and_the_banner_goes_only_once() {
        let mut p = through(&UP_TO_THE_LINK);
        p.apply(LinkCompleted).unwrap();
        // Going back through the steps brings back neither the pop-up nor the connect banner.
        p.apply(GoTo(Step::BeforeYouStart)).unwrap();
        let v = p.view();
        assert!(!v.show_popup && !v.show_connect_banner && v.show_status_banner);
        p.apply(DismissStatusBanner).unwrap();
        p.apply(LinkCompleted).unwrap();
        assert!(!p.view().show_status_banner, "verifying again does not bring the dismissed banner back");
        assert_eq!(p.view().steps[Step::WaitingForApproval.index()].status, StepStatus::Done);
    }

    #[test]
    fn the_ui_cannot_claim_what_only_an_api_confirms() {
        assert!(!LinkCompleted.is_user_event());
        assert!(!Complete(Step::LinkBusinessAccount).is_user_event());
        assert!(!Complete(Step::StampsAccount).is_user_event());
        assert!(Complete(Step::PaymentAccount).is_user_event());
        assert!(
            GoTo(Step::Identifiers).is_user_event()
                && DismissStatusBanner.is_user_event()
                && Check(ChecklistItem::Mid).is_user_event()
        );
    }

    #[test]
    fn checklist_ticks_are_kept_in_order_without_duplicates() {
        let mut p = Progress::default();
        for e in [Check(ChecklistItem::Eps), Check(ChecklistItem::Crid), Check(ChecklistItem::Eps)] {
            p.apply(e).unwrap();
        }
        assert_eq!(p.checklist, [ChecklistItem::Crid, ChecklistItem::Eps]);
        p.apply(Uncheck(ChecklistItem::Crid)).unwrap();
        assert_eq!(p.checklist, [ChecklistItem::Eps]);
        let e: OnboardingEvent = serde_json::from_str(r#"{"type":"check","step":"mid"}"#).unwrap();
        assert_eq!(e, Check(ChecklistItem::Mid));
    }
}
