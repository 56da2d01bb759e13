//! Proof that the NSA rates work where labels are bought (issue 25): a few reference parcels priced
//! by USPS at CONTRACT, COMMERCIAL and RETAIL with the linked token, and quoted by the owner's
//! Stamps.com carrier through ShipEngine's rate estimate.
//!
//! Approval says USPS has a contract; two things can still put published prices on the invoice:
//! USPS answers a contract request with a published price ("Contract rate not found for request.
//! Published rate returned.", karrio PR #1121), or the platform quotes published prices because its
//! own link is not in place. So a CONTRACT answer counts only when it is a contract price, and the
//! platform's quote is compared with it.
//!
//! USPS's quota (about 60 calls an hour per API) is shared with the approval watch: published
//! prices change twice a year and are kept for a week; contract prices are asked once after the
//! approval and then only on the owner's *Check again*, a few rounds a day at most. ShipEngine's
//! estimate costs no USPS call and is what *Check again* is mostly for.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use thiserror::Error;
use ts_rs::TS;

use crate::error::{ErrorKind, HasKind};
use crate::payments::PaymentAccount;

/// A US-dollar amount in cents (prices are compared to the cent, never as floats).
pub type Cents = u32;

/// The words USPS uses when it falls back from a contract price (a warning on a priced answer).
/// Matched because USPS gives no code for it; lower case, compared without case.
const FALLBACK_WORDS: [&str; 2] = ["published rate returned", "contract rate not found"];

/// How long a published (COMMERCIAL/RETAIL) price is kept before it is asked again.
pub const PUBLISHED_PRICES_KEPT_SECS: u64 = 7 * 86_400;
/// How often the watch asks the platform again while it does not quote the NSA rates.
pub const PLATFORM_RECHECK_SECS: u64 = 86_400;
/// How long the watch waits to price again when no parcel could be priced at all.
pub const FAILED_ROUND_RETRY_SECS: u64 = 4 * 3600;

/// `amount` dollars in cents, when it is a price at all.
pub fn cents(amount: f64) -> Option<Cents> {
    (amount.is_finite() && (0.0..1_000_000.0).contains(&amount)).then(|| (amount * 100.0).round() as Cents)
}

/// `$7.41`.
pub fn dollars(c: Cents) -> String {
    format!("${}.{:02}", c / 100, c % 100)
}

/// The price a request asks USPS for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PriceType {
    Contract,
    Commercial,
    Retail,
}

impl PriceType {
    fn name(self) -> &'static str {
        match self {
            PriceType::Contract => "CONTRACT",
            PriceType::Commercial => "COMMERCIAL",
            PriceType::Retail => "RETAIL",
        }
    }
}

/// A place a reference parcel goes from or to (ShipEngine's estimate wants the city and state too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    pub zip: String,
    pub city: String,
    pub state: String,
}

/// One parcel priced to show the savings. Configurable (`USPSLINK_SAVINGS_PARCELS`), since the
/// owner's own lanes are what matter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceParcel {
    /// As the dashboard names it: "1 lb Priority Mail parcel, near zone".
    pub description: String,
    /// USPS's `mailClass`.
    pub mail_class: String,
    /// ShipEngine's `service_code` for the same service through Stamps.com.
    pub service_code: String,
    pub weight_lb: f64,
    pub length_in: f64,
    pub width_in: f64,
    pub height_in: f64,
    pub from: Place,
    pub to: Place,
    /// More fields for USPS's price search (`rateIndicator`, `processingCategory`, …): the search's
    /// body is inferred from the public spec, and a wrong `rateIndicator` is what makes USPS fall back
    /// to published prices, so it is configurable without a new build.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub usps_fields: serde_json::Map<String, Value>,
}

#[derive(Debug, Error)]
pub enum SavingsError {
    #[error("USPS refused the access token ({0})")]
    Unauthorized(String),
    #[error("the reference parcels are not usable: {0}")]
    BadParcels(String),
    #[error("uspslink shows what your NSA rates save once USPS has approved them.")]
    NotApprovedYet,
    #[error("uspslink has asked USPS for your prices {rounds} times in the last 24 hours, which is as often as it may, and you have no Stamps.com account to ask instead; try again after {next}.")]
    TooManyChecks { rounds: u32, next: String },
}

impl HasKind for SavingsError {
    fn kind(&self) -> ErrorKind {
        match self {
            SavingsError::Unauthorized(_) => ErrorKind::NeedsReconnecting,
            SavingsError::BadParcels(_) | SavingsError::NotApprovedYet => ErrorKind::NotConfigured,
            SavingsError::TooManyChecks { .. } => ErrorKind::RateLimited,
        }
    }
}

fn place(zip: &str, city: &str, state: &str) -> Place {
    Place { zip: zip.into(), city: city.into(), state: state.into() }
}

fn parcel(description: &str, mail_class: &str, service_code: &str, weight_lb: f64, to: Place) -> ReferenceParcel {
    ReferenceParcel {
        description: description.into(),
        mail_class: mail_class.into(),
        service_code: service_code.into(),
        weight_lb,
        length_in: 9.0,
        width_in: 6.0,
        height_in: 2.0,
        from: place("78756", "Austin", "TX"),
        to,
        usps_fields: serde_json::Map::new(),
    }
}

/// By default a 1 lb Priority Mail parcel and an 8 oz Ground Advantage parcel, each to a near and a
/// far zone (from the same Austin ZIP Code the approval check uses).
pub fn default_parcels() -> Vec<ReferenceParcel> {
    let near = || place("78701", "Austin", "TX");
    let far = || place("98101", "Seattle", "WA");
    vec![
        parcel("1 lb Priority Mail parcel, near zone", "PRIORITY_MAIL", "usps_priority_mail", 1.0, near()),
        parcel("1 lb Priority Mail parcel, far zone", "PRIORITY_MAIL", "usps_priority_mail", 1.0, far()),
        parcel(
            "8 oz Ground Advantage parcel, near zone",
            "USPS_GROUND_ADVANTAGE",
            "usps_ground_advantage",
            0.5,
            near(),
        ),
        parcel("8 oz Ground Advantage parcel, far zone", "USPS_GROUND_ADVANTAGE", "usps_ground_advantage", 0.5, far()),
    ]
}

fn zip_ok(z: &str) -> bool {
    z.len() == 5 && z.bytes().all(|b| b.is_ascii_digit())
}

