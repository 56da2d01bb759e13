//! Field validators with specific messages, shared by the UI (as typed, through IPC) and the backend
//! (before any request). Each returns the normalised value or a message that says what is wrong.

/// US states, DC and the territories and military "states" USPS delivers to.
pub const US_STATES: [&str; 62] = [
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY", "LA", "ME",
    "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA",
    "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "DC", "AS", "GU", "MP", "PR", "VI", "UM",
    "AA", "AE", "AP", "FM", "MH",
];

/// The names the state list shows, in the order of [`US_STATES`] (a test holds the two together).
pub const US_STATE_NAMES: [(&str, &str); 62] = [
    ("AL", "Alabama"),
    ("AK", "Alaska"),
    ("AZ", "Arizona"),
    ("AR", "Arkansas"),
    ("CA", "California"),
    ("CO", "Colorado"),
    ("CT", "Connecticut"),
    ("DE", "Delaware"),
    ("FL", "Florida"),
    ("GA", "Georgia"),
    ("HI", "Hawaii"),
    ("ID", "Idaho"),
    ("IL", "Illinois"),
    ("IN", "Indiana"),
    ("IA", "Iowa"),
    ("KS", "Kansas"),
    ("KY", "Kentucky"),
    ("LA", "Louisiana"),
    ("ME", "Maine"),
    ("MD", "Maryland"),
    ("MA", "Massachusetts"),
    ("MI", "Michigan"),
    ("MN", "Minnesota"),
    ("MS", "Mississippi"),
    ("MO", "Missouri"),
    ("MT", "Montana"),
    ("NE", "Nebraska"),
    ("NV", "Nevada"),
    ("NH", "New Hampshire"),
    ("NJ", "New Jersey"),
    ("NM", "New Mexico"),
    ("NY", "New York"),
    ("NC", "North Carolina"),
    ("ND", "North Dakota"),
    ("OH", "Ohio"),
    ("OK", "Oklahoma"),
    ("OR", "Oregon"),
    ("PA", "Pennsylvania"),
    ("RI", "Rhode Island"),
    ("SC", "South Carolina"),
    ("SD", "South Dakota"),
    ("TN", "Tennessee"),
    ("TX", "Texas"),
    ("UT", "Utah"),
    ("VT", "Vermont"),
    ("VA", "Virginia"),
    ("WA", "Washington"),
    ("WV", "West Virginia"),
    ("WI", "Wisconsin"),
    ("WY", "Wyoming"),
    ("DC", "District of Columbia"),
    ("AS", "American Samoa"),
    ("GU", "Guam"),
    ("MP", "Northern Mariana Islands"),
    ("PR", "Puerto Rico"),
    ("VI", "U.S. Virgin Islands"),
    ("UM", "U.S. Minor Outlying Islands"),
    ("AA", "Armed Forces Americas (APO/FPO)"),
    ("AE", "Armed Forces Europe, Middle East, Africa, Canada (APO/FPO)"),
    ("AP", "Armed Forces Pacific (APO/FPO)"),
    ("FM", "Micronesia"),
    ("MH", "Marshall Islands"),
];

/// Why typed text was refused, in words for the field it was typed in (the caller names the field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(String);

impl Invalid {
    /// The problem of the form's `field`.
    pub fn at(self, field: &str) -> crate::error::FieldProblem {
        crate::error::FieldProblem { field: field.into(), message: self.0 }
    }
}

impl From<&str> for Invalid {
    fn from(why: &str) -> Self {
        Invalid(why.to_string())
    }
}

impl From<String> for Invalid {
    fn from(why: String) -> Self {
        Invalid(why)
    }
}

pub fn email(v: &str) -> Result<String, Invalid> {
    let v = v.trim();
    let (local, domain) = v.split_once('@').ok_or("an e-mail address needs an @, like name@example.com")?;
    if local.is_empty() || domain.contains('@') {
        return Err("an e-mail address has one @ with a name before it".into());
    }
    if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
        return Err("the part after @ must be a domain, like example.com".into());
    }
    if v.len() > 254 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("an e-mail address has no spaces and at most 254 characters".into());
    }
    Ok(v.to_string())
}

