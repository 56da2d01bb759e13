//! The only Tauri code besides the builder: the commands the window calls, the events it hears,
//! and the host the flows run on. Nothing below (`flows`, `state`, core) knows Tauri.

pub mod background;
pub mod bindings;
pub(crate) mod commands;
pub mod errors;
pub mod events;
pub(crate) mod store;
