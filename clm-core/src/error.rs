//! One error type for the whole library, with a stable [`ErrorCode`] that every
//! binding maps 1:1 (C status codes, Python exception classes, JS `code` strings).

use std::fmt;

/// Stable, small classification of every failure. Numbers are part of the C ABI:
/// never renumber, never reuse a retired value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[repr(u32)]
#[non_exhaustive]
pub enum ErrorCode {
    NotFound = 1,
    AlreadyExists = 2,
    InvalidInput = 3,
    PolicyViolation = 4,
    PermissionDenied = 5,
    Conflict = 6,
    Crypto = 7,
    Database = 8,
    Authentication = 9,
    Configuration = 10,
    Closed = 11,
    Internal = 12,
}

impl ErrorCode {
    /// Every code, in numeric order; bindings iterate this to build their tables.
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::InvalidInput,
        ErrorCode::PolicyViolation,
        ErrorCode::PermissionDenied,
        ErrorCode::Conflict,
        ErrorCode::Crypto,
        ErrorCode::Database,
        ErrorCode::Authentication,
        ErrorCode::Configuration,
        ErrorCode::Closed,
        ErrorCode::Internal,
    ];

    /// The stable string form, e.g. `"NOT_FOUND"`, used as JS `code` and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::AlreadyExists => "ALREADY_EXISTS",
            ErrorCode::InvalidInput => "INVALID_INPUT",
            ErrorCode::PolicyViolation => "POLICY_VIOLATION",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::Crypto => "CRYPTO",
            ErrorCode::Database => "DATABASE",
            ErrorCode::Authentication => "AUTHENTICATION",
            ErrorCode::Configuration => "CONFIGURATION",
            ErrorCode::Closed => "CLOSED",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    /// The class-style name, e.g. `"NotFound"`, used for Python exception classes.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "NotFound",
            ErrorCode::AlreadyExists => "AlreadyExists",
            ErrorCode::InvalidInput => "InvalidInput",
            ErrorCode::PolicyViolation => "PolicyViolation",
            ErrorCode::PermissionDenied => "PermissionDenied",
            ErrorCode::Conflict => "Conflict",
            ErrorCode::Crypto => "Crypto",
            ErrorCode::Database => "Database",
            ErrorCode::Authentication => "Authentication",
            ErrorCode::Configuration => "Configuration",
            ErrorCode::Closed => "Closed",
            ErrorCode::Internal => "Internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong, in words a host developer can act on.
/// Messages never contain secret material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{entity} not found: {key}")]
    NotFound { entity: &'static str, key: String },

    #[error("{entity} already exists: {field} must be unique")]
    AlreadyExists { entity: String, field: String },

    #[error("invalid {field}: {reason}")]
    InvalidInput { field: String, reason: String },

    #[error("policy violation: {}", violations.join("; "))]
    PolicyViolation { violations: Vec<String> },

    #[error("permission denied: {action} on {resource}")]
    PermissionDenied { resource: String, action: String },

    #[error("conflict: {0}")]
    Conflict(String),

    #[error("cryptographic failure: {0}")]
    Crypto(String),

    #[error("database error: {0}")]
    Database(String),

    #[error("authentication failed: {0}")]
    Authentication(String),

    #[error("configuration error: {0}")]
    Configuration(String),

    #[error("the clm handle is closed")]
    Closed,

    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::NotFound { .. } => ErrorCode::NotFound,
            Error::AlreadyExists { .. } => ErrorCode::AlreadyExists,
            Error::InvalidInput { .. } => ErrorCode::InvalidInput,
            Error::PolicyViolation { .. } => ErrorCode::PolicyViolation,
            Error::PermissionDenied { .. } => ErrorCode::PermissionDenied,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::Crypto(_) => ErrorCode::Crypto,
            Error::Database(_) => ErrorCode::Database,
            Error::Authentication(_) => ErrorCode::Authentication,
            Error::Configuration(_) => ErrorCode::Configuration,
            Error::Closed => ErrorCode::Closed,
            Error::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn not_found(entity: &'static str, key: impl fmt::Display) -> Self {
        Error::NotFound {
            entity,
            key: key.to_string(),
        }
    }

    pub fn crypto(reason: impl Into<String>) -> Self {
        Error::Crypto(reason.into())
    }

    pub fn conflict(reason: impl Into<String>) -> Self {
        Error::Conflict(reason.into())
    }

    pub fn denied(resource: impl Into<String>, action: impl Into<String>) -> Self {
        Error::PermissionDenied {
            resource: resource.into(),
            action: action.into(),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        crate::store::map_sqlx_error(err)
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        Error::Database(format!("migration failed: {err}"))
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::invalid("json", err.to_string())
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(err: tokio::task::JoinError) -> Self {
        Error::Internal(format!("background task failed: {err}"))
    }
}
