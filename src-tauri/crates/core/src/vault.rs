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

/// The platform's secret store: Secret Service on Linux, the Keychain on macOS, Credential Manager on
/// Windows. Only the Linux one is built and run here; the others are the same family's crates.
#[cfg(target_os = "linux")]
fn platform_store() -> Result<Arc<CredentialStore>, String> {
    let store: Arc<CredentialStore> = zbus_secret_service_keyring_store::Store::new().map_err(|e| e.to_string())?;
    Ok(store)
}

#[cfg(target_os = "macos")]
fn platform_store() -> Result<Arc<CredentialStore>, String> {
    let store: Arc<CredentialStore> = apple_native_keyring_store::keychain::Store::new().map_err(|e| e.to_string())?;
    Ok(store)
}

#[cfg(target_os = "windows")]
fn platform_store() -> Result<Arc<CredentialStore>, String> {
    let store: Arc<CredentialStore> = windows_native_keyring_store::Store::new().map_err(|e| e.to_string())?;
    Ok(store)
}

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
fn platform_store() -> Result<Arc<CredentialStore>, String> {
    Err("this platform has no supported keyring".into())
}

/// The most one keyring entry holds here. Windows' Credential Manager takes at most 2,560 bytes of
/// UTF-16 (1,280 code units), the smallest limit of the three stores; a UTF-8 string of at most 1,280
/// bytes never has more code units than bytes, so it fits everywhere. USPS access tokens are JWTs
/// that can be longer: those are stored as several entries, written and read as one.
pub const MAX_ENTRY_BYTES: usize = 1_280;
/// The first entry of a secret stored in parts says where the parts are: `PREFIX<gen>:<count>`.
const PARTS_PREFIX: &str = "uspslink-parts:v1:";

/// Split at char boundaries into pieces of at most `max` bytes.
fn split_utf8(s: &str, max: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    while start < s.len() {
        let mut end = (start + max).min(s.len());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        parts.push(&s[start..end]);
        start = end;
    }
    parts
}

/// A fresh generation for the parts of a secret, so a new value never overwrites the parts the
/// current first entry points to: a crash halfway leaves the old value whole.
fn new_generation() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{:x}{:x}", nanos as u64, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Where the parts of a secret are, read from its first entry; None for a secret stored whole.
fn parts_of(first: &str) -> Option<(String, usize)> {
    let rest = first.strip_prefix(PARTS_PREFIX)?;
    let (generation, count) = rest.split_once(':')?;
    let count: usize = count.parse().ok().filter(|n| (2..=64).contains(n))?;
    (!generation.is_empty() && generation.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| (generation.to_string(), count))
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
    /// The progress a newer uspslink saved is open: its keyring entries are not changed either.
    #[error("{}", crate::progress_format::NEWER_FILE_REFUSAL)]
    ReadOnly,
}

