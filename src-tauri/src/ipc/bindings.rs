//! TypeScript bindings for the IPC surface, generated from the Rust types (ts-rs), never written by
//! hand. `cargo test -p uspslink bindings` fails when `ui/src/lib/bindings.ts` is out of date;
//! `UPDATE_BINDINGS=1 cargo test -p uspslink bindings` rewrites it.

use std::any::TypeId;
use std::collections::HashSet;

use ts_rs::{Config, TypeVisitor, TS};
use uspslink_core::error::{ErrorKind, FieldProblem, IpcError};

// The types a command's signature names: `for_each_command!` hands them over by their names in
// scope here (the table is shared with build.rs, so it carries no paths).
use crate::about::About;
use crate::flows::identifiers::IdentifiersUpdate;
use crate::flows::link::LinkUpdate;
use crate::flows::savings::SavingsUpdate;
use crate::flows::stamps::StampsUpdate;
use crate::ipc::commands::{OpenAtLogin, SecretPresence};
use crate::state::{AppSnapshot, DeepLinkNotice};
use uspslink_core::approval::ApprovalView;
use uspslink_core::business::BusinessId;
use uspslink_core::onboarding::{DashboardView, OnboardingEvent};
use uspslink_core::payments::{IdentifiersForm, IdentifiersView};
use uspslink_core::settings::Preferences;
use uspslink_core::shipengine::{RegistrationForm, StampsDraft};
use uspslink_core::vault::{SecretSlot, VaultStatus};

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

        /// Every type a command takes or returns.
        fn visit_command_types(v: &mut impl TypeVisitor) {
            $($(v.visit::<$ty>();)* v.visit::<$ret>();)*
        }
    };
}
for_each_command!(signatures);

/// One event of the table: its wire name and its payload's TypeScript name.
macro_rules! event_signatures {
    ($($(#[$doc:meta])* $name:ident = $wire:literal : $payload:ty,)*) => {
        fn events(cfg: &Config) -> Vec<(&'static str, String)> {
            vec![$(($wire, <$payload as TS>::name(cfg))),*]
        }

        /// Every event's payload type.
        fn visit_event_types(v: &mut impl TypeVisitor) {
            $(v.visit::<$payload>();)*
        }
    };
}
crate::ipc::events::for_each_event!(event_signatures);

/// `deep-link` -> `EVENT_DEEP_LINK`, and the map from each event's name to its payload.
fn events_typescript(cfg: &Config) -> String {
    let mut out = String::new();
    for (wire, _) in events(cfg) {
        out.push_str(&format!("export const EVENT_{} = {wire:?};\n", wire.to_uppercase().replace('-', "_")));
    }
    out.push_str("\n/** Every event the window listens to: its name and the one payload it carries. */\nexport type Events = {\n");
    for (wire, payload) in events(cfg) {
        out.push_str(&format!("  {wire:?}: {payload};\n"));
    }
    out.push_str("};\n");
    out
}

/// Every type the IPC surface reaches, declared once each, by name: from the commands' arguments
/// and results, the events' payloads and the error every command may reject with, walking their
/// fields (ts-rs's dependency visitor). No list of types is kept by hand. Sorted, because the order
/// ts-rs visits fields in may change from one build to the next.
struct Declarations<'a> {
    cfg: &'a Config,
    seen: HashSet<TypeId>,
    decls: Vec<(String, String)>,
}

impl TypeVisitor for Declarations<'_> {
    fn visit<T: TS + 'static + ?Sized>(&mut self) {
        if !self.seen.insert(TypeId::of::<T>()) {
            return;
        }
        // `Vec<T>`, `Option<T>`: the types inside; a declared type: what its fields name.
        T::visit_generics(self);
        T::visit_dependencies(self);
        // Only types of our own have a declaration; `String`, `u32`, `Vec<_>` are TypeScript's.
        if T::output_path().is_some() {
            self.decls.push((T::ident(self.cfg), T::decl(self.cfg)));
        }
    }
}

fn declarations(cfg: &Config) -> Vec<(String, String)> {
    let mut d = Declarations { cfg, seen: HashSet::new(), decls: Vec::new() };
    d.visit::<IpcError>();
    visit_command_types(&mut d);
    visit_event_types(&mut d);
    d.decls.sort();
    d.decls
}

/// The whole generated file.
pub fn typescript() -> String {
    let cfg = Config::new();
    let decls = declarations(&cfg);
    let mut out = String::from(
        "// Generated from the Rust types by src-tauri/src/bindings.rs. Do not edit by hand:\n\
         // run `UPDATE_BINDINGS=1 cargo test -p uspslink bindings` after changing them.\n\n",
    );
    for (_, d) in decls {
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
    out.push_str(&events_typescript(&cfg));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reached_type_is_declared_once_under_its_own_name() {
        let cfg = Config::new();
        let names: Vec<String> = declarations(&cfg).into_iter().map(|(name, _)| name).collect();
        let unique: HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "two Rust types share a TypeScript name: {names:?}");
        for reached in ["IpcError", "ErrorKind", "AppSnapshot", "StorageHealth", "RegistrationForm", "Route"] {
            assert!(names.iter().any(|n| n == reached), "{reached} is reached: {names:?}");
        }
    }

    #[test]
    fn bindings_cover_exactly_the_declared_events() {
        let cfg = Config::new();
        let names: Vec<&str> = events(&cfg).iter().map(|(wire, _)| *wire).collect();
        // The names the UI listens to (ipc.ts); renaming one on the Rust side must be seen here.
        let ui = ["deep-link", "usps-link", "retry-wait", "approval", "savings", "storage", "businesses", "open-route"];
        assert_eq!(names, ui);
        let ts = events_typescript(&cfg);
        assert!(ts.contains("export const EVENT_STORAGE = \"storage\";"), "{ts}");
        assert!(ts.contains("  \"storage\": StorageHealth;"), "{ts}");
    }

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
