//! The sign-in service's HTTP API as the app calls it and the broker serves it: the paths, the
//! request bodies and the answers the service writes itself. Declared here once, so a field renamed
//! on one side fails to compile on the other instead of failing a sign-in.
//!
//! The token answers are not here: the service hands on USPS's own OAuth token response, whose
//! shape USPS sets (the app reads it the same way from USPS directly).

use serde::{Deserialize, Serialize};

/// `POST`: start a sign-in; [`AuthorizeRequest`] → [`AuthorizeAnswer`].
pub const AUTHORIZE_PATH: &str = "/v1/usps/authorize";
/// `POST`: exchange the sealed code; [`TokenRequest`] → USPS's token response.
pub const TOKEN_PATH: &str = "/v1/usps/token";
/// `POST`: renew; [`RefreshRequest`] → USPS's token response.
pub const REFRESH_PATH: &str = "/v1/usps/refresh";
/// `POST`: revoke; [`RevokeRequest`] → an empty success or an [`OAuthError`].
pub const REVOKE_PATH: &str = "/v1/usps/revoke";
/// `GET`: where USPS sends the browser back; the service hands the answer on to `uspslink://`.
pub const CALLBACK_PATH: &str = "/usps/callback";

/// The only PKCE method either side takes.
pub const PKCE_METHOD: &str = "S256";

/// A request body's text fields by name, so the service can name the field it refuses without
/// reading serde's error text. Every field of these bodies is text.
pub trait RequestBody: Serialize + for<'de> Deserialize<'de> {
    const REQUIRED: &'static [&'static str];
    const OPTIONAL: &'static [&'static str] = &[];
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    pub code_challenge: String,
    /// [`PKCE_METHOD`] or absent (taken as it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_method: Option<String>,
}

impl RequestBody for AuthorizeRequest {
    const REQUIRED: &'static [&'static str] = &["code_challenge"];
    const OPTIONAL: &'static [&'static str] = &["code_challenge_method"];
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeAnswer {
    /// The USPS sign-in page to open in the system browser.
    pub authorize_url: String,
    /// The state USPS will answer with (the service's signed one).
    pub state: String,
    /// Seconds the state is good for (a service that leaves it out is still understood).
    #[serde(default)]
    pub expires_in: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRequest {
    /// The sealed code the service handed on to `uspslink://`.
    pub code: String,
    pub state: String,
    pub code_verifier: String,
}

impl RequestBody for TokenRequest {
    const REQUIRED: &'static [&'static str] = &["code", "state", "code_verifier"];
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

impl RequestBody for RefreshRequest {
    const REQUIRED: &'static [&'static str] = &["refresh_token"];
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeRequest {
    pub token: String,
    /// `access_token` (taken when absent) or `refresh_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type_hint: Option<String>,
}

impl RequestBody for RevokeRequest {
    const REQUIRED: &'static [&'static str] = &["token"];
    const OPTIONAL: &'static [&'static str] = &["token_type_hint"];
}

/// A refusal, in RFC 6749's shape (§5.2): the service writes its own this way, and hands on
/// USPS's, which have it too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthError {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};

    use super::*;

    /// The lists a refusal names are the body's own fields: each required one is needed, the
    /// optional ones are not, and a body with all of them reads back as written.
    fn named_fields_match<T: RequestBody + std::fmt::Debug + PartialEq>() {
        let full: Map<String, Value> =
            T::REQUIRED.iter().chain(T::OPTIONAL).map(|f| (f.to_string(), "x".into())).collect();
        let body: T = serde_json::from_value(full.clone().into()).expect("all named fields make a body");
        assert_eq!(serde_json::to_value(&body).unwrap(), Value::Object(full.clone()), "no field unnamed");
        for f in T::REQUIRED {
            let mut without = full.clone();
            without.remove(*f);
            assert!(serde_json::from_value::<T>(without.into()).is_err(), "{f} is required");
        }
        for f in T::OPTIONAL {
            let mut without = full.clone();
            without.remove(*f);
            let body: T = serde_json::from_value(without.clone().into()).expect("optional");
            assert_eq!(serde_json::to_value(&body).unwrap(), Value::Object(without), "{f} is left out, not null");
        }
    }

    #[test]
    fn each_body_names_its_own_fields() {
        named_fields_match::<AuthorizeRequest>();
        named_fields_match::<TokenRequest>();
        named_fields_match::<RefreshRequest>();
        named_fields_match::<RevokeRequest>();
    }

    #[test]
    fn answers_read_as_the_service_writes_them() {
        let a: AuthorizeAnswer =
            serde_json::from_value(json!({"authorize_url": "https://x/", "state": "s", "expires_in": 600})).unwrap();
        assert_eq!(a.expires_in, 600);
        let without: AuthorizeAnswer = serde_json::from_value(json!({"authorize_url": "https://x/", "state": "s"}))
            .expect("expires_in may be absent");
        assert_eq!(without.expires_in, 0);
        let e: OAuthError = serde_json::from_value(json!({"error": "invalid_grant"})).unwrap();
        assert_eq!(e, OAuthError { error: "invalid_grant".into(), error_description: None });
        assert_eq!(serde_json::to_value(&e).unwrap(), json!({"error": "invalid_grant"}));
    }
}
