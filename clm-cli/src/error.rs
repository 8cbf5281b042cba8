//! How a failure leaves the process: a message on stderr with the library's
//! code and the field or the violated rules, and an exit status derived
//! from [`clm::ErrorCode`] (documented in README.md, "From the command line").

use std::io::Write;

use clm::{Error, ErrorCode};

/// Exit status of a command clap refused (unknown flag, missing argument).
pub const EXIT_USAGE: i32 = 2;
/// Exit status after Ctrl-C stopped a long operation (the shell's 128 + SIGINT).
pub const EXIT_INTERRUPTED: i32 = 130;
/// Exit statuses of library errors are this plus the code's stable number.
const EXIT_CODE_BASE: i32 = 10;

/// What a command can fail with.
#[derive(Debug)]
pub enum CliError {
    /// The library, or the CLI checking its input the library's way.
    Clm(Error),
    /// Ctrl-C stopped a long operation; what was done stays done.
    Interrupted(String),
}

impl From<Error> for CliError {
    fn from(err: Error) -> Self {
        CliError::Clm(err)
    }
}

/// A command's result.
pub type CliResult<T> = Result<T, CliError>;

/// The exit status of an error code: 10 plus its stable number (11 for
/// NOT_FOUND up to 23 for STORAGE_FULL).
pub fn exit_status(code: ErrorCode) -> i32 {
    EXIT_CODE_BASE.saturating_add(i32::try_from(code.number()).unwrap_or(0))
}

impl CliError {
    /// The process exit status for this error.
    pub fn exit_status(&self) -> i32 {
        match self {
            CliError::Clm(err) => exit_status(err.code()),
            CliError::Interrupted(_) => EXIT_INTERRUPTED,
        }
    }

    /// Writes the error to stderr: as JSON when the output is JSON (for
    /// scripts), otherwise as words with the field or every violated rule.
    pub fn report(&self, json: bool, color: bool) {
        let mut stderr = std::io::stderr().lock();
        match self {
            CliError::Interrupted(what) => {
                let _ = writeln!(stderr, "interrupted: {what}");
            }
            CliError::Clm(err) => {
                let details = err.details();
                if json {
                    let text = serde_json::to_string(&details).unwrap_or_default();
                    let _ = writeln!(stderr, "{text}");
                    return;
                }
                let label = if color {
                    "\x1b[1;31merror\x1b[0m"
                } else {
                    "error"
                };
                let _ = writeln!(stderr, "{label} [{}]: {}", details.code, details.message);
                if let Some(field) = &details.field {
                    let _ = writeln!(stderr, "  field: {field}");
                }
                for violation in &details.violations {
                    let _ = writeln!(
                        stderr,
                        "  violated rule {}: {}",
                        violation.rule, violation.message
                    );
                }
            }
        }
    }
}

/// An InvalidInput naming `field` (a flag or a file) and why.
pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> CliError {
    CliError::Clm(Error::invalid(field, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_own_status_above_the_usage_statuses() {
        let statuses: Vec<i32> = ErrorCode::ALL.iter().map(|c| exit_status(*c)).collect();
        assert_eq!(statuses.first(), Some(&11));
        assert_eq!(statuses.last(), Some(&exit_status(ErrorCode::StorageFull)));
        assert_eq!(statuses.last(), Some(&23));
        let unique: std::collections::BTreeSet<_> = statuses.iter().collect();
        assert_eq!(unique.len(), statuses.len());
        assert!(statuses.iter().all(|s| *s > EXIT_USAGE && *s < 126));
    }
}
