//! The uspslink desktop app: the Tauri builder, plugins and the deep-link entry point.
//!
//! Layers point one way: `ipc` (the commands, the events, the host: with this file, the only Tauri
//! code) → `flows` (each step, plain Rust over the state and a host) → `state` (progress, secrets,
//! the sandbox) → `uspslink-core` (rules, clients; no Tauri). Nothing points back.

// First: the command table's macros are used by the modules below (macro_rules! scope is textual).
include!("command_names.rs");

mod about;
mod config;
mod flows;
pub mod ipc;
mod relaunch;
mod startup;
mod state;
// Windows' start-up check (its text is tested everywhere).
#[cfg(any(windows, test))]
mod webview_runtime;

/// The handler for every command of the table (command_names.rs).
macro_rules! handler_of {
    ($($name:ident ($($arg:ident : $ty:ty),*) -> $ret:ty,)*) => {
        tauri::generate_handler![$(ipc::commands::$name),*]
    };
}

use std::sync::Mutex;
use std::time::Instant;

use tauri::{Manager, Runtime};
use tauri_plugin_deep_link::DeepLinkExt;
use uspslink_core::scheme;

pub use config::AppConfig;
use flows::{link, watch};
use ipc::events::{self, TauriHost};
pub use state::AppState;

/// Where the log file is, for *About* (None: standard error only).
pub struct LogFilePath(pub Option<std::path::PathBuf>);

/// The builder without single-instance (it needs D-Bus), generic so unit tests can use MockRuntime.
pub fn builder<R: Runtime>(started: Instant, config: AppConfig) -> tauri::Builder<R> {
    tauri::Builder::<R>::new()
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_store::Builder::new().build())
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_notification::init())
        // Off until the owner turns it on; a start at login goes straight into the tray.
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec![flows::background::BACKGROUND_ARG]),
        ))
        .on_window_event(|window, event| ipc::background::on_window_event(window, event))
        .setup(move |app| {
            startup::phase("plugins initialised, setup");
            // The log file (for *About* and support): beside the app's other logs.
            match app.path().app_log_dir().map(|d| about::open_log_file(&d)) {
                Ok(Ok(path)) => app.manage(LogFilePath(Some(path))),
                Ok(Err(e)) => {
                    tracing::warn!("no log file: {e}");
                    app.manage(LogFilePath(None))
                }
                Err(e) => {
                    tracing::warn!("no log folder: {e}");
                    app.manage(LogFilePath(None))
                }
            };
            let state = ipc::store::load_state(app.handle(), started, config.clone())?;
            startup::phase("progress file read");
            let handle = app.handle().clone();
            state.clients.set_retry_observer(std::sync::Arc::new(move |wait| {
                ipc::events::emit::<events::RetryWait, _>(&handle, wait)
            }));
            let handle = app.handle().clone();
            state.progress.set_storage_observer(std::sync::Arc::new(move |problem| {
                let health = state::StorageHealth { problem: problem.map(uspslink_core::error::HasKind::to_ipc) };
                ipc::events::emit::<events::Storage, _>(&handle, &health)
            }));
            app.manage(state);
            wire_deep_links(app.handle());
            lead_notifications_back(app.handle());
            // The window (tauri.conf.json makes none by itself): not for a start at login, which
            // goes straight into the tray, unless there is no tray to go to.
            let args: Vec<String> = std::env::args().collect();
            let into_tray = flows::background::background_launch(&args)
                && ipc::background::tray::available()
                && ipc::background::tray::ensure(app.handle()).is_ok();
            if into_tray {
                app.state::<AppState>().window.set_in_tray(true);
                tracing::info!("started at login: in the tray, no window");
                std::thread::spawn(|| {
                    // Once start-up's pages are no longer needed.
                    std::thread::sleep(std::time::Duration::from_secs(2));
                    ipc::background::light_in_the_background();
                });
            } else {
                ipc::background::open_window(app.handle(), None);
            }
            startup::phase("setup done");
            // Not needed for the first screen: start after setup returns.
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                if let Err(e) = handle.state::<AppState>().ensure_sandbox().await {
                    tracing::error!("sandbox did not start: {e}");
                }
                startup::phase("sandbox up");
                // Link health and the approval watch, for as long as the app runs.
                watch::run(TauriHost(handle)).await;
            });
            Ok(())
        })
        .on_page_load(|_, payload| match payload.event() {
            tauri::webview::PageLoadEvent::Started => startup::phase("page load started"),
            tauri::webview::PageLoadEvent::Finished => startup::phase("page load finished"),
        })
        .invoke_handler(for_each_command!(handler_of))
}

