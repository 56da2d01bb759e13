//! TypeScript bindings for the IPC surface, generated from the Rust types (ts-rs), never written by
//! hand. `cargo test -p uspslink bindings` fails when `ui/src/lib/bindings.ts` is out of date;
//! `UPDATE_BINDINGS=1 cargo test -p uspslink bindings` rewrites it.

use ts_rs::{Config, TS};
use uspslink_core::approval::{ApprovalState, ApprovalView};
use uspslink_core::callback::CallbackSummary;
use uspslink_core::error::{ErrorKind, FieldProblem, IpcError};
use uspslink_core::shipengine::{AddressForm, CardForm, Carrier, RegistrationForm, StampsDraft, StampsRecord};
use uspslink_core::onboarding::{ChecklistItem, DashboardView, OnboardingEvent, Step, StepStatus, StepView};
use uspslink_core::payments::{AccountType, IdentifiersForm, IdentifiersView, LinkSummary, PaymentAccount};
use uspslink_core::settings::{Endpoints, Environment, Preferences};
use uspslink_core::vault::{SecretSlot, VaultStatus};

use uspslink_core::usps::{AccountHints, LinkRecord, LinkStatus};

use crate::commands::SecretPresence;
use crate::identifiers::IdentifiersUpdate;
use crate::link::LinkUpdate;
use crate::stamps::StampsUpdate;
use crate::state::{AppSnapshot, DeepLinkNotice, StorageNotice, StorageNoticeKind};
use uspslink_core::http::RetryWait;

/// Path of the generated file, relative to the app crate.
pub const BINDINGS_PATH: &str = "../ui/src/lib/bindings.ts";

