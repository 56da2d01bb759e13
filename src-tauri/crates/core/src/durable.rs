//! Durable files: the progress file is replaced atomically and keeps a last good copy, and a damaged
//! file found at start is set aside (never overwritten) and the last good copy put back.
//!
//! Why: a crash, `kill -9` or power cut in the middle of a plain `fs::write` leaves a truncated file,
//! and a store that ignores load errors then starts from zero and overwrites what was left
//! (docs/DESIGN.md, "Durable progress").
//!
//! A save is: write `NAME.tmp` in the same folder, fsync it, hard-link the current file as the last
//! good copy (`NAME.last-good`, replaced by rename), rename `NAME.tmp` over `NAME`, fsync the folder.
//! At every moment `NAME` is either the old complete file or the new complete file.
//!
//! Windows differs in three ways, each handled here: a file is flushed only through a handle that
//! may write to it (`FlushFileBuffers` on a read-only handle is "Access denied"); a folder cannot be
//! opened to be flushed (the rename is atomic without it); and a rename over a file that another
//! program holds open without sharing delete access (a virus scanner, a backup or sync client
//! reading it) is refused for as long as that handle lives, so a refused rename is tried again for a
//! short while before the save fails (and then changes nothing).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// The file beside `path` with `suffix` appended to its name (`uspslink.json.last-good`).
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

pub fn last_good_path(path: &Path) -> PathBuf {
    sibling(path, ".last-good")
}

fn tmp_path(path: &Path) -> PathBuf {
    sibling(path, ".tmp")
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    // Makes the renames themselves durable. Opening a directory read-only and fsyncing it is how
    // POSIX systems do it; where a platform refuses (Windows), the rename is still atomic.
    match fs::File::open(dir) {
        Ok(d) => d.sync_all().or(Ok(())),
        Err(_) => Ok(()),
    }
}

