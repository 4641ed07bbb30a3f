//! Store errors: what failed, on which store, and how to fix it where we know.

use std::fmt;

/// Why a store operation failed.
#[derive(Debug)]
pub struct StoreError {
    message: String,
}

impl StoreError {
    pub(crate) fn url(url: &str) -> StoreError {
        StoreError {
            message: format!(
                "`{url}` is not a store URL psf can open; use sqlite://PATH (a file, created if missing), sqlite::memory: or postgres://USER@HOST:PORT/DB"
            ),
        }
    }

    pub(crate) fn open(url: &str, e: sqlx::Error) -> StoreError {
        StoreError { message: format!("cannot open the store at `{url}`: {e}") }
    }

    pub(crate) fn query(what: &str, e: sqlx::Error) -> StoreError {
        StoreError { message: format!("the store could not {what}: {e}") }
    }

    /// An error with its own message.
    pub fn other(message: impl Into<String>) -> StoreError {
        StoreError { message: message.into() }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}
