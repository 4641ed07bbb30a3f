//! Errors from building detectors. Scanning itself cannot fail.

use std::fmt;

/// Why a detector could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    kind: BuildErrorKind,
}

/// The kinds of [`BuildError`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildErrorKind {
    /// A pattern did not compile.
    Pattern {
        /// Which detector's pattern.
        detector: &'static str,
        /// The regex engine's message.
        message: String,
    },
    /// A shipped or given model is unreadable or has the wrong number of heads.
    Model {
        /// What is wrong with it.
        message: String,
    },
}

impl BuildError {
    pub(crate) fn pattern(detector: &'static str, message: String) -> BuildError {
        BuildError { kind: BuildErrorKind::Pattern { detector, message } }
    }

    pub(crate) fn model(message: impl Into<String>) -> BuildError {
        BuildError { kind: BuildErrorKind::Model { message: message.into() } }
    }

    /// What went wrong.
    pub fn kind(&self) -> &BuildErrorKind {
        &self.kind
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            BuildErrorKind::Pattern { detector, message } => {
                write!(f, "the {detector} pattern does not compile: {message}")
            }
            BuildErrorKind::Model { message } => write!(f, "model: {message}"),
        }
    }
}

impl std::error::Error for BuildError {}
