// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `uspslink sandbox --port P`: the sandbox alone, without a window (docs/DESIGN.md, "Architecture").
    // Anything else (including a uspslink:// URL from the OS) starts the app.
    if args.get(1).map(String::as_str) == Some("sandbox") {
        std::process::exit(uspslink_app::run_sandbox_cli(&args[2..]));
    }
    uspslink_app::run();
}
