// Generated from the Rust types by src-tauri/src/bindings.rs. Do not edit by hand:
// run `UPDATE_BINDINGS=1 cargo test -p uspslink bindings` after changing them.

export type About = { version: string, environment: string, data_folder: string, log_file: string, 
/**
 * Everything above and more, as one text to paste into a support request.
 */
diagnostics: string, };

export type AccountHints = { crids: Array<string>, mids: Array<string>, eps_accounts: Array<string>, };

export type AccountType = "EPS" | "PERMIT";

export type AddressForm = { name: string, phone: string, company_name: string, address_line1: string, address_line2: string, city_locality: string, state_province: string, postal_code: string, country_code: string, 
/**
 * "yes" or "no".
 */
address_residential_indicator: string, };

export type AppSnapshot = { view: DashboardView, preferences: Preferences, 
/**
 * The environment in force (a test run may override the stored preference).
 */
environment: Environment, environment_label: string, 
/**
 * None while the sandbox is still starting.
 */
endpoints: Endpoints | null, recent_deep_links: Array<DeepLinkNotice>, usps_link: LinkStatus, stamps: StampsRecord, identifiers: IdentifiersView, 
/**
 * Whether USPS approved the NSA rates yet, as the watch last found.
 */
approval: ApprovalView, 
/**
 * What the NSA rates save, and whether Stamps.com quotes them.
 */
savings: SavingsView, 
/**
 * Said once: what was found wrong with the progress file at start.
 */
storage_notice: StorageNotice | null, 
/**
 * The sign-in service this environment's link came through, when Settings now name another
 * way: the link's tokens still go only there; the UI asks the owner to reconnect.
 */
sign_in_moved_from: string | null, 
/**
 * The screen to open on (a notification was clicked while the window was closed); once.
 */
open_on: Route | null, 
/**
 * Whether to offer opening uspslink at login (once, at the waiting-for-approval step).
 */
offer_open_at_login: boolean, 
/**
 * The business shown (everything above is its).
 */
business: BusinessId, 
/**
 * Every business, in the order they were added.
 */
businesses: Array<BusinessOverview>, };

export type ApprovalView = { 
/**
 * Unix seconds.
 */
last_checked: number | null, 
/**
 * Unix seconds; None once approved (the watch stops) or before the link is complete.
 */
next_check: number | null, 
/**
 * Whether *Check now* may go out now (the daily ceiling).
 */
check_now_allowed: boolean, } & ({ "state": "not_started" } | { "state": "unchecked" } | { "state": "waiting" } | { "state": "could_not_check", reason: string, } | { "state": "approved", approved_on: string, });

export type BusinessId = number;

export type BusinessOverview = { id: BusinessId, name: string, 
/**
 * The step to do next (the last one, waiting for approval, once every other is done).
 */
current_step: Step, current_step_title: string, current_step_number: number, 
/**
 * The identifiers were accepted by USPS: the link is done.
 */
link_complete: boolean, completed_count: number, total_steps: number, approval: ApprovalView, };

export type CallbackSummary = { 
/**
 * [`state_fingerprint`] of the state, never the state.
 */
state_hash: string, has_code: boolean, code_length: number, error: string | null, error_description: string | null, };

export type CardForm = { name: string, number: string, expiration_month: string, expiration_year: string, };

export type Carrier = { carrier_id: string, carrier_code: string, nickname: string | null, friendly_name: string | null, };

export type ChecklistItem = "crid" | "mid" | "eps";

export type DashboardView = { show_popup: boolean, show_connect_banner: boolean, show_status_banner: boolean, current_step: Step, steps: Array<StepView>, completed_count: number, total_steps: number, 
/**
 * The "Before you start" boxes the user ticked.
 */
checklist: Array<ChecklistItem>, };

export type DeepLinkNotice = { callback: CallbackSummary, 
/**
 * Milliseconds since the app started (for ordering and the latency benchmark).
 */
received_at_ms: number, };