/// One IPC command: its name, its argument object and what it resolves to (TypeScript).
struct CommandSig {
    name: &'static str,
    args: Vec<(&'static str, String)>,
    returns: String,
}

fn commands(cfg: &Config) -> Vec<CommandSig> {
    let n = |s: String| s;
    vec![
        CommandSig { name: "get_snapshot", args: vec![], returns: AppSnapshot::name(cfg) },
        CommandSig { name: "onboarding_event", args: vec![("event", OnboardingEvent::name(cfg))], returns: DashboardView::name(cfg) },
        CommandSig { name: "save_preferences", args: vec![("preferences", Preferences::name(cfg))], returns: AppSnapshot::name(cfg) },
        CommandSig { name: "dismiss_storage_notice", args: vec![], returns: "null".into() },
        CommandSig { name: "about", args: vec![], returns: crate::about::About::name(cfg) },
        CommandSig { name: "vault_status", args: vec![], returns: VaultStatus::name(cfg) },
        CommandSig { name: "store_secret", args: vec![("slot", SecretSlot::name(cfg)), ("value", n("string".into()))], returns: SecretPresence::name(cfg) },
        CommandSig { name: "forget_secret", args: vec![("slot", SecretSlot::name(cfg))], returns: SecretPresence::name(cfg) },
        CommandSig { name: "secret_presence", args: vec![], returns: SecretPresence::name(cfg) },
        CommandSig { name: "recent_deep_links", args: vec![], returns: format!("Array<{}>", DeepLinkNotice::name(cfg)) },
        CommandSig { name: "app_ready", args: vec![], returns: "number".into() },
        CommandSig { name: "start_usps_link", args: vec![], returns: LinkUpdate::name(cfg) },
        CommandSig { name: "cancel_usps_link", args: vec![], returns: LinkUpdate::name(cfg) },
        CommandSig { name: "refresh_usps_link", args: vec![], returns: LinkUpdate::name(cfg) },
        CommandSig { name: "disconnect_usps", args: vec![], returns: LinkUpdate::name(cfg) },
        CommandSig { name: "open_usps_signup", args: vec![], returns: "null".into() },
        CommandSig { name: "save_shipengine_key", args: vec![("key", n("string".into()))], returns: StampsUpdate::name(cfg) },
        CommandSig { name: "use_existing_stamps", args: vec![("carrierId", n("string".into()))], returns: StampsUpdate::name(cfg) },
        CommandSig { name: "register_stamps", args: vec![("form", RegistrationForm::name(cfg))], returns: StampsUpdate::name(cfg) },
        CommandSig { name: "send_sms_code", args: vec![("phone", n("string".into()))], returns: StampsUpdate::name(cfg) },
        CommandSig { name: "verify_sms_code", args: vec![("code", n("string".into()))], returns: StampsUpdate::name(cfg) },
        CommandSig { name: "check_registration", args: vec![("form", RegistrationForm::name(cfg))], returns: format!("Array<{}>", FieldProblem::name(cfg)) },
        CommandSig { name: "check_identifiers", args: vec![("form", IdentifiersForm::name(cfg))], returns: format!("Array<{}>", FieldProblem::name(cfg)) },
        CommandSig { name: "save_identifiers_draft", args: vec![("form", IdentifiersForm::name(cfg))], returns: IdentifiersView::name(cfg) },
        CommandSig { name: "verify_identifiers", args: vec![("form", IdentifiersForm::name(cfg))], returns: IdentifiersUpdate::name(cfg) },
        CommandSig { name: "email_link_summary", args: vec![], returns: "null".into() },
        CommandSig { name: "save_stamps_draft", args: vec![("draft", StampsDraft::name(cfg))], returns: "null".into() },
        CommandSig { name: "check_approval_now", args: vec![], returns: ApprovalView::name(cfg) },
    ]
}

/// The whole generated file.
pub fn typescript() -> String {
    let cfg = Config::new();
    let decls = [
        ErrorKind::decl(&cfg),
        FieldProblem::decl(&cfg),
        IpcError::decl(&cfg),
        Step::decl(&cfg),
        StepStatus::decl(&cfg),
        StepView::decl(&cfg),
        DashboardView::decl(&cfg),
        OnboardingEvent::decl(&cfg),
        Environment::decl(&cfg),
        Endpoints::decl(&cfg),
        Preferences::decl(&cfg),
        SecretSlot::decl(&cfg),
        VaultStatus::decl(&cfg),
        SecretPresence::decl(&cfg),
        CallbackSummary::decl(&cfg),
        DeepLinkNotice::decl(&cfg),
        AccountHints::decl(&cfg),
        LinkRecord::decl(&cfg),
        LinkStatus::decl(&cfg),
        LinkUpdate::decl(&cfg),
        Carrier::decl(&cfg),
        AddressForm::decl(&cfg),
        CardForm::decl(&cfg),
        RegistrationForm::decl(&cfg),
        StampsDraft::decl(&cfg),
        StampsRecord::decl(&cfg),
        StampsUpdate::decl(&cfg),
        ChecklistItem::decl(&cfg),
        AccountType::decl(&cfg),
        IdentifiersForm::decl(&cfg),
        PaymentAccount::decl(&cfg),
        LinkSummary::decl(&cfg),
        IdentifiersView::decl(&cfg),
        IdentifiersUpdate::decl(&cfg),
        StorageNoticeKind::decl(&cfg),
        StorageNotice::decl(&cfg),
        RetryWait::decl(&cfg),
        ApprovalState::decl(&cfg),
        ApprovalView::decl(&cfg),
        crate::about::About::decl(&cfg),
        AppSnapshot::decl(&cfg),
    ];
    let mut out = String::from(
        "// Generated from the Rust types by src-tauri/src/bindings.rs. Do not edit by hand:\n\
         // run `UPDATE_BINDINGS=1 cargo test -p uspslink bindings` after changing them.\n\n",
    );
    for d in decls {
        out.push_str("export ");
        out.push_str(&d);
        out.push_str("\n\n");
    }
    out.push_str("/** Every IPC command: its arguments and what it resolves to. */\nexport type Commands = {\n");
    for c in commands(&cfg) {
        let args: Vec<String> = c.args.iter().map(|(k, t)| format!("{k}: {t}")).collect();
        out.push_str(&format!("  {}: {{ args: {{ {} }}; returns: {} }};\n", c.name, args.join("; "), c.returns));
    }
    out.push_str("};\n\n");
    out.push_str(&format!("export const EVENT_DEEP_LINK = {:?};\n", crate::EVENT_DEEP_LINK));
    out.push_str(&format!("export const EVENT_USPS_LINK = {:?};\n", crate::link::EVENT_USPS_LINK));
    out.push_str(&format!("export const EVENT_RETRY_WAIT = {:?};\n", crate::EVENT_RETRY_WAIT));
    out.push_str(&format!("export const EVENT_APPROVAL = {:?};\n", crate::watch::EVENT_APPROVAL));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_cover_exactly_the_registered_commands() {
        let cfg = Config::new();
        let names: Vec<&str> = commands(&cfg).iter().map(|c| c.name).collect();
        assert_eq!(names, crate::COMMANDS);
    }

    #[test]
    fn bindings_are_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(BINDINGS_PATH);
        let generated = typescript();
        if std::env::var("UPDATE_BINDINGS").as_deref() == Ok("1") {
            std::fs::write(&path, &generated).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == generated,
            "{} is out of date with the Rust types; run UPDATE_BINDINGS=1 cargo test -p uspslink bindings",
            path.display()
        );
    }
}
