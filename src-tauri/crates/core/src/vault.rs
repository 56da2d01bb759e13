//! The only place secrets go: the OS keyring (Secret Service on Linux) through `keyring-core`.
//!
//! There is deliberately no plaintext fallback: when no keyring is reachable the caller gets
//! [`VaultError::Unavailable`] with guidance the UI can show.

use std::sync::Arc;

use keyring_core::{CredentialStore, Entry, Error as KeyringError};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use thiserror::Error;
use ts_rs::TS;

use crate::error::{ErrorKind, HasKind};

/// The keyring service name every uspslink secret is filed under.
pub const SERVICE: &str = "uspslink";

/// Which secret. The set is closed so nothing else can end up in the keyring by mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum SecretSlot {
    #[serde(rename = "shipengine_api_key")]
    ShipEngineApiKey,
    UspsConsumerSecret,
    UspsAccessToken,
    UspsRefreshToken,
}

impl SecretSlot {
    pub const ALL: [SecretSlot; 4] = [
        SecretSlot::ShipEngineApiKey,
        SecretSlot::UspsConsumerSecret,
        SecretSlot::UspsAccessToken,
        SecretSlot::UspsRefreshToken,
    ];

    /// The keyring "user" (account) name of the slot.
    pub fn account(self) -> &'static str {
        match self {
            SecretSlot::ShipEngineApiKey => "shipengine-api-key",
            SecretSlot::UspsConsumerSecret => "usps-consumer-secret",
            SecretSlot::UspsAccessToken => "usps-access-token",
            SecretSlot::UspsRefreshToken => "usps-refresh-token",
        }
    }
}

const INSTALL_GUIDANCE: &str = "No keyring service (Secret Service) is running. Install and start one, for \
example GNOME Keyring (apt install gnome-keyring) or KeePassXC with Secret Service enabled, then try again. \
uspslink never stores secrets in plain files.";
const UNLOCK_GUIDANCE: &str = "Your keyring is locked or refused access. Unlock it (for example by logging in \
to your desktop session, or with Seahorse / 'Passwords and Keys'), then try again.";

#[derive(Debug, Error)]
pub enum VaultError {
    #[error("{INSTALL_GUIDANCE} ({detail})")]
    Unavailable { detail: String },
    #[error("{UNLOCK_GUIDANCE} ({detail})")]
    Locked { detail: String },
    #[error("the secret is empty")]
    Empty,
    #[error("the keyring failed: {0}")]
    Failure(String),
}

impl HasKind for VaultError {
    fn kind(&self) -> ErrorKind {
        match self {
            VaultError::Unavailable { .. } => ErrorKind::KeyringUnavailable,
            VaultError::Locked { .. } => ErrorKind::KeyringLocked,
            VaultError::Empty => ErrorKind::InvalidInput,
            VaultError::Failure(_) => ErrorKind::KeyringFailure,
        }
    }
}

impl From<KeyringError> for VaultError {
    fn from(e: KeyringError) -> Self {
        match e {
            KeyringError::NoStorageAccess(p) => VaultError::Locked { detail: p.to_string() },
            // A platform failure on Linux is, in practice, "no session bus" or "no secrets provider".
            KeyringError::PlatformFailure(p) => VaultError::Unavailable { detail: p.to_string() },
            KeyringError::NoDefaultStore => VaultError::Unavailable { detail: "no store configured".into() },
            other => VaultError::Failure(other.to_string()),
        }
    }
}

/// Whether the keyring can be used right now, for the Settings view and the first-run check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum VaultStatus {
    Ready,
    Unavailable { guidance: String },
    Locked { guidance: String },
    Failure { message: String },
}

/// Handle to the keyring. Cheap to clone; every call is blocking (D-Bus round trips), so async
/// callers run it in `spawn_blocking`.
#[derive(Clone)]
pub struct Vault {
    store: Option<Arc<CredentialStore>>,
    store_error: Option<String>,
    service: String,
    /// The environment the entries belong to (`sandbox`, `production`…): its name prefixes every
    /// account name, so a Sandbox token can never be read as a Production one (DESIGN.md,
    /// "Environments are apart"). None only for the entries of versions before environments.
    scope: Option<String>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("service", &self.service)
            .field("scope", &self.scope)
            .field("ready", &self.store.is_some())
            .finish()
    }
}

