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

#[cfg(test)]
mod tests {
    use super::*;

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