export type Endpoints = { 
/**
 * USPS APIs (`/oauth2/v3/...`, `/payments/v3/...`).
 */
usps_api: string, 
/**
 * The USPS page that signs the user in and asks for consent (COP navigator).
 */
usps_authorize: string, 
/**
 * USPS sign-up / Business Portal, for "New to USPS?".
 */
usps_signup: string, 
/**
 * ShipEngine (`/v1/...`).
 */
shipengine_api: string, 
/**
 * The uspslink sign-in service (`/v1/usps/...`): the app's own in the Sandbox, the build's
 * for live environments; None when this build has none.
 */
sign_in_service: string | null, };

export type Environment = "sandbox" | "usps_test" | "production";

export type ErrorKind = "invalid_deep_link" | "keyring_unavailable" | "keyring_locked" | "keyring_failure" | "login_failed" | "needs_reconnecting" | "not_configured" | "invalid_input" | "invalid_api_key" | "rate_limited" | "busy" | "remote_error" | "network" | "malformed_response" | "storage" | "internal";

export type FieldProblem = { 
/**
 * The API's field path, e.g. `address.postal_code`.
 */
field: string, message: string, };

export type IdentifiersForm = { 
/**
 * Only for the summary sent to the sales representative.
 */
business_name: string, crid: string, mid: string, 
/**
 * Optional: the manifest (label) MID; the MID is used when it is empty.
 */
manifest_mid: string, 
/**
 * Optional.
 */
returns_mid: string, account_type: AccountType, eps_account: string, permit_number: string, permit_zip: string, };

export type IdentifiersUpdate = { identifiers: IdentifiersView, view: DashboardView, };

export type IdentifiersView = { 
/**
 * The draft, with empty fields filled from the USPS sign-in.
 */
form: IdentifiersForm, 
/**
 * Fields filled from the USPS sign-in, for the user to confirm.
 */
prefilled: Array<string>, summary: LinkSummary | null, 
/**
 * The summary as the e-mail body / clipboard text.
 */
summary_text: string | null, };

export type IpcError = { kind: ErrorKind, message: string, 
/**
 * Field-by-field problems (validation, or an API error naming a field); often empty.
 */
fields: Array<FieldProblem>, 
/**
 * The remote service's request id, for support (ShipEngine's `request_id`).
 */
request_id: string | null, };

export type LinkRecord = { linked: boolean, 
/**
 * A refresh failed as revoked/expired (a password reset does this).
 */
needs_reconnecting: boolean, 
/**
 * Unix seconds.
 */
linked_at: number, access_expires_at: number, refresh_expires_at: number | null, hints: AccountHints, 
/**
 * Who the tokens were issued through: a refresh or revoke must go the same way (the service's
 * USPS app and the business's own are different clients). None in records from before.
 */
issued_via: SignInMethod | null, 
/**
 * The sign-in service that issued the tokens (its address), when they came through one: their
 * refresh and revoke go there and nowhere else, whatever address Settings name later. None for
 * the business's own app, and in records from before.
 */
issued_by: string | null, };

export type LinkStatus = { "state": "not_linked" } | { "state": "waiting" } | { "state": "linked", record: LinkRecord, } | { "state": "failed", kind: ErrorKind, message: string, } | { "state": "needs_reconnecting", message: string, };

export type LinkSummary = { 
/**
 * `YYYY-MM-DD` (UTC) of the verification.
 */
linked_on: string, business_name: string | null, crid: string, mid: string, manifest_mid: string | null, returns_mid: string | null, account: PaymentAccount, };

export type LinkUpdate = { status: LinkStatus, view: DashboardView, 
/**
 * A new link brings new pre-fill values for the identifiers step.
 */
identifiers: IdentifiersView, };

export type OnboardingEvent = { "type": "dismiss_popup" } | { "type": "open_guidelines" } | { "type": "go_to", "step": Step } | { "type": "complete", "step": Step } | { "type": "skip_to_link" } | { "type": "link_completed" } | { "type": "dismiss_status_banner" } | { "type": "check", "step": ChecklistItem } | { "type": "uncheck", "step": ChecklistItem };