/// Reference parcels from configuration: a JSON array of 1 to 8 parcels.
pub fn parcels_from_json(text: &str) -> Result<Vec<ReferenceParcel>, SavingsError> {
    let parcels: Vec<ReferenceParcel> =
        serde_json::from_str(text).map_err(|e| SavingsError::BadParcels(format!("not a list of parcels ({e})")))?;
    if parcels.is_empty() || parcels.len() > 8 {
        return Err(SavingsError::BadParcels("give 1 to 8 parcels".into()));
    }
    for (i, p) in parcels.iter().enumerate() {
        let name = &p.description;
        if parcels[..i].iter().any(|q| q.description == *name) {
            return Err(SavingsError::BadParcels(format!("{name}: two parcels have this description")));
        }
        if name.trim().is_empty() || name.chars().count() > 80 {
            return Err(SavingsError::BadParcels("each parcel needs a description of at most 80 characters".into()));
        }
        let code_ok =
            |s: &str| !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !code_ok(&p.mail_class) || !code_ok(&p.service_code) {
            return Err(SavingsError::BadParcels(format!(
                "{name}: mail_class and service_code are codes like PRIORITY_MAIL"
            )));
        }
        let sizes = [p.weight_lb, p.length_in, p.width_in, p.height_in];
        if sizes.iter().any(|v| !v.is_finite() || *v <= 0.0)
            || p.weight_lb > 70.0
            || sizes[1..].iter().any(|v| *v > 108.0)
        {
            return Err(SavingsError::BadParcels(format!("{name}: weight (up to 70 lb) and sizes must be positive")));
        }
        if !zip_ok(&p.from.zip) || !zip_ok(&p.to.zip) {
            return Err(SavingsError::BadParcels(format!("{name}: ZIP Codes have 5 digits")));
        }
    }
    Ok(parcels)
}

/// USPS's Domestic Prices v3 search for one parcel at one price type. Contract and commercial
/// prices name the account; retail prices need none.
pub fn usps_request(parcel: &ReferenceParcel, price: PriceType, account: &PaymentAccount) -> Value {
    let mut body = json!({
        "originZIPCode": parcel.from.zip,
        "destinationZIPCode": parcel.to.zip,
        "weight": parcel.weight_lb,
        "length": parcel.length_in,
        "width": parcel.width_in,
        "height": parcel.height_in,
        "mailClass": parcel.mail_class,
        "priceType": price.name(),
    });
    for (k, v) in &parcel.usps_fields {
        // The fields that make the request what it is stay the app's.
        if !matches!(k.as_str(), "priceType" | "accountType" | "accountNumber") {
            body[k] = v.clone();
        }
    }
    if price != PriceType::Retail {
        let (kind, number) = match account {
            PaymentAccount::Eps { account_number } => ("EPS", account_number.as_str()),
            PaymentAccount::Permit { permit_number, .. } => ("PERMIT", permit_number.as_str()),
        };
        body["accountType"] = json!(kind);
        body["accountNumber"] = json!(number);
    }
    body
}

/// ShipEngine's `POST /v1/rates/estimate` for one parcel through one carrier.
pub fn estimate_request(parcel: &ReferenceParcel, carrier_id: &str) -> Value {
    json!({
        "carrier_id": carrier_id,
        "from_country_code": "US",
        "from_postal_code": parcel.from.zip,
        "from_city_locality": parcel.from.city,
        "from_state_province": parcel.from.state,
        "to_country_code": "US",
        "to_postal_code": parcel.to.zip,
        "to_city_locality": parcel.to.city,
        "to_state_province": parcel.to.state,
        "weight": {"value": (parcel.weight_lb * 16.0 * 100.0).round() / 100.0, "unit": "ounce"},
        "dimensions": {"unit": "inch", "length": parcel.length_in, "width": parcel.width_in, "height": parcel.height_in},
        "confirmation": "none",
        "address_residential_indicator": "no",
    })
}

/// What USPS answered for one parcel at one price type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum UspsPrice {
    /// The price asked for (a CONTRACT request: a contract price).
    Priced { cents: Cents },
    /// A CONTRACT request answered with a published price: the contract does not apply to it.
    PublishedInstead { cents: Cents },
    /// USPS has no approved contract for the account (error 160212).
    NoContract,
    /// Anything else (a failure, a body without a price): never read as a contract price.
    Unavailable { reason: String },
}

/// Whether any text of the answer is USPS's published-rate fallback warning.
fn says_published_instead(v: &Value) -> bool {
    match v {
        Value::String(s) => {
            let s = s.to_lowercase();
            FALLBACK_WORDS.iter().any(|w| s.contains(w))
        }
        Value::Array(a) => a.iter().any(says_published_instead),
        Value::Object(o) => o.values().any(says_published_instead),
        _ => false,
    }
}

/// A CONTRACT answer of USPS's that is a contract price: a rate typed CONTRACT/NSA and no
/// published-rate warning anywhere. Shared with the approval check, so a published price is never
/// an approval.
pub fn is_contract_price(body: &Value) -> bool {
    let typed_contract = body["rateOptions"].as_array().into_iter().flatten().any(is_contract_option);
    typed_contract && !says_published_instead(body)
}

fn option_total(option: &Value) -> Option<f64> {
    option["totalBasePrice"]
        .as_f64()
        .or_else(|| option["totalPrice"].as_f64())
        .or_else(|| option["rates"][0]["price"].as_f64())
}

fn is_contract_option(option: &Value) -> bool {
    option["rates"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| matches!(r["priceType"].as_str(), Some("CONTRACT") | Some("NSA")))
}

/// The total of the first rate option, wherever the answer puts it.
pub fn first_total(body: &Value) -> Option<f64> {
    option_total(body["rateOptions"].as_array()?.first()?)
}

/// The total of the first option priced at the contract (USPS may answer several options).
pub fn contract_total(body: &Value) -> Option<f64> {
    option_total(body["rateOptions"].as_array()?.iter().find(|o| is_contract_option(o))?)
}

fn error_codes(body: &Value) -> Vec<String> {
    let error = &body["error"];
    error["code"]
        .as_str()
        .into_iter()
        .chain(error["errors"].as_array().into_iter().flatten().filter_map(|e| e["code"].as_str()))
        .map(str::to_string)
        .collect()
}

