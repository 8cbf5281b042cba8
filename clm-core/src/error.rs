//! One error type for the whole library, with a stable [`ErrorCode`] that every
//! binding maps 1:1 (C status codes, Python exception classes, JS `code` strings).

use std::fmt;

/// Declares [`ErrorCode`] once: its variants, their stable numbers (part of
/// the C ABI), their text form and what each means. Everything else (the C
/// `clm_status` enum, Python and Node error classes, the API description)
/// is generated from what this declares.
macro_rules! error_codes {
    ($( $(#[doc = $doc:literal])+ $variant:ident = $number:literal, $text:literal; )+) => {
        /// Stable, small classification of every failure. Numbers are part of
        /// the C ABI: never renumber, never reuse a retired value.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        #[repr(u32)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[doc = $doc])+ $variant = $number, )+
        }

        impl ErrorCode {
            /// Every code, in numeric order; bindings iterate this to build their tables.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The stable string form, e.g. `"NOT_FOUND"`, used as JS `code` and in JSON.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $text,)+ }
            }

            /// The variant's name, e.g. `"NotFound"` (Python's exception class).
            pub fn name(self) -> &'static str {
                match self { $(ErrorCode::$variant => stringify!($variant),)+ }
            }

            /// What the code means, in one sentence.
            pub fn description(self) -> &'static str {
                match self { $(ErrorCode::$variant => concat!($($doc),+).trim_ascii(),)+ }
            }

            /// The stable number (C's `clm_status`).
            pub fn number(self) -> u32 {
                self as u32
            }
        }
    };
}

error_codes! {
    /// No such row, or one the actor may not see.
    NotFound = 1, "NOT_FOUND";
    /// A unique field is already taken.
    AlreadyExists = 2, "ALREADY_EXISTS";
    /// An argument is missing, malformed or out of range; nothing was changed.
    InvalidInput = 3, "INVALID_INPUT";
    /// A certificate policy refused the request; every violated rule is listed.
    PolicyViolation = 4, "POLICY_VIOLATION";
    /// The actor may not do this.
    PermissionDenied = 5, "PERMISSION_DENIED";
    /// The request conflicts with the current state (a concurrent change, a wrong status).
    Conflict = 6, "CONFLICT";
    /// A cryptographic operation failed (a bad key, signature or sealed envelope).
    Crypto = 7, "CRYPTO";
    /// The database failed or refused the write.
    Database = 8, "DATABASE";
    /// Login, session or API key validation failed.
    Authentication = 9, "AUTHENTICATION";
    /// The configuration is wrong (a master key, a URL, a setting).
    Configuration = 10, "CONFIGURATION";
    /// The clm handle is closed.
    Closed = 11, "CLOSED";
    /// A bug in clm: please report it.
    Internal = 12, "INTERNAL";
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

    #[error("policy violation: {}", join_violations(violations))]
    PolicyViolation { violations: Vec<Violation> },

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

/// One violated policy rule: its name (`max_validity_days`) and what was wrong.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Violation {
    pub rule: String,
    pub message: String,
}

impl Violation {
    pub fn new(rule: impl Into<String>, message: impl Into<String>) -> Self {
        Violation {
            rule: rule.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule, self.message)
    }
}

fn join_violations(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(Violation::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// An error as the bindings hand it on: the code, the message and whatever
/// structure the error has (the field at fault, each violated rule, the
/// entity concerned). Messages never hold secrets, so neither does this.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct ErrorDetails {
    /// The stable text code (`INVALID_INPUT`).
    pub code: ErrorCode,
    /// The stable number (C's `clm_status`).
    pub number: u32,
    /// The code's name (`InvalidInput`).
    pub name: &'static str,
    pub message: String,
    /// The argument or field at fault (InvalidInput, AlreadyExists).
    pub field: Option<String>,
    /// Each violated rule (PolicyViolation); empty otherwise.
    pub violations: Vec<Violation>,
    /// The kind of row concerned (NotFound, AlreadyExists, PermissionDenied).
    pub entity: Option<String>,
}

impl Error {
    /// The error with its structure, for the bindings.
    pub fn details(&self) -> ErrorDetails {
        let code = self.code();
        let (field, entity, violations) = match self {
            Error::NotFound { entity, .. } => (None, Some((*entity).to_string()), Vec::new()),
            Error::AlreadyExists { entity, field } => {
                (Some(field.clone()), Some(entity.clone()), Vec::new())
            }
            Error::InvalidInput { field, .. } => (Some(field.clone()), None, Vec::new()),
            Error::PolicyViolation { violations } => (None, None, violations.clone()),
            Error::PermissionDenied { resource, .. } => (None, Some(resource.clone()), Vec::new()),
            _ => (None, None, Vec::new()),
        };
        ErrorDetails {
            code,
            number: code.number(),
            name: code.name(),
            message: self.to_string(),
            field,
            violations,
            entity,
        }
    }

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
