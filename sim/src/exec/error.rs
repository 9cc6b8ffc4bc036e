//! Statement errors with the MySQL error code searchd uses for them.

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// `ERROR 1064 (42000)`: searchd's code for almost everything.
    Generic,
    /// `ERROR 1146 (42S02)`: DESC / SHOW CREATE TABLE of a missing table.
    NoSuchTable,
    /// `ERROR 1045`: a user without the needed right. Never forwarded to the helper.
    AccessDenied,
    /// A statement fault set by test tooling (`crate::faults`): searchd's generic `ERROR 1064`
    /// on the wire, never forwarded to the helper.
    Injected,
}

impl ErrorCode {
    /// Whether searchd hands an error of this code to the helper (which may answer instead).
    pub fn forwardable(self) -> bool {
        !matches!(self, ErrorCode::AccessDenied | ErrorCode::Injected)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct ExecError {
    pub code: ErrorCode,
    pub message: String,
    /// Error of the `/sql` endpoint's parser stage (HTTP 400 instead of 500).
    pub is_syntax: bool,
}

impl ExecError {
    pub fn new(message: impl Into<String>) -> ExecError {
        ExecError {
            code: ErrorCode::Generic,
            message: message.into(),
            is_syntax: false,
        }
    }

    pub fn syntax(message: impl Into<String>) -> ExecError {
        ExecError {
            is_syntax: true,
            ..ExecError::new(message)
        }
    }

    pub fn no_such_table(name: &str) -> ExecError {
        ExecError {
            code: ErrorCode::NoSuchTable,
            ..ExecError::new(format!("no such table '{name}'"))
        }
    }

    pub fn access_denied(message: String) -> ExecError {
        ExecError {
            code: ErrorCode::AccessDenied,
            ..ExecError::new(message)
        }
    }
}

pub type ExecResult<T> = Result<T, ExecError>;
