//! What keeps the broker stateless and makes a caught code useless without the app:
//!
//! - the **signed state**: the `state` sent to USPS carries the app's PKCE challenge and an expiry,
//!   signed (HMAC-SHA256) with the broker key, so any instance can check a verifier against it later
//!   without having stored anything;
//! - the **sealed code**: the code USPS returns is encrypted (AES-256-GCM-SIV) to the state it
//!   answered before it travels on to `uspslink://`. Whoever catches that redirect can neither read
//!   the code nor move it to a state of their own; only the app holding the verifier can spend it.
//!
//! USPS does not check PKCE (its OAuth v3 examples use client secrets only), which is why the broker
//! does. Both keys come from one broker secret through HKDF; instances that share the secret serve
//! the same users.

use aes_gcm_siv::aead::{AeadInOut, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;
/// AES-GCM-SIV's nonce (RFC 8452: 96 bits).
const NONCE_LEN: usize = 12;

/// Random bytes from the operating system.
fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the system random source");
    bytes
}

/// How long a sign-in may take from *Link* to the exchange: the app gives the browser ten minutes,
/// USPS a code five; the rest is slack for a slow machine.
pub const STATE_TTL_SECS: u64 = 15 * 60;

/// The shortest broker secret accepted (256 bits).
pub const MIN_SECRET_LEN: usize = 32;

const STATE_VERSION: u8 = 1;
const CODE_VERSION: u8 = 1;
const CHALLENGE_LEN: usize = 32;
const NONCE_BYTES: usize = 16;
const TAG_LEN: usize = 32;
/// version, expiry, challenge, nonce, tag.
const STATE_LEN: usize = 1 + 8 + CHALLENGE_LEN + NONCE_BYTES + TAG_LEN;
/// The longest text taken as a state or a sealed code: anything longer is refused unread.
pub const MAX_TOKEN_TEXT: usize = 2048;

/// Why a state, a sealed code or a verifier was refused. Said to the app as `invalid_grant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a state this service issued (forged, damaged, or signed with another key).
    StateNotIssuedHere,
    StateExpired,
    /// The code was not sealed here for this state.
    CodeNotForThisState,
    /// The verifier does not hash to the challenge the sign-in started with.
    VerifierMismatch,
    /// The PKCE challenge sent at the start is not an S256 challenge.
    BadChallenge,
}

impl Refusal {
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::StateNotIssuedHere => "this sign-in was not started through this sign-in service",
            Refusal::StateExpired => "this sign-in took too long; start it again",
            Refusal::CodeNotForThisState => "the authorization code does not belong to this sign-in",
            Refusal::VerifierMismatch => "the code verifier does not match this sign-in",
            Refusal::BadChallenge => "code_challenge must be a 43-character S256 PKCE challenge",
        }
    }
}

/// What a verified state says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateClaims {
    challenge: [u8; CHALLENGE_LEN],
    pub expires_at: u64,
}

impl StateClaims {
    /// PKCE S256: `BASE64URL(SHA256(verifier)) == challenge`, compared in constant time.
    pub fn verifier_matches(&self, verifier: &str) -> bool {
        if !(43..=128).contains(&verifier.len()) {
            return false;
        }
        Sha256::digest(verifier.as_bytes()).as_slice().ct_eq(&self.challenge).into()
    }
}

/// The broker's keys, derived from its secret.
pub struct Keys {
    state: HmacSha256,
    code: Aes256GcmSiv,
}

