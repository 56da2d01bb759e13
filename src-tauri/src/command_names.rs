// The app's IPC commands, in one list: build.rs turns it into ACL permissions (`allow-<name>`),
// and the bindings test checks that the generated TypeScript covers exactly these.
pub const COMMANDS: &[&str] = &[
    "get_snapshot",
    "onboarding_event",
    "save_preferences",
    "vault_status",
    "store_secret",
    "forget_secret",
    "secret_presence",
    "recent_deep_links",
    "app_ready",
    "start_usps_link",
    "cancel_usps_link",
    "refresh_usps_link",
    "disconnect_usps",
    "open_usps_signup",
];
