//! What lets any instance check a sign-in it never saw start, and makes a caught code useless
//! without the app (with the binding of each raw code to its first state, see `store.rs`):
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
//!
//! **Key rotation.** States and sealed codes name the key that made them (a 4-byte key id, also from
//! HKDF, so it tells nothing about the keys). New ones are always made with the current key; a
//! previous key, if configured, still verifies states and opens codes made before the switch, so
//! sign-ins in flight during a rotation finish. States and codes of the first layout (no key id) are
//! still taken, checked against both keys, for the sign-ins in flight when an instance is upgraded.

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

/// The layout with a key id (see the module doc); 1 is the first layout, still verified.
const STATE_VERSION: u8 = 2;
const CODE_VERSION: u8 = 2;
const FIRST_VERSION: u8 = 1;
const KEY_ID_LEN: usize = 4;
const CHALLENGE_LEN: usize = 32;
const NONCE_BYTES: usize = 16;
const TAG_LEN: usize = 32;
/// The first layout: version, expiry, challenge, nonce, tag.
const STATE_V1_LEN: usize = 1 + 8 + CHALLENGE_LEN + NONCE_BYTES + TAG_LEN;
/// version, key id, expiry, challenge, nonce, tag: 93 bytes, 124 characters of base64url.
const STATE_LEN: usize = 1 + KEY_ID_LEN + 8 + CHALLENGE_LEN + NONCE_BYTES + TAG_LEN;
/// The smallest AES-GCM-SIV output (its tag).
const SEAL_TAG_LEN: usize = 16;
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
    /// The code was not received at this service's callback for this sign-in (it was first seen
    /// with another state, or never): someone who saw the raw code is trying to spend it.
    CodeNotBound,
}

impl Refusal {
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::StateNotIssuedHere => "this sign-in was not started through this sign-in service",
            Refusal::StateExpired => "this sign-in took too long; start it again",
            Refusal::CodeNotForThisState => "the authorization code does not belong to this sign-in",
            Refusal::VerifierMismatch => "the code verifier does not match this sign-in",
            Refusal::BadChallenge => "code_challenge must be a 43-character S256 PKCE challenge",
            Refusal::CodeNotBound => "the authorization code was not received for this sign-in",
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

/// One broker secret's keys and the id that names them.
struct KeySet {
    id: [u8; KEY_ID_LEN],
    state: HmacSha256,
    code: Aes256GcmSiv,
}

impl KeySet {
    fn derive(secret: &[u8]) -> Result<KeySet, String> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(format!(
                "the broker key must hold at least {MIN_SECRET_LEN} bytes (it holds {})",
                secret.len()
            ));
        }
        let prk = Hkdf::<Sha256>::new(Some(b"uspslink-broker v1"), secret);
        let (mut state_key, mut code_key, mut id) = ([0u8; 32], [0u8; 32], [0u8; KEY_ID_LEN]);
        prk.expand(b"state signature", &mut state_key).map_err(|_| "HKDF failed".to_string())?;
        prk.expand(b"code seal", &mut code_key).map_err(|_| "HKDF failed".to_string())?;
        prk.expand(b"key id", &mut id).map_err(|_| "HKDF failed".to_string())?;
        let state = HmacSha256::new_from_slice(&state_key).map_err(|_| "HMAC key".to_string())?;
        let code = Aes256GcmSiv::new_from_slice(&code_key).map_err(|_| "AES-256-GCM-SIV key".to_string())?;
        Ok(KeySet { id, state, code })
    }

    fn tag_matches(&self, body: &[u8], tag: &[u8]) -> bool {
        self.state.clone().chain_update(body).verify_slice(tag).is_ok()
    }

    fn open(&self, nonce: &[u8], sealed: &[u8], state: &str) -> Option<Vec<u8>> {
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let mut body = sealed.to_vec();
        self.code.decrypt_in_place(&Nonce::from(nonce), &aad(state), &mut body).ok()?;
        Some(body)
    }
}