pub fn us_state(v: &str) -> Result<String, Invalid> {
    let v = v.trim().to_ascii_uppercase();
    if US_STATES.contains(&v.as_str()) {
        Ok(v)
    } else {
        Err("use the two-letter USPS state code, like TX or NY".into())
    }
}

/// ZIP or ZIP+4 (`78756` or `78756-1234`).
pub fn zip(v: &str) -> Result<String, Invalid> {
    let v = v.trim();
    // Compare bytes, never slice the &str: a typed or pasted non-ASCII character (an en dash from a
    // word processor, an accented letter) must be refused, not split mid-character.
    let digits = |b: &[u8]| b.iter().all(u8::is_ascii_digit);
    let ok = match v.as_bytes() {
        b if b.len() == 5 => digits(b),
        b if b.len() == 10 => digits(&b[..5]) && b[5] == b'-' && digits(&b[6..]),
        _ => false,
    };
    if ok {
        Ok(v.to_string())
    } else {
        Err("a ZIP code is 5 digits, or ZIP+4 like 78756-1234".into())
    }
}

/// A US phone number: 10 digits (a leading 1 is dropped); punctuation is allowed as typed.
pub fn phone(v: &str) -> Result<String, Invalid> {
    if v.chars().any(|c| !(c.is_ascii_digit() || " ()-.+".contains(c))) {
        return Err("a phone number has only digits, spaces, ( ) - . +".into());
    }
    let digits: String = v.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = if digits.len() == 11 && digits.starts_with('1') { digits[1..].to_string() } else { digits };
    if digits.len() != 10 {
        return Err(Invalid::from(format!("a US phone number has 10 digits; this has {}", digits.len())));
    }
    Ok(digits)
}

/// The code from the Stamps.com text message: letters and digits, as ShipEngine sends them.
pub fn sms_code(v: &str) -> Result<String, Invalid> {
    let v = v.trim();
    if v.is_empty() || v.len() > 16 || !v.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err("enter the code from the text message".into());
    }
    Ok(v.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
pub enum CardType {
    Visa,
    MasterCard,
    AmericanExpress,
    Discover,
}

impl CardType {
    /// The value ShipEngine's registration takes in `credit_card.type`.
    pub fn api_name(self) -> &'static str {
        match self {
            CardType::Visa => "Visa",
            CardType::MasterCard => "MasterCard",
            CardType::AmericanExpress => "AmericanExpress",
            CardType::Discover => "Discover",
        }
    }

    /// The type from the number's prefix (IIN ranges).
    pub fn infer(digits: &str) -> Option<CardType> {
        let n = |len: usize| digits.get(..len).and_then(|p| p.parse::<u32>().ok());
        if digits.starts_with('4') {
            Some(CardType::Visa)
        } else if matches!(n(2), Some(51..=55)) || matches!(n(4), Some(2221..=2720)) {
            Some(CardType::MasterCard)
        } else if matches!(n(2), Some(34 | 37)) {
            Some(CardType::AmericanExpress)
        } else if digits.starts_with("6011") || digits.starts_with("65") || matches!(n(3), Some(644..=649)) {
            Some(CardType::Discover)
        } else {
            None
        }
    }

    fn lengths(self) -> &'static [usize] {
        match self {
            CardType::AmericanExpress => &[15],
            CardType::Visa => &[13, 16, 19],
            _ => &[16],
        }
    }
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .chars()
        .rev()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A card number (spaces and dashes allowed as typed): digits, type and Luhn check.
