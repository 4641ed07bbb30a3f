//! `psf check`: a manifest's text in, every problem out, each pointing at its line.
//!
//! Three passes, each reporting everything it finds:
//! 1. YAML syntax (`yaml`), which stops at the first syntax error since nothing after it
//!    can be trusted;
//! 2. structure (`structure`), the manifest's JSON Schema, plus the secret scan, which
//!    runs on any readable document;
//! 3. rules (`rules`), on the typed manifest: cross-references, people, dates.
//!
//! The clock is an input, so results are reproducible in tests and in CI.

mod env;
mod rules;
mod secrets;
mod structure;

use jiff::civil::Date;
use serde::Serialize;

use crate::diagnostic::{Code, Diagnostic, Severity};
use crate::manifest::Manifest;
use crate::yaml;

/// What a check needs besides the text.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// Today's date, for the rules about stale reviews.
    pub today: Date,
}

/// The outcome of checking one manifest.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    /// The typed manifest, when the text got far enough to have one (it may still have
    /// rule errors; see [`Checked::is_valid`]).
    #[serde(skip)]
    pub manifest: Option<Manifest>,
    /// Every problem found: errors, then warnings, each in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    /// How many errors.
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error).count()
    }

    /// How many warnings.
    pub fn warnings(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Warning).count()
    }

    /// Whether the manifest has no errors (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.manifest.is_some() && self.errors() == 0
    }

    /// The manifest, if it is valid.
    pub fn valid_manifest(&self) -> Option<&Manifest> {
        if self.is_valid() { self.manifest.as_ref() } else { None }
    }
}

/// Checks the text of a manifest.
pub fn check(text: &str, options: &CheckOptions) -> Checked {
    let doc = match yaml::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let mut d = Diagnostic::new(Code::Syntax, "", format!("invalid YAML: {}", e.message)).help(
                "fix the YAML syntax here; indentation must be spaces, and text with `: ` or `#` in it needs quotes",
            );
            d.position = e.position;
            return Checked { manifest: None, diagnostics: vec![d] };
        }
    };
    let mut diagnostics = structure::check(&doc);
    diagnostics.extend(secrets::check(&doc));
    let mut manifest = None;
    if diagnostics.is_empty() {
        match serde_json::from_value::<Manifest>(doc.value.clone()) {
            Ok(m) => {
                diagnostics.extend(rules::check(&m, &doc.spans, options.today));
                manifest = Some(m);
            }
            // The schema is derived from the same types, so this means the two disagree:
            // report it rather than pass the manifest unchecked.
            Err(e) => {
                let mut d =
                    Diagnostic::new(Code::SchemaViolation, "", format!("the manifest does not match psf's types: {e}"))
                        .help("this is a bug in psf's schema; please report it with the manifest");
                d.position = doc.spans.value_position("");
                diagnostics.push(d);
            }
        }
    }
    // Errors first, since they are what must be fixed; then file order.
    diagnostics
        .sort_by(|a, b| (a.severity, a.position, a.code.as_str()).cmp(&(b.severity, b.position, b.code.as_str())));
    diagnostics.dedup();
    Checked { manifest, diagnostics }
}

/// Loads a manifest for a running gateway: checks it as `psf check` does, then expands
/// `${VAR}` and `${VAR:-default}` references in its text values with `env`. Any error —
/// from the check or an unset variable — comes back as diagnostics with positions;
/// warnings are dropped (a gateway starts on a manifest with warnings).
pub fn load(
    text: &str,
    options: &CheckOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Manifest, Vec<Diagnostic>> {
    let checked = check(text, options);
    if !checked.is_valid() {
        return Err(checked.diagnostics.into_iter().filter(|d| d.severity == Severity::Error).collect());
    }
    // The check parsed this text already, so parsing again cannot fail; the error arm
    // keeps that an assumption the compiler checks rather than a panic.
    let mut doc = yaml::parse(text).map_err(|e| {
        vec![Diagnostic::new(Code::Syntax, "", format!("invalid YAML: {}", e.message)).help("fix the YAML syntax")]
    })?;
    let mut errors = Vec::new();
    env::expand(&mut doc.value, &mut String::new(), &doc.spans, env, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    serde_json::from_value(doc.value).map_err(|e| {
        vec![
            Diagnostic::new(Code::SchemaViolation, "", format!("after expanding environment variables: {e}"))
                .help("a variable's value has the wrong form for the field it is used in"),
        ]
    })
}