fn wire_deep_links<R: Runtime>(app: &tauri::AppHandle<R>) {
    let dl = app.deep_link();
    let (painted, first_screen) = std::sync::mpsc::channel();
    app.manage(FirstScreen(Mutex::new(Some(painted))));
    // After the first screen (app_ready says so), or after 5 s if the page never does.
    let handle = app.clone();
    std::thread::spawn(move || {
        let _ = first_screen.recv_timeout(std::time::Duration::from_secs(5));
        register_scheme(&handle);
    });
    // Cold start: the URL the app was launched with.
    if let Ok(Some(urls)) = dl.get_current() {
        for url in urls {
            handle_deep_link(app, url.as_str());
        }
    }
    let handle = app.clone();
    dl.on_open_url(move |event| {
        for url in event.urls() {
            handle_deep_link(&handle, url.as_str());
        }
    });
}

/// Told once when the first screen is painted, so what waits for it (the scheme's registration)
/// starts then; `app_ready` only says so.
pub(crate) struct FirstScreen(Mutex<Option<std::sync::mpsc::Sender<()>>>);

impl FirstScreen {
    pub(crate) fn painted(&self) {
        if let Some(tell) = state::lock(&self.0).take() {
            let _ = tell.send(());
        }
    }
}

/// GTK opens GL at start (GLX through Mesa; where there is no GPU, llvmpipe and its LLVM: about
/// 30 MiB in memory for the whole life of the process, also in the tray). A window painted without
/// GPU compositing (the default, [`paint_without_gpu_compositing`]) never uses it, so GTK starts
/// with `GDK_GL=disable`, set for its start only: nothing uspslink starts later (the browser for the
/// USPS sign-in) inherits it. Measured on a `--background` start: 92 MiB PSS with it, 60 without.
fn without_gtk_gl<T>(webkit_compositing: bool, start: impl FnOnce() -> T) -> T {
    // GDK_GL is GTK's own variable: one the user set is left as it is.
    let set = cfg!(target_os = "linux") && !webkit_compositing && std::env::var_os("GDK_GL").is_none();
    if set {
        // Before any thread of GTK's or Tauri's exists: nothing reads the environment meanwhile.
        std::env::set_var("GDK_GL", "disable");
    }
    let started = start();
    if set {
        std::env::remove_var("GDK_GL");
    }
    started
}

