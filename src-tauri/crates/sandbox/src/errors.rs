//! The error bodies of the services the sandbox imitates.

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::Shared;

/// ShipEngine: `{request_id, errors:[{error_source, error_type, error_code, message, field_name?}]}`.
pub(crate) fn shipengine(
    state: &Shared,
    status: StatusCode,
    error_type: &str,
    error_code: &str,
    message: &str,
    field_name: Option<&str>,
) -> Response {
    let request_id = state.lock().expect("sandbox state").next_request_id();
    let mut err = json!({
        "error_source": "shipengine",
        "error_type": error_type,
        "error_code": error_code,
        "message": message,
    });
    if let Some(f) = field_name {
        err["field_name"] = json!(f);
    }
    (status, Json(json!({"request_id": request_id, "errors": [err]}))).into_response()
}

/// USPS resource APIs: `{apiVersion, error:{code, message, errors:[{status, code, title, detail,
/// source?:{parameter}}]}}` (Payments v3 `ErrorMessage`).
pub(crate) fn usps_api(status: StatusCode, code: &str, title: &str, detail: &str) -> Response {
    usps_api_on(status, code, title, detail, None)
}

/// The same, naming the request input that caused it (`source.parameter`).
pub(crate) fn usps_api_on(
    status: StatusCode,
    code: &str,
    title: &str,
    detail: &str,
    parameter: Option<&str>,
) -> Response {
    let mut err = json!({"status": status.as_u16().to_string(), "code": code, "title": title, "detail": detail});
    if let Some(p) = parameter {
        err["source"] = json!({"parameter": p});
    }
    (
        status,
        Json(json!({
            "apiVersion": "3.1.14",
            "error": {"code": status.as_u16().to_string(), "message": title, "errors": [err]}
        })),
    )
        .into_response()
}

/// USPS OAuth endpoints: `{error, error_description}`.
pub(crate) fn oauth(status: StatusCode, error: &str, description: &str) -> Response {
    (status, Json(json!({"error": error, "error_description": description}))).into_response()
}

/// An error in the shape of whichever service owns the path.
pub(crate) fn for_path(state: &Shared, path: &str, status: StatusCode, message: &str) -> Response {
    if path.starts_with("/oauth2/") {
        let error = if status.is_server_error() { "server_error" } else { "invalid_request" };
        oauth(status, error, message)
    } else if path.starts_with("/payments/") {
        usps_api(status, &status.as_u16().to_string(), status.canonical_reason().unwrap_or("Error"), message)
    } else {
        let (error_type, code) = match status.as_u16() {
            401 | 403 => ("security", "unauthorized"),
            404 => ("business_rules", "not_found"),
            429 => ("system", "rate_limit_exceeded"),
            s if s >= 500 => ("system", "unspecified"),
            _ => ("validation", "invalid_field_value"),
        };
        shipengine(state, status, error_type, code, message, None)
    }
}

pub(crate) async fn not_found(axum::extract::State(state): axum::extract::State<Shared>, uri: Uri) -> Response {
    for_path(&state, uri.path(), StatusCode::NOT_FOUND, "The requested resource was not found.")
}