/// Read USPS's answer to one price search.
pub fn classify_usps(status: u16, body: &[u8], asked: PriceType) -> Result<UspsPrice, SavingsError> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    if status == 401 {
        let words = parsed.as_ref().and_then(|b| b["error"]["message"].as_str()).unwrap_or("HTTP 401");
        return Err(SavingsError::Unauthorized(words.chars().take(200).collect()));
    }
    let Some(body) = parsed else {
        return Ok(UspsPrice::Unavailable {
            reason: format!("USPS answered HTTP {status} with a body that could not be read"),
        });
    };
    if (200..300).contains(&status) {
        let contract = asked == PriceType::Contract && is_contract_price(&body);
        let total = if contract { contract_total(&body) } else { first_total(&body) };
        let Some(c) = total.and_then(cents) else {
            return Ok(UspsPrice::Unavailable { reason: "USPS answered without a price".into() });
        };
        return Ok(if asked == PriceType::Contract && !contract {
            UspsPrice::PublishedInstead { cents: c }
        } else {
            UspsPrice::Priced { cents: c }
        });
    }
    let codes = error_codes(&body);
    if asked == PriceType::Contract && codes.iter().any(|c| c == crate::approval::NO_APPROVED_CONTRACT) {
        return Ok(UspsPrice::NoContract);
    }
    Ok(UspsPrice::Unavailable { reason: format!("USPS answered HTTP {status} ({})", codes.join(", ")) })
}

/// Asks USPS for prices. A search changes nothing at USPS, so it is retried where safe.
pub struct PriceClient {
    api: crate::http::Api,
}

impl PriceClient {
    pub fn new(base: &str) -> Self {
        Self { api: crate::http::Api::new(base, std::time::Duration::from_secs(30)) }
    }

    /// Over a shared [`crate::http::Api`] (its client and retry policy).
    pub fn over(api: crate::http::Api) -> Self {
        Self { api }
    }

    pub fn with_retry(mut self, retry: crate::http::Retry) -> Self {
        self.api.retry = retry;
        self
    }

    /// One parcel at one price type. Only a refused token is an error: anything else is an answer.
    pub async fn price(
        &self,
        access_token: &secrecy::SecretString,
        body: &Value,
        asked: PriceType,
    ) -> Result<UspsPrice, SavingsError> {
        use secrecy::ExposeSecret;
        let url = self.api.url("/prices/v3/total-rates/search");
        let answer = self
            .api
            .retry
            .fetch_idempotent("asking USPS for your prices", || {
                self.api.http.post(&url).bearer_auth(access_token.expose_secret()).json(body)
            })
            .await;
        match answer {
            Ok(a) => classify_usps(a.status, &a.body, asked),
            Err(e) => Ok(UspsPrice::Unavailable { reason: format!("could not reach USPS: {}", e.without_url()) }),
        }
    }
}

/// What the platform quoted for one parcel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PlatformQuote {
    Quoted {
        cents: Cents,
    },
    /// The carrier offers no such service for the parcel.
    NotOffered,
    CouldNotQuote {
        reason: String,
    },
}

/// An added amount (`other_amount`, `confirmation_amount`): absent is nothing added.
fn added_amount(v: &Value) -> Option<f64> {
    match &v["amount"] {
        Value::Null => Some(0.0),
        a => a.as_f64(),
    }
}

/// Read ShipEngine's estimate (a list of rates) for the parcel's service: the label's cost is the
/// shipping amount plus what the carrier adds (`other_amount`) and any confirmation.
pub fn classify_estimate(body: &Value, service_code: &str) -> PlatformQuote {
    let Some(rates) = body.as_array() else {
        return PlatformQuote::CouldNotQuote { reason: "ShipEngine answered without a list of rates".into() };
    };
    // A service may be quoted once per package type (flat-rate envelopes and boxes too): the
    // parcel's own rate is the plain package's (`package`, or none named).
    let of_service = || rates.iter().filter(|r| r["service_code"].as_str() == Some(service_code));
    let plain = |r: &&Value| matches!(r["package_type"].as_str(), None | Some("package"));
    let Some(rate) = of_service().find(plain) else {
        return if of_service().next().is_some() {
            PlatformQuote::CouldNotQuote { reason: "Stamps.com quoted only flat-rate packaging for it".into() }
        } else {
            PlatformQuote::NotOffered
        };
    };
    if let Some(first) = rate["error_messages"].as_array().and_then(|m| m.first()) {
        let words: String = first.as_str().unwrap_or("an error").chars().take(200).collect();
        return PlatformQuote::CouldNotQuote { reason: format!("ShipEngine could not rate it: {words}") };
    }
    // The shipping amount must be there and above zero: a missing one is no quote, never a free label.
    let shipping = rate["shipping_amount"]["amount"].as_f64().filter(|a| *a > 0.0);
    let total = [&rate["other_amount"], &rate["confirmation_amount"]]
        .iter()
        .map(|v| if v.is_null() { Some(0.0) } else { added_amount(v) })
        .try_fold(shipping.unwrap_or(f64::NAN), |sum, a| a.map(|a| sum + a));
    match total.filter(|t| t.is_finite()).and_then(cents) {
        Some(c) if shipping.is_some() => PlatformQuote::Quoted { cents: c },
        _ => PlatformQuote::CouldNotQuote { reason: "ShipEngine's rate has no amount that could be read".into() },
    }
}

/// One parcel's prices, as last found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParcelPrices {
    pub description: String,
    pub contract: UspsPrice,
    pub commercial: Option<Cents>,
    pub retail: Option<Cents>,
    pub platform: Option<PlatformQuote>,
}

/// What the store keeps of the savings, per environment (nothing secret).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SavingsRecord {
    pub parcels: Vec<ParcelPrices>,
    /// Unix seconds of the last contract round at USPS.
    pub contract_priced_at: Option<u64>,
    /// Unix seconds of the last published (COMMERCIAL/RETAIL) round.
    pub published_priced_at: Option<u64>,
    /// Unix seconds of the last platform quote.
    pub platform_checked_at: Option<u64>,
    /// Why the platform was not asked (no Stamps.com account, no key), when it was not.
    pub platform_not_asked: Option<String>,
    /// Unix seconds of the USPS rounds of the last 24 hours (the quota).
    pub usps_rounds: Vec<u64>,
    /// Unix seconds of the last time the platform was asked or found not askable (its daily retry).
    pub platform_tried_at: Option<u64>,
    /// The reference parcels these prices are for: another list starts again.
    pub parcels_fingerprint: String,
}

/// What identifies a list of reference parcels (any change of any field is another list).
pub fn fingerprint(parcels: &[ReferenceParcel]) -> String {
    serde_json::to_string(parcels).unwrap_or_default()
}

