//! Running with the window closed, with Tauri (`flows::background` decides what): the tray icon and
//! its menu, the window destroyed on close and made again on *Open*, a clean *Quit*, and the
//! notifications that lead back to a screen.
//!
//! With the window closed the webview goes, and with it WebKit's processes: what stays is one Rust
//! process with the watch's once-a-minute tick (DESIGN.md: at most 40 MiB in the background).

use std::time::Duration;

use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Runtime, WebviewWindowBuilder};

use crate::flows::background::{self, Notice, OnClose, Route};
use crate::flows::Host;
use crate::ipc::events::{self, emit, TauriHost};
use crate::state::AppState;

/// The main window's label (tauri.conf.json).
pub const MAIN: &str = "main";
const TRAY_ID: &str = "uspslink";

/// Show the main window, making it again if it was closed into the tray; on `route` if given.
pub fn open_window<R: Runtime>(app: &AppHandle<R>, route: Option<Route>) {
    let state = app.try_state::<AppState>();
    if let Some(state) = &state {
        state.window.set_in_tray(false);
    }
    if let Some(window) = app.get_webview_window(MAIN) {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
        if let Some(route) = route {
            emit::<events::OpenRoute, _>(app, &route);
        }
        return;
    }
    if let (Some(state), Some(route)) = (&state, route) {
        // Read by the new page with its first snapshot.
        state.window.set_open_on(route);
    }
    let Some(config) = app.config().app.windows.iter().find(|w| w.label == MAIN).cloned() else {
        tracing::error!("tauri.conf.json names no main window");
        return;
    };
    match WebviewWindowBuilder::from_config(app, &config).and_then(|b| b.build()) {
        Ok(window) => {
            crate::paint_without_gpu_compositing(app);
            let _ = window.set_focus();
        }
        Err(e) => tracing::error!("could not open the window: {e}"),
    }
}

/// The window's close button, the window manager's close, or Ctrl+W (the `close_window` command).
pub fn on_window_event<R: Runtime>(window: &tauri::Window<R>, event: &tauri::WindowEvent) {
    if window.label() != MAIN {
        return;
    }
    let app = window.app_handle();
    let Some(state) = app.try_state::<AppState>() else { return };
    match event {
        tauri::WindowEvent::CloseRequested { api, .. } => {
            match background::on_close(background::watched(&state), tray::available()) {
                OnClose::Tray => match tray::ensure(app) {
                    Ok(()) => {
                        state.window.set_in_tray(true);
                        tracing::info!("the window closed into the tray; the watch goes on");
                    }
                    Err(e) => tracing::warn!("no tray icon ({e}); closing quits"),
                },
                OnClose::Quit => {}
                OnClose::QuitAndSay => {
                    // Said before the window (and then the app) goes: the notification is sent on
                    // a thread of the plugin's, which the exit would cut short.
                    api.prevent_close();
                    TauriHost(app.clone()).notify(
                        Notice::Quitting,
                        background::QUITTING_TITLE,
                        background::QUITTING_BODY,
                    );
                    let window = window.clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(500));
                        let _ = window.destroy();
                    });
                }
            }
        }
        tauri::WindowEvent::Destroyed if state.window.in_tray() => {
            say_in_tray_once(app);
            let app = app.clone();
            std::thread::spawn(move || {
                // What the webview leaves: WebKit's network process (the web context lives on,
                // so WebKit keeps it) and the memory the page used.
                std::thread::sleep(Duration::from_secs(1));
                if app.get_webview_window(MAIN).is_none() {
                    release_webview_leftovers(&app);
                }
            });
        }
        _ => {}
    }
}

/// The first time the window closes into the tray: say so, and how to quit.
fn say_in_tray_once<R: Runtime>(app: &AppHandle<R>) {
    let state = app.state::<AppState>();
    if state.progress.background_record().tray_note_shown {
        return;
    }
    if TauriHost(app.clone()).notify(Notice::InTray, background::IN_TRAY_TITLE, background::IN_TRAY_BODY) {
        if let Err(e) = state.progress.update_background(|r| r.tray_note_shown = true) {
            tracing::warn!("could not save that the tray note was shown: {e}");
        }
    }
}