/// The broker's keys: the current one (everything new is made with it) and, during a rotation, the
/// previous one (only to verify and open what it made).
pub struct Keys {
    current: KeySet,
    previous: Option<KeySet>,
}

impl Keys {
    /// Keys from the broker secret (the key file's bytes). Too short a secret is refused.
    pub fn from_secret(secret: &[u8]) -> Result<Keys, String> {
        Ok(Keys { current: KeySet::derive(secret)?, previous: None })
    }

    /// Keys from a fresh random secret: one instance only, and sign-ins do not survive a restart.
    pub fn random() -> Keys {
        Keys::from_secret(&random::<32>()).expect("32 bytes")
    }

    /// Also accept states and sealed codes made with `previous_secret` (the key file before a
    /// rotation). Nothing new is made with it.
    pub fn with_previous(self, previous_secret: &[u8]) -> Result<Keys, String> {
        Ok(Keys { previous: Some(KeySet::derive(previous_secret)?), ..self })
    }

    /// The current key's id (not secret: it is in every state), for the log at start.
    pub fn key_id(&self) -> String {
        self.current.id.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The current and the previous key, in the order they are tried.
    fn all(&self) -> impl Iterator<Item = &KeySet> {
        std::iter::once(&self.current).chain(self.previous.as_ref())
    }

    fn by_id(&self, id: &[u8]) -> Option<&KeySet> {
        self.all().find(|k| k.id.as_slice() == id)
    }

    /// A state for a sign-in that starts with `challenge` (base64url, 43 characters) at `now`.
    pub fn issue_state(&self, challenge: &str, now: u64) -> Result<String, Refusal> {
        let challenge = decode_challenge(challenge).ok_or(Refusal::BadChallenge)?;
        let mut body = Vec::with_capacity(STATE_LEN);
        body.push(STATE_VERSION);
        body.extend_from_slice(&self.current.id);
        body.extend_from_slice(&(now + STATE_TTL_SECS).to_be_bytes());
        body.extend_from_slice(&challenge);
        body.extend_from_slice(&random::<NONCE_BYTES>());
        let tag = self.current.state.clone().chain_update(&body).finalize().into_bytes();
        body.extend_from_slice(&tag);
        Ok(B64.encode(body))
    }

    /// Check a state: issued here (any instance with the same secret, or with it as the previous
    /// key), not expired.
    pub fn verify_state(&self, state: &str, now: u64) -> Result<StateClaims, Refusal> {
        if state.len() > MAX_TOKEN_TEXT {
            return Err(Refusal::StateNotIssuedHere);
        }
        let bytes = B64.decode(state).map_err(|_| Refusal::StateNotIssuedHere)?;
        // Where the expiry starts: after the version, and the key id in the current layout.
        let (claims_at, signed) = match (bytes.first().copied(), bytes.len()) {
            (Some(STATE_VERSION), STATE_LEN) => {
                let (body, tag) = bytes.split_at(STATE_LEN - TAG_LEN);
                let key = self.by_id(&body[1..1 + KEY_ID_LEN]).ok_or(Refusal::StateNotIssuedHere)?;
                (1 + KEY_ID_LEN, key.tag_matches(body, tag))
            }
            (Some(FIRST_VERSION), STATE_V1_LEN) => {
                let (body, tag) = bytes.split_at(STATE_V1_LEN - TAG_LEN);
                (1, self.all().any(|k| k.tag_matches(body, tag)))
            }
            _ => return Err(Refusal::StateNotIssuedHere),
        };
        if !signed {
            return Err(Refusal::StateNotIssuedHere);
        }
        let expires_at = u64::from_be_bytes(bytes[claims_at..claims_at + 8].try_into().expect("8 bytes"));
        if now > expires_at {
            return Err(Refusal::StateExpired);
        }
        let mut challenge = [0u8; CHALLENGE_LEN];
        challenge.copy_from_slice(&bytes[claims_at + 8..claims_at + 8 + CHALLENGE_LEN]);
        Ok(StateClaims { challenge, expires_at })
    }

    /// Encrypt USPS's code to the state it answered, with the current key.
    pub fn seal_code(&self, code: &str, state: &str) -> String {
        let nonce = random::<NONCE_LEN>();
        let mut sealed = code.as_bytes().to_vec();
        self.current
            .code
            .encrypt_in_place(&Nonce::from(nonce), &aad(state), &mut sealed)
            .expect("AES-GCM-SIV seals any length the callback accepts");
        let mut out = Vec::with_capacity(1 + KEY_ID_LEN + NONCE_LEN + sealed.len());
        out.push(CODE_VERSION);
        out.extend_from_slice(&self.current.id);
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
        let opened = match bytes.first().copied() {
            Some(CODE_VERSION) if bytes.len() >= 1 + KEY_ID_LEN + NONCE_LEN + SEAL_TAG_LEN => {
                let (id, rest) = bytes[1..].split_at(KEY_ID_LEN);
                let (nonce, body) = rest.split_at(NONCE_LEN);
                self.by_id(id).and_then(|k| k.open(nonce, body, state))
            }
            Some(FIRST_VERSION) if bytes.len() >= 1 + NONCE_LEN + SEAL_TAG_LEN => {
                let (nonce, body) = bytes[1..].split_at(NONCE_LEN);
                self.all().find_map(|k| k.open(nonce, body, state))
            }
            _ => None,
        };
        String::from_utf8(opened.ok_or(Refusal::CodeNotForThisState)?).map_err(|_| Refusal::CodeNotForThisState)
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

    /// The same for the current layout (version 2, with the key id), made with this Python 3 (only
    /// the standard library), so it can be re-run:
    ///
    /// ```text
    /// import hmac, hashlib, base64
    /// def hkdf(ikm, salt, info, n):
    ///     prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    ///     out, t, i = b"", b"", 1
    ///     while len(out) < n:
    ///         t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest(); out += t; i += 1
    ///     return out[:n]
    /// secret = bytes([7]) * 32
    /// state_key = hkdf(secret, b"uspslink-broker v1", b"state signature", 32)
    /// key_id = hkdf(secret, b"uspslink-broker v1", b"key id", 4)           # 23a57120
    /// verifier = b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-verifier-for-the-known-answer-test"
    /// body = bytes([2]) + key_id + (4102444800).to_bytes(8, "big") + hashlib.sha256(verifier).digest() \
    ///     + bytes(range(16))
    /// state = body + hmac.new(state_key, body, hashlib.sha256).digest()
    /// print(base64.urlsafe_b64encode(state).rstrip(b"=").decode())
    /// ```
    #[test]
    fn a_state_of_the_current_layout_made_by_the_standard_constructions_verifies() {
        let state = "AiOlcSAAAAAA9IZXALL-5jhk-LM0n0Gb3iJ_CH8AFjInIhRsiEmsVc-ZigVYAAECAwQFBgcICQoLDA0OD8SyDWXqqS_ebWUhdcH3utmLRIui1xod1EUXFSrG6lFS";
        let keys = Keys::from_secret(&[7u8; 32]).unwrap();
        assert_eq!(keys.key_id(), "23a57120");
        let claims = keys.verify_state(state, 1_000).unwrap();
        assert_eq!(claims.expires_at, 4_102_444_800);
        assert!(
            claims.verifier_matches("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-verifier-for-the-known-answer-test")
        );
        // After a rotation the old key still verifies it as the previous key; without it, refused.
        let rotated = Keys::from_secret(&[8u8; 32]).unwrap().with_previous(&[7u8; 32]).unwrap();
        assert!(rotated.verify_state(state, 1_000).is_ok());
        assert_eq!(Keys::from_secret(&[8u8; 32]).unwrap().verify_state(state, 1_000), Err(Refusal::StateNotIssuedHere));
        // Our own issue makes the same layout: version 2, then this key's id.
        let ours = B64.decode(keys.issue_state(&challenge_of(VERIFIER), 0).unwrap()).unwrap();
        assert_eq!((ours.len(), ours[0], &ours[1..5]), (STATE_LEN, 2, &[0x23, 0xa5, 0x71, 0x20][..]));
    }

    #[test]
    fn a_rotation_keeps_what_the_previous_key_made_and_makes_everything_new_with_the_current_one() {
        let (old, new) = ([1u8; 32], [2u8; 32]);
        let before = Keys::from_secret(&old).unwrap();
        let state = before.issue_state(&challenge_of(VERIFIER), 10).unwrap();
        let sealed = before.seal_code("ABCD1234", &state);
        let after = Keys::from_secret(&new).unwrap().with_previous(&old).unwrap();
        assert!(after.verify_state(&state, 10).unwrap().verifier_matches(VERIFIER));
        assert_eq!(after.open_code(&sealed, &state).unwrap(), "ABCD1234");
        // New states and seals are the new key's: an instance still on the old key alone refuses them.
        let fresh = after.issue_state(&challenge_of(VERIFIER), 10).unwrap();
        assert_eq!(before.verify_state(&fresh, 10), Err(Refusal::StateNotIssuedHere));
        assert!(Keys::from_secret(&new).unwrap().verify_state(&fresh, 10).is_ok());
        let resealed = after.seal_code("ABCD1234", &state);
        assert_eq!(before.open_code(&resealed, &state), Err(Refusal::CodeNotForThisState));
        assert_eq!(Keys::from_secret(&new).unwrap().open_code(&resealed, &state).unwrap(), "ABCD1234");
        // A key that is neither: refused, whatever the key id says.
        let stranger = Keys::from_secret(&[3u8; 32]).unwrap();
        assert_eq!(stranger.verify_state(&state, 10), Err(Refusal::StateNotIssuedHere));
        assert_eq!(stranger.open_code(&sealed, &state), Err(Refusal::CodeNotForThisState));
        // A state whose key id was changed to the other key's does not verify under it.
        let mut moved = B64.decode(&state).unwrap();
        moved[1..5].copy_from_slice(&B64.decode(&fresh).unwrap()[1..5]);
        assert_eq!(after.verify_state(&B64.encode(moved), 10), Err(Refusal::StateNotIssuedHere));
        assert!(Keys::random().with_previous(&[1u8; 31]).is_err(), "a short previous key is refused too");
    }

    #[test]
    fn codes_sealed_in_the_first_layout_still_open() {
        // The first layout (no key id) as the previous release sealed it, rebuilt here from the parts.
        let keys = Keys::from_secret(&[7u8; 32]).unwrap().with_previous(&[9u8; 32]).unwrap();
        let state = keys.issue_state(&challenge_of(VERIFIER), 10).unwrap();
        let current = B64.decode(keys.seal_code("ABCD1234", &state)).unwrap();
        let mut first = vec![FIRST_VERSION];
        first.extend_from_slice(&current[1 + KEY_ID_LEN..]);
        assert_eq!(keys.open_code(&B64.encode(&first), &state).unwrap(), "ABCD1234");
        assert_eq!(keys.open_code(&B64.encode(&first), "another state"), Err(Refusal::CodeNotForThisState));
    }

    #[test]
    fn a_state_carries_the_challenge_and_checks_the_verifier() {
        let keys = Keys::random();
        let state = keys.issue_state(&challenge_of(VERIFIER), 1_000).unwrap();
        assert!(state.len() < 130, "short enough for a URL parameter: {}", state.len());
        assert!(state.len() <= uspslink_protocol::MAX_STATE_LEN, "within what the app takes");
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