impl HasKind for VaultError {
    fn kind(&self) -> ErrorKind {
        match self {
            VaultError::Unavailable { .. } => ErrorKind::KeyringUnavailable,
            VaultError::Locked { .. } => ErrorKind::KeyringLocked,
            VaultError::Empty => ErrorKind::InvalidInput,
            VaultError::Failure(_) => ErrorKind::KeyringFailure,
            VaultError::ReadOnly => ErrorKind::Storage,
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
    /// account name, so a Sandbox token can never be read as a Production one (docs/DESIGN.md,
    /// "Environments are apart"). None only for the entries of versions before environments.
    scope: Option<String>,
    /// Reads only: every write is refused with [`VaultError::ReadOnly`].
    read_only: bool,
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
        match platform_store() {
            Ok(store) => Self::with_store(store, service),
            Err(e) => {
                Self { store: None, store_error: Some(e), service: service.to_string(), scope: None, read_only: false }
            }
        }
    }

    pub fn with_store(store: Arc<CredentialStore>, service: &str) -> Self {
        Self { store: Some(store), store_error: None, service: service.to_string(), scope: None, read_only: false }
    }

    /// The same keyring, with the entries of one environment (`scope/account` names).
    pub fn scoped(&self, scope: &str) -> Self {
        Self { scope: Some(scope.to_string()), ..self.clone() }
    }

    /// The same entries, for reading only (a newer version's progress is open).
    pub fn read_only(&self) -> Self {
        Self { read_only: true, ..self.clone() }
    }

    fn writable(&self) -> Result<(), VaultError> {
        if self.read_only {
            return Err(VaultError::ReadOnly);
        }
        Ok(())
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
        self.writable()?;
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
        self.entry_named(&self.account_name(slot))
    }

    fn entry_named(&self, account: &str) -> Result<Entry, VaultError> {
        let store = self
            .store
            .as_ref()
            .ok_or_else(|| VaultError::Unavailable { detail: self.store_error.clone().unwrap_or_default() })?;
        Ok(store.build(&self.service, account, None)?)
    }

    fn part_name(&self, slot: SecretSlot, generation: &str, i: usize) -> String {
        format!("{}#{generation}.{i}", self.account_name(slot))
    }

    fn read_raw(entry: &Entry) -> Result<Option<String>, VaultError> {
        match entry.get_password() {
            Ok(v) => Ok(Some(v)),
            Err(KeyringError::NoEntry) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Delete the parts of `slot` that `keep` does not name: every generation the store lists (a
    /// crash or a refused write may have left some that no first entry points to), and those the
    /// first entry named, for a store that cannot list. Best effort: a part left behind holds a
    /// dead value and is never read again.
    fn delete_parts_except(&self, slot: SecretSlot, named: Option<(String, usize)>, keep: Option<&str>) {
        let mut doomed = self.stored_parts(slot);
        if let Some((generation, count)) = named {
            doomed.extend((1..=count).map(|i| self.part_name(slot, &generation, i)));
        }
        let kept_prefix = keep.map(|generation| format!("{}#{generation}.", self.account_name(slot)));
        doomed.sort();
        doomed.dedup();
        for account in doomed {
            if kept_prefix.as_deref().is_some_and(|p| account.starts_with(p)) {
                continue;
            }
            if let Ok(e) = self.entry_named(&account) {
                let _ = e.delete_credential();
            }
        }
    }

    /// The account names of every part of `slot` the keyring holds, whichever generation (empty
    /// where the store cannot list its entries).
    fn stored_parts(&self, slot: SecretSlot) -> Vec<String> {
        let Some(store) = &self.store else { return Vec::new() };
        let prefix = format!("{}#", self.account_name(slot));
        #[cfg(windows)]
        if store.as_any().is::<windows_native_keyring_store::Store>() {
            // Targets are `<account>.<service>`; listed here rather than through the store's own
            // search, which reads Wine's (unaligned) answer as a slice.
            let suffix = format!(".{}", self.service);
            return windows_credentials::targets()
                .into_iter()
                .filter_map(|t| t.strip_suffix(&suffix).map(str::to_string))
                .filter(|account| account.starts_with(&prefix))
                .collect();
        }
        match store.search(&std::collections::HashMap::from([("service", self.service.as_str())])) {
            Ok(entries) => entries
                .iter()
                .filter_map(Entry::get_specifiers)
                .filter(|(service, account)| *service == self.service && account.starts_with(&prefix))
                .map(|(_, account)| account)
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Store a secret. One longer than [`MAX_ENTRY_BYTES`] goes into parts first (under a new
    /// generation), then the first entry is switched to point at them, then the old parts go: at
    /// every moment the first entry names a whole value.
    pub fn set(&self, slot: SecretSlot, value: &SecretString) -> Result<(), VaultError> {
        self.writable()?;
        let value = value.expose_secret();
        if value.trim().is_empty() {
            return Err(VaultError::Empty);
        }
        let first = self.entry(slot)?;
        let old_parts = Self::read_raw(&first).ok().flatten().as_deref().and_then(parts_of);
        if value.len() <= MAX_ENTRY_BYTES {
            first.set_password(value)?;
            self.delete_parts_except(slot, old_parts, None);
        } else {
            let generation = new_generation();
            let pieces = split_utf8(value, MAX_ENTRY_BYTES);
            let written = (|| {
                for (i, piece) in pieces.iter().enumerate() {
                    self.entry_named(&self.part_name(slot, &generation, i + 1))?.set_password(piece)?;
                }
                first.set_password(&format!("{PARTS_PREFIX}{generation}:{}", pieces.len()))?;
                Ok::<(), VaultError>(())
            })();
            if let Err(e) = written {
                // The old value is still whole; the new generation's parts written so far go.
                let new_parts = Some((generation, pieces.len()));
                let current = old_parts.as_ref().map(|(g, _)| g.as_str());
                self.delete_parts_except(slot, new_parts, current);
                return Err(e);
            }
            self.delete_parts_except(slot, old_parts, Some(&generation));
        }
        Ok(())
    }

    pub fn get(&self, slot: SecretSlot) -> Result<Option<SecretString>, VaultError> {
        let Some(first) = Self::read_raw(&self.entry(slot)?)? else { return Ok(None) };
        let Some((generation, count)) = parts_of(&first) else { return Ok(Some(SecretString::from(first))) };
        let mut whole = String::new();
        for i in 1..=count {
            match Self::read_raw(&self.entry_named(&self.part_name(slot, &generation, i))?)? {
                Some(piece) => whole.push_str(&piece),
                None => return Err(VaultError::Failure(format!("part {i} of {count} of a stored secret is missing"))),
            }
        }
        Ok(Some(SecretString::from(whole)))
    }

    /// Removing a secret that is not there is not an error.
    pub fn delete(&self, slot: SecretSlot) -> Result<(), VaultError> {
        self.writable()?;
        let first = self.entry(slot)?;
        let parts = Self::read_raw(&first).ok().flatten().as_deref().and_then(parts_of);
        match first.delete_credential() {
            Ok(()) | Err(KeyringError::NoEntry) => {}
            Err(e) => return Err(e.into()),
        }
        self.delete_parts_except(slot, parts, None);
        Ok(())
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

/// Credential Manager's list of entries (`CredEnumerateW`), read one by one: Wine 8 hands the array
/// of pointers back at an address that is not 8-aligned, which the store's own `search` reads as a
/// slice (undefined behaviour; a debug build stops on it). Real Windows aligns it; this works on both.
#[cfg(windows)]
mod windows_credentials {
    use windows_sys::Win32::Security::Credentials::{CredEnumerateW, CredFree, CREDENTIALW};

    /// Every target name of this user's credentials.
    pub fn targets() -> Vec<String> {
        let mut count = 0u32;
        let mut creds: *mut *mut CREDENTIALW = std::ptr::null_mut();
        // SAFETY: out-parameters of the documented call; freed with CredFree below.
        if unsafe { CredEnumerateW(std::ptr::null(), 0, &mut count, &mut creds) } == 0 {
            return Vec::new(); // ERROR_NOT_FOUND: none at all (or none readable)
        }
        let targets = (0..count as usize)
            .map(|i| {
                // SAFETY: `count` pointers from CredEnumerateW, possibly unaligned (Wine); each
                // names a NUL-terminated UTF-16 target.
                let cred = unsafe { std::ptr::read_unaligned(creds.add(i)) };
                let name = unsafe { std::ptr::read_unaligned(std::ptr::addr_of!((*cred).TargetName)) };
                let units: Vec<u16> = (0..)
                    .map(|k| unsafe { std::ptr::read_unaligned(name.add(k)) })
                    .take_while(|&unit| unit != 0)
                    .collect();
                String::from_utf16_lossy(&units)
            })
            .collect();
        // SAFETY: the buffer CredEnumerateW allocated, freed once.
        unsafe { CredFree(creds.cast()) };
        targets
    }
}

/// A keyring for tests: the mock store, with a limit per entry like Windows' Credential Manager (more
/// than 2,560 bytes of UTF-16 refused) and a switch that makes it refuse writes (a locked keyring).
#[cfg(any(test, feature = "test-stores"))]
pub mod test_store {
    use std::any::Any;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use keyring_core::api::{CredentialApi, CredentialStoreApi};
    use keyring_core::{Credential, Entry, Error, Result};

    pub const WINDOWS_UTF16_BYTES: usize = 2_560;

    pub struct TestStore {
        inner: Arc<keyring_core::mock::Store>,
        max_utf16_bytes: Option<usize>,
        /// Writes taken before the store refuses (usize::MAX: no limit).
        writes_left: Arc<AtomicUsize>,
    }

    impl TestStore {
        pub fn new(inner: Arc<keyring_core::mock::Store>, max_utf16_bytes: Option<usize>) -> Arc<Self> {
            Arc::new(Self { inner, max_utf16_bytes, writes_left: Arc::new(AtomicUsize::new(usize::MAX)) })
        }

        /// While on, every write is refused as a locked keyring refuses it.
        pub fn refuse_writes(&self, on: bool) {
            self.writes_left.store(if on { 0 } else { usize::MAX }, Ordering::SeqCst);
        }

        /// Take `n` more writes, then refuse (a keyring locked halfway through a secret's parts).
        pub fn refuse_writes_after(&self, n: usize) {
            self.writes_left.store(n, Ordering::SeqCst);
        }
    }

    struct Cred {
        inner: Entry,
        max_utf16_bytes: Option<usize>,
        writes_left: Arc<AtomicUsize>,
    }

    impl CredentialApi for Cred {
        fn set_secret(&self, secret: &[u8]) -> Result<()> {
            let taken = self.writes_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| match left {
                usize::MAX => Some(usize::MAX),
                0 => None,
                n => Some(n - 1),
            });
            if taken.is_err() {
                return Err(Error::NoStorageAccess(Box::new(std::io::Error::other("the keyring is locked"))));
            }
            if let Some(max) = self.max_utf16_bytes {
                if String::from_utf8_lossy(secret).encode_utf16().count() * 2 > max {
                    return Err(Error::TooLong("password encoded as UTF-16".into(), max as u32));
                }
            }
            self.inner.set_secret(secret)
        }
        fn get_secret(&self) -> Result<Vec<u8>> {
            self.inner.get_secret()
        }
        fn delete_credential(&self) -> Result<()> {
            self.inner.delete_credential()
        }
        fn get_credential(&self) -> Result<Option<Arc<Credential>>> {
            Ok(None)
        }
        fn get_specifiers(&self) -> Option<(String, String)> {
            self.inner.get_specifiers()
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
    }

    impl CredentialStoreApi for TestStore {
        fn vendor(&self) -> String {
            "uspslink test store".into()
        }
        fn id(&self) -> String {
            "test".into()
        }
        fn build(&self, service: &str, user: &str, mods: Option<&HashMap<&str, &str>>) -> Result<Entry> {
            let inner = self.inner.build(service, user, mods)?;
            let cred = Cred { inner, max_utf16_bytes: self.max_utf16_bytes, writes_left: self.writes_left.clone() };
            Ok(Entry::new_with_credential(Arc::new(cred)))
        }
        fn search(&self, spec: &HashMap<&str, &str>) -> Result<Vec<Entry>> {
            self.inner.search(spec)
        }
        fn as_any(&self) -> &dyn Any {
            self
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
    fn a_read_only_vault_reads_and_changes_nothing() {
        let v = Vault::mock();
        v.set(SecretSlot::ShipEngineApiKey, &SecretString::from("k")).unwrap();
        let r = v.read_only();
        assert_eq!(r.get(SecretSlot::ShipEngineApiKey).unwrap().unwrap().expose_secret(), "k");
        let e = r.set(SecretSlot::ShipEngineApiKey, &SecretString::from("other")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage);
        assert!(matches!(r.delete(SecretSlot::ShipEngineApiKey), Err(VaultError::ReadOnly)));
        assert_eq!(v.get(SecretSlot::ShipEngineApiKey).unwrap().unwrap().expose_secret(), "k");
    }

    #[test]
    fn no_store_is_unavailable_with_guidance() {
        let v = Vault {
            store: None,
            store_error: Some("no bus".into()),
            service: SERVICE.into(),
            scope: None,
            read_only: false,
        };
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
        assert!(
            production.get(SecretSlot::UspsAccessToken).unwrap().is_none(),
            "a Sandbox token is not a Production one"
        );
        assert_eq!(sandbox.adopt_unscoped().unwrap(), 1);
        assert_eq!(sandbox.get(SecretSlot::UspsRefreshToken).unwrap().unwrap().expose_secret(), "from-before");
        assert!(v.get(SecretSlot::UspsRefreshToken).unwrap().is_none(), "the old entry is gone");
        assert_eq!(production.adopt_unscoped().unwrap(), 0, "adopted by one environment only");
        assert!(production.get(SecretSlot::UspsRefreshToken).unwrap().is_none());
    }

    /// A JWT-sized token of `len` characters, different each call.
    fn token(len: usize, seed: char) -> SecretString {
        SecretString::from(
            std::iter::repeat_n(seed, 20)
                .chain("abcdefghijklmnopqrstuvwxyz.0123456789_-".chars().cycle())
                .take(len)
                .collect::<String>(),
        )
    }

    #[test]
    fn a_secret_longer_than_the_smallest_limit_is_stored_in_parts_and_read_as_one() {
        let inner = mock::Store::new().unwrap();
        let store: Arc<CredentialStore> = test_store::TestStore::new(inner, Some(test_store::WINDOWS_UTF16_BYTES));
        // The limit is real: one 4 KB entry is refused by this store.
        let whole = store.build(SERVICE, "probe", None).unwrap();
        assert!(matches!(whole.set_password(token(4096, 'x').expose_secret()), Err(KeyringError::TooLong(..))));

        let v = Vault::with_store(store.clone(), SERVICE).scoped("sandbox");
        let raw = |account: &str| store.build(SERVICE, account, None).unwrap().get_password().ok();
        let parts_now = || parts_of(&raw("sandbox/usps-access-token").unwrap()).unwrap();
        let big = token(4096, 'a');
        v.set(SecretSlot::UspsAccessToken, &big).unwrap();
        assert_eq!(v.get(SecretSlot::UspsAccessToken).unwrap().unwrap().expose_secret(), big.expose_secret());
        let (first_gen, count) = parts_now();
        assert_eq!(count, 4, "4,096 bytes in parts of at most {MAX_ENTRY_BYTES}");
        // A longer one replaces it under a new generation; the old parts go.
        let bigger = token(9000, 'b');
        v.set(SecretSlot::UspsAccessToken, &bigger).unwrap();
        assert_eq!(v.get(SecretSlot::UspsAccessToken).unwrap().unwrap().expose_secret(), bigger.expose_secret());
        let (second_gen, count) = parts_now();
        assert_ne!(first_gen, second_gen);
        assert!(
            (1..=4).all(|i| raw(&format!("sandbox/usps-access-token#{first_gen}.{i}")).is_none()),
            "old parts are deleted"
        );
        // A short one is stored whole, and no part is left.
        v.set(SecretSlot::UspsAccessToken, &SecretString::from("short-token")).unwrap();
        assert_eq!(v.get(SecretSlot::UspsAccessToken).unwrap().unwrap().expose_secret(), "short-token");
        assert!((1..=count).all(|i| raw(&format!("sandbox/usps-access-token#{second_gen}.{i}")).is_none()));
        v.set(SecretSlot::UspsAccessToken, &big).unwrap();
        v.delete(SecretSlot::UspsAccessToken).unwrap();
        assert!(v.get(SecretSlot::UspsAccessToken).unwrap().is_none());
        // Multi-byte text is split at character boundaries.
        let accented = SecretString::from("é".repeat(3000));
        v.set(SecretSlot::UspsRefreshToken, &accented).unwrap();
        assert_eq!(v.get(SecretSlot::UspsRefreshToken).unwrap().unwrap().expose_secret(), accented.expose_secret());
    }

    #[test]
    fn a_refused_write_leaves_no_part_and_a_delete_finds_the_parts_of_any_generation() {
        let store = test_store::TestStore::new(mock::Store::new().unwrap(), Some(test_store::WINDOWS_UTF16_BYTES));
        let v = Vault::with_store(store.clone(), SERVICE).scoped("sandbox");
        let slot = SecretSlot::UspsAccessToken;
        // Parts that hold a value (the mock store also lists an entry that was only built).
        let stored = || {
            let holds = |account: &String| v.entry_named(account).unwrap().get_password().is_ok();
            v.stored_parts(slot).iter().filter(|a| holds(a)).count()
        };
        let old = token(4096, 'a');
        v.set(slot, &old).unwrap();
        assert_eq!(stored(), 4);
        // The keyring locks after two of the new value's five parts: the write fails, the old value
        // is still whole, and the two new parts are gone again.
        store.refuse_writes_after(2);
        assert!(v.set(slot, &token(6000, 'b')).is_err());
        store.refuse_writes(false);
        assert_eq!(v.get(slot).unwrap().unwrap().expose_secret(), old.expose_secret());
        assert_eq!(stored(), 4, "only the old value's parts");
        // A part no first entry names (a crash between writing the parts and switching the first
        // entry): a delete finds it too.
        v.entry_named(&v.part_name(slot, "dead1", 1)).unwrap().set_password("orphan").unwrap();
        assert_eq!(stored(), 5);
        v.delete(slot).unwrap();
        assert!(v.get(slot).unwrap().is_none());
        assert_eq!(stored(), 0, "no part of any generation left");
        // The same for a new value: the orphans of earlier attempts go once a value is written.
        v.entry_named(&v.part_name(slot, "dead2", 3)).unwrap().set_password("orphan").unwrap();
        v.set(slot, &SecretString::from("short")).unwrap();
        assert_eq!(stored(), 0);
        // Another environment's parts and another service's are never touched.
        let other_env = Vault::with_store(store.clone(), SERVICE).scoped("production");
        other_env.set(slot, &old).unwrap();
        let other_service = Vault::with_store(store.clone(), "uspslink-other").scoped("sandbox");
        other_service.set(slot, &old).unwrap();
        v.delete(slot).unwrap();
        assert_eq!(other_env.get(slot).unwrap().unwrap().expose_secret(), old.expose_secret());
        assert_eq!(other_service.get(slot).unwrap().unwrap().expose_secret(), old.expose_secret());
    }

    #[test]
    fn parts_headers_are_read_strictly() {
        assert_eq!(parts_of("uspslink-parts:v1:ab12:3"), Some(("ab12".into(), 3)));
        for not_parts in [
            "eyJhbGciOi.x.y",
            "uspslink-parts:v1:ab12",
            "uspslink-parts:v1::3",
            "uspslink-parts:v1:zz:3",
            "uspslink-parts:v1:ab:1",
            "uspslink-parts:v1:ab:999",
        ] {
            assert_eq!(parts_of(not_parts), None, "{not_parts}");
        }
        assert_eq!(split_utf8("aé", 2), ["a", "é"]);
        assert_eq!(split_utf8("", 5), Vec::<&str>::new());
    }

    #[test]
    #[ignore = "needs a real Secret Service; scripts/test runs it inside dbus-run-session"]
    fn real_secret_service_keeps_a_4_kb_token() {
        let v = Vault::platform_with_service("uspslink-unit-test").scoped("sandbox");
        let big = token(4096, 'r');
        v.set(SecretSlot::UspsAccessToken, &big).unwrap();
        let again = Vault::platform_with_service("uspslink-unit-test").scoped("sandbox");
        assert_eq!(again.get(SecretSlot::UspsAccessToken).unwrap().unwrap().expose_secret(), big.expose_secret());
        assert_eq!(again.stored_parts(SecretSlot::UspsAccessToken).len(), 4, "the Secret Service lists the parts");
        // A part of a generation no first entry names (left by a crash) is found by the delete too.
        again
            .entry_named(&again.part_name(SecretSlot::UspsAccessToken, "dead1", 2))
            .unwrap()
            .set_password("x")
            .unwrap();
        again.delete(SecretSlot::UspsAccessToken).unwrap();
        assert!(v.get(SecretSlot::UspsAccessToken).unwrap().is_none());
        assert_eq!(v.stored_parts(SecretSlot::UspsAccessToken), Vec::<String>::new(), "no part left");
    }

    /// Windows' Credential Manager itself (under Wine in the test command): its limit is real, a
    /// 4 KB token goes into parts and comes back whole through a second handle, and a delete leaves
    /// no entry of the account behind (every credential is listed with `CredEnumerateW`).
    #[cfg(windows)]
    #[test]
    fn credential_manager_keeps_a_4_kb_token_in_parts_and_a_delete_leaves_none() {
        let service = format!("uspslink-unit-test-{}", std::process::id());
        let store = platform_store().unwrap();
        let whole = store.build(&service, "probe", None).unwrap();
        assert!(
            matches!(whole.set_password(token(4096, 'w').expose_secret()), Err(KeyringError::TooLong(..))),
            "Credential Manager refuses one 4 KB entry"
        );
        // Targets are `<account>.<service>`: everything this test wrote ends with its service.
        let suffix = format!(".{service}");
        let entries_left = || windows_credentials::targets().iter().filter(|t| t.ends_with(&suffix)).count();
        assert_eq!(entries_left(), 0);

        let v = Vault::with_store(store.clone(), &service).scoped("sandbox");
        let big = token(4096, 'w');
        v.set(SecretSlot::UspsAccessToken, &big).unwrap();
        let again = Vault::platform_with_service(&service).scoped("sandbox");
        assert_eq!(again.get(SecretSlot::UspsAccessToken).unwrap().unwrap().expose_secret(), big.expose_secret());
        assert_eq!(entries_left(), 5, "the first entry and 4 parts of at most {MAX_ENTRY_BYTES} bytes");
        // Replaced by a longer one: the old generation's parts go.
        let bigger = token(6000, 'v');
        again.set(SecretSlot::UspsAccessToken, &bigger).unwrap();
        assert_eq!(v.get(SecretSlot::UspsAccessToken).unwrap().unwrap().expose_secret(), bigger.expose_secret());
        assert_eq!(entries_left(), 6, "the first entry and 5 parts");
        again.delete(SecretSlot::UspsAccessToken).unwrap();
        assert!(v.get(SecretSlot::UspsAccessToken).unwrap().is_none());
        assert_eq!(entries_left(), 0, "no part left behind");
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
