//! The link attempt: a fresh `state` and PKCE verifier per press of *Link*, the COP navigator
//! URL, and the store that accepts each state once, within [`ATTEMPT_TTL`].
#[allow(unused_imports)]
use super::*;

/// How long a started sign-in may take (sign-in + MFA + consent in the browser).
pub const ATTEMPT_TTL: Duration = Duration::from_secs(10 * 60);

/// A fresh random token (URL-safe, 256 bits): an OAuth state, or a per-run secret of the app's own.
pub fn random_token() -> String {
    CsrfToken::new_random_len(32).secret().clone()
}

/// One press of *Link your business account*: a fresh state and PKCE verifier.
#[derive(Debug)]
pub struct LinkAttempt {
    pub state: String,
    verifier: SecretString,
    pub redirect_uri: String,
    /// Whose USPS app the sign-in runs under: the exchange goes the same way.
    pub via: crate::settings::SignInMethod,
    /// The sign-in service the sign-in started at (its address), for [`SignInMethod::Service`]: its
    /// state is signed there, so the exchange goes there, and the tokens' refresh and revoke after.
    ///
    /// [`SignInMethod::Service`]: crate::settings::SignInMethod::Service
    pub service: Option<String>,
    created: Instant,
}

impl LinkAttempt {
    pub fn verifier(&self) -> &SecretString {
        &self.verifier
    }
}

/// The attempts the app is waiting for. A state is accepted once, within [`ATTEMPT_TTL`].
#[derive(Default)]
pub struct AttemptStore {
    open: HashMap<String, LinkAttempt>,
    /// States already answered (or expired), so a replay says so instead of "unknown".
    closed: Vec<String>,
}

/// A PKCE S256 pair made before the sign-in service is asked for a state: the challenge goes to
/// the service, the verifier stays here until the exchange.
pub struct PkcePair {
    pub challenge: String,
    verifier: SecretString,
}

impl PkcePair {
    pub fn new() -> Self {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        PkcePair { challenge: challenge.as_str().to_string(), verifier: SecretString::from(verifier.secret().clone()) }
    }
}

impl Default for PkcePair {
    fn default() -> Self {
        Self::new()
    }
}

/// What the app needs to open the browser (from the sign-in service's answer, or built here).
pub struct StartedAttempt {
    pub state: String,
    pub authorize_url: String,
}

impl AttemptStore {
    /// Start an attempt and build the authorize URL (COP navigator query + PKCE S256).
    pub fn begin(
        &mut self,
        authorize_base: &str,
        client_id: &str,
        redirect_uri: &str,
        now: Instant,
    ) -> Result<StartedAttempt, LinkError> {
        let mut url = url::Url::parse(authorize_base).map_err(|_| {
            LinkError::NotConfigured(format!("the USPS sign-in address {authorize_base:?} is not a URL"))
        })?;
        if client_id.is_empty() {
            return Err(LinkError::NotConfigured("enter your USPS consumer key in Settings first".into()));
        }
        self.expire(now);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = CsrfToken::new_random().secret().clone();
        url.query_pairs_mut()
            .append_pair("wf", "apis_merchant_user")
            .append_pair("client_id", client_id)
            .append_pair("state", &state)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", "S256");
        self.open.insert(
            state.clone(),
            LinkAttempt {
                state: state.clone(),
                verifier: SecretString::from(verifier.secret().clone()),
                redirect_uri: redirect_uri.to_string(),
                via: crate::settings::SignInMethod::OwnApp,
                service: None,
                created: now,
            },
        );
        Ok(StartedAttempt { state, authorize_url: url.into() })
    }

    /// Open an attempt whose state and sign-in address came from the sign-in service at `service`,
    /// for the PKCE pair made before asking it. The same rules apply from here on (once, within the
    /// TTL).
    pub fn open_prepared(&mut self, state: &str, pkce: PkcePair, service: &str, now: Instant) -> Result<(), LinkError> {
        if !crate::callback::state_can_come_back(state) || self.open.contains_key(state) {
            return Err(LinkError::NotConfigured("the sign-in service answered with an unusable state".into()));
        }
        self.expire(now);
        self.open.insert(
            state.to_string(),
            LinkAttempt {
                state: state.to_string(),
                verifier: pkce.verifier,
                redirect_uri: String::new(),
                via: crate::settings::SignInMethod::Service,
                service: Some(service.to_string()),
                created: now,
            },
        );
        Ok(())
    }

    fn expire(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .open
            .iter()
            .filter(|(_, a)| now.duration_since(a.created) > ATTEMPT_TTL)
            .map(|(s, _)| s.clone())
            .collect();
        for s in expired {
            self.open.remove(&s);
            self.close(s);
        }
    }

    fn close(&mut self, state: String) {
        self.closed.push(state);
        if self.closed.len() > 64 {
            self.closed.remove(0);
        }
    }

    /// Take the attempt a callback answers. Unknown, used and expired states are refused and change
    /// nothing else.
    pub fn take(&mut self, state: &str, now: Instant) -> Result<LinkAttempt, LinkError> {
        if let Some(a) = self.open.get(state) {
            if now.duration_since(a.created) > ATTEMPT_TTL {
                let a = self.open.remove(state).expect("present");
                self.close(a.state);
                return Err(LinkError::ExpiredState);
            }
        }
        match self.open.remove(state) {
            Some(a) => {
                self.close(a.state.clone());
                Ok(a)
            }
            None if self.closed.iter().any(|s| s == state) => Err(LinkError::UsedState),
            None => Err(LinkError::UnknownState),
        }
    }

    /// *Cancel*: every open attempt is dropped; a late answer is then refused.
    pub fn cancel_all(&mut self) {
        let states: Vec<String> = self.open.drain().map(|(s, _)| s).collect();
        for s in states {
            self.close(s);
        }
    }

    pub fn is_waiting(&self) -> bool {
        !self.open.is_empty()
    }

    /// Whether a sign-in is open and still within its 10 minutes: one left open longer is not
    /// "Waiting" any more, whether or not its answer ever comes.
    pub fn is_waiting_at(&self, now: Instant) -> bool {
        self.open.values().any(|a| now.duration_since(a.created) <= ATTEMPT_TTL)
    }

    /// Close the attempts past their 10 minutes; true when one was.
    pub fn expire_due(&mut self, now: Instant) -> bool {
        let before = self.open.len();
        self.expire(now);
        self.open.len() != before
    }
}