impl Vault {
    /// The OS keyring (Secret Service over D-Bus). Never fails: an unreachable service is reported on use.
    pub fn platform() -> Self {
        Self::platform_with_service(SERVICE)
    }

    pub fn platform_with_service(service: &str) -> Self {
        match zbus_secret_service_keyring_store::Store::new() {
            Ok(store) => Self::with_store(store, service),
            Err(e) => Self { store: None, store_error: Some(e.to_string()), service: service.to_string(), scope: None },
        }
    }

    pub fn with_store(store: Arc<CredentialStore>, service: &str) -> Self {
        Self { store: Some(store), store_error: None, service: service.to_string(), scope: None }
    }

    /// The same keyring, with the entries of one environment (`scope/account` names).
    pub fn scoped(&self, scope: &str) -> Self {
        Self { scope: Some(scope.to_string()), ..self.clone() }
    }

    /// The keyring account name of a slot in this vault's environment.
    pub fn account_name(&self, slot: SecretSlot) -> String {
        match &self.scope {
            Some(scope) => format!("{scope}/{}", slot.account()),
            None => slot.account().to_string(),
        }
    }

    /// Move the secrets stored before environments existed (unprefixed names) into this vault's
    /// environment, where that environment has none of its own. Returns how many moved.
    pub fn adopt_unscoped(&self) -> Result<u32, VaultError> {
        if self.scope.is_none() {
            return Ok(0);
        }
        let legacy = Self { scope: None, ..self.clone() };
        let mut moved = 0;
        for slot in SecretSlot::ALL {
            if let Some(old) = legacy.get(slot)? {
                if self.get(slot)?.is_none() {
                    self.set(slot, &old)?;
                    moved += 1;
                }
                legacy.delete(slot)?;
            }
        }
        Ok(moved)
    }

    /// Whether a store was opened (it may still be locked).
    pub fn is_connected(&self) -> bool {
        self.store.is_some()
    }

    /// An in-memory store, for unit tests.
    pub fn mock() -> Self {
        Self::with_store(keyring_core::mock::Store::new().expect("mock store"), SERVICE)
    }

    fn entry(&self, slot: SecretSlot) -> Result<Entry, VaultError> {
        let store = self.store.as_ref().ok_or_else(|| VaultError::Unavailable {
            detail: self.store_error.clone().unwrap_or_default(),
        })?;
        Ok(store.build(&self.service, &self.account_name(slot), None)?)
    }

    pub fn set(&self, slot: SecretSlot, value: &SecretString) -> Result<(), VaultError> {
        if value.expose_secret().trim().is_empty() {
            return Err(VaultError::Empty);
        }
        self.entry(slot)?.set_password(value.expose_secret())?;
        Ok(())
    }

