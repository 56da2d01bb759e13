//! TypeScript bindings for the IPC surface, generated from the Rust types (ts-rs), never written by
//! hand. `cargo test -p uspslink bindings` fails when `ui/src/lib/bindings.ts` is out of date;
//! `UPDATE_BINDINGS=1 cargo test -p uspslink bindings` rewrites it.

use ts_rs::{Config, TS};
use uspslink_core::approval::{ApprovalState, ApprovalView};
use uspslink_core::callback::CallbackSummary;
use uspslink_core::error::{ErrorKind, FieldProblem, IpcError};
use uspslink_core::onboarding::{ChecklistItem, DashboardView, OnboardingEvent, Step, StepStatus, StepView};
use uspslink_core::payments::{AccountType, IdentifiersForm, IdentifiersView, LinkSummary, PaymentAccount};
use uspslink_core::savings::{ParcelView, PlatformQuote, PlatformState, SavingsState, SavingsView, UspsPrice};
use uspslink_core::settings::{Endpoints, Environment, Preferences, SignInMethod};
use uspslink_core::shipengine::{AddressForm, CardForm, Carrier, RegistrationForm, StampsDraft, StampsRecord};
use uspslink_core::vault::{SecretSlot, VaultStatus};

use uspslink_core::usps::{AccountHints, LinkRecord, LinkStatus};

use crate::about::About;
use crate::flows::background::Route;
use crate::flows::identifiers::IdentifiersUpdate;
use crate::flows::link::LinkUpdate;
use crate::flows::savings::SavingsUpdate;
use crate::flows::stamps::StampsUpdate;
use crate::ipc::commands::{OpenAtLogin, SecretPresence};
use crate::state::{AppSnapshot, DeepLinkNotice, StorageHealth, StorageNotice, StorageNoticeKind};
use uspslink_core::http::RetryWait;

/// Path of the generated file, relative to the app crate.
pub const BINDINGS_PATH: &str = "../ui/src/lib/bindings.ts";

/// One IPC command: its name, its argument object and what it resolves to (TypeScript).
struct CommandSig {
    name: &'static str,
    args: Vec<(String, String)>,
    returns: String,
}

/// `carrier_id` -> `carrierId`: Tauri takes a command's arguments in camelCase.
fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

macro_rules! signatures {
    ($($name:ident ($($arg:ident : $ty:ty),*) -> $ret:ty,)*) => {
        fn commands(cfg: &Config) -> Vec<CommandSig> {
            vec![$(CommandSig {
                name: stringify!($name),
                args: vec![$((camel(stringify!($arg)), <$ty as TS>::name(cfg))),*],
                returns: <$ret as TS>::name(cfg),
            }),*]
        }
    };
}
for_each_command!(signatures);

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
        SignInMethod::decl(&cfg),
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
        StorageHealth::decl(&cfg),
        RetryWait::decl(&cfg),
        ApprovalState::decl(&cfg),
        ApprovalView::decl(&cfg),
        UspsPrice::decl(&cfg),
        PlatformQuote::decl(&cfg),
        ParcelView::decl(&cfg),
        PlatformState::decl(&cfg),
        SavingsState::decl(&cfg),
        SavingsView::decl(&cfg),
        SavingsUpdate::decl(&cfg),
        About::decl(&cfg),
        Route::decl(&cfg),
        OpenAtLogin::decl(&cfg),
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
    let kinds: Vec<String> =
        ErrorKind::ALL.iter().map(|k| serde_json::to_string(k).expect("a kind serializes")).collect();
    out.push_str(&format!(
        "/** Every error kind, from the Rust enum: the UI trusts no other. */\nexport const ERROR_KINDS: readonly ErrorKind[] = [{}];\n\n",
        kinds.join(", ")
    ));
    let states: Vec<String> = uspslink_core::validate::US_STATE_NAMES
        .iter()
        .map(|(code, name)| format!("{{ code: {code:?}, name: {name:?} }}"))
        .collect();
    out.push_str(&format!(
        "/** The states, DC, territories and APO/FPO \"states\" the address validator takes, with their names. */\nexport const US_STATES: readonly {{ code: string; name: string }}[] = [{}];\n\n",
        states.join(", ")
    ));
    out.push_str(&format!("export const EVENT_DEEP_LINK = {:?};\n", crate::ipc::events::EVENT_DEEP_LINK));
    out.push_str(&format!("export const EVENT_USPS_LINK = {:?};\n", crate::ipc::events::EVENT_USPS_LINK));
    out.push_str(&format!("export const EVENT_RETRY_WAIT = {:?};\n", crate::ipc::events::EVENT_RETRY_WAIT));
    out.push_str(&format!("export const EVENT_APPROVAL = {:?};\n", crate::ipc::events::EVENT_APPROVAL));
    out.push_str(&format!("export const EVENT_SAVINGS = {:?};\n", crate::ipc::events::EVENT_SAVINGS));
    out.push_str(&format!("export const EVENT_STORAGE = {:?};\n", crate::ipc::events::EVENT_STORAGE));
    out.push_str(&format!("export const EVENT_OPEN_ROUTE = {:?};\n", crate::ipc::events::EVENT_OPEN_ROUTE));
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
    fn the_window_may_call_exactly_the_declared_commands() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("capabilities/main-window.json");
        let cap: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let allowed: Vec<String> = cap["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p.as_str()?.strip_prefix("allow-").map(|n| n.replace('-', "_")))
            .collect();
        let declared: Vec<String> = crate::COMMANDS.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            allowed, declared,
            "capabilities/main-window.json must allow each command of command_names.rs, in its order"
        );
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