pub fn card_number(v: &str) -> Result<(String, CardType), Invalid> {
    if v.chars().any(|c| !(c.is_ascii_digit() || c == ' ' || c == '-')) {
        return Err("a card number has only digits (spaces and dashes are fine)".into());
    }
    let digits: String = v.chars().filter(char::is_ascii_digit).collect();
    let kind = CardType::infer(&digits)
        .ok_or("this card type is not accepted: use Visa, MasterCard, American Express or Discover")?;
    if !kind.lengths().contains(&digits.len()) {
        return Err(Invalid::from(format!(
            "a {} number has {} digits; this has {}",
            kind.api_name(),
            kind.lengths().iter().map(|l| l.to_string()).collect::<Vec<_>>().join(" or "),
            digits.len()
        )));
    }
    if !luhn(&digits) {
        return Err("this card number has a typo: its check digit does not match".into());
    }
    Ok((digits, kind))
}

/// Expiry month/year, not in the past (a card is valid through the end of its month).
pub fn card_expiry(month: &str, year: &str, today: (u32, u32)) -> Result<(String, String), Invalid> {
    let m: u32 = month.trim().parse().map_err(|_| Invalid::from("the expiry month is a number from 01 to 12"))?;
    if !(1..=12).contains(&m) {
        return Err("the expiry month is a number from 01 to 12".into());
    }
    let y: u32 = year.trim().parse().map_err(|_| Invalid::from("the expiry year has four digits, like 2028"))?;
    let y = if year.trim().len() == 2 { 2000 + y } else { y };
    if !(2000..=2100).contains(&y) {
        return Err("the expiry year has four digits, like 2028".into());
    }
    let (cur_y, cur_m) = today;
    if (y, m) < (cur_y, cur_m) {
        return Err("this card has expired".into());
    }
    Ok((format!("{m:02}"), y.to_string()))
}

/// Text that must be present (name, address line, city…), at most `max` characters.
pub fn required(v: &str, what: &str, max: usize) -> Result<String, Invalid> {
    let v = v.trim();
    if v.is_empty() {
        return Err(Invalid::from(format!("enter the {what}")));
    }
    if v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(Invalid::from(format!("the {what} has at most {max} characters")));
    }
    Ok(v.to_string())
}

/// Digits as typed: spaces are allowed between groups (people copy "2053 8353"); anything else is not.
fn digits_as_typed(v: &str, what: &str) -> Result<String, Invalid> {
    let v = v.trim();
    if v.is_empty() {
        return Err(Invalid::from(format!("enter your {what}")));
    }
    if v.chars().any(|c| !(c.is_ascii_digit() || c == ' ')) {
        return Err(Invalid::from(format!("a {what} has only digits")));
    }
    Ok(v.chars().filter(char::is_ascii_digit).collect())
}

/// CRID (Customer Registration ID). USPS Payments API v3.1.14, schema `CRID`: a string of
/// `minLength 2, maxLength 18`, "a USPS-generated numeric code"; every USPS example has 8 digits.
pub fn crid(v: &str) -> Result<String, Invalid> {
    let d = digits_as_typed(v, "CRID")?;
    if !(2..=18).contains(&d.len()) {
        return Err(Invalid::from(format!("a CRID has 2 to 18 digits (usually 8); this has {}", d.len())));
    }
    Ok(d)
}

/// MID / manifest MID / Returns MID (Mailer ID). USPS Payments API v3.1.14, schemas `MID` and
/// `ManifestMID`: `^(\d{6}|\d{9})$`. Postal Bulletin 22290: 6-digit MIDs start with 0–8 and
/// 9-digit MIDs start with 9 (the first digit tells the barcode which length follows).
pub fn mid(v: &str, what: &str) -> Result<String, Invalid> {
    let d = digits_as_typed(v, what)?;
    match d.len() {
        6 if d.starts_with('9') => {
            Err(Invalid::from(format!("a 6-digit {what} starts with 0 to 8; one starting with 9 has 9 digits")))
        }
        9 if !d.starts_with('9') => {
            Err(Invalid::from(format!("a 9-digit {what} starts with 9; one starting with 0 to 8 has 6 digits")))
        }
        6 | 9 => Ok(d),
        n => Err(Invalid::from(format!("a {what} has 6 or 9 digits; this has {n}"))),
    }
}

