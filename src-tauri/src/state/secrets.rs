//! The secrets: the OS keyring, opened per scope, and the USPS tokens it did not take yet.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use secrecy::SecretString;
use uspslink_core::business::BusinessId;
use uspslink_core::settings::Environment;
use uspslink_core::vault::Vault;

use super::progress::KEY_LEGACY_KEYRING;
use super::{lock, Persist, Scope};

/// Opens the platform keyring on demand and keeps it once it connected; a failed connection is tried
/// again next time, so starting gnome-keyring after the app works without a restart.
#[derive(Clone, Default)]
pub struct VaultSource {
    cached: Arc<Mutex<Option<Vault>>>,
    /// A store given by a test (the mock keyring), used instead of the platform's.
    fixed: Option<Vault>,
}

impl VaultSource {
    pub fn fixed(vault: Vault) -> Self {
        Self { cached: Arc::default(), fixed: Some(vault) }
    }

    /// Blocking.
    pub fn open(&self) -> Vault {
        if let Some(v) = &self.fixed {
            return v.clone();
        }
        let mut cached = lock(&self.cached);
        if let Some(v) = cached.as_ref() {
            return v.clone();
        }
        let v = Vault::platform();
        if v.is_connected() {
            *cached = Some(v.clone());
        }
        v
    }
}

/// Tokens USPS issued that the keyring did not take yet (a refresh rotates the refresh token: losing
/// the new one would break the link), kept in memory and written again until the keyring takes them.
#[derive(Clone)]
pub struct UnsavedTokens {
    pub access: SecretString,
    pub refresh: Option<SecretString>,
}

/// The keyring as the flows use it: cheap to clone, so it goes to the blocking pool (every keyring
/// call is a D-Bus round trip). Opening a scope's entries for the first time after an upgrade moves
/// the entries of the older version under that scope's names.
#[derive(Clone)]
pub struct Secrets {
    source: VaultSource,
    legacy: Arc<Mutex<Option<Environment>>>,
    persist: Arc<dyn Persist>,
    unsaved: Arc<Mutex<HashMap<Scope, UnsavedTokens>>>,
}

impl Secrets {
    pub(crate) fn new(source: VaultSource, legacy: Option<Environment>, persist: Arc<dyn Persist>) -> Self {
        Self { source, legacy: Arc::new(Mutex::new(legacy)), persist, unsaved: Arc::default() }
    }

    /// The keyring entries of one scope. Blocking: async code calls it on the blocking pool
    /// (`super::blocking`).
    pub fn open(&self, scope: Scope) -> Vault {
        let vault = self.source.open().scoped(&scope.keyring_scope());
        if self.persist.is_newer_file() {
            return vault.read_only();
        }
        let env = scope.environment();
        let mut legacy = lock(&self.legacy);
        // Entries from before environments were the first business's (there was no other).
        if *legacy == Some(env) && scope.business() == BusinessId::FIRST && vault.is_connected() {
            match vault.adopt_unscoped() {
                Ok(moved) => {
                    tracing::info!(
                        "moved {moved} keyring entries of an older version to the {} environment",
                        env.label()
                    );
                    if self.persist.save(KEY_LEGACY_KEYRING, serde_json::Value::Null).is_ok() {
                        *legacy = None;
                    }
                }
                Err(e) => tracing::warn!("could not move the older keyring entries yet: {e}"),
            }
        }
        vault
    }

    /// The keyring itself, for its status.
    pub fn keyring(&self) -> Vault {
        self.source.open()
    }

    /// Tokens the keyring did not take: kept for the next try, and used meanwhile.
    pub fn keep_unsaved_tokens(&self, scope: Scope, tokens: UnsavedTokens) {
        lock(&self.unsaved).insert(scope, tokens);
    }

    pub fn unsaved_tokens(&self, scope: Scope) -> Option<UnsavedTokens> {
        lock(&self.unsaved).get(&scope).cloned()
    }

    /// Whether any business has tokens the keyring did not take yet (they live in memory only).
    pub fn any_unsaved_tokens(&self) -> bool {
        !lock(&self.unsaved).is_empty()
    }

    pub fn clear_unsaved_tokens(&self, scope: Scope) {
        lock(&self.unsaved).remove(&scope);
    }
}