/// The app's run loop's events: the last window closed into the tray keeps the app running; any
/// other exit lets it go, without the store plugin's exit save.
pub fn on_run_event<R: Runtime>(app: &AppHandle<R>, event: tauri::RunEvent) {
    if let tauri::RunEvent::ExitRequested { code, api, .. } = event {
        if code.is_none() && app.try_state::<AppState>().is_some_and(|s| s.window.in_tray()) {
            api.prevent_exit();
            return;
        }
        // At its Exit event tauri-plugin-store writes every store with a plain `fs::write` over the
        // file: a power cut then would truncate the progress file the app wrote atomically. Every
        // change was saved as it happened, so the plugin's store is closed first.
        crate::ipc::store::close_progress_store(app);
    }
}

/// *Quit* (the tray's menu, the app's command): the watch finishes a check in progress and starts
/// none after it, then the app exits.
pub fn quit<R: Runtime>(app: &AppHandle<R>) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let state = app.state::<AppState>();
        match tokio::time::timeout(Duration::from_secs(15), state.watch.gate.lock()).await {
            Ok(mut stopping) => *stopping = true,
            Err(_) => tracing::warn!("the watch did not finish its check within 15 s; quitting anyway"),
        }
        tracing::info!("quitting");
        state.window.set_in_tray(false);
        app.exit(0);
    });
}

/// Linux: what the destroyed webview leaves behind. A process that showed a webview keeps WebKit's
/// side of it (the web context, its GL display with Mesa's LLVM: about 60 MiB, measured), which
/// nothing hands back; a process started into the tray never loads it (20 MiB). So the app starts
/// again into the tray (`exec`: same process id, the progress all on disk), waiting for a check in
/// progress to end first. Not while something lives only in memory (a sign-in waiting in the
/// browser, tokens the keyring has not taken yet): then it ends WebKit's processes and gives the
/// memory it can back instead.
#[cfg(target_os = "linux")]
fn release_webview_leftovers<R: Runtime>(app: &AppHandle<R>) {
    let state = app.state::<AppState>();
    // Any business's: the watch keeps every business's tokens fresh.
    let only_in_memory = crate::state::lock(&state.sessions.attempts).is_waiting_at(std::time::Instant::now())
        || state.secrets.any_unsaved_tokens();
    if !only_in_memory {
        // A check in progress finishes first; none starts once the process is replaced.
        let _gate = state.watch.gate.blocking_lock();
        if app.get_webview_window(MAIN).is_none() && state.window.in_tray() {
            tracing::info!("starting again into the tray, without the window's libraries");
            let e = crate::relaunch::exec_into_background();
            tracing::warn!("could not start again into the tray ({e}); staying as it is");
        }
    }
    end_webkit_children();
    light_in_the_background();
}