impl Keys {
    /// Keys from the broker secret (the key file's bytes). Too short a secret is refused.
    pub fn from_secret(secret: &[u8]) -> Result<Keys, String> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(format!(
                "the broker key must hold at least {MIN_SECRET_LEN} bytes (it holds {})",
                secret.len()
            ));
        }
        let prk = Hkdf::<Sha256>::new(Some(b"uspslink-broker v1"), secret);
        let (mut state_key, mut code_key) = ([0u8; 32], [0u8; 32]);
        prk.expand(b"state signature", &mut state_key).map_err(|_| "HKDF failed".to_string())?;
        prk.expand(b"code seal", &mut code_key).map_err(|_| "HKDF failed".to_string())?;
        let state = HmacSha256::new_from_slice(&state_key).map_err(|_| "HMAC key".to_string())?;
        let code = Aes256GcmSiv::new_from_slice(&code_key).map_err(|_| "AES-256-GCM-SIV key".to_string())?;
        Ok(Keys { state, code })
    }

    /// Keys from a fresh random secret: one instance only, and sign-ins do not survive a restart.
    pub fn random() -> Keys {
        Keys::from_secret(&random::<32>()).expect("32 bytes")
    }

    /// A state for a sign-in that starts with `challenge` (base64url, 43 characters) at `now`.
    pub fn issue_state(&self, challenge: &str, now: u64) -> Result<String, Refusal> {
        let challenge = decode_challenge(challenge).ok_or(Refusal::BadChallenge)?;
        let mut body = Vec::with_capacity(STATE_LEN);
        body.push(STATE_VERSION);
        body.extend_from_slice(&(now + STATE_TTL_SECS).to_be_bytes());
        body.extend_from_slice(&challenge);
        body.extend_from_slice(&random::<NONCE_BYTES>());
        let tag = self.state.clone().chain_update(&body).finalize().into_bytes();
        body.extend_from_slice(&tag);
        Ok(B64.encode(body))
    }

    /// Check a state: issued here (any instance with the same secret), not expired.
    pub fn verify_state(&self, state: &str, now: u64) -> Result<StateClaims, Refusal> {
        if state.len() > MAX_TOKEN_TEXT {
            return Err(Refusal::StateNotIssuedHere);
        }
        let bytes = B64.decode(state).map_err(|_| Refusal::StateNotIssuedHere)?;
        if bytes.len() != STATE_LEN || bytes[0] != STATE_VERSION {
            return Err(Refusal::StateNotIssuedHere);
        }
        let (body, tag) = bytes.split_at(STATE_LEN - TAG_LEN);
        self.state.clone().chain_update(body).verify_slice(tag).map_err(|_| Refusal::StateNotIssuedHere)?;
        let expires_at = u64::from_be_bytes(body[1..9].try_into().expect("8 bytes"));
        if now > expires_at {
            return Err(Refusal::StateExpired);
        }
        let mut challenge = [0u8; CHALLENGE_LEN];
        challenge.copy_from_slice(&body[9..9 + CHALLENGE_LEN]);
        Ok(StateClaims { challenge, expires_at })
    }

    /// Encrypt USPS's code to the state it answered.
    pub fn seal_code(&self, code: &str, state: &str) -> String {
        let nonce = random::<NONCE_LEN>();
        let mut sealed = code.as_bytes().to_vec();
        self.code
            .encrypt_in_place(&Nonce::from(nonce), &aad(state), &mut sealed)
            .expect("AES-GCM-SIV seals any length the callback accepts");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(CODE_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        B64.encode(out)
    }

    /// The code sealed for `state`, or a refusal if it was sealed elsewhere, for another state, or
    /// altered.
    pub fn open_code(&self, sealed: &str, state: &str) -> Result<String, Refusal> {
        if sealed.len() > MAX_TOKEN_TEXT {
            return Err(Refusal::CodeNotForThisState);
        }
        let bytes = B64.decode(sealed).map_err(|_| Refusal::CodeNotForThisState)?;
        if bytes.len() < 1 + NONCE_LEN + 16 || bytes[0] != CODE_VERSION {
            return Err(Refusal::CodeNotForThisState);
        }
        let nonce: [u8; NONCE_LEN] = bytes[1..1 + NONCE_LEN].try_into().expect("NONCE_LEN bytes");
        let mut body = bytes[1 + NONCE_LEN..].to_vec();
        self.code
            .decrypt_in_place(&Nonce::from(nonce), &aad(state), &mut body)
            .map_err(|_| Refusal::CodeNotForThisState)?;
        String::from_utf8(body).map_err(|_| Refusal::CodeNotForThisState)
    }
}

/// The sealed code is bound to the whole state text (which already binds the challenge).
fn aad(state: &str) -> Vec<u8> {
    let mut a = b"uspslink code for state ".to_vec();
    a.extend_from_slice(state.as_bytes());
    a
}

fn decode_challenge(challenge: &str) -> Option<[u8; CHALLENGE_LEN]> {
    if challenge.len() != 43 {
        return None;
    }
    B64.decode(challenge).ok()?.try_into().ok()
}

