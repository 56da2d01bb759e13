//! What the access token (a JWT) says about the business: hints to pre-fill the identifiers.
#[allow(unused_imports)]
use super::*;

/// What the USPS access token says about the business, to pre-fill the identifiers step (the user
/// still confirms). Read without trusting the signature: display only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct AccountHints {
    pub crids: Vec<String>,
    pub mids: Vec<String>,
    pub eps_accounts: Vec<String>,
}

/// Decode the claims of a JWT access token. Unknown shapes give empty hints, never an error.
pub fn account_hints(access_token: &SecretString) -> AccountHints {
    let mut hints = AccountHints::default();
    let Some(payload) = access_token.expose_secret().split('.').nth(1) else { return hints };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')) else {
        return hints;
    };
    let Ok(claims) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return hints };
    let push = |v: &mut Vec<String>, x: Option<&serde_json::Value>| {
        if let Some(s) = x.and_then(|x| x.as_str().map(str::to_string).or_else(|| x.as_u64().map(|n| n.to_string()))) {
            if !s.is_empty() && !v.contains(&s) {
                v.push(s);
            }
        }
    };
    for owner in claims["mail_owners"].as_array().into_iter().flatten() {
        push(&mut hints.crids, owner.get("crid"));
        push(&mut hints.mids, owner.get("master_MID"));
        for mid in owner["mids"].as_array().into_iter().flatten() {
            push(&mut hints.mids, Some(mid));
        }
    }
    // Seen as an object with `accounts` and as a plain array; accept both.
    let accounts = claims["payment_accounts"]["accounts"].as_array().or(claims["payment_accounts"].as_array());
    for acct in accounts.into_iter().flatten() {
        if acct.is_string() {
            push(&mut hints.eps_accounts, Some(acct));
        } else {
            push(&mut hints.eps_accounts, acct.get("account_number").or(acct.get("accountNumber")));
        }
    }
    hints
}