/// Write `bytes` to a new file at `path`, readable by the user only, and flush it to the disk
/// through the handle that wrote it.
fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, PRIVATE_FILE);
    let mut f = options.open(path)?;
    // `mode` applies to a file it creates; a leftover temporary file keeps its own.
    make_private(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Folders holding the user's data: the user's only (the progress file has the business's name,
/// address, phone, CRID, MID and payment account; the log says what was done). On Windows the
/// folders under the user's profile are private already, so these are Unix modes.
pub const PRIVATE_DIR: u32 = 0o700;
pub const PRIVATE_FILE: u32 = 0o600;

/// Create `dir` (and missing parents) private to the user.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, PRIVATE_DIR);
    builder.create(dir)?;
    make_private(dir)
}

/// Make a folder 0700 or a file 0600 if it is not (a symlink is left alone: never followed).
pub fn make_private(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::symlink_metadata(path)?;
        let mode = match meta.file_type() {
            t if t.is_dir() => PRIVATE_DIR,
            t if t.is_file() => PRIVATE_FILE,
            _ => return Ok(()),
        };
        if meta.permissions().mode() & 0o7777 != mode {
            fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// At start: `dir` and everything directly in it made private, for files an older version (or a
/// copy from elsewhere) left readable by others. Every entry is tried; the first error is returned.
pub fn make_private_folder(dir: &Path) -> io::Result<()> {
    let mut first_error = make_private(dir).err();
    for entry in fs::read_dir(dir)? {
        if let Err(e) = entry.and_then(|e| make_private(&e.path())) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Copy `from` to a new file `to`, flushed to the disk.
fn copy_synced(from: &Path, to: &Path) -> io::Result<()> {
    fs::copy(from, to)?;
    // Opened for writing: Windows flushes only through a handle that may write.
    fs::OpenOptions::new().write(true).open(to)?.sync_all()
}

/// How long a refused rename is tried again (Windows: another program has the file open).
const RENAME_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether Windows refused to touch a file because another program holds it open: a sharing or lock
/// violation (ERROR_SHARING_VIOLATION 32, ERROR_LOCK_VIOLATION 33). Never true elsewhere.
pub fn held_by_another_program(e: &io::Error) -> bool {
    cfg!(windows) && matches!(e.raw_os_error(), Some(32 | 33))
}

/// `fs::rename`, tried again for up to [`RENAME_PATIENCE`] while Windows refuses it because another
/// program has the file open (a sharing violation, or "Access denied" for a file pending deletion
/// or mapped): such handles (a scanner, an indexer, a sync client) are short-lived. Elsewhere a
/// refused rename is a lasting problem and is returned at once.
fn rename_patiently(from: &Path, to: &Path) -> io::Result<()> {
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(10);
    loop {
        match fs::rename(from, to) {
            Err(e)
                if (held_by_another_program(&e) || (cfg!(windows) && e.raw_os_error() == Some(5)))
                    && started.elapsed() < RENAME_PATIENCE =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(250));
            }
            other => return other,
        }
    }
}

/// The folder a file lives in (`.` for a bare name), whose entry must be synced after a rename.
fn folder_of(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Replace `path` with `bytes` atomically, keeping the previous file as the last good copy. On any
/// error the file at `path` is the one that was there before, and the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = folder_of(path);
    create_private_dir(dir)?;
    let tmp = tmp_path(path);
    let result = (|| {
        write_synced(&tmp, bytes)?;
        if path.exists() {
            // The previous complete file becomes the last good copy; a hard link costs no space, so a
            // full disk cannot fail this step after the new file was written.
            let lg = last_good_path(path);
            let lg_tmp = sibling(path, ".last-good.tmp");
            let _ = fs::remove_file(&lg_tmp);
            if fs::hard_link(path, &lg_tmp).is_err() {
                // A file system without hard links (FAT, exFAT): a copy (may fail on a full disk:
                // the save fails then, and nothing changed).
                copy_synced(path, &lg_tmp)?;
            }
            rename_patiently(&lg_tmp, &lg)?;
        }
        rename_patiently(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        let _ = fs::remove_file(sibling(path, ".last-good.tmp"));
    }
    result
}

/// Whether the bytes are a store file: a JSON object.
pub fn parse_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// What was found at start, for the one message the UI shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// No file yet (first run) or a readable one: nothing to say.
    Clean,
    /// The file could not be read; it was set aside and the last good copy put back.
    Restored { set_aside: PathBuf },
    /// The file could not be read and there was no good copy: the app starts fresh.
    StartedFresh { set_aside: PathBuf },
}

/// A name beside `path` that no earlier file set aside has: `NAME.<why>-<unix>[-n]`.
fn set_aside_name(path: &Path, why: &str, unix_secs: u64) -> PathBuf {
    let first = sibling(path, &format!(".{why}-{unix_secs}"));
    if !first.exists() {
        return first;
    }
    (1..).map(|n| sibling(path, &format!(".{why}-{unix_secs}-{n}"))).find(|p| !p.exists()).expect("an unused name")
}

/// Move the file at `path` aside as it is, under `NAME.<why>-<unix>[-n]` (never over an earlier
/// one), and return that name.
pub fn set_aside(path: &Path, why: &str, unix_secs: u64) -> io::Result<PathBuf> {
    let aside = set_aside_name(path, why, unix_secs);
    rename_patiently(path, &aside)?;
    let dir = folder_of(path);
    sync_dir(dir)?;
    Ok(aside)
}

/// Check the file at `path` before it is loaded. A file that is not a JSON object (truncated,
/// empty, garbage) is renamed aside, and the last good copy, if it parses, is copied into place.
pub fn recover(path: &Path, unix_secs: u64) -> io::Result<Recovery> {
    let _ = fs::remove_file(tmp_path(path)); // an interrupted save: the file itself is intact
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // A crash between the two renames cannot leave no file (the file is only ever replaced),
            // but a user or a tool may have deleted it while the last good copy remains.
            return match fs::read(last_good_path(path)).ok().and_then(|b| parse_object(&b).map(|_| b)) {
                Some(good) => {
                    write_atomic(path, &good)?;
                    Ok(Recovery::Restored { set_aside: PathBuf::new() })
                }
                None => Ok(Recovery::Clean),
            };
        }
        Err(e) => return Err(e),
    };
    if parse_object(&bytes).is_some() {
        return Ok(Recovery::Clean);
    }
    let set_aside = set_aside(path, "damaged", unix_secs)?;
    let good = fs::read(last_good_path(path)).ok().filter(|b| parse_object(b).is_some());
    match good {
        Some(good) => {
            let tmp = tmp_path(path);
            write_synced(&tmp, &good)?;
            rename_patiently(&tmp, path)?;
            Ok(Recovery::Restored { set_aside })
        }
        None => Ok(Recovery::StartedFresh { set_aside }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "uspslink-durable-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_save_keeps_the_previous_file_as_last_good() {
        let d = dir();
        let p = d.join("store.json");
        write_atomic(&p, br#"{"n":1}"#).unwrap();
        assert!(!last_good_path(&p).exists(), "nothing before the first save");
        write_atomic(&p, br#"{"n":2}"#).unwrap();
        assert_eq!(fs::read(&p).unwrap(), br#"{"n":2}"#);
        assert_eq!(fs::read(last_good_path(&p)).unwrap(), br#"{"n":1}"#);
        assert!(!tmp_path(&p).exists());
    }

    #[test]
    fn damaged_files_are_set_aside_and_the_last_good_copy_restored() {
        for damaged in [&b""[..], b"{\"preferences\": {\"environment\": \"produ", b"\x00\xffgarbage", b"[1,2]", b"null"]
        {
            let d = dir();
            let p = d.join("store.json");
            write_atomic(&p, br#"{"n":1}"#).unwrap();
            write_atomic(&p, br#"{"n":2}"#).unwrap();
            fs::write(&p, damaged).unwrap();
            let r = recover(&p, 1_000).unwrap();
            let Recovery::Restored { set_aside } = r else { panic!("{damaged:?}: {r:?}") };
            assert_eq!(fs::read(&set_aside).unwrap(), damaged, "the damaged file is kept as it was");
            assert!(set_aside.file_name().unwrap().to_string_lossy().contains("damaged"));
            assert_eq!(fs::read(&p).unwrap(), br#"{"n":1}"#);
            // A second damage at the same second does not overwrite the first set-aside file.
            fs::write(&p, b"again").unwrap();
            let Recovery::Restored { set_aside: second } = recover(&p, 1_000).unwrap() else { panic!() };
            assert_ne!(second, set_aside);
            assert_eq!(fs::read(&set_aside).unwrap(), damaged);
        }
    }

    #[test]
    fn no_good_copy_means_starting_fresh_and_saying_so() {
        let d = dir();
        let p = d.join("store.json");
        fs::write(&p, b"{trunc").unwrap();
        let Recovery::StartedFresh { set_aside } = recover(&p, 7).unwrap() else { panic!() };
        assert!(!p.exists());
        assert_eq!(fs::read(set_aside).unwrap(), b"{trunc");
        assert_eq!(recover(&d.join("none.json"), 7).unwrap(), Recovery::Clean);
        write_atomic(&p, b"{}").unwrap();
        assert_eq!(recover(&p, 7).unwrap(), Recovery::Clean);
    }

    /// Another program's handle on the file that does not share delete access, as a virus scanner
    /// or a sync client opens it (Windows only: elsewhere an open file never stops a rename).
    #[cfg(windows)]
    fn hold_without_delete_sharing(p: &Path) -> fs::File {
        use std::os::windows::fs::OpenOptionsExt;
        const FILE_SHARE_READ: u32 = 0x1;
        fs::OpenOptions::new().read(true).share_mode(FILE_SHARE_READ).open(p).unwrap()
    }

    #[cfg(windows)]
    #[test]
    fn a_save_waits_out_a_program_that_holds_the_file_for_a_moment() {
        let d = dir();
        let p = d.join("store.json");
        write_atomic(&p, br#"{"n":1}"#).unwrap();
        let held = hold_without_delete_sharing(&p);
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(held);
        });
        write_atomic(&p, br#"{"n":2}"#).unwrap();
        release.join().unwrap();
        assert_eq!(fs::read(&p).unwrap(), br#"{"n":2}"#);
        assert_eq!(fs::read(last_good_path(&p)).unwrap(), br#"{"n":1}"#);
        assert!(!tmp_path(&p).exists());
    }

    #[cfg(windows)]
    #[test]
    fn a_file_held_for_good_fails_the_save_and_changes_nothing() {
        let d = dir();
        let p = d.join("store.json");
        write_atomic(&p, br#"{"n":1}"#).unwrap();
        let held = hold_without_delete_sharing(&p);
        let started = std::time::Instant::now();
        let e = write_atomic(&p, br#"{"n":2}"#).unwrap_err();
        assert!(held_by_another_program(&e), "{e:?}");
        assert!(started.elapsed() >= RENAME_PATIENCE, "tried again before giving up");
        drop(held);
        assert_eq!(fs::read(&p).unwrap(), br#"{"n":1}"#);
        assert!(!tmp_path(&p).exists());
        // Once the handle is gone the next save works. (The hard link made for the last good copy
        // shares the held file's sharing rules, so it could be neither renamed nor removed while the
        // file was held: the next save clears it.)
        write_atomic(&p, br#"{"n":3}"#).unwrap();
        assert_eq!(fs::read(&p).unwrap(), br#"{"n":3}"#);
        assert_eq!(fs::read(last_good_path(&p)).unwrap(), br#"{"n":1}"#);
        assert!(!sibling(&p, ".last-good.tmp").exists());
    }

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[cfg(unix)]
    #[test]
    fn the_files_and_their_folder_are_the_users_only() {
        use std::os::unix::fs::PermissionsExt;
        let d = dir().join("data");
        let p = d.join("store.json");
        write_atomic(&p, br#"{"n":1}"#).unwrap();
        write_atomic(&p, br#"{"n":2}"#).unwrap();
        assert_eq!(mode(&d), 0o700, "the folder it made");
        assert_eq!(mode(&p), 0o600);
        assert_eq!(mode(&last_good_path(&p)), 0o600);
        // A damaged file set aside, and the copy put back, stay private.
        fs::write(&p, b"{trunc").unwrap();
        let Recovery::Restored { set_aside } = recover(&p, 9).unwrap() else { panic!() };
        assert_eq!(mode(&set_aside), 0o600);
        assert_eq!(mode(&p), 0o600);
        // What an older version left readable by others is made private at start.
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(d.join("other.log"), b"x").unwrap();
        fs::set_permissions(d.join("other.log"), fs::Permissions::from_mode(0o664)).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", d.join("link")).unwrap();
        make_private_folder(&d).unwrap();
        assert_eq!((mode(&d), mode(&p), mode(&d.join("other.log"))), (0o700, 0o600, 0o600));
        assert_eq!(mode(Path::new("/etc/hostname")) & 0o044, 0o044, "a symlink's target is not touched");
        // A leftover temporary file of another mode is not written to as it was.
        fs::write(tmp_path(&p), b"old").unwrap();
        fs::set_permissions(tmp_path(&p), fs::Permissions::from_mode(0o666)).unwrap();
        write_atomic(&p, br#"{"n":3}"#).unwrap();
        assert_eq!(mode(&p), 0o600);
    }

    #[test]
    fn a_failed_save_leaves_the_file_as_it_was() {
        let d = dir();
        let p = d.join("store.json");
        write_atomic(&p, br#"{"n":1}"#).unwrap();
        // The temporary name is taken by a folder: the write fails before anything is replaced.
        fs::create_dir(tmp_path(&p)).unwrap();
        assert!(write_atomic(&p, br#"{"n":2}"#).is_err());
        assert_eq!(fs::read(&p).unwrap(), br#"{"n":1}"#);
    }

    #[test]
    fn a_file_set_aside_keeps_its_bytes_and_never_replaces_an_earlier_one() {
        let d = dir();
        let p = d.join("store.json");
        fs::write(&p, br#"{"format":9}"#).unwrap();
        let first = set_aside(&p, "newer", 5).unwrap();
        assert!(!p.exists());
        assert_eq!(first.file_name().unwrap(), "store.json.newer-5");
        fs::write(&p, b"second").unwrap();
        let second = set_aside(&p, "newer", 5).unwrap();
        assert_ne!(second, first);
        assert_eq!(fs::read(&first).unwrap(), br#"{"format":9}"#);
        assert_eq!(fs::read(&second).unwrap(), b"second");
        assert!(set_aside(&d.join("none.json"), "newer", 5).is_err(), "nothing to set aside is an error");
    }
}