/// End the WebKit processes the destroyed webview left (WebKitGTK keeps the network process for
/// the life of its web context, which Tauri keeps; a new one starts with the next webview).
#[cfg(target_os = "linux")]
fn end_webkit_children() {
    let me = std::process::id();
    let children = std::fs::read_dir("/proc").into_iter().flatten().flatten().filter_map(|entry| {
        let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) state ppid …`: the name may hold spaces and parentheses; read after the last ')'.
        let ppid: u32 = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
        let webkit = exe.file_name()?.to_str()?.starts_with("WebKit");
        (ppid == me && webkit).then_some(pid)
    });
    for pid in children.collect::<Vec<_>>() {
        // SAFETY: a signal to our own child process, found just above.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
}

/// Linux: hand back what a process in the background does not need in memory: the free heap
/// (glibc's `malloc_trim`), and the pages of the libraries and the binary only this process has
/// in memory (WebKit's, GTK's: tens of MiB once the web processes are gone). Those are read back
/// from the disk if a page is needed again (the tray's menu, the window made again); pages other
/// processes share are left alone by the kernel.
#[cfg(target_os = "linux")]
pub fn light_in_the_background() {
    #[cfg(target_env = "gnu")]
    // SAFETY: glibc's own call; it only returns free heap pages to the system.
    unsafe {
        libc::malloc_trim(0);
    }
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else { return };
    for line in maps.lines() {
        // `start-end perms offset dev inode path`: file-backed mappings have an inode and a path.
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [range, _perms, _offset, _dev, inode, path, ..] = fields[..] else { continue };
        if inode == "0" || !path.starts_with('/') {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else { continue };
        let (Ok(start), Ok(end)) = (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16)) else {
            continue;
        };
        // SAFETY: a whole mapping of this process as the kernel lists it; MADV_PAGEOUT only asks
        // the kernel to reclaim its pages (file-backed: read again on the next touch).
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_PAGEOUT) };
    }
}

#[cfg(not(target_os = "linux"))]
fn release_webview_leftovers<R: Runtime>(_app: &AppHandle<R>) {}

#[cfg(not(target_os = "linux"))]
pub fn light_in_the_background() {}

/// The tray icon: its first line says where things stand (the tooltip too, where the desktop shows
/// one); *Open uspslink*, *Check now*, *Quit*.
pub mod tray {
    use super::*;

    /// Whether this desktop shows tray icons now.
    pub fn available() -> bool {
        #[cfg(target_os = "linux")]
        {
            linux::appindicator_loadable() && linux::tray_host_registered()
        }
        #[cfg(not(target_os = "linux"))]
        {
            true
        }
    }

    /// The icon, made once; its status brought up to date.
    pub fn ensure<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
        if app.tray_by_id(TRAY_ID).is_some() {
            refresh(app);
            return Ok(());
        }
        let state = app.state::<AppState>();
        let mut tray = TrayIconBuilder::with_id(TRAY_ID)
            .menu(&menu(app, &background::status_lines(&state))?)
            .tooltip(background::tooltip(&state))
            .on_menu_event(|app, event| match event.id().as_ref() {
                "open" => open_window(app, Some(Route::Dashboard)),
                "check" => check_now(app),
                "quit" => quit(app),
                _ => {}
            });
        if let Some(icon) = app.default_window_icon() {
            tray = tray.icon(icon.clone());
        }
        tray.build(app)?;
        Ok(())
    }

    /// The status line again, after the link or the approval changed.
    pub fn refresh<R: Runtime>(app: &AppHandle<R>) {
        let Some(tray) = app.tray_by_id(TRAY_ID) else { return };
        let Some(state) = app.try_state::<AppState>() else { return };
        let _ = tray.set_tooltip(Some(background::tooltip(&state)));
        match menu(app, &background::status_lines(&state)) {
            Ok(menu) => {
                let _ = tray.set_menu(Some(menu));
            }
            Err(e) => tracing::warn!("could not update the tray menu: {e}"),
        }
    }

    /// One line per business (disabled: they say, they do nothing), then the actions.
    fn menu<R: Runtime>(app: &AppHandle<R>, status: &[String]) -> tauri::Result<Menu<R>> {
        let menu = Menu::new(app)?;
        for (i, line) in status.iter().enumerate() {
            menu.append(&MenuItem::with_id(app, format!("status-{i}"), line, false, None::<&str>)?)?;
        }
        menu.append(&PredefinedMenuItem::separator(app)?)?;
        menu.append(&MenuItem::with_id(app, "open", "Open uspslink", true, None::<&str>)?)?;
        menu.append(&MenuItem::with_id(app, "check", "Check now", true, None::<&str>)?)?;
        menu.append(&MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?)?;
        Ok(menu)
    }

    /// The tray's *Check now*: every business waiting for USPS, told as the dashboard's is.
    fn check_now<R: Runtime>(app: &AppHandle<R>) {
        let host = TauriHost(app.clone());
        tauri::async_runtime::spawn(async move {
            crate::flows::watch::check_all_now(&host).await;
            refresh(&host.0);
        });
    }

    #[cfg(target_os = "linux")]
    mod linux {
        /// libayatana-appindicator (or the older libappindicator), which tray-icon loads at run time
        /// and panics without.
        pub fn appindicator_loadable() -> bool {
            ["libayatana-appindicator3.so.1", "libappindicator3.so.1"].iter().any(|name| {
                let name = std::ffi::CString::new(*name).expect("no NUL");
                // SAFETY: a library name; the handle stays open (tray-icon loads the same library).
                !unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_LAZY) }.is_null()
            })
        }

        /// Whether a tray host is on the session bus: a StatusNotifierWatcher that says a host
        /// (the panel that draws the icons) is registered with it.
        pub fn tray_host_registered() -> bool {
            let Ok(bus) = zbus::blocking::Connection::session() else { return false };
            let reply = bus.call_method(
                Some("org.kde.StatusNotifierWatcher"),
                "/StatusNotifierWatcher",
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &("org.kde.StatusNotifierWatcher", "IsStatusNotifierHostRegistered"),
            );
            let Ok(reply) = reply else { return false };
            let Ok(value) = reply.body().deserialize::<zbus::zvariant::OwnedValue>() else { return false };
            bool::try_from(&*value).unwrap_or(false)
        }
    }
}
