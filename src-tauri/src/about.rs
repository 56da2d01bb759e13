//! *About* in Settings: what a support request needs (versions, environment, where the data and the
//! log are, where the link stands, the last errors), as text the user copies. Never a secret: the
//! text is built from the records (which hold none) and from error messages (which never quote a
//! secret), and a test checks it against the secrets a session stored.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use ts_rs::TS;
use uspslink_core::usps::LinkStatus;
use uspslink_core::IpcError;

use crate::state::{lock, AppState};

/// How many recent errors the diagnostics keep.
const RECENT_ERRORS: usize = 10;
/// The log file is started afresh (the old one kept as `.1`) past this size.
const MAX_LOG_BYTES: u64 = 2 * 1024 * 1024;

static ERRORS: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());
static LOG_FILE: Mutex<Option<std::fs::File>> = Mutex::new(None);

/// A command failed: remembered (kind and message) for the diagnostics.
pub fn note_error(command: &str, e: &IpcError) {
    let mut errors = lock(&ERRORS);
    if errors.len() == RECENT_ERRORS {
        errors.pop_front();
    }
    let message: String = e.message.chars().take(200).collect();
    errors.push_back(format!("{command}: {:?}: {message}", e.kind));
}

/// The log goes to stderr and, once the app knows its log folder, to `uspslink.log` there.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = std::io::stderr().write(buf)?;
        if let Some(f) = lock(&LOG_FILE).as_mut() {
            let _ = f.write_all(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Start writing the log to `dir/uspslink.log` too, the user's only (the folder 0700, the files
/// 0600, including those an older version left readable). Returns the file's path.
pub fn open_log_file(dir: &Path) -> std::io::Result<PathBuf> {
    use uspslink_core::durable::{create_private_dir, make_private_folder};
    create_private_dir(dir)?;
    if let Err(e) = make_private_folder(dir) {
        tracing::warn!("could not make the log folder private: {e}");
    }
    let path = dir.join("uspslink.log");
    if std::fs::metadata(&path).map(|m| m.len() > MAX_LOG_BYTES).unwrap_or(false) {
        let _ = std::fs::rename(&path, dir.join("uspslink.log.1"));
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, uspslink_core::durable::PRIVATE_FILE);
    let file = options.open(&path)?;
    *lock(&LOG_FILE) = Some(file);
    Ok(path)
}

/// What *About* shows.
#[derive(Debug, Clone, Serialize, TS)]
pub struct About {
    pub version: String,
    pub environment: String,
    pub data_folder: String,
    pub log_file: String,
    /// Everything above and more, as one text to paste into a support request.
    pub diagnostics: String,
}

pub fn about(state: &AppState, data_folder: &Path, log_file: Option<&Path>) -> About {
    let scope = state.scope();
    let link = match state.link_status(scope) {
        LinkStatus::NotLinked => "not linked".to_string(),
        LinkStatus::Waiting => "waiting for the USPS sign-in".to_string(),
        LinkStatus::Linked { record } => format!("linked (access token valid until unix {})", record.access_expires_at),
        LinkStatus::Failed { kind, .. } => format!("last sign-in failed ({kind:?})"),
        LinkStatus::NeedsReconnecting { .. } => "needs reconnecting".to_string(),
    };
    let stamps = state.progress.stamps_record(scope);
    let savings = state.progress.savings_view(scope);
    let view = state.progress.view(scope);
    let log_file = log_file.map(|p| p.display().to_string()).unwrap_or_else(|| "standard error only".into());
    let errors: Vec<String> = lock(&ERRORS).iter().cloned().collect();
    let lines = [
        format!("uspslink {}", env!("CARGO_PKG_VERSION")),
        format!("Tauri {}", tauri::VERSION),
        format!("System: {} {}", std::env::consts::OS, std::env::consts::ARCH),
        format!("Environment: {}", scope.label()),
        // By id, not by name: a 3PL's businesses are its clients, and the diagnostics go to support.
        format!(
            "Business: id {} of {} in this install (what follows is its)",
            scope.business().0,
            state.progress.businesses().list().len()
        ),
        format!("Data folder: {}", data_folder.display()),
        format!("Log file: {log_file}"),
        format!("Steps done: {} of {} (current: {:?})", view.completed_count, view.total_steps, view.current_step),
        format!(
            "Stamps.com: key checked {}, registered {}, verified {}",
            stamps.key_checked,
            stamps.carrier_id.is_some(),
            stamps.verified
        ),
        format!("USPS link: {link}"),
        format!("Identifiers verified: {}", state.progress.identifiers_record(scope).summary.is_some()),
        format!("NSA rates: {:?}; Stamps.com: {:?}", savings.state, savings.platform),
    ];
    let mut diagnostics = lines.join("\n");
    for line in state.progress.savings_lines(scope) {
        diagnostics.push_str("\n  ");
        diagnostics.push_str(&line);
    }
    diagnostics.push_str(&format!("\nRecent errors ({}):", errors.len()));
    for e in &errors {
        diagnostics.push_str("\n  ");
        diagnostics.push_str(e);
    }
    About {
        version: env!("CARGO_PKG_VERSION").to_string(),
        environment: scope.label().to_string(),
        data_folder: data_folder.display().to_string(),
        log_file,
        diagnostics,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use secrecy::SecretString;

    use uspslink_core::shipengine::StampsRecord;
    use uspslink_core::vault::SecretSlot;
    use uspslink_core::ErrorKind;

    use super::*;
    use crate::state::tests::{state_over, MemoryPersist};

    #[cfg(unix)]
    #[test]
    fn the_log_and_its_folder_are_the_users_only() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = std::env::temp_dir().join(format!("uspslink-log-{}", std::process::id())).join("logs");
        let path = open_log_file(&dir).unwrap();
        assert_eq!((mode(&dir), mode(&path)), (0o700, 0o600), "as created");
        // What an older version left readable by others (0755, 0644) is fixed at the next start.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(dir.join("uspslink.log.1"), b"old").unwrap();
        std::fs::set_permissions(dir.join("uspslink.log.1"), std::fs::Permissions::from_mode(0o644)).unwrap();
        open_log_file(&dir).unwrap();
        assert_eq!((mode(&dir), mode(&path), mode(&dir.join("uspslink.log.1"))), (0o700, 0o600, 0o600));
        *lock(&LOG_FILE) = None;
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn diagnostics_say_where_things_stand_and_hold_no_secret() {
        let s = state_over(Arc::new(MemoryPersist::default()));
        let key = "sandbox_diagnosticsSecretKey1";
        s.secrets.open(crate::state::tests::SB).set(SecretSlot::ShipEngineApiKey, &SecretString::from(key)).unwrap();
        s.progress
            .set_stamps_record(
                crate::state::tests::SB,
                StampsRecord { key_checked: true, carrier_id: Some("se-1".into()), ..StampsRecord::default() },
            )
            .unwrap();
        note_error("save_shipengine_key", &IpcError::new(ErrorKind::InvalidApiKey, "ShipEngine refused the API key"));
        let a =
            about(&s, Path::new("/home/ann/.local/share/org.uspslink.desktop"), Some(Path::new("/tmp/uspslink.log")));
        assert!(a.diagnostics.contains(&format!("uspslink {}", env!("CARGO_PKG_VERSION"))));
        assert!(a.diagnostics.contains("Environment: Sandbox"));
        assert!(a.diagnostics.contains("Business: id 1 of 1 in this install"), "{}", a.diagnostics);
        assert!(a.diagnostics.contains("key checked true, registered true, verified false"));
        assert!(a.diagnostics.contains("InvalidApiKey: ShipEngine refused the API key"));
        assert!(a.diagnostics.contains("Log file: /tmp/uspslink.log"));
        assert!(a.diagnostics.contains("NSA rates: NotApproved"), "{}", a.diagnostics);
        assert!(!a.diagnostics.contains(key), "never a secret");
        // The recent errors are bounded (one test: they are process-wide).
        for i in 0..(RECENT_ERRORS + 5) {
            note_error("x", &IpcError::new(ErrorKind::Network, format!("error {i}")));
        }
        assert!(lock(&ERRORS).len() <= RECENT_ERRORS);
    }
}
