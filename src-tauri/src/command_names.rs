// The app's IPC commands, declared once: name, arguments (as the window sends them) and what each
// resolves to. Everything else is derived from this table: the ACL permissions (`allow-<name>`,
// build.rs), the handler list (lib.rs), the TypeScript signatures (ipc/bindings.rs), the
// #[tauri::command] functions (ipc/commands.rs, which call a body of the same name with these
// arguments: a body that drifts from its row does not compile); a test checks
// the window's capability file against it. The bodies are in ipc/commands.rs, of the same names.
//
// Included by build.rs too, so it is plain `macro_rules!` with no crate paths in it: the table
// hands itself to the macro it is given.
macro_rules! for_each_command {
    ($then:ident) => {
        $then! {
            get_snapshot() -> AppSnapshot,
            onboarding_event(event: OnboardingEvent) -> DashboardView,
            save_preferences(preferences: Preferences) -> AppSnapshot,
            dismiss_storage_notice() -> (),
            start_over_in_this_version() -> Option<String>,
            about() -> About,
            vault_status() -> VaultStatus,
            store_secret(slot: SecretSlot, value: String) -> SecretPresence,
            forget_secret(slot: SecretSlot) -> SecretPresence,
            secret_presence() -> SecretPresence,
            recent_deep_links() -> Vec<DeepLinkNotice>,
            app_ready() -> u32,
            start_usps_link() -> LinkUpdate,
            cancel_usps_link() -> LinkUpdate,
            refresh_usps_link() -> LinkUpdate,
            disconnect_usps() -> LinkUpdate,
            open_usps_signup() -> (),
            open_carrier_terms() -> (),
            save_shipengine_key(key: String) -> StampsUpdate,
            use_existing_stamps(carrier_id: String) -> StampsUpdate,
            register_stamps(form: RegistrationForm) -> StampsUpdate,
            send_sms_code(phone: String) -> StampsUpdate,
            verify_sms_code(code: String) -> StampsUpdate,
            check_registration(form: RegistrationForm) -> Vec<FieldProblem>,
            check_identifiers(form: IdentifiersForm) -> Vec<FieldProblem>,
            save_identifiers_draft(form: IdentifiersForm) -> IdentifiersView,
            verify_identifiers(form: IdentifiersForm) -> IdentifiersUpdate,
            email_link_summary() -> (),
            save_stamps_draft(draft: StampsDraft) -> (),
            check_approval_now() -> ApprovalView,
            check_savings() -> SavingsUpdate,
            open_at_login() -> OpenAtLogin,
            set_open_at_login(enabled: bool) -> OpenAtLogin,
            dismiss_open_at_login_offer() -> (),
            add_business(name: String) -> AppSnapshot,
            rename_business(business: BusinessId, name: String) -> AppSnapshot,
            switch_business(business: BusinessId) -> AppSnapshot,
            remove_business(business: BusinessId) -> AppSnapshot,
            close_window() -> (),
            quit_app() -> (),
        }
    };
}

macro_rules! command_names {
    ($($name:ident ($($arg:ident : $ty:ty),*) -> $ret:ty,)*) => {
        /// Every command's name, in the table's order.
        pub const COMMANDS: &[&str] = &[$(stringify!($name)),*];
    };
}

for_each_command!(command_names);