/// WebKitGTK switches a page to accelerated compositing (a GL context: in software where there is no
/// GPU, as in VMs, remote desktops and CI) as soon as the page has a layer that asks for it, which the
/// dashboard and its pop-up do. Measured by scripts/bench on a 2-core machine without a GPU, that
/// took the first screen from 0.5 s to 1.9 s and added about 90 MiB; a page of forms and banners
/// needs none of it. Set on the webview, not through `WEBKIT_DISABLE_COMPOSITING_MODE`, so the
/// browser uspslink opens for the USPS sign-in does not inherit it.
pub(crate) fn paint_without_gpu_compositing<R: Runtime>(app: &tauri::AppHandle<R>) {
    if app.try_state::<AppState>().is_some_and(|s| s.config.webkit_compositing) {
        return;
    }
    #[cfg(target_os = "linux")]
    if let Some(window) = app.get_webview_window("main") {
        let set = window.with_webview(|webview| {
            use webkit2gtk::{SettingsExt, WebViewExt};
            if let Some(settings) = webview.inner().settings() {
                settings.set_hardware_acceleration_policy(webkit2gtk::HardwareAccelerationPolicy::Never);
            }
        });
        if let Err(e) = set {
            tracing::warn!("could not set the webview's compositing policy: {e}");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = app;
}

/// A binary that no package registered (scripts/run's release build, a dev build) registers itself
/// for the user, so the browser's redirect after the USPS sign-in reaches it; an installed package's
/// handler is left alone (scheme.rs). Once per run (from the one thread `wire_deep_links` starts),
/// off the path to the first screen: registering runs two programs (one rescans every application
/// file) that would compete with the webview's start on a small machine, and it is skipped when the
/// handler is already this binary.
fn register_scheme<R: Runtime>(app: &tauri::AppHandle<R>) {
    let forced = app.try_state::<AppState>().and_then(|s| s.config.register_scheme.clone());
    let exe = scheme::current_exe();
    if !scheme::should_register(forced.as_deref(), exe.as_deref(), &scheme::install_roots()) {
        return;
    }
    if scheme_in_place(app) {
        return;
    }
    match app.deep_link().register_all() {
        Ok(()) => tracing::info!(
            "uspslink:// now opens {}",
            exe.as_deref().map(|e| e.display().to_string()).unwrap_or_default()
        ),
        Err(e) => tracing::warn!("could not register the uspslink:// scheme: {e}"),
    }
}

/// Whether `uspslink://` already opens this binary, so registering again can be skipped.
#[cfg(target_os = "linux")]
fn scheme_in_place<R: Runtime>(app: &tauri::AppHandle<R>) -> bool {
    let paths = (app.path().data_dir(), app.path().config_dir(), tauri::utils::platform::current_exe());
    let (Ok(data), Ok(config), Ok(bin)) = paths else { return false };
    let in_place =
        scheme::already_registered(&data.join("applications"), &config.join("mimeapps.list"), &bin, "uspslink");
    if in_place {
        tracing::debug!("uspslink:// already opens {}", bin.display());
    }
    in_place
}

/// Whether `uspslink://` already opens this binary: the plugin compares
/// `HKCU\Software\Classes\uspslink\shell\open\command` with this exe (a few registry reads; the
/// Linux way above reads `.desktop` files and would mean nothing here).
#[cfg(windows)]
fn scheme_in_place<R: Runtime>(app: &tauri::AppHandle<R>) -> bool {
    app.deep_link().is_registered("uspslink").unwrap_or(false)
}

/// macOS: Launch Services takes the scheme from the `.app`'s Info.plist; nothing to write at run time.
#[cfg(not(any(target_os = "linux", windows)))]
fn scheme_in_place<R: Runtime>(_app: &tauri::AppHandle<R>) -> bool {
    true
}

/// The one entry point for every `uspslink://` URL, from any source. A link that does not answer a
/// sign-in this app opened is refused before anything is shown, emitted or focused; the log gets
/// the reason and at most a short fingerprint of the state, never the state, the code or the text.
pub fn handle_deep_link<R: Runtime>(app: &tauri::AppHandle<R>, raw: &str) {
    let state = app.state::<AppState>();
    let callback = match uspslink_core::callback::parse(raw) {
        Ok(cb) => cb,
        Err(e) => {
            tracing::warn!("refused a uspslink:// link: {e}");
            return;
        }
    };
    let fingerprint = uspslink_core::callback::state_fingerprint(&callback.state);
    let scope = state.scope();
    match link::decide(&state, &callback) {
        link::CallbackDecision::Refuse(e) => {
            tracing::warn!(state = %fingerprint, "refused a uspslink:// link: {e}");
        }
        link::CallbackDecision::StartedBeforeRestart => {
            tracing::info!(state = %fingerprint, "a USPS sign-in from before the restart answered");
            raise(app);
            link::started_before_restart(&TauriHost(app.clone()));
        }
        link::CallbackDecision::Complete(attempt) => {
            let notice = state.sessions.remember_deep_link(callback.summary(), state.elapsed_ms());
            tracing::info!(state = %fingerprint, has_code = notice.callback.has_code, "OAuth callback received");
            ipc::events::emit::<events::DeepLink, _>(app, &notice);
            raise(app);
            tauri::async_runtime::spawn(link::complete(TauriHost(app.clone()), scope, attempt, callback));
        }
    }
}

/// Show the window (made again if it was closed into the tray).
fn raise<R: Runtime>(app: &tauri::AppHandle<R>) {
    let handle = app.clone();
    // Windows are made on the main thread; the deep link and the second launch arrive elsewhere.
    let _ = app.run_on_main_thread(move || ipc::background::open_window(&handle, None));
}

/// A click on one of uspslink's notifications opens the window on its screen: the dashboard, or
/// the link step to reconnect.
fn lead_notifications_back<R: Runtime>(app: &tauri::AppHandle<R>) {
    use tauri_plugin_notification::NotificationExt;
    let handle = app.clone();
    let registered = app.notification().on_action(move |action| {
        let notice = action.notification().and_then(|n| flows::background::Notice::from_id(n.id()));
        let route = notice.map(flows::background::Notice::route).unwrap_or(flows::background::Route::Dashboard);
        tracing::info!(?route, "a notification was clicked");
        // It spoke of one business: that one is shown (the window reads it with the route).
        let state = handle.state::<AppState>();
        if let Some(business) = notice.and_then(flows::background::Notice::business) {
            if let Err(e) = state.change_businesses(|b| b.switch_to(business)) {
                tracing::warn!("the business of the notification is not shown: {e}");
            }
        }
        let app = handle.clone();
        let _ = handle.run_on_main_thread(move || ipc::background::open_window(&app, Some(route)));
    });
    if let Err(e) = registered {
        tracing::warn!("notifications will not lead back to the window: {e}");
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("USPSLINK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(|| about::LogWriter).with_ansi(false).try_init();
}

/// A panic's message may quote what the user typed (a slice of a pasted string, a card number): the
/// log gets where it happened, never what it said. Commands catch panics and answer `internal`.
fn log_panics_without_their_text() {
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_else(|| "unknown".into());
        tracing::error!(at, "uspslink hit a bug (the panic's text is withheld: it may hold user input)");
        eprintln!("uspslink: a bug at {at} (details withheld)");
    }));
}

/// Start the desktop app.
pub fn run() {
    let started = startup::started();
    let attempt = relaunch::take_attempt();
    init_tracing();
    log_panics_without_their_text();
    startup::phase("logging ready");
    let config = AppConfig::from_env();
    let context = tauri::generate_context!();
    // Before anything is built: without the runtime Tauri's setup fails with a panic.
    #[cfg(windows)]
    webview_runtime::require(
        // Tauri's app_log_dir on Windows, which only a built app can ask for.
        dirs::data_local_dir().map(|d| d.join(&context.config().identifier).join("logs")),
        config.browser.as_deref(),
    );
    let webkit_compositing = config.webkit_compositing;
    let single_instance = config.single_instance;
    let mut builder = builder::<tauri::Wry>(started, config);
    if single_instance {
        // Registered first (plugin docs): a second launch forwards its argv (a uspslink:// URL) to us
        // and exits; the deep-link feature routes it to on_open_url.
        builder = builder.plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            // A second launch shows the window; a second start at login changes nothing.
            if !flows::background::background_launch(&argv) {
                raise(app);
            }
        }));
    }
    startup::phase("builder ready");
    match without_gtk_gl(webkit_compositing, || builder.build(context)) {
        Ok(app) => app.run(ipc::background::on_run_event),
        Err(tauri::Error::PluginInitialization(plugin, reason)) if plugin == "single-instance" => {
            handover_failed(attempt, started.elapsed(), &reason)
        }
        Err(e) => {
            eprintln!("uspslink could not start: {e}");
            std::process::exit(1);
        }
    }
}

