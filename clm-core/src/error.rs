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
    /// The database's disk (or quota) is full: the write did not happen; reads still work. Free space and retry.
    StorageFull = 13, "STORAGE_FULL";
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
    /// Wraps a driver error (made by the store's error mapping).
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
    /// No such row, or one the actor may not see ([`ErrorCode::NotFound`]).
    NotFound {
        /// The kind of row looked for (`certificate`, `user`, `policy`).
        entity: &'static str,
        /// The id, code or name looked up, as given.
        key: String,
    },
    /// A unique column already holds this value ([`ErrorCode::AlreadyExists`]).
    AlreadyExists {
        /// The kind of row (from the table the unique constraint is on).
        entity: String,
        /// The column that must be unique (`username`, `policy_code`).
        field: String,
        /// The driver's unique-violation error, when the database reported it.
        source: Option<DatabaseSource>,
    },
    /// An argument is missing, malformed or out of range ([`ErrorCode::InvalidInput`]).
    InvalidInput {
        /// The argument or column at fault (`validity_days`, `users.email`).
        field: String,
        /// What is wrong with it.
        reason: String,
        /// The driver's error when a database constraint (not null, check)
        /// refused the value.
        source: Option<DatabaseSource>,
    },
    /// A certificate policy refused the request ([`ErrorCode::PolicyViolation`]).
    PolicyViolation {
        /// Every rule violated, not only the first.
        violations: Vec<Violation>,
    },
    /// The actor lacks the permission ([`ErrorCode::PermissionDenied`]).
    PermissionDenied {
        /// The resource of the permission (`certificates`, `policies`, `audit`).
        resource: String,
        /// The action refused on it (`read`, `create`, `revoke`).
        action: String,
    },
    /// The request conflicts with the current state: a wrong status, a
    /// concurrent change, a row still referenced, an append-only table
    /// ([`ErrorCode::Conflict`]). Carries the driver's error when the database raised it.
    Conflict(String, Option<DatabaseSource>),
    /// A key, signature, certificate or sealed envelope failed ([`ErrorCode::Crypto`]).
    Crypto(String),
    /// The database failed (connection, timeout, migration) or refused the
    /// write for another reason ([`ErrorCode::Database`]). Carries the driver's
    /// error when there is one.
    Database(String, Option<DatabaseSource>),
    /// The database ran out of disk space (SQLite's SQLITE_FULL, PostgreSQL's
    /// `disk_full`): the write was rolled back.
    StorageFull(String, Option<DatabaseSource>),
    /// A login, session token, API key or re-authentication was refused
    /// ([`ErrorCode::Authentication`]); a failed login does not say which
    /// credential was wrong.
    Authentication(String),
    /// A setting, URL or the master key is wrong ([`ErrorCode::Configuration`]).
    Configuration(String),
    /// The [`Clm`](crate::Clm) handle was closed ([`ErrorCode::Closed`]).
    Closed,
    /// A bug in clm ([`ErrorCode::Internal`]).
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
                write!(f, "policy violation: {}", join_violations(violations))
            }
            Error::PermissionDenied { resource, action } => {
                write!(f, "permission denied: {action} on {resource}")
            }
            Error::Conflict(reason, _) => write!(f, "conflict: {reason}"),
            Error::Crypto(reason) => write!(f, "cryptographic failure: {reason}"),
            Error::Database(reason, _) => write!(f, "database error: {reason}"),
            Error::StorageFull(reason, _) => write!(
                f,
                "database storage is full: {reason}; nothing was written, free space and retry"
            ),
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

/// The library's result: [`Error`] unless said otherwise.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One violated policy rule: its name (`max_validity_days`) and what was wrong.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Violation {
    /// The policy rule's name, as in the policy's rules (`max_validity_days`).
    pub rule: String,
    /// What the request had and what the rule allows.
    pub message: String,
}

impl Violation {
    /// A violation of `rule`, explained by `message`.
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
    /// The whole message in words, as the error displays it.
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
            Error::AlreadyExists { entity, field, .. } => {
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

    /// The stable code of this error.
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
            Error::StorageFull(..) => ErrorCode::StorageFull,
            Error::Authentication(_) => ErrorCode::Authentication,
            Error::Configuration(_) => ErrorCode::Configuration,
            Error::Closed => ErrorCode::Closed,
            Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// An [`Error::InvalidInput`] for `field`, with no database error behind it.
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
            | Error::Database(_, source)
            | Error::StorageFull(_, source) => source.as_ref(),
            _ => None,
        }
    }

    /// An [`Error::NotFound`] for the `entity` looked up by `key`.
    pub fn not_found(entity: &'static str, key: impl fmt::Display) -> Self {
        Error::NotFound {
            entity,
            key: key.to_string(),
        }
    }

    /// An [`Error::Crypto`] with `reason`.
    pub fn crypto(reason: impl Into<String>) -> Self {
        Error::Crypto(reason.into())
    }

    /// An [`Error::Conflict`] with no database error behind it.
    pub fn conflict(reason: impl Into<String>) -> Self {
        Error::Conflict(reason.into(), None)
    }

    /// An [`Error::PermissionDenied`] for `action` on `resource`.
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