/// Who asks: the watch (once after the approval, then the platform daily while it is behind) or
/// the owner's *Check again*.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SavingsTrigger {
    Watch,
    CheckAgain,
}

/// Which calls one round makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Plan {
    pub contract: bool,
    pub published: bool,
    pub platform: bool,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        !(self.contract || self.published || self.platform)
    }
}

/// The savings' own quota: USPS rounds a day (each asks USPS once per parcel for the contract
/// price, and three times per parcel when the published prices are due too).
pub const MAX_USPS_ROUNDS_PER_DAY: u32 = 3;

impl SavingsRecord {
    fn rounds_in_day(&self, now: u64) -> u32 {
        self.usps_rounds.iter().filter(|t| now.saturating_sub(**t) < 86_400).count() as u32
    }

    /// When the next USPS round is allowed by the quota.
    fn usps_allowed_at(&self, now: u64) -> u64 {
        if self.rounds_in_day(now) < MAX_USPS_ROUNDS_PER_DAY {
            return now;
        }
        let oldest = self.usps_rounds.iter().copied().filter(|t| now.saturating_sub(*t) < 86_400).min();
        oldest.unwrap_or(now).saturating_add(86_400)
    }

    /// These prices are for other reference parcels (the configuration changed): start again.
    fn stale(&self, parcels: &[ReferenceParcel]) -> bool {
        self.parcels_fingerprint != fingerprint(parcels)
    }

    /// Some price of the last round is missing (a parcel USPS could not price, a published price
    /// that did not come): the watch asks again a few hours later, within the quota.
    fn incomplete(&self) -> bool {
        self.parcels.iter().any(|p| matches!(p.contract, UspsPrice::Unavailable { .. }) || p.commercial.is_none())
    }

    /// When the watch asks USPS next (None: not until the owner asks).
    fn usps_due_at(&self, parcels: &[ReferenceParcel], now: u64) -> Option<u64> {
        let due = match self.contract_priced_at {
            _ if self.stale(parcels) => now,
            None => now,
            Some(t) if self.incomplete() => t.saturating_add(FAILED_ROUND_RETRY_SECS),
            Some(_) => return None,
        };
        Some(due.max(self.usps_allowed_at(now)))
    }

    fn platform_behind(&self) -> bool {
        self.parcels
            .iter()
            .any(|p| matches!(verdict(p), Some(ParcelVerdict::Above { .. }) | Some(ParcelVerdict::Unknown)))
    }

    /// When the watch asks the platform next: at once the first time, then daily while it does not
    /// quote the NSA rates or could not be asked (a locked keyring, no key yet).
    fn platform_due_at(&self, parcels: &[ReferenceParcel], has_platform: bool) -> Option<u64> {
        if !has_platform {
            return None;
        }
        let behind = self.stale(parcels)
            || self.platform_checked_at.is_none()
            || self.platform_not_asked.is_some()
            || self.platform_behind();
        match self.platform_tried_at {
            None => Some(0),
            Some(_) if self.stale(parcels) => Some(0),
            Some(t) if behind => Some(t.saturating_add(PLATFORM_RECHECK_SECS)),
            Some(_) => None,
        }
    }

    /// What a round asks, or why it may not. `parcels`: the reference parcels configured now;
    /// `has_platform`: a Stamps.com carrier exists to ask.
    pub fn plan(
        &self,
        parcels: &[ReferenceParcel],
        trigger: SavingsTrigger,
        has_platform: bool,
        now: u64,
    ) -> Result<Plan, SavingsError> {
        let stale = self.stale(parcels);
        let usps_allowed = self.rounds_in_day(now) < MAX_USPS_ROUNDS_PER_DAY;
        let published_due =
            stale || self.published_priced_at.is_none_or(|t| now.saturating_sub(t) >= PUBLISHED_PRICES_KEPT_SECS);
        match trigger {
            SavingsTrigger::Watch => {
                let contract = self.usps_due_at(parcels, now).is_some_and(|t| t <= now);
                let platform = self.platform_due_at(parcels, has_platform).is_some_and(|t| t <= now);
                Ok(Plan { contract, published: contract && published_due, platform })
            }
            SavingsTrigger::CheckAgain => {
                if !usps_allowed && !has_platform {
                    let next = crate::clock::iso_time(self.usps_allowed_at(now));
                    return Err(SavingsError::TooManyChecks { rounds: self.rounds_in_day(now), next });
                }
                Ok(Plan { contract: usps_allowed, published: usps_allowed && published_due, platform: has_platform })
            }
        }
    }

    /// When the watch has something to ask next (None: nothing until the owner asks).
    pub fn next_watch(&self, parcels: &[ReferenceParcel], approved: bool, has_platform: bool, now: u64) -> Option<u64> {
        if !approved {
            return None;
        }
        let usps = self.usps_due_at(parcels, now);
        let platform = self.platform_due_at(parcels, has_platform).map(|t| t.max(now));
        usps.into_iter().chain(platform).min()
    }

    /// Take a round's answers. `contract`/`published`/`platform`: one entry per parcel, or None
    /// when that part was not asked (the earlier answer stays).
    pub fn record(
        &mut self,
        parcels: &[ReferenceParcel],
        contract: Option<Vec<UspsPrice>>,
        published: Option<Vec<(Option<Cents>, Option<Cents>)>>,
        platform: Result<Option<Vec<PlatformQuote>>, String>,
        now: u64,
    ) {
        // Other reference parcels: the list and what was asked of it start again.
        if self.stale(parcels) {
            self.parcels = parcels
                .iter()
                .map(|p| ParcelPrices {
                    description: p.description.clone(),
                    contract: UspsPrice::Unavailable { reason: "not asked yet".into() },
                    commercial: None,
                    retail: None,
                    platform: None,
                })
                .collect();
            self.parcels_fingerprint = fingerprint(parcels);
            self.contract_priced_at = None;
            self.published_priced_at = None;
            self.platform_checked_at = None;
            self.platform_tried_at = None;
        }
        if contract.is_some() || published.is_some() {
            self.usps_rounds.retain(|t| now.saturating_sub(*t) < 86_400);
            self.usps_rounds.push(now);
        }
        if let Some(prices) = contract {
            for (p, c) in self.parcels.iter_mut().zip(prices) {
                p.contract = c;
            }
            self.contract_priced_at = Some(now);
        }
        if let Some(prices) = published {
            for (p, (commercial, retail)) in self.parcels.iter_mut().zip(prices) {
                p.commercial = commercial.or(p.commercial);
                p.retail = retail.or(p.retail);
            }
            // Kept for a week only once every parcel has its published price.
            if self.parcels.iter().all(|p| p.commercial.is_some()) {
                self.published_priced_at = Some(now);
            }
        }
        match platform {
            Ok(Some(quotes)) => {
                for (p, q) in self.parcels.iter_mut().zip(quotes) {
                    p.platform = Some(q);
                }
                self.platform_checked_at = Some(now);
                self.platform_tried_at = Some(now);
                self.platform_not_asked = None;
            }
            Ok(None) => {}
            Err(why) => {
                for p in self.parcels.iter_mut() {
                    p.platform = None;
                }
                self.platform_tried_at = Some(now);
                self.platform_not_asked = Some(why);
            }
        }
    }
}

