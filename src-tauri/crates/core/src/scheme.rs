//! Who hands `uspslink://` to this binary. The USPS sign-in ends in the browser with a redirect to
//! `uspslink://oauth/callback`; unless the OS knows a handler for the scheme, the browser says
//! "Operation not supported" and the link step can never finish.
//!
//! - An installed copy registers the scheme through its installer, for the installed binary: the
//!   app must not write a per-user handler over it. On Linux the .deb puts the binary under `/usr`
//!   and names the scheme in its `.desktop` file; on Windows the installer puts it under
//!   `%LOCALAPPDATA%\Programs` (or an administrator under `Program Files`) and writes
//!   `HKCU\Software\Classes\uspslink`.
//! - Any other binary (`target/release/uspslink` from `scripts/run`, an exe in a build folder, a
//!   copy in a home folder) is not known to the OS: it registers itself, for the user, at start (on
//!   Linux a `.desktop` handler in the user's applications folder and `xdg-mime default`; on Windows
//!   the same registry key), so the browser's redirect reaches it.
//! - `USPSLINK_REGISTER_SCHEME=1` / `=0` forces either way (tests, packagers).
//!
//! Plain Rust, so the decision is tested on every platform the app is built for (under Wine too).

use std::path::{Path, PathBuf};

/// Forces registration (`1`) or its absence (`0`).
pub const ENV_REGISTER_SCHEME: &str = "USPSLINK_REGISTER_SCHEME";

/// Folders that only a package manager writes: a binary there was installed with its own handler.
const PACKAGED_PREFIXES: [&str; 5] = ["/usr/", "/opt/", "/snap/", "/app/", "/nix/store/"];

/// Whether this binary should register itself as the `uspslink://` handler at start. `install_roots`
/// are the folders an installer puts programs in ([`install_roots`] on this platform).
pub fn should_register(forced: Option<&str>, exe: Option<&Path>, install_roots: &[PathBuf]) -> bool {
    match forced.map(str::trim) {
        Some("1") => return true,
        Some("0") => return false,
        _ => {}
    }
    match exe {
        Some(exe) => !is_installed(exe, install_roots),
        // Not knowing where we run: registering is what makes the sign-in work.
        None => true,
    }
}

/// Whether `exe` lies in one of `roots` (a whole folder: `/usrlocal` is not under `/usr`). Windows
/// paths are compared without regard to case or to the `\\?\` prefix `canonicalize` adds there.
pub fn is_installed(exe: &Path, roots: &[PathBuf]) -> bool {
    let folded = |p: &Path| {
        let s = p.to_string_lossy();
        let s = s.strip_prefix(r"\\?\").unwrap_or(&s);
        // A Windows path (here, or a drive-letter path met elsewhere) folds separators and case.
        if cfg!(windows) || s.as_bytes().get(1) == Some(&b':') {
            s.replace('\\', "/").to_lowercase()
        } else {
            s.to_string()
        }
    };
    let exe = folded(exe);
    roots.iter().map(|r| folded(r)).filter(|r| !r.is_empty()).any(|root| {
        let root = root.trim_end_matches('/');
        exe.strip_prefix(root).is_some_and(|rest| rest.starts_with('/'))
    })
}

/// The folders this platform's installers put programs in.
pub fn install_roots() -> Vec<PathBuf> {
    if cfg!(windows) {
        // Per user (our installer's default), then what an administrator's install uses.
        let var = |name: &str| std::env::var_os(name).map(PathBuf::from);
        let mut roots: Vec<PathBuf> = var("LOCALAPPDATA").map(|d| d.join("Programs")).into_iter().collect();
        roots.extend(["ProgramFiles", "ProgramW6432", "ProgramFiles(x86)"].into_iter().filter_map(var));
        roots
    } else {
        PACKAGED_PREFIXES.iter().map(PathBuf::from).collect()
    }
}

/// This process's binary, as the OS would start it (links resolved).
pub fn current_exe() -> Option<PathBuf> {
    std::env::current_exe().ok().and_then(|p| p.canonicalize().ok())
}

/// The default handler of `mime` in a `mimeapps.list` (its `[Default Applications]` section).
fn default_handler<'a>(mimeapps: &'a str, mime: &str) -> Option<&'a str> {
    let mut in_defaults = false;
    for line in mimeapps.lines().map(str::trim) {
        if line.starts_with('[') {
            in_defaults = line == "[Default Applications]";
        } else if in_defaults {
            if let Some((key, value)) = line.split_once('=') {
                if key.trim() == mime {
                    return value.split(';').map(str::trim).find(|v| !v.is_empty());
                }
            }
        }
    }
    None
}