/// EPS (Enterprise Payment System) account number: "your 10-digit EPA number" (USPS EPS Account
/// Creation guide); the Payments API itself only says digits (`^\d+$`, example "1234567890").
pub fn eps_account(v: &str) -> Result<String, Invalid> {
    let d = digits_as_typed(v, "EPS account number")?;
    if d.len() != 10 {
        return Err(Invalid::from(format!("an EPS account number has 10 digits; this has {}", d.len())));
    }
    Ok(d)
}

/// Permit number. The Payments API gives no pattern (`permitNumber: string`); permit imprint numbers
/// are printed as digits, but that is not confirmed for every permit type, so letters are let
/// through and USPS has the last word.
pub fn permit_number(v: &str) -> Result<String, Invalid> {
    let v = v.trim();
    if v.is_empty() {
        return Err("enter your permit number".into());
    }
    if v.len() > 20 || !v.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err("a permit number has only letters and digits, at most 20".into());
    }
    Ok(v.to_string())
}

/// The ZIP Code of a permit: Payments API `permitZIPCode` `^\d{5}$` (no ZIP+4 here).
pub fn permit_zip(v: &str) -> Result<String, Invalid> {
    let v = v.trim();
    if v.len() != 5 || !v.chars().all(|c| c.is_ascii_digit()) {
        return Err("the permit ZIP Code is 5 digits, like 78756".into());
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for good in ["john.doe@example.com", " a@b.co ", "x+tag@sub.example.org"] {
            assert!(email(good).is_ok(), "{good}");
        }
        for (bad, msg) in [
            ("john", "needs an @"),
            ("@example.com", "one @"),
            ("a@b@c.com", "one @"),
            ("a@localhost", "domain"),
            ("a@.com", "domain"),
            ("a@b..com", "domain"),
            ("a b@c.com", "no spaces"),
        ] {
            assert!(email(bad).unwrap_err().to_string().contains(msg), "{bad}");
        }
    }

    #[test]
    fn every_state_has_its_name_in_the_same_order() {
        let codes: Vec<&str> = US_STATE_NAMES.iter().map(|(c, _)| *c).collect();
        assert_eq!(codes, US_STATES);
        assert!(US_STATE_NAMES.iter().all(|(_, n)| !n.is_empty()));
    }

    #[test]
    fn states_zips_phones() {
        assert_eq!(us_state("tx").unwrap(), "TX");
        assert_eq!(us_state("PR").unwrap(), "PR");
        for bad in ["Texas", "XX", "", "T"] {
            assert!(us_state(bad).is_err(), "{bad}");
        }
        for good in ["78756", "78756-1234"] {
            assert_eq!(zip(good).unwrap(), good);
        }
        for bad in ["7875", "787561", "78756-12", "78756 1234", "ABCDE", "78756-123a"] {
            assert!(zip(bad).is_err(), "{bad}");
        }
        assert_eq!(phone("111-111-1111").unwrap(), "1111111111");
        assert_eq!(phone("+1 (512) 111-2222").unwrap(), "5121112222");
        assert!(phone("512-111-222").unwrap_err().to_string().contains("this has 9"));
        assert!(phone("512-CALL-NOW").unwrap_err().to_string().contains("only digits"));
    }

    #[test]
    fn cards() {
        assert_eq!(card_number("4111 1111 1111 1111").unwrap(), ("4111111111111111".into(), CardType::Visa));
        assert_eq!(card_number("5555-5555-5555-4444").unwrap().1, CardType::MasterCard);
        assert_eq!(card_number("2223003122003222").unwrap().1, CardType::MasterCard);
        assert_eq!(card_number("378282246310005").unwrap().1, CardType::AmericanExpress);
        assert_eq!(card_number("6011111111111117").unwrap().1, CardType::Discover);
        assert!(card_number("4111111111111112").unwrap_err().to_string().contains("typo"));
        assert!(card_number("411111111111111").unwrap_err().to_string().contains("this has 15"));
        assert!(card_number("9111111111111111").unwrap_err().to_string().contains("not accepted"));
        assert!(card_number("4111x").unwrap_err().to_string().contains("only digits"));
        assert!(card_number("").is_err());
    }

    #[test]
    fn expiry() {
        let today = (2026, 11);
        assert_eq!(card_expiry("7", "2030", today).unwrap(), ("07".into(), "2030".into()));
        assert_eq!(card_expiry("11", "26", today).unwrap(), ("11".into(), "2026".into()));
        assert!(card_expiry("10", "2026", today).unwrap_err().to_string().contains("expired"));
        assert!(card_expiry("13", "2030", today).unwrap_err().to_string().contains("01 to 12"));
        assert!(card_expiry("ab", "2030", today).is_err());
        assert!(card_expiry("1", "3030", today).unwrap_err().to_string().contains("four digits"));
    }

    #[test]
    fn required_text() {
        assert_eq!(required("  Austin ", "city", 50).unwrap(), "Austin");
        assert!(required(" ", "city", 50).unwrap_err().to_string().contains("enter the city"));
        assert!(required(&"x".repeat(51), "city", 50).unwrap_err().to_string().contains("at most 50"));
    }

    /// Each case: the input and either the normalised value or a part of the message.
    fn table(f: impl Fn(&str) -> Result<String, Invalid>, cases: &[(&str, Result<&str, &str>)]) {
        for (v, want) in cases {
            match (f(v), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, *w, "{v:?}"),
                (Err(msg), Err(w)) => assert!(msg.to_string().contains(w), "{v:?}: {msg:?} lacks {w:?}"),
                (got, w) => panic!("{v:?}: got {got:?}, wanted {w:?}"),
            }
        }
    }

    #[test]
    fn usps_identifiers() {
        // (input, Ok(normalised) or Err(part of the message))
        let crids: &[(&str, Result<&str, &str>)] = &[
            ("20538353", Ok("20538353")),
            (" 2053 8353 ", Ok("20538353")),
            ("12", Ok("12")),
            ("1", Err("2 to 18 digits (usually 8); this has 1")),
            (&"1".repeat(19), Err("this has 19")),
            ("2053-8353", Err("only digits")),
            ("", Err("enter your CRID")),
        ];
        table(crid, crids);
        let mids: &[(&str, Result<&str, &str>)] = &[
            ("901234567", Ok("901234567")),
            ("123456", Ok("123456")),
            ("012345", Ok("012345")),
            ("899999", Ok("899999")),
            ("912345", Err("a 6-digit MID starts with 0 to 8")),
            ("123456789", Err("a 9-digit MID starts with 9")),
            ("1234567", Err("6 or 9 digits; this has 7")),
            ("90123456a", Err("only digits")),
            (" ", Err("enter your MID")),
        ];
        table(|v| mid(v, "MID"), mids);
        assert!(mid("91234", "manifest MID").unwrap_err().to_string().starts_with("a manifest MID has 6 or 9"));
        assert_eq!(eps_account("1000000001").unwrap(), "1000000001");
        assert_eq!(eps_account("10000 00001").unwrap(), "1000000001");
        assert!(eps_account("100000001").unwrap_err().to_string().contains("10 digits; this has 9"));
        assert!(eps_account("1000000001x").unwrap_err().to_string().contains("only digits"));
        assert_eq!(permit_number(" 1234 ").unwrap(), "1234");
        assert!(permit_number("12-34").unwrap_err().to_string().contains("letters and digits"));
        assert!(permit_number("").unwrap_err().to_string().contains("enter your permit number"));
        assert_eq!(permit_zip("78756").unwrap(), "78756");
        for bad in ["7875", "78756-1234", "ABCDE", ""] {
            assert!(permit_zip(bad).unwrap_err().to_string().contains("5 digits"), "{bad}");
        }
    }
}
