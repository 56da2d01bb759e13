//! A bare Tauri 2 window: what the first screen of an app costs before the app does anything.
//! The page calls `ready` after its first paint and two frames, as uspslink's UI calls `app_ready`.

use std::time::Instant;

struct Started(Instant);

#[tauri::command]
fn ready(started: tauri::State<'_, Started>) -> u32 {
    let ms = started.0.elapsed().as_millis() as u32;
    eprintln!("bare: interactive after {ms} ms");
    ms
}

fn main() {
    let started = Instant::now();
    tauri::Builder::default()
        .manage(Started(started))
        // The same phase uspslink logs (for the bench's timeline).
        .setup(move |_| {
            eprintln!("bare: setup at {} ms", started.elapsed().as_millis());
            Ok(())
        })
        .on_page_load(move |_, payload| {
            if matches!(payload.event(), tauri::webview::PageLoadEvent::Started) {
                eprintln!("bare: page load started at {} ms", started.elapsed().as_millis());
            }
        })
        .invoke_handler(tauri::generate_handler![ready])
        .run(tauri::generate_context!())
        .expect("the bare window could not start");
}