/// Whether the handler tauri-plugin-deep-link writes for `exe` is in place already: its `.desktop`
/// file in the user's applications folder runs `exe` for the scheme, and the user's
/// `mimeapps.list` names it the default. Then registering again, which runs two programs at every
/// start (one rescans every application file) while the first screen is being drawn, is skipped.
pub fn already_registered(applications: &Path, mimeapps_list: &Path, exe: &Path, scheme: &str) -> bool {
    let Some(name) = exe.file_name() else { return false };
    let file_name = format!("{}-handler.desktop", name.to_string_lossy());
    let Ok(desktop) = std::fs::read_to_string(applications.join(&file_name)) else { return false };
    let exec = format!("\"{}\" %u", exe.display());
    let mime = format!("x-scheme-handler/{scheme}");
    let field = |key: &str| {
        desktop.lines().find_map(|l| l.trim().strip_prefix(key)?.trim_start().strip_prefix('=').map(str::trim))
    };
    let runs_exe = field("Exec") == Some(exec.as_str());
    let takes_scheme = field("MimeType").is_some_and(|v| v.split(';').any(|m| m == mime));
    let mimeapps = std::fs::read_to_string(mimeapps_list).unwrap_or_default();
    runs_exe && takes_scheme && default_handler(&mimeapps, &mime) == Some(file_name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handler_in_place_for_this_binary_is_not_registered_again() {
        let dir = std::env::temp_dir().join(format!("uspslink-scheme-{}", std::process::id()));
        let apps = dir.join("applications");
        std::fs::create_dir_all(&apps).unwrap();
        let list = dir.join("mimeapps.list");
        let exe = Path::new("/srv/build/uspslink/target/release/uspslink");
        let desktop = apps.join("uspslink-handler.desktop");
        let write_desktop = |exec: &str, mime: &str| {
            std::fs::write(
                &desktop,
                format!(
                    "[Desktop Entry]\nType=Application\nName=uspslink\nExec={exec}\nMimeType={mime}\nNoDisplay=true\n"
                ),
            )
            .unwrap()
        };
        let ours = "\"/srv/build/uspslink/target/release/uspslink\" %u";
        assert!(!already_registered(&apps, &list, exe, "uspslink"), "nothing written yet");
        write_desktop(ours, "x-scheme-handler/uspslink");
        assert!(!already_registered(&apps, &list, exe, "uspslink"), "not the default yet");
        std::fs::write(&list, "[Added Associations]\nx-scheme-handler/uspslink=uspslink-handler.desktop;\n").unwrap();
        assert!(!already_registered(&apps, &list, exe, "uspslink"), "added is not default");
        std::fs::write(
            &list,
            "[Default Applications]\ntext/html=firefox.desktop\nx-scheme-handler/uspslink=uspslink-handler.desktop;\n",
        )
        .unwrap();
        assert!(already_registered(&apps, &list, exe, "uspslink"));
        // Another build of the app, another scheme, another default: registered again.
        assert!(!already_registered(&apps, &list, Path::new("/home/ann/uspslink/target/release/uspslink"), "uspslink"));
        assert!(!already_registered(&apps, &list, exe, "other"));
        write_desktop("\"/old/place/uspslink\" %u", "x-scheme-handler/uspslink");
        assert!(!already_registered(&apps, &list, exe, "uspslink"), "the file runs another binary");
        write_desktop(ours, "x-scheme-handler/uspslink;x-scheme-handler/other;");
        assert!(already_registered(&apps, &list, exe, "uspslink"));
        std::fs::write(
            &list,
            "[Default Applications]\nx-scheme-handler/uspslink=someone-else.desktop;uspslink-handler.desktop\n",
        )
        .unwrap();
        assert!(!already_registered(&apps, &list, exe, "uspslink"), "another handler is the default");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn installed_binaries_leave_the_scheme_to_their_package_and_others_register() {
        let p = |s: &str| Some(PathBuf::from(s));
        let linux: Vec<PathBuf> = PACKAGED_PREFIXES.iter().map(PathBuf::from).collect();
        let reg = |forced, exe: Option<PathBuf>| should_register(forced, exe.as_deref(), &linux);
        assert!(!reg(None, p("/usr/bin/uspslink")));
        assert!(!reg(None, p("/opt/uspslink/uspslink")));
        assert!(reg(None, p("/home/ann/src/uspslink/target/release/uspslink")));
        assert!(reg(None, p("/srv/build/uspslink/target/release/uspslink")));
        assert!(reg(None, p("/usrlocal/uspslink")), "a prefix is a whole folder");
        assert!(reg(None, None));
        assert!(reg(Some("1"), p("/usr/bin/uspslink")));
        assert!(!reg(Some(" 0 "), p("/tmp/uspslink")));
        assert!(reg(Some("yes"), p("/tmp/uspslink")), "anything else: the default");
    }

    #[test]
    fn on_windows_a_copy_under_programs_is_installed_and_one_in_a_build_folder_is_not() {
        let roots = [
            PathBuf::from(r"C:\Users\Ann\AppData\Local\Programs"),
            PathBuf::from(r"C:\Program Files"),
            PathBuf::from(""),
        ];
        let installed = |s: &str| is_installed(Path::new(s), &roots);
        assert!(installed(r"C:\Users\Ann\AppData\Local\Programs\uspslink\uspslink.exe"));
        assert!(installed(r"\\?\C:\Users\Ann\AppData\Local\Programs\uspslink\uspslink.exe"), "canonicalized");
        assert!(installed(r"c:\users\ann\appdata\local\programs\uspslink\USPSLINK.EXE"), "case does not matter");
        assert!(installed(r"C:\Program Files\uspslink\uspslink.exe"));
        assert!(!installed(r"C:\Users\Ann\src\uspslink\target\x86_64-pc-windows-gnu\release\uspslink.exe"));
        assert!(!installed(r"C:\Program Files (x86)\uspslink\uspslink.exe"), "a prefix is a whole folder");
        assert!(!installed(r"C:\Users\Ann\Downloads\uspslink.exe"));
        assert!(!should_register(None, Some(Path::new(r"C:\Program Files\uspslink\uspslink.exe")), &roots));
        assert!(should_register(None, Some(Path::new(r"D:\build\uspslink.exe")), &roots));
    }

    /// The folders this platform's installers use, read from where it keeps them (under Wine too).
    #[test]
    fn this_platforms_install_roots() {
        let roots = install_roots();
        if cfg!(windows) {
            let local = std::env::var_os("LOCALAPPDATA").expect("Windows names the user's local app data");
            let per_user = PathBuf::from(local).join("Programs").join("uspslink").join("uspslink.exe");
            assert!(is_installed(&per_user, &roots), "{roots:?}");
            let build = std::env::temp_dir().join("src").join("target").join("release").join("uspslink.exe");
            assert!(!is_installed(&build, &roots), "{roots:?}");
        } else {
            assert!(is_installed(Path::new("/usr/bin/uspslink"), &roots));
            assert!(!is_installed(Path::new("/home/ann/uspslink/target/release/uspslink"), &roots));
        }
    }
}