    pub fn get(&self, slot: SecretSlot) -> Result<Option<SecretString>, VaultError> {
        match self.entry(slot)?.get_password() {
            Ok(v) => Ok(Some(SecretString::from(v))),
            Err(KeyringError::NoEntry) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Removing a secret that is not there is not an error.
    pub fn delete(&self, slot: SecretSlot) -> Result<(), VaultError> {
        match self.entry(slot)?.delete_credential() {
            Ok(()) | Err(KeyringError::NoEntry) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn has(&self, slot: SecretSlot) -> Result<bool, VaultError> {
        Ok(self.get(slot)?.is_some())
    }

    /// Probe the keyring with a read; a missing entry means it works.
    pub fn status(&self) -> VaultStatus {
        match self.get(SecretSlot::ShipEngineApiKey) {
            Ok(_) => VaultStatus::Ready,
            Err(e @ VaultError::Unavailable { .. }) => VaultStatus::Unavailable { guidance: e.to_string() },
            Err(e @ VaultError::Locked { .. }) => VaultStatus::Locked { guidance: e.to_string() },
            Err(e) => VaultStatus::Failure { message: e.to_string() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyring_core::{api::CredentialStoreApi, mock};

    #[test]
    fn round_trip_and_delete_in_mock_store() {
        let v = Vault::mock();
        assert!(v.get(SecretSlot::UspsAccessToken).unwrap().is_none());
        v.set(SecretSlot::UspsAccessToken, &SecretString::from("tok-1")).unwrap();
        assert_eq!(v.get(SecretSlot::UspsAccessToken).unwrap().unwrap().expose_secret(), "tok-1");
        // Slots are independent.
        assert!(v.get(SecretSlot::UspsRefreshToken).unwrap().is_none());
        v.delete(SecretSlot::UspsAccessToken).unwrap();
        assert!(v.get(SecretSlot::UspsAccessToken).unwrap().is_none());
        v.delete(SecretSlot::UspsAccessToken).unwrap();
        assert_eq!(v.status(), VaultStatus::Ready);
    }

    #[test]
    fn empty_secret_is_refused_and_changes_nothing() {
        let v = Vault::mock();
        v.set(SecretSlot::ShipEngineApiKey, &SecretString::from("k")).unwrap();
        let e = v.set(SecretSlot::ShipEngineApiKey, &SecretString::from("  ")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(v.get(SecretSlot::ShipEngineApiKey).unwrap().unwrap().expose_secret(), "k");
    }

    #[test]
    fn no_store_is_unavailable_with_guidance() {
        let v = Vault { store: None, store_error: Some("no bus".into()), service: SERVICE.into(), scope: None };
        let e = v.get(SecretSlot::ShipEngineApiKey).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::KeyringUnavailable);
        assert!(e.to_string().contains("gnome-keyring"));
        assert!(matches!(v.status(), VaultStatus::Unavailable { .. }));
    }

    #[test]
    fn locked_keyring_maps_to_locked() {
        let store = mock::Store::new().unwrap();
        let v = Vault::with_store(store.clone(), SERVICE);
        v.set(SecretSlot::ShipEngineApiKey, &SecretString::from("k")).unwrap();
        let entry = store.build(SERVICE, SecretSlot::ShipEngineApiKey.account(), None).unwrap();
        let cred: &mock::Cred = entry.as_any().downcast_ref().unwrap();
        cred.set_error(KeyringError::NoStorageAccess(Box::new(std::io::Error::other("locked"))));
        let e = v.get(SecretSlot::ShipEngineApiKey).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::KeyringLocked);
    }

    #[test]
    fn environments_are_apart_and_old_secrets_are_adopted_once() {
        let v = Vault::mock();
        v.set(SecretSlot::UspsRefreshToken, &SecretString::from("from-before")).unwrap();
        let sandbox = v.scoped("sandbox");
        let production = v.scoped("production");
        assert_eq!(sandbox.account_name(SecretSlot::UspsRefreshToken), "sandbox/usps-refresh-token");
        sandbox.set(SecretSlot::UspsAccessToken, &SecretString::from("sandbox-token")).unwrap();
        assert!(production.get(SecretSlot::UspsAccessToken).unwrap().is_none(), "a Sandbox token is not a Production one");
        assert_eq!(sandbox.adopt_unscoped().unwrap(), 1);
        assert_eq!(sandbox.get(SecretSlot::UspsRefreshToken).unwrap().unwrap().expose_secret(), "from-before");
        assert!(v.get(SecretSlot::UspsRefreshToken).unwrap().is_none(), "the old entry is gone");
        assert_eq!(production.adopt_unscoped().unwrap(), 0, "adopted by one environment only");
        assert!(production.get(SecretSlot::UspsRefreshToken).unwrap().is_none());
    }

    /// Against the real Secret Service: the test command runs the ignored tests inside a dbus session
    /// with an unlocked gnome-keyring (`scripts/test`).
    #[test]
    #[ignore = "needs a real Secret Service; scripts/test runs it inside dbus-run-session"]
    fn real_secret_service_round_trip() {
        let v = Vault::platform_with_service("uspslink-unit-test");
        assert_eq!(v.status(), VaultStatus::Ready);
        v.set(SecretSlot::UspsRefreshToken, &SecretString::from("real-refresh-1")).unwrap();
        // A second handle (as after a restart) reads what the first wrote.
        let again = Vault::platform_with_service("uspslink-unit-test");
        assert_eq!(again.get(SecretSlot::UspsRefreshToken).unwrap().unwrap().expose_secret(), "real-refresh-1");
        again.delete(SecretSlot::UspsRefreshToken).unwrap();
        assert!(v.get(SecretSlot::UspsRefreshToken).unwrap().is_none());
    }
}
