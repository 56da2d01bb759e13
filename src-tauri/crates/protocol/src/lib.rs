//! What the uspslink app and its sign-in service (`uspslink-broker`) agree on about the
//! `uspslink://oauth/callback` link: the one rule for the OAuth `error` and `error_description`
//! values the service hands on (and the app's deep-link parser accepts), and the longest state.
//!
//! One rule on both sides, so whatever the service hands on the app takes, and a value the app
//! would refuse (a whole failed sign-in dropped without a word) cannot be produced by the service.
//!
//! The character set is RFC 6749's for `error` and `error_description` (§4.1.2.1, §5.2):
//! `%x20-21 / %x23-5B / %x5D-7E`, printable ASCII without `"` and `\`.
//!
//! [`sign_in`] holds the service's HTTP API: its paths, request bodies and own answers.

pub mod sign_in;

/// The longest `error` handed on (RFC 6749 sets none; USPS's are short words).
pub const MAX_ERROR_CODE_LEN: usize = 64;
/// The longest `error_description` handed on: a sentence, never a page.
pub const MAX_ERROR_DESCRIPTION_LEN: usize = 300;
/// The longest `state` the app takes from a deep link.
pub const MAX_STATE_LEN: usize = 256;

/// A character RFC 6749 allows in `error` and `error_description`.
pub fn is_oauth_error_char(c: char) -> bool {
    matches!(c, '\x20'..='\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E')
}

fn within(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len()) && s.chars().all(is_oauth_error_char)
}

/// An OAuth `error` value as it may travel to `uspslink://`: 1 to [`MAX_ERROR_CODE_LEN`] bytes of
/// the RFC 6749 characters.
pub fn is_oauth_error_code(s: &str) -> bool {
    within(s, MAX_ERROR_CODE_LEN)
}

/// An OAuth `error_description` as it may travel to `uspslink://`: 1 to
/// [`MAX_ERROR_DESCRIPTION_LEN`] bytes of the RFC 6749 characters.
pub fn is_oauth_error_description(s: &str) -> bool {
    within(s, MAX_ERROR_DESCRIPTION_LEN)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_rfc_6749_characters_and_lengths() {
        for ok in ["access_denied", "login_failed", "a", "x y!#[]~", &"e".repeat(MAX_ERROR_CODE_LEN)] {
            assert!(is_oauth_error_code(ok), "{ok:?}");
        }
        for bad in ["", "quote\"d", "back\\slash", "tab\there", "new\nline", "caf\u{e9}", "\u{7f}", "\0"] {
            assert!(!is_oauth_error_code(bad), "{bad:?}");
            assert!(!is_oauth_error_description(bad), "{bad:?}");
        }
        assert!(!is_oauth_error_code(&"e".repeat(MAX_ERROR_CODE_LEN + 1)));
        let sentence = "The user denied the request.";
        assert!(is_oauth_error_description(sentence));
        assert!(is_oauth_error_description(&"d".repeat(MAX_ERROR_DESCRIPTION_LEN)));
        assert!(!is_oauth_error_description(&"d".repeat(MAX_ERROR_DESCRIPTION_LEN + 1)));
        // Every edge of the three ranges.
        for c in ['\x20', '\x21', '\x23', '\x5B', '\x5D', '\x7E'] {
            assert!(is_oauth_error_char(c), "{c:?}");
        }
        for c in ['\x1F', '\x22', '\x5C', '\x7F', '\u{a0}'] {
            assert!(!is_oauth_error_char(c), "{c:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]
        // Whatever text arrives (a query parameter, a deep link), the predicates answer without
        // panicking, and they agree with the rule written out byte by byte.
        #[test]
        fn any_text_is_judged_by_the_byte_rule(s in "\\PC*", ascii in "[ -~]{0,400}") {
            for s in [s.as_str(), ascii.as_str()] {
                let bytes_ok = s.bytes().all(|b| (0x20..=0x7E).contains(&b) && b != b'"' && b != b'\\');
                prop_assert_eq!(is_oauth_error_code(s), bytes_ok && (1..=64).contains(&s.len()));
                prop_assert_eq!(is_oauth_error_description(s), bytes_ok && (1..=300).contains(&s.len()));
            }
        }
    }
}
