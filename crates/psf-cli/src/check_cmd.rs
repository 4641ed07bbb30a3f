//! `psf check`.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use psf_core::{CheckOptions, check};
use serde::Serialize;

use crate::OutputFormat;

/// Manifests are hand-written; anything larger is a mistake, not a manifest.
const MAX_MANIFEST_BYTES: u64 = 8 << 20;

#[derive(Serialize)]
struct FileReport {
    file: String,
    /// Set when the file could not be read at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    valid: bool,
    errors: usize,
    warnings: usize,
    diagnostics: Vec<psf_core::Diagnostic>,
}

pub(crate) fn run(files: &[PathBuf], format: OutputFormat, today: jiff::civil::Date) -> io::Result<ExitCode> {
    let mut out = io::stdout().lock();
    let options = CheckOptions { today };
    let mut reports = Vec::new();
    let mut code = 0u8;
    for path in files {
        let name = path.display().to_string();
        let text = match read(path) {
            Ok(text) => text,
            Err(error) => {
                if matches!(format, OutputFormat::Text) {
                    eprintln!("psf: cannot read {name}: {error}");
                    if !path.exists() {
                        eprintln!("  help: run `psf init` to write a starter manifest there");
                    }
                }
                code = 2;
                reports.push(FileReport {
                    file: name,
                    error: Some(error),
                    valid: false,
                    errors: 0,
                    warnings: 0,
                    diagnostics: Vec::new(),
                });
                continue;
            }
        };
        let checked = check(&text, &options);
        if !checked.is_valid() {
            code = code.max(1);
        }
        if matches!(format, OutputFormat::Text) {
            for d in &checked.diagnostics {
                out.write_all(d.render(&name, &text).as_bytes())?;
            }
            writeln!(out, "{}", summary(&name, checked.is_valid(), checked.errors(), checked.warnings()))?;
        }
        reports.push(FileReport {
            file: name,
            error: None,
            valid: checked.is_valid(),
            errors: checked.errors(),
            warnings: checked.warnings(),
            diagnostics: checked.diagnostics,
        });
    }
    if matches!(format, OutputFormat::Json) {
        match serde_json::to_string_pretty(&serde_json::json!({ "files": reports })) {
            Ok(json) => writeln!(out, "{json}")?,
            Err(e) => {
                eprintln!("psf: cannot write JSON: {e}");
                return Ok(ExitCode::from(2));
            }
        }
    }
    Ok(ExitCode::from(code))
}

pub(crate) fn read(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(format!(
            "the file is {} bytes; manifests larger than {MAX_MANIFEST_BYTES} bytes are refused",
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    String::from_utf8(bytes)
        .map_err(|e| format!("the file is not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()))
}

fn summary(name: &str, valid: bool, errors: usize, warnings: usize) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    if valid {
        format!("{name}: valid, {}", plural(warnings, "warning"))
    } else {
        format!("{name}: invalid, {}, {}", plural(errors, "error"), plural(warnings, "warning"))
    }
}
