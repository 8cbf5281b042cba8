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

/// The database driver's error behind an [`Error`], kept for
/// [`std::error::Error::source`]. Shared (`Arc`) so the error stays cheap to
/// move and clone. Its `Debug` shows the driver's primary message, code and
/// constraint only: PostgreSQL's detail can quote the offending values (a
/// duplicate key hash, say), so it is left to whoever inspects the source.
#[derive(Clone)]
pub struct DatabaseSource(pub std::sync::Arc<sqlx::Error>);

impl DatabaseSource {
    pub fn new(err: sqlx::Error) -> Self {
        DatabaseSource(std::sync::Arc::new(err))
    }

    /// The driver's error.
    pub fn sqlx(&self) -> &sqlx::Error {
        &self.0
    }
}

impl fmt::Debug for DatabaseSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            sqlx::Error::Database(db) => f
                .debug_struct("DatabaseSource")
                .field("code", &db.code())
                .field("constraint", &db.constraint())
                .field("message", &db.message())
                .finish(),
            other => f.debug_tuple("DatabaseSource").field(other).finish(),
        }
    }
}

impl fmt::Display for DatabaseSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            // The primary message only (sqlx's Display adds nothing more).
            sqlx::Error::Database(db) => f.write_str(db.message()),
            other => fmt::Display::fmt(other, f),
        }
    }
}

/// Everything that can go wrong, in words a host developer can act on.
/// Messages never contain secret material. An error made from a database
/// error keeps it: [`std::error::Error::source`] returns the `sqlx::Error`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    NotFound {
        entity: &'static str,
        key: String,
    },
    AlreadyExists {
        entity: String,
        field: String,
        source: Option<DatabaseSource>,
    },
    InvalidInput {
        field: String,
        reason: String,
        source: Option<DatabaseSource>,
    },
    PolicyViolation {
        violations: Vec<String>,
    },
    PermissionDenied {
        resource: String,
        action: String,
    },
    Conflict(String, Option<DatabaseSource>),
    Crypto(String),
    Database(String, Option<DatabaseSource>),
    Authentication(String),
    Configuration(String),
    Closed,
    Internal(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound { entity, key } => write!(f, "{entity} not found: {key}"),
            Error::AlreadyExists { entity, field, .. } => {
                write!(f, "{entity} already exists: {field} must be unique")
            }
            Error::InvalidInput { field, reason, .. } => write!(f, "invalid {field}: {reason}"),
            Error::PolicyViolation { violations } => {
                write!(f, "policy violation: {}", violations.join("; "))
            }
            Error::PermissionDenied { resource, action } => {
                write!(f, "permission denied: {action} on {resource}")
            }
            Error::Conflict(reason, _) => write!(f, "conflict: {reason}"),
            Error::Crypto(reason) => write!(f, "cryptographic failure: {reason}"),
            Error::Database(reason, _) => write!(f, "database error: {reason}"),
            Error::Authentication(reason) => write!(f, "authentication failed: {reason}"),
            Error::Configuration(reason) => write!(f, "configuration error: {reason}"),
            Error::Closed => f.write_str("the clm handle is closed"),
            Error::Internal(reason) => write!(f, "internal error: {reason}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.database_source()
            .map(|source| source.sqlx() as &(dyn std::error::Error + 'static))
    }
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
            Error::Conflict(..) => ErrorCode::Conflict,
            Error::Crypto(_) => ErrorCode::Crypto,
            Error::Database(..) => ErrorCode::Database,
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
            source: None,
        }
    }

    /// A Database error with no driver error behind it (connecting, a
    /// half-written batch).
    pub fn database(reason: impl Into<String>) -> Self {
        Error::Database(reason.into(), None)
    }

    /// The database error this one was made from, if any.
    pub fn database_source(&self) -> Option<&DatabaseSource> {
        match self {
            Error::AlreadyExists { source, .. }
            | Error::InvalidInput { source, .. }
            | Error::Conflict(_, source)
            | Error::Database(_, source) => source.as_ref(),
            _ => None,
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
        Error::Conflict(reason.into(), None)
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
        Error::database(format!("migration failed: {err}"))
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