/// How one parcel's platform quote compares with its contract price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParcelVerdict {
    AtNsaRates,
    Above { quoted: Cents, contract: Cents },
    Unknown,
}

fn verdict(p: &ParcelPrices) -> Option<ParcelVerdict> {
    let UspsPrice::Priced { cents: contract } = p.contract else { return None };
    Some(match p.platform.as_ref()? {
        PlatformQuote::Quoted { cents } if *cents <= contract => ParcelVerdict::AtNsaRates,
        PlatformQuote::Quoted { cents } => ParcelVerdict::Above { quoted: *cents, contract },
        _ => ParcelVerdict::Unknown,
    })
}

/// One parcel as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct ParcelView {
    pub description: String,
    /// The headline: "Your NSA rates: $7.41 instead of $9.85 for a 1 lb Priority Mail parcel,
    /// near zone (−25%)", or what USPS answered instead.
    pub sentence: String,
    /// Whether USPS priced it at the contract's rates.
    pub applied: bool,
    pub contract_cents: Option<Cents>,
    pub commercial_cents: Option<Cents>,
    pub retail_cents: Option<Cents>,
    /// Saved per label against the commercial price (the published price a platform charges).
    pub saved_cents: Option<Cents>,
    pub saved_percent: Option<u32>,
    pub platform_cents: Option<Cents>,
}

/// Whether the platform prices labels at the NSA rates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PlatformState {
    /// Not asked yet.
    Unchecked,
    /// No Stamps.com carrier or key to ask with.
    NotAsked { reason: String },
    /// Every parcel quoted at (or below) its contract price.
    AtNsaRates,
    /// At least one parcel quoted above its contract price.
    Published { quoted_cents: Cents, contract_cents: Cents, description: String },
    /// The quotes could not be compared (no contract price, no quote).
    CouldNotCompare { reason: String },
}