export type OpenAtLogin = { enabled: boolean, };

export type ParcelView = { description: string, 
/**
 * The headline: "Your NSA rates: $7.41 instead of $9.85 for a 1 lb Priority Mail parcel,
 * near zone (−25%)", or what USPS answered instead.
 */
sentence: string, 
/**
 * Whether USPS priced it at the contract's rates.
 */
applied: boolean, contract_cents: number | null, commercial_cents: number | null, retail_cents: number | null, 
/**
 * Saved per label against the commercial price (the published price a platform charges).
 */
saved_cents: number | null, saved_percent: number | null, platform_cents: number | null, };

export type PaymentAccount = { "type": "eps", account_number: string, } | { "type": "permit", permit_number: string, permit_zip: string, };

export type PlatformState = { "state": "unchecked" } | { "state": "not_asked", reason: string, } | { "state": "at_nsa_rates" } | { "state": "published", quoted_cents: number, contract_cents: number, description: string, } | { "state": "could_not_compare", reason: string, };

export type Preferences = { environment: Environment, 
/**
 * USPS developer app consumer key (public by nature: it appears in authorize URLs).
 */
usps_consumer_key: string, redirect_uri: string, 
/**
 * How to sign in; None in files from before the choice existed (see [`Preferences::sign_in_method`]).
 */
usps_sign_in: SignInMethod | null, 
/**
 * The sign-in service to use instead of the build's (empty: the build's).
 */
sign_in_service_url: string, };

export type RegistrationForm = { nickname: string, email: string, agree_to_carrier_terms: boolean, address: AddressForm, credit_card: CardForm, };

export type RetryWait = { 
/**
 * Which call, in words ("checking your ShipStation API key").
 */
operation: string, 
/**
 * 1 for the first retry.
 */
attempt: number, max_attempts: number, 
/**
 * Milliseconds until the call is sent again.
 */
wait_ms: number, 
/**
 * Why ("HTTP 503", "the connection dropped").
 */
reason: string, };

export type Route = "dashboard" | "reconnect";

export type SavingsUpdate = { savings: SavingsView, identifiers: IdentifiersView, };

export type SavingsView = { parcels: Array<ParcelView>, platform: PlatformState, priced_at: number | null, platform_checked_at: number | null, } & ({ "state": "not_approved" } | { "state": "unpriced" } | { "state": "applied" } | { "state": "not_applied" } | { "state": "could_not_price", reason: string, });

export type SecretPresence = { shipengine_api_key: boolean, usps_consumer_secret: boolean, usps_linked: boolean, };

export type SecretSlot = "shipengine_api_key" | "usps_consumer_secret" | "usps_access_token" | "usps_refresh_token";

export type SignInMethod = "service" | "own_app";

export type StampsDraft = { nickname: string, email: string, address: AddressForm, };

export type StampsRecord = { 
/**
 * The API key in the vault was checked with ShipEngine.
 */
key_checked: boolean, 
/**
 * Set as soon as registration succeeds (or an existing carrier is chosen), so a retry never
 * registers again.
 */
carrier_id: string | null, phone: string | null, verification_id: string | null, 
/**
 * Unix seconds of the last code sent, for the resend cool-down.
 */
code_sent_at: number | null, verified: boolean, 
/**
 * `YYYY-MM-DD` (UTC) of the SMS verification, for the dashboard.
 */
verified_on: string | null, 
/**
 * The registration form as typed so far (no card), until the account is registered.
 */
draft: StampsDraft | null, };

export type StampsUpdate = { record: StampsRecord, 
/**
 * A Stamps.com carrier already on the account, offered instead of registering again.
 */
existing_carrier: Carrier | null, view: DashboardView, };

export type Step = "before_you_start" | "stamps_account" | "usps_business_account" | "payment_account" | "link_business_account" | "identifiers" | "waiting_for_approval";

