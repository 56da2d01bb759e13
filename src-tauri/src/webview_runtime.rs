//! Windows draws uspslink's window with the Microsoft Edge WebView2 Runtime. It ships with Windows 10
//! and 11, but it can be missing (removed, an old or stripped-down system). Without it Tauri shows a
//! bare "could not find the WebView2 Runtime" box and then fails its setup with a panic: the user
//! sees a crash. So the app asks for the runtime before it builds anything, and when it is missing
//! says what to install and where, in a native message box, logs it, and exits with
//! [`EXIT_WEBVIEW_MISSING`].

/// The exit code of a start without the WebView2 Runtime (1 is any other failed start).
pub const EXIT_WEBVIEW_MISSING: i32 = 3;
/// Microsoft's download page for the runtime.
pub const DOWNLOAD_URL: &str = "https://developer.microsoft.com/microsoft-edge/webview2/";
pub const TITLE: &str = "uspslink needs Microsoft Edge WebView2";

/// The message box's text.
pub fn missing_text() -> String {
    format!(
        "uspslink cannot open its window: the Microsoft Edge WebView2 Runtime is not installed on this \
         computer. It comes with Windows 10 and 11 but may have been removed.\n\n\
         Install the \"Evergreen Bootstrapper\" from Microsoft:\n{DOWNLOAD_URL}\n\n\
         then open uspslink again. Your progress is kept.\n\n\
         Open the download page now?"
    )
}

/// Start-up on Windows: returns when the runtime is there; otherwise tells the user and exits.
/// `log_dir` is where the app's log goes (Tauri's `app_log_dir`, which needs a built app).
#[cfg(windows)]
pub fn require(log_dir: Option<std::path::PathBuf>, browser: Option<&str>) {
    let reason = match tauri::webview_version() {
        Ok(version) => {
            tracing::info!(version, "Microsoft Edge WebView2 Runtime");
            return;
        }
        Err(e) => e.to_string(),
    };
    if let Some(dir) = log_dir {
        if let Err(e) = crate::about::open_log_file(&dir) {
            eprintln!("uspslink: no log file in {}: {e}", dir.display());
        }
    }
    tracing::error!(reason, "the Microsoft Edge WebView2 Runtime is missing; uspslink cannot start");
    if ask_yes_no(TITLE, &missing_text()) {
        if let Err(e) = crate::ipc::events::open_in_browser(DOWNLOAD_URL, browser) {
            tracing::warn!("could not open the WebView2 download page: {e}");
        }
    }
    std::process::exit(EXIT_WEBVIEW_MISSING);
}

/// A native Windows message box, before any window of ours exists. Yes is the default button.
#[cfg(windows)]
fn ask_yes_no(title: &str, text: &str) -> bool {
    use windows_sys::Win32::UI::WindowsAndMessaging::{MessageBoxW, IDYES, MB_ICONERROR, MB_SETFOREGROUND, MB_YESNO};
    let wide = |s: &str| s.encode_utf16().chain(std::iter::once(0)).collect::<Vec<u16>>();
    let (text, title) = (wide(text), wide(title));
    // SAFETY: both strings are NUL-terminated UTF-16 that outlive the call; no owner window.
    let answer = unsafe {
        MessageBoxW(std::ptr::null_mut(), text.as_ptr(), title.as_ptr(), MB_YESNO | MB_ICONERROR | MB_SETFOREGROUND)
    };
    answer == IDYES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_says_what_to_install_and_where() {
        assert!(TITLE.contains("Microsoft Edge WebView2"), "the box's title names it too");
        let text = missing_text();
        assert!(text.contains("Microsoft Edge WebView2 Runtime"));
        assert!(text.contains(DOWNLOAD_URL));
        assert!(text.contains("Evergreen Bootstrapper"));
        assert_ne!(EXIT_WEBVIEW_MISSING, 0);
        assert_ne!(EXIT_WEBVIEW_MISSING, 1, "apart from any other failed start");
    }
}
