//! Who hands `uspslink://` to this binary. The USPS sign-in ends in the browser with a redirect to
//! `uspslink://oauth/callback`; unless the OS knows a handler for the scheme, the browser says
//! "Operation not supported" and the link step can never finish.
//!
//! - An installed package (the .deb puts the binary under `/usr`) registers the scheme itself, in
//!   its `.desktop` file, for the installed binary: the app must not write a per-user handler over it.
//! - Any other binary (`target/release/uspslink` from `scripts/run`, a copy in a home folder) is not
//!   known to the OS: it registers itself, for the user, at start (a `.desktop` handler in the
//!   user's applications folder and `xdg-mime default`), so the browser's redirect reaches it.
//! - `USPSLINK_REGISTER_SCHEME=1` / `=0` forces either way (tests, packagers).

use std::path::Path;

/// Forces registration (`1`) or its absence (`0`).
pub const ENV_REGISTER_SCHEME: &str = "USPSLINK_REGISTER_SCHEME";

/// Folders that only a package manager writes: a binary there was installed with its own handler.
const PACKAGED_PREFIXES: [&str; 5] = ["/usr/", "/opt/", "/snap/", "/app/", "/nix/store/"];

/// Whether this binary should register itself as the `uspslink://` handler at start.
pub fn should_register(forced: Option<&str>, exe: Option<&Path>) -> bool {
    match forced.map(str::trim) {
        Some("1") => return true,
        Some("0") => return false,
        _ => {}
    }
    match exe {
        Some(exe) => !PACKAGED_PREFIXES.iter().any(|p| exe.starts_with(p)),
        // Not knowing where we run: registering is what makes the sign-in work.
        None => true,
    }
}

/// This process's binary, as the OS would start it (links resolved).
pub fn current_exe() -> Option<std::path::PathBuf> {
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
        let p = |s: &str| Some(std::path::PathBuf::from(s));
        assert!(!should_register(None, p("/usr/bin/uspslink").as_deref()));
        assert!(!should_register(None, p("/opt/uspslink/uspslink").as_deref()));
        assert!(should_register(None, p("/home/ann/src/uspslink/target/release/uspslink").as_deref()));
        assert!(should_register(None, p("/srv/build/uspslink/target/release/uspslink").as_deref()));
        assert!(should_register(None, p("/usrlocal/uspslink").as_deref()), "a prefix is a whole folder");
        assert!(should_register(None, None));
        assert!(should_register(Some("1"), p("/usr/bin/uspslink").as_deref()));
        assert!(!should_register(Some(" 0 "), p("/tmp/uspslink").as_deref()));
        assert!(should_register(Some("yes"), p("/tmp/uspslink").as_deref()), "anything else: the default");
    }
}
