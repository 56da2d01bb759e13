//! uspslink's core: everything that does not need Tauri. The app's commands are a thin layer over it.
//!
//! Each domain has one error type (`thiserror`) that maps to a stable [`error::ErrorKind`], so the UI
//! switches on `kind` and never parses English.

pub mod approval;
pub mod business;
pub mod callback;
pub mod clock;
pub mod durable;
pub mod error;
pub mod http;
pub mod onboarding;
pub mod payments;
pub mod progress_format;
pub mod quota;
pub mod savings;
pub mod scheme;
pub mod settings;
pub mod shipengine;
pub mod usps;
pub mod validate;
pub mod vault;

pub use error::{ErrorKind, IpcError};