export type StepStatus = "done" | "current" | "available" | "locked";

export type StepView = { step: Step, number: number, title: string, status: StepStatus, };

export type StorageHealth = { problem: IpcError | null, };

export type StorageNotice = { kind: StorageNoticeKind, message: string, };

export type StorageNoticeKind = "restored" | "started_fresh" | "unreadable" | "set_aside" | "newer_file";

export type VaultStatus = { "state": "ready" } | { "state": "unavailable", guidance: string, } | { "state": "locked", guidance: string, } | { "state": "failure", message: string, };

/** Every IPC command: its arguments and what it resolves to. */
export type Commands = {
  get_snapshot: { args: {  }; returns: AppSnapshot };
  onboarding_event: { args: { event: OnboardingEvent }; returns: DashboardView };
  save_preferences: { args: { preferences: Preferences }; returns: AppSnapshot };
  dismiss_storage_notice: { args: {  }; returns: null };
  start_over_in_this_version: { args: {  }; returns: string | null };
  about: { args: {  }; returns: About };
  vault_status: { args: {  }; returns: VaultStatus };
  store_secret: { args: { slot: SecretSlot; value: string }; returns: SecretPresence };
  forget_secret: { args: { slot: SecretSlot }; returns: SecretPresence };
  secret_presence: { args: {  }; returns: SecretPresence };
  recent_deep_links: { args: {  }; returns: Array<DeepLinkNotice> };
  app_ready: { args: {  }; returns: number };
  start_usps_link: { args: {  }; returns: LinkUpdate };
  cancel_usps_link: { args: {  }; returns: LinkUpdate };
  refresh_usps_link: { args: {  }; returns: LinkUpdate };
  disconnect_usps: { args: {  }; returns: LinkUpdate };
  open_usps_signup: { args: {  }; returns: null };
  open_carrier_terms: { args: {  }; returns: null };
  save_shipengine_key: { args: { key: string }; returns: StampsUpdate };
  use_existing_stamps: { args: { carrierId: string }; returns: StampsUpdate };
  register_stamps: { args: { form: RegistrationForm }; returns: StampsUpdate };
  send_sms_code: { args: { phone: string }; returns: StampsUpdate };
  verify_sms_code: { args: { code: string }; returns: StampsUpdate };
  check_registration: { args: { form: RegistrationForm }; returns: Array<FieldProblem> };
  check_identifiers: { args: { form: IdentifiersForm }; returns: Array<FieldProblem> };
  save_identifiers_draft: { args: { form: IdentifiersForm }; returns: IdentifiersView };
  verify_identifiers: { args: { form: IdentifiersForm }; returns: IdentifiersUpdate };
  email_link_summary: { args: {  }; returns: null };
  save_stamps_draft: { args: { draft: StampsDraft }; returns: null };
  check_approval_now: { args: {  }; returns: ApprovalView };
  check_savings: { args: {  }; returns: SavingsUpdate };
  open_at_login: { args: {  }; returns: OpenAtLogin };
  set_open_at_login: { args: { enabled: boolean }; returns: OpenAtLogin };
  dismiss_open_at_login_offer: { args: {  }; returns: null };
  add_business: { args: { name: string }; returns: AppSnapshot };
  rename_business: { args: { business: BusinessId; name: string }; returns: AppSnapshot };
  switch_business: { args: { business: BusinessId }; returns: AppSnapshot };
  remove_business: { args: { business: BusinessId }; returns: AppSnapshot };
  close_window: { args: {  }; returns: null };
  quit_app: { args: {  }; returns: null };
};

/** Every error kind, from the Rust enum: the UI trusts no other. */
export const ERROR_KINDS: readonly ErrorKind[] = ["invalid_deep_link", "keyring_unavailable", "keyring_locked", "keyring_failure", "login_failed", "needs_reconnecting", "not_configured", "invalid_input", "invalid_api_key", "rate_limited", "busy", "remote_error", "network", "malformed_response", "storage", "internal"];