/// Another uspslink owns the single-instance name but did not take this launch's arguments.
fn handover_failed(attempt: u32, took: std::time::Duration, reason: &str) -> ! {
    use relaunch::AfterHandoverFailure;
    match relaunch::after_handover_failure(attempt, took) {
        AfterHandoverFailure::Retry { pause, next } => {
            tracing::warn!(
                attempt,
                "an earlier uspslink is still closing ({reason}); starting again in {} ms",
                pause.as_millis()
            );
            std::thread::sleep(pause);
            let e = relaunch::exec_again(next);
            eprintln!("uspslink could not start again: {e}");
        }
        AfterHandoverFailure::GiveUp => {
            eprintln!(
                "uspslink could not start: another uspslink is running but does not answer ({reason}). \
                 Close it, or end it in your system monitor, and open uspslink again."
            );
        }
    }
    std::process::exit(1);
}

const SANDBOX_USAGE: &str = "usage: uspslink sandbox [--port P] [--pkce enforce|ignore]";

/// `uspslink sandbox [--port P] [--pkce enforce|ignore]`: `ignore` behaves as real USPS does (a PKCE
/// challenge is taken and never checked). Returns the process exit code.
pub fn run_sandbox_cli(args: &[String]) -> i32 {
    init_tracing();
    let mut port: u16 = 0;
    let mut pkce = uspslink_sandbox::Pkce::Enforce;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => match it.next().and_then(|p| p.parse().ok()) {
                Some(p) => port = p,
                None => {
                    eprintln!("uspslink sandbox: --port needs a number from 0 to 65535");
                    return 2;
                }
            },
            "--pkce" => match config::sandbox_pkce(Some(it.next().map(String::as_str).unwrap_or("?"))) {
                Ok(p) => pkce = p,
                Err(e) => {
                    eprintln!("uspslink sandbox: --pkce: {e}; {SANDBOX_USAGE}");
                    return 2;
                }
            },
            other => {
                eprintln!("uspslink sandbox: unknown argument {other:?}; {SANDBOX_USAGE}");
                return 2;
            }
        }
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("uspslink sandbox: {e}");
            return 1;
        }
    };
    rt.block_on(async move {
        let options = uspslink_sandbox::SandboxOptions { pkce, helper_token: None };
        match uspslink_sandbox::Sandbox::start_with(&format!("127.0.0.1:{port}"), options).await {
            Ok(sb) => {
                println!("sandbox listening on {}", sb.base_url());
                use std::io::Write;
                let _ = std::io::stdout().flush();
                sb.wait_forever().await;
                0
            }
            Err(e) => {
                eprintln!("uspslink sandbox: could not listen on 127.0.0.1:{port}: {e}");
                1
            }
        }
    })
}