/// The S256 challenge of a verifier (for clients and tests).
pub fn challenge_of(verifier: &str) -> String {
    B64.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const VERIFIER: &str = "a-verifier-of-forty-three-characters-or-more-0123";

    /// A state signed with the standard constructions (HKDF-SHA256, then HMAC-SHA256), made outside
    /// Rust (Python's hmac and hashlib) for a key file of 32 bytes 0x07: states issued before a
    /// change of crypto library, or by another instance, keep verifying.
    #[test]
    fn a_state_signed_by_the_standard_constructions_verifies() {
        let keys = Keys::from_secret(&[7u8; 32]).unwrap();
        let state = "AQAAAAD0hlcAsv7mOGT4szSfQZveIn8IfwAWMiciFGyISaxVz5mKBVgAAQIDBAUGBwgJCgsMDQ4P1wx4LjwYNt_0_Iw6INVKT-pNbPszTkIldNwr5s94NTM";
        let claims = keys.verify_state(state, 1_000).unwrap();
        assert_eq!(claims.expires_at, 4_102_444_800);
        assert!(
            claims.verifier_matches("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-verifier-for-the-known-answer-test")
        );
        assert_eq!(Keys::from_secret(&[8u8; 32]).unwrap().verify_state(state, 1_000), Err(Refusal::StateNotIssuedHere));
    }

    #[test]
    fn a_state_carries_the_challenge_and_checks_the_verifier() {
        let keys = Keys::random();
        let state = keys.issue_state(&challenge_of(VERIFIER), 1_000).unwrap();
        assert!(state.len() < 130, "short enough for a URL parameter: {}", state.len());
        let claims = keys.verify_state(&state, 1_000 + STATE_TTL_SECS).unwrap();
        assert!(claims.verifier_matches(VERIFIER));
        assert!(!claims.verifier_matches("another-verifier-of-forty-three-characters-xx"));
        assert!(!claims.verifier_matches(""));
        assert_eq!(keys.verify_state(&state, 1_001 + STATE_TTL_SECS), Err(Refusal::StateExpired));
        // Two sign-ins with the same challenge still get different states.
        assert_ne!(state, keys.issue_state(&challenge_of(VERIFIER), 1_000).unwrap());
    }

    #[test]
    fn instances_sharing_the_secret_agree_and_others_do_not() {
        let secret = [7u8; 32];
        let (a, b) = (Keys::from_secret(&secret).unwrap(), Keys::from_secret(&secret).unwrap());
        let state = a.issue_state(&challenge_of(VERIFIER), 10).unwrap();
        assert!(b.verify_state(&state, 10).is_ok());
        let sealed = b.seal_code("ABCD1234", &state);
        assert_eq!(a.open_code(&sealed, &state).unwrap(), "ABCD1234");
        let other = Keys::random();
        assert_eq!(other.verify_state(&state, 10), Err(Refusal::StateNotIssuedHere));
        assert_eq!(other.open_code(&sealed, &state), Err(Refusal::CodeNotForThisState));
        assert!(Keys::from_secret(&[1u8; 31]).is_err(), "a short secret is refused");
    }

    #[test]
    fn a_sealed_code_cannot_be_read_or_moved_to_another_state() {
        let keys = Keys::random();
        let victim = keys.issue_state(&challenge_of(VERIFIER), 10).unwrap();
        let attacker = keys.issue_state(&challenge_of("attacker-verifier-of-forty-three-characters"), 10).unwrap();
        let sealed = keys.seal_code("ABCD1234", &victim);
        assert!(!sealed.contains("ABCD1234"));
        assert_eq!(keys.open_code(&sealed, &attacker), Err(Refusal::CodeNotForThisState));
        // One bit changed anywhere: refused.
        let mut bytes = B64.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(keys.open_code(&B64.encode(bytes), &victim), Err(Refusal::CodeNotForThisState));
        // The state's signature covers every byte too.
        let mut st = B64.decode(&victim).unwrap();
        st[12] ^= 1;
        assert_eq!(keys.verify_state(&B64.encode(st), 10), Err(Refusal::StateNotIssuedHere));
    }

    #[test]
    fn challenges_must_be_s256_shaped() {
        let keys = Keys::random();
        for bad in ["", "short", &"A".repeat(44), &"!".repeat(43)] {
            assert_eq!(keys.issue_state(bad, 0), Err(Refusal::BadChallenge), "{bad}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]
        // Whatever arrives as a state, a code or a verifier (a URL parameter, a JSON field), the
        // broker answers without panicking and never accepts it.
        #[test]
        fn arbitrary_text_is_never_accepted(state in "\\PC*", sealed in "\\PC*", verifier in "\\PC*") {
            let keys = Keys::random();
            prop_assert!(keys.verify_state(&state, 0).is_err());
            prop_assert!(keys.open_code(&sealed, &state).is_err());
            prop_assert!(keys.issue_state(&verifier, 0).is_err() || verifier.len() == 43);
            let real = keys.issue_state(&challenge_of(VERIFIER), 0).unwrap();
            let claims = keys.verify_state(&real, 0).unwrap();
            prop_assert!(!claims.verifier_matches(&verifier) || verifier == VERIFIER);
        }
    }
}