/// Where the savings stand as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SavingsState {
    /// USPS has not approved the NSA rates yet.
    NotApproved,
    /// Approved; the first prices are on their way.
    Unpriced,
    /// Every parcel priced at the contract's rates.
    Applied,
    /// USPS answered at least one contract request with a published price: the NSA rates are not
    /// applied to it yet. (A parcel the contract does not cover at all, error 160212, is said on its
    /// line and is not this.)
    NotApplied,
    /// No contract price could be had this time (network, USPS's errors).
    CouldNotPrice { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct SavingsView {
    #[serde(flatten)]
    pub state: SavingsState,
    pub parcels: Vec<ParcelView>,
    pub platform: PlatformState,
    #[ts(type = "number | null")]
    pub priced_at: Option<u64>,
    #[ts(type = "number | null")]
    pub platform_checked_at: Option<u64>,
}

/// "a 1 lb parcel", "an 8 oz parcel": the article as the description is spoken.
pub fn with_article(description: &str) -> String {
    let lower = description.to_lowercase();
    let vowel_sound = lower.starts_with(['a', 'e', 'i', 'o', 'u', '8'])
        || ["11 ", "11.", "18 ", "18."].iter().any(|p| lower.starts_with(p));
    format!("{} {description}", if vowel_sound { "an" } else { "a" })
}

fn parcel_view(p: &ParcelPrices) -> ParcelView {
    let parcel = with_article(&p.description);
    let baseline = p.commercial.or(p.retail);
    let (sentence, applied, contract_cents) = match &p.contract {
        UspsPrice::Priced { cents } => {
            let sentence = match baseline {
                Some(b) if b > *cents => {
                    let pct = ((u64::from(b - cents) * 100 + u64::from(b) / 2) / u64::from(b)) as u32;
                    format!(
                        "Your NSA rates: {} instead of {} for {parcel} (\u{2212}{pct}%)",
                        dollars(*cents),
                        dollars(b),
                    )
                }
                _ => format!("Your NSA rates: {} for {parcel}", dollars(*cents)),
            };
            (sentence, true, Some(*cents))
        }
        UspsPrice::PublishedInstead { cents } => (
            format!(
                "Not applied yet: USPS priced {parcel} at the published {} instead of your contract rate",
                dollars(*cents)
            ),
            false,
            None,
        ),
        UspsPrice::NoContract => {
            (format!("Not in your contract: USPS found no approved contract for {parcel}"), false, None)
        }
        UspsPrice::Unavailable { reason } => (format!("Could not price {parcel}: {reason}"), false, None),
    };
    let saved_cents = contract_cents.zip(baseline).and_then(|(c, b)| b.checked_sub(c));
    let saved_percent = saved_cents
        .zip(baseline)
        .filter(|(_, b)| *b > 0)
        .map(|(s, b)| ((u64::from(s) * 100 + u64::from(b) / 2) / u64::from(b)) as u32);
    let platform_cents = match p.platform {
        Some(PlatformQuote::Quoted { cents }) => Some(cents),
        _ => None,
    };
    ParcelView {
        description: p.description.clone(),
        sentence,
        applied,
        contract_cents,
        commercial_cents: p.commercial,
        retail_cents: p.retail,
        saved_cents,
        saved_percent,
        platform_cents,
    }
}

impl SavingsRecord {
    pub fn view(&self, approved: bool) -> SavingsView {
        let parcels: Vec<ParcelView> = self.parcels.iter().map(parcel_view).collect();
        let state = if !approved {
            SavingsState::NotApproved
        } else if self.contract_priced_at.is_none() {
            SavingsState::Unpriced
        } else if self.parcels.iter().any(|p| matches!(p.contract, UspsPrice::PublishedInstead { .. })) {
            SavingsState::NotApplied
        } else if self.parcels.iter().any(|p| matches!(p.contract, UspsPrice::Priced { .. })) {
            SavingsState::Applied
        } else {
            let reason = self
                .parcels
                .iter()
                .find_map(|p| match &p.contract {
                    UspsPrice::Unavailable { reason } => Some(reason.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| "USPS found no approved contract covering these parcels".into());
            SavingsState::CouldNotPrice { reason }
        };
        let verdicts: Vec<(&ParcelPrices, Option<ParcelVerdict>)> =
            self.parcels.iter().map(|p| (p, verdict(p))).collect();
        let platform = if let Some(reason) = &self.platform_not_asked {
            PlatformState::NotAsked { reason: reason.clone() }
        } else if self.platform_checked_at.is_none() {
            PlatformState::Unchecked
        } else if let Some((p, quoted, contract)) = verdicts.iter().find_map(|(p, v)| match v {
            Some(ParcelVerdict::Above { quoted, contract }) => Some((p, *quoted, *contract)),
            _ => None,
        }) {
            PlatformState::Published {
                quoted_cents: quoted,
                contract_cents: contract,
                description: p.description.clone(),
            }
        } else if verdicts.iter().any(|(_, v)| v.is_some())
            && verdicts.iter().all(|(_, v)| matches!(v, Some(ParcelVerdict::AtNsaRates) | None))
        {
            PlatformState::AtNsaRates
        } else {
            let reason = self
                .parcels
                .iter()
                .find_map(|p| match &p.platform {
                    Some(PlatformQuote::CouldNotQuote { reason }) => Some(reason.clone()),
                    Some(PlatformQuote::NotOffered) => {
                        Some(format!("Stamps.com offered no rate for {}", with_article(&p.description)))
                    }
                    _ => None,
                })
                .unwrap_or_else(|| "there is no contract price to compare with yet".into());
            PlatformState::CouldNotCompare { reason }
        };
        SavingsView {
            state,
            parcels,
            platform,
            priced_at: self.contract_priced_at,
            platform_checked_at: self.platform_checked_at,
        }
    }

    /// The lines the summary for the sales representative and the diagnostics carry.
    pub fn summary_lines(&self, approved: bool) -> Vec<String> {
        let view = self.view(approved);
        if view.priced_at.is_none() {
            return Vec::new();
        }
        let mut lines = vec![format!("Prices checked on {}:", crate::clock::iso_date(view.priced_at.unwrap_or(0)))];
        lines.extend(view.parcels.iter().map(|p| format!("- {}", p.sentence)));
        match &view.platform {
            PlatformState::AtNsaRates => lines.push("Stamps.com prices our labels at our NSA rates.".into()),
            PlatformState::Published { quoted_cents, contract_cents, description } => lines.push(format!(
                "Stamps.com still quotes {} for {} (our contract price: {}): the platform does not apply our NSA rates yet.",
                dollars(*quoted_cents),
                with_article(description),
                dollars(*contract_cents)
            )),
            _ => {}
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract_answer(price: f64, price_type: &str, warning: Option<&str>) -> Vec<u8> {
        let mut body =
            json!({"rateOptions": [{"totalBasePrice": price, "rates": [{"price": price, "priceType": price_type}]}]});
        if let Some(w) = warning {
            body["warnings"] = json!([{"warningCode": "W1", "warningDescription": w}]);
        }
        body.to_string().into_bytes()
    }

    #[test]
    fn a_contract_answer_counts_only_when_it_is_a_contract_price() {
        let c = PriceType::Contract;
        assert_eq!(
            classify_usps(200, &contract_answer(7.41, "CONTRACT", None), c).unwrap(),
            UspsPrice::Priced { cents: 741 }
        );
        assert_eq!(
            classify_usps(200, &contract_answer(7.41, "NSA", None), c).unwrap(),
            UspsPrice::Priced { cents: 741 }
        );
        // The fallback USPS is known to send, as a warning on a priced answer.
        let fallback =
            contract_answer(9.85, "CONTRACT", Some("Contract rate not found for request. Published rate returned."));
        assert_eq!(classify_usps(200, &fallback, c).unwrap(), UspsPrice::PublishedInstead { cents: 985 });
        assert!(!is_contract_price(&serde_json::from_slice(&fallback).unwrap()));
        // A published price type answering a contract request.
        assert_eq!(
            classify_usps(200, &contract_answer(9.85, "COMMERCIAL", None), c).unwrap(),
            UspsPrice::PublishedInstead { cents: 985 }
        );
        // The same answer to a commercial request is just its price.
        assert_eq!(
            classify_usps(200, &contract_answer(9.85, "COMMERCIAL", None), PriceType::Commercial).unwrap(),
            UspsPrice::Priced { cents: 985 }
        );
        let waiting = br#"{"error":{"code":"400","errors":[{"code":"160212","title":"An approved contract could not be found"}]}}"#;
        assert_eq!(classify_usps(400, waiting, c).unwrap(), UspsPrice::NoContract);
        // Several options: the contract one's total, wherever it is.
        let options = br#"{"rateOptions":[{"totalBasePrice":9.85,"rates":[{"priceType":"COMMERCIAL"}]},{"totalBasePrice":7.41,"rates":[{"priceType":"CONTRACT"}]}]}"#;
        assert_eq!(classify_usps(200, options, c).unwrap(), UspsPrice::Priced { cents: 741 });
        assert!(matches!(classify_usps(400, waiting, PriceType::Retail).unwrap(), UspsPrice::Unavailable { .. }));
        for (status, body) in [
            (200, &br#"{"rateOptions":[]}"#[..]),
            (503, b"<html>"),
            (500, b"{}"),
            (200, br#"{"rateOptions":[{"totalBasePrice":-1}]}"#),
        ] {
            assert!(matches!(classify_usps(status, body, c).unwrap(), UspsPrice::Unavailable { .. }), "{status}");
        }
        assert!(matches!(classify_usps(401, b"{}", c), Err(SavingsError::Unauthorized(_))));
    }

    #[test]
    fn the_platform_quote_is_read_by_service() {
        let rates = json!([
            {"service_code": "usps_ground_advantage", "shipping_amount": {"currency": "usd", "amount": 5.1}},
            {"service_code": "usps_priority_mail", "shipping_amount": {"currency": "usd", "amount": 7.4},
             "other_amount": {"currency": "usd", "amount": 0.01}, "confirmation_amount": {"currency": "usd", "amount": 0.0}},
        ]);
        assert_eq!(classify_estimate(&rates, "usps_priority_mail"), PlatformQuote::Quoted { cents: 741 });
        assert_eq!(classify_estimate(&rates, "usps_ground_advantage"), PlatformQuote::Quoted { cents: 510 });
        assert_eq!(classify_estimate(&rates, "usps_media_mail"), PlatformQuote::NotOffered);
        let failed =
            json!([{"service_code": "usps_priority_mail", "shipping_amount": null, "error_messages": ["no rate"]}]);
        assert!(matches!(classify_estimate(&failed, "usps_priority_mail"), PlatformQuote::CouldNotQuote { .. }));
        assert!(matches!(classify_estimate(&json!({"errors": []}), "x"), PlatformQuote::CouldNotQuote { .. }));
        let no_amount = json!([{"service_code": "usps_priority_mail", "shipping_amount": {"amount": "7.41"}}]);
        for missing in [json!({"currency": "usd"}), json!({"amount": 0.0}), Value::Null] {
            let rates = json!([{"service_code": "usps_priority_mail", "shipping_amount": missing}]);
            assert!(
                matches!(classify_estimate(&rates, "usps_priority_mail"), PlatformQuote::CouldNotQuote { .. }),
                "never a free label: {rates}"
            );
        }
        let packaging = json!([
            {"service_code": "usps_priority_mail", "package_type": "flat_rate_envelope", "shipping_amount": {"amount": 9.0}},
            {"service_code": "usps_priority_mail", "package_type": "package", "shipping_amount": {"amount": 7.41}},
        ]);
        assert_eq!(classify_estimate(&packaging, "usps_priority_mail"), PlatformQuote::Quoted { cents: 741 });
        assert!(matches!(
            classify_estimate(&json!([packaging[0]]), "usps_priority_mail"),
            PlatformQuote::CouldNotQuote { .. }
        ));
        assert!(matches!(classify_estimate(&no_amount, "usps_priority_mail"), PlatformQuote::CouldNotQuote { .. }));
    }

    fn priced_record(contract: &[UspsPrice], platform: Option<Vec<PlatformQuote>>, now: u64) -> SavingsRecord {
        let parcels: Vec<ReferenceParcel> = default_parcels().into_iter().take(contract.len()).collect();
        let mut r = SavingsRecord::default();
        let published = vec![(Some(985), Some(1060)); parcels.len()];
        r.record(&parcels, Some(contract.to_vec()), Some(published), Ok(platform), now);
        r
    }

    #[test]
    fn the_view_says_what_the_rates_save_and_whether_the_platform_applies_them() {
        let now = 1_800_000_000;
        let r =
            priced_record(&[UspsPrice::Priced { cents: 741 }], Some(vec![PlatformQuote::Quoted { cents: 985 }]), now);
        let v = r.view(true);
        assert_eq!(v.state, SavingsState::Applied);
        assert_eq!(
            v.parcels[0].sentence,
            "Your NSA rates: $7.41 instead of $9.85 for a 1 lb Priority Mail parcel, near zone (\u{2212}25%)"
        );
        assert_eq!((v.parcels[0].saved_cents, v.parcels[0].saved_percent), (Some(244), Some(25)));
        assert_eq!(
            v.platform,
            PlatformState::Published {
                quoted_cents: 985,
                contract_cents: 741,
                description: "1 lb Priority Mail parcel, near zone".into()
            }
        );
        let lines = r.summary_lines(true);
        assert!(lines.iter().any(|l| l.contains("$7.41 instead of $9.85")), "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("does not apply our NSA rates yet")), "{lines:?}");

        let r =
            priced_record(&[UspsPrice::Priced { cents: 741 }], Some(vec![PlatformQuote::Quoted { cents: 741 }]), now);
        assert_eq!(r.view(true).platform, PlatformState::AtNsaRates);
        let r =
            priced_record(&[UspsPrice::PublishedInstead { cents: 985 }, UspsPrice::Priced { cents: 741 }], None, now);
        let v = r.view(true);
        assert_eq!(v.state, SavingsState::NotApplied);
        assert!(!v.parcels[0].applied && v.parcels[0].sentence.starts_with("Not applied yet"), "{:?}", v.parcels[0]);
        assert_eq!(v.platform, PlatformState::Unchecked);
        let r = priced_record(&[UspsPrice::Priced { cents: 741 }, UspsPrice::NoContract], None, now);
        let v = r.view(true);
        assert_eq!(v.state, SavingsState::Applied, "a service the contract does not cover is said on its line only");
        assert!(v.parcels[1].sentence.starts_with("Not in your contract"), "{:?}", v.parcels[1]);
        let r = priced_record(&[UspsPrice::Unavailable { reason: "USPS answered HTTP 503 ()".into() }], None, now);
        assert!(matches!(r.view(true).state, SavingsState::CouldNotPrice { reason } if reason.contains("503")));
        assert_eq!(SavingsRecord::default().view(false).state, SavingsState::NotApproved);
        assert_eq!(SavingsRecord::default().view(true).state, SavingsState::Unpriced);
        assert!(SavingsRecord::default().summary_lines(true).is_empty());
        let mut r = priced_record(&[UspsPrice::Priced { cents: 741 }], None, now);
        r.record(&default_parcels()[..1], None, None, Err("no Stamps.com account".into()), now);
        assert!(matches!(r.view(true).platform, PlatformState::NotAsked { .. }));
        // The record survives the progress file.
        let back: SavingsRecord = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn the_quota_holds_published_prices_are_kept_and_the_platform_is_asked_daily_while_behind() {
        let now = 1_800_000_000;
        let one = &default_parcels()[..1];
        let (watch, again) = (SavingsTrigger::Watch, SavingsTrigger::CheckAgain);
        let fresh = SavingsRecord::default();
        assert_eq!(
            fresh.plan(one, watch, true, now).unwrap(),
            Plan { contract: true, published: true, platform: true }
        );
        assert_eq!(fresh.next_watch(one, true, true, now), Some(now));
        assert_eq!(fresh.next_watch(one, false, true, now), None, "nothing before the approval");
        let behind =
            priced_record(&[UspsPrice::Priced { cents: 741 }], Some(vec![PlatformQuote::Quoted { cents: 985 }]), now);
        assert!(behind.plan(one, watch, true, now + 60).unwrap().is_empty());
        assert_eq!(behind.next_watch(one, true, true, now + 60), Some(now + PLATFORM_RECHECK_SECS));
        assert_eq!(
            behind.plan(one, watch, true, now + PLATFORM_RECHECK_SECS).unwrap(),
            Plan { contract: false, published: false, platform: true }
        );
        let good =
            priced_record(&[UspsPrice::Priced { cents: 741 }], Some(vec![PlatformQuote::Quoted { cents: 741 }]), now);
        assert_eq!(good.next_watch(one, true, true, now + 10 * 86_400), None, "all good: the watch asks nothing more");
        // Check again: USPS within its rounds, published prices kept for a week.
        let mut r = behind.clone();
        assert_eq!(
            r.plan(one, again, true, now + 60).unwrap(),
            Plan { contract: true, published: false, platform: true }
        );
        for i in 1..MAX_USPS_ROUNDS_PER_DAY {
            r.record(one, Some(vec![UspsPrice::Priced { cents: 741 }]), None, Ok(None), now + u64::from(i));
        }
        assert_eq!(
            r.plan(one, again, true, now + 60).unwrap(),
            Plan { contract: false, published: false, platform: true }
        );
        let refused = r.plan(one, again, false, now + 60).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::RateLimited);
        assert!(r.plan(one, again, false, now + 86_400 + 10).is_ok(), "a day later");
        assert!(r.plan(one, again, true, now + PUBLISHED_PRICES_KEPT_SECS).unwrap().published);
        // A round with a price missing is tried again a few hours later, published prices too.
        let failed = priced_record(&[UspsPrice::Unavailable { reason: "HTTP 503".into() }], None, now);
        assert_eq!(failed.next_watch(one, true, false, now + 60), Some(now + FAILED_ROUND_RETRY_SECS));
        assert!(failed.plan(one, watch, false, now + 60).unwrap().is_empty());
        assert!(failed.plan(one, watch, false, now + FAILED_ROUND_RETRY_SECS).unwrap().contract);
        let mut no_published = SavingsRecord::default();
        no_published.record(one, Some(vec![UspsPrice::Priced { cents: 741 }]), Some(vec![(None, None)]), Ok(None), now);
        assert_eq!(no_published.published_priced_at, None, "not kept for a week without them");
        assert_eq!(
            no_published.plan(one, watch, false, now + FAILED_ROUND_RETRY_SECS).unwrap(),
            Plan { contract: true, published: true, platform: false }
        );
        // A platform that could not be asked (a locked keyring, no key yet) is tried again daily.
        let mut locked = good.clone();
        locked.record(one, None, None, Err("the keyring is locked".into()), now + 100);
        assert!(locked.plan(one, watch, true, now + 200).unwrap().is_empty());
        assert_eq!(locked.next_watch(one, true, true, now + 200), Some(now + 100 + PLATFORM_RECHECK_SECS));
        assert!(locked.plan(one, watch, true, now + 100 + PLATFORM_RECHECK_SECS).unwrap().platform);
        // Other reference parcels: everything is asked again, and the record starts again.
        let other = &default_parcels()[1..2];
        assert_eq!(
            good.plan(other, watch, true, now + 60).unwrap(),
            Plan { contract: true, published: true, platform: true }
        );
        let mut moved = good.clone();
        moved.record(other, Some(vec![UspsPrice::Priced { cents: 1368 }]), None, Ok(None), now + 60);
        assert_eq!(moved.parcels[0].description, other[0].description);
        assert_eq!(
            (moved.parcels[0].commercial, moved.published_priced_at, moved.platform_checked_at),
            (None, None, None)
        );
        // A never-priced record past its quota waits for the oldest round to be a day old.
        let mut starved = SavingsRecord::default();
        for i in 0..MAX_USPS_ROUNDS_PER_DAY {
            starved.usps_rounds.push(now + u64::from(i));
        }
        assert!(starved.plan(one, watch, false, now + 10).unwrap().is_empty());
        assert_eq!(starved.next_watch(one, true, false, now + 10), Some(now + 86_400));
        assert!(starved.plan(one, watch, false, now + 86_400).unwrap().contract);
    }

    #[test]
    fn requests_name_the_account_except_for_retail_prices() {
        let eps = PaymentAccount::Eps { account_number: "1000000001".into() };
        let p = &default_parcels()[2];
        let c = usps_request(p, PriceType::Contract, &eps);
        assert_eq!((c["priceType"].as_str(), c["accountNumber"].as_str()), (Some("CONTRACT"), Some("1000000001")));
        assert_eq!(c["mailClass"], "USPS_GROUND_ADVANTAGE");
        assert!(usps_request(p, PriceType::Retail, &eps).get("accountNumber").is_none());
        let mut tuned = p.clone();
        tuned.usps_fields = serde_json::from_str(r#"{"rateIndicator":"SP","priceType":"RETAIL"}"#).unwrap();
        let c = usps_request(&tuned, PriceType::Contract, &eps);
        assert_eq!((c["rateIndicator"].as_str(), c["priceType"].as_str()), (Some("SP"), Some("CONTRACT")));
        let e = estimate_request(p, "se-1");
        assert_eq!((e["weight"]["value"].as_f64(), e["to_postal_code"].as_str()), (Some(8.0), Some("78701")));
    }

    #[test]
    fn configured_parcels_are_checked() {
        let good = serde_json::to_string(&default_parcels()).unwrap();
        assert_eq!(parcels_from_json(&good).unwrap(), default_parcels());
        let mut bad = default_parcels();
        bad[0].to.zip = "9810".into();
        assert!(parcels_from_json(&serde_json::to_string(&bad).unwrap()).is_err());
        let mut bad = default_parcels();
        bad[1].weight_lb = 0.0;
        assert!(parcels_from_json(&serde_json::to_string(&bad).unwrap()).is_err());
        let mut twice = default_parcels();
        twice[1].description = twice[0].description.clone();
        assert!(parcels_from_json(&serde_json::to_string(&twice).unwrap()).is_err(), "descriptions name the lines");
        for text in ["[]", "{}", "not json", r#"[{"description":"x"}]"#] {
            assert!(parcels_from_json(text).is_err(), "{text}");
        }
        assert_eq!(cents(7.41), Some(741));
        assert_eq!(cents(-0.01), None);
        assert_eq!(cents(f64::INFINITY), None);
        assert_eq!(dollars(1205), "$12.05");
        assert_eq!(with_article("8 oz Ground Advantage parcel"), "an 8 oz Ground Advantage parcel");
        assert_eq!(with_article("1 lb Priority Mail parcel"), "a 1 lb Priority Mail parcel");
        assert_eq!(with_article("11 lb box"), "an 11 lb box");
        assert_eq!(with_article("Envelope"), "an Envelope");
    }
}