/** The states, DC, territories and APO/FPO "states" the address validator takes, with their names. */
export const US_STATES: readonly { code: string; name: string }[] = [{ code: "AL", name: "Alabama" }, { code: "AK", name: "Alaska" }, { code: "AZ", name: "Arizona" }, { code: "AR", name: "Arkansas" }, { code: "CA", name: "California" }, { code: "CO", name: "Colorado" }, { code: "CT", name: "Connecticut" }, { code: "DE", name: "Delaware" }, { code: "FL", name: "Florida" }, { code: "GA", name: "Georgia" }, { code: "HI", name: "Hawaii" }, { code: "ID", name: "Idaho" }, { code: "IL", name: "Illinois" }, { code: "IN", name: "Indiana" }, { code: "IA", name: "Iowa" }, { code: "KS", name: "Kansas" }, { code: "KY", name: "Kentucky" }, { code: "LA", name: "Louisiana" }, { code: "ME", name: "Maine" }, { code: "MD", name: "Maryland" }, { code: "MA", name: "Massachusetts" }, { code: "MI", name: "Michigan" }, { code: "MN", name: "Minnesota" }, { code: "MS", name: "Mississippi" }, { code: "MO", name: "Missouri" }, { code: "MT", name: "Montana" }, { code: "NE", name: "Nebraska" }, { code: "NV", name: "Nevada" }, { code: "NH", name: "New Hampshire" }, { code: "NJ", name: "New Jersey" }, { code: "NM", name: "New Mexico" }, { code: "NY", name: "New York" }, { code: "NC", name: "North Carolina" }, { code: "ND", name: "North Dakota" }, { code: "OH", name: "Ohio" }, { code: "OK", name: "Oklahoma" }, { code: "OR", name: "Oregon" }, { code: "PA", name: "Pennsylvania" }, { code: "RI", name: "Rhode Island" }, { code: "SC", name: "South Carolina" }, { code: "SD", name: "South Dakota" }, { code: "TN", name: "Tennessee" }, { code: "TX", name: "Texas" }, { code: "UT", name: "Utah" }, { code: "VT", name: "Vermont" }, { code: "VA", name: "Virginia" }, { code: "WA", name: "Washington" }, { code: "WV", name: "West Virginia" }, { code: "WI", name: "Wisconsin" }, { code: "WY", name: "Wyoming" }, { code: "DC", name: "District of Columbia" }, { code: "AS", name: "American Samoa" }, { code: "GU", name: "Guam" }, { code: "MP", name: "Northern Mariana Islands" }, { code: "PR", name: "Puerto Rico" }, { code: "VI", name: "U.S. Virgin Islands" }, { code: "UM", name: "U.S. Minor Outlying Islands" }, { code: "AA", name: "Armed Forces Americas (APO/FPO)" }, { code: "AE", name: "Armed Forces Europe, Middle East, Africa, Canada (APO/FPO)" }, { code: "AP", name: "Armed Forces Pacific (APO/FPO)" }, { code: "FM", name: "Micronesia" }, { code: "MH", name: "Marshall Islands" }];

export const EVENT_DEEP_LINK = "deep-link";
export const EVENT_USPS_LINK = "usps-link";
export const EVENT_RETRY_WAIT = "retry-wait";
export const EVENT_APPROVAL = "approval";
export const EVENT_SAVINGS = "savings";
export const EVENT_STORAGE = "storage";
export const EVENT_BUSINESSES = "businesses";
export const EVENT_OPEN_ROUTE = "open-route";

/** Every event the window listens to: its name and the one payload it carries. */
export type Events = {
  "deep-link": DeepLinkNotice;
  "usps-link": LinkUpdate;
  "retry-wait": RetryWait;
  "approval": ApprovalView;
  "savings": SavingsUpdate;
  "storage": StorageHealth;
  "businesses": Array<BusinessOverview>;
  "open-route": Route;
};
