//! Builds the web UI (so a plain `cargo build` produces a complete app) and the Tauri context with an
//! ACL entry for every app command.
use std::path::Path;
use std::process::Command;

include!("src/command_names.rs");

fn npm(ui: &Path, args: &[&str]) {
    let status = Command::new("npm")
        .args(args)
        .current_dir(ui)
        .status()
        .unwrap_or_else(|e| panic!("could not run npm {args:?} (is Node.js installed?): {e}"));
    assert!(status.success(), "npm {args:?} failed in {}", ui.display());
}

fn build_ui() {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui");
    for p in ["src", "index.html", "package.json", "package-lock.json", "vite.config.ts", "svelte.config.js"] {
        println!("cargo:rerun-if-changed={}", ui.join(p).display());
    }
    println!("cargo:rerun-if-env-changed=SKIP_UI_BUILD");
    // The tauri CLI already ran beforeBuildCommand; SKIP_UI_BUILD lets CI reuse one UI build.
    if std::env::var_os("TAURI_ENV_PLATFORM").is_some() || std::env::var_os("SKIP_UI_BUILD").is_some() {
        return;
    }
    if !ui.join("node_modules").exists() {
        // `npm ci` refuses the lock file on this registry (non-Linux optional packages are missing).
        npm(&ui, &["install", "--no-audit", "--no-fund"]);
    }
    npm(&ui, &["run", "build"]);
}

fn main() {
    build_ui();
    tauri_build::try_build(
        tauri_build::Attributes::new().app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri-build failed");
}
