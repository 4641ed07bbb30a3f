//! `psf scan`: the detectors on a file or standard input, for people and scripts.

use std::io::{self, Read as _, Write as _};
use std::path::Path;
use std::process::ExitCode;

use psf_detect::{
    ContentDetector, InjectionDetector, OutputSchema, PiiDetector, RedactStyle, SchemaCheck, Source, Vault, redact,
    sanitize,
};
use serde_json::json;

use crate::OutputFormat;

/// Texts larger than this are refused rather than scanned in part.
const MAX_INPUT_BYTES: u64 = 64 << 20;

/// What to print instead of findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transform {
    None,
    Redact,
    Tokenize,
}

pub(crate) fn run(input: &Path, transform: Transform, format: OutputFormat) -> io::Result<ExitCode> {
    let text = match read_input(input) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("psf: cannot read {}: {e}", input.display());
            return Ok(ExitCode::from(2));
        }
    };
    let (pii, injection, content) = match (PiiDetector::new(), InjectionDetector::new(), ContentDetector::new()) {
        (Ok(p), Ok(i), Ok(c)) => (p, i, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("psf: cannot build the detectors: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let findings = pii.scan(&text);
    let mut out = io::stdout().lock();
    match transform {
        Transform::Redact => {
            out.write_all(redact(&text, &findings, RedactStyle::Label).as_bytes())?;
            return Ok(ExitCode::SUCCESS);
        }
        Transform::Tokenize => {
            let mut vault = Vault::new();
            out.write_all(vault.tokenize(&text, &findings).as_bytes())?;
            return Ok(ExitCode::SUCCESS);
        }
        Transform::None => {}
    }
    let sanitized = sanitize(&text);
    let report = injection.scan(&text, Source::User);
    let content = content.scan(&text);
    let lines = LineIndex::new(&text);
    match format {
        OutputFormat::Json => {
            let doc = json!({
                "pii": findings.iter().map(|f| json!({
                    "type": f.entity.label(),
                    "class": f.class().as_str(),
                    "start": f.span.start,
                    "end": f.span.end,
                    "line": lines.position(f.span.start).0,
                    "column": lines.position(f.span.start).1,
                    "confidence": f.confidence,
                    "evidence": f.evidence,
                    "validator": f.validator,
                })).collect::<Vec<_>>(),
                "sanitize": sanitized.findings,
                "injection": report,
                "content": content,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default())?;
        }
        OutputFormat::Text => {
            for f in &findings {
                let (line, col) = lines.position(f.span.start);
                writeln!(
                    out,
                    "{line}:{col}: {} ({}) confidence {:.2}, {} [{}..{}]",
                    f.entity.label(),
                    f.class().as_str(),
                    f.confidence,
                    f.validator,
                    f.span.start,
                    f.span.end
                )?;
            }
            for s in &sanitized.findings {
                let (line, col) = lines.position(s.span.start);
                writeln!(out, "{line}:{col}: unicode {:?} [{}..{}]", s.kind, s.span.start, s.span.end)?;
            }
            let reasons: Vec<String> = report
                .reasons
                .iter()
                .map(|r| match r.via {
                    Some(via) => format!("{} (via {via})", r.family.as_str()),
                    None => r.family.as_str().to_string(),
                })
                .collect();
            writeln!(
                out,
                "injection: score {:.2}{}{}",
                report.score,
                if report.flagged { ", flagged" } else { "" },
                if reasons.is_empty() { String::new() } else { format!(" ({})", reasons.join(", ")) }
            )?;
            let scores: Vec<String> = content
                .scores
                .iter()
                .map(|(c, s)| {
                    format!("{} {s:.2}{}", c.as_str(), if content.flagged.contains(c) { " flagged" } else { "" })
                })
                .collect();
            writeln!(
                out,
                "content: {}{}",
                scores.join(", "),
                if content.quote_discounted { " (a quoted passage discounted as reported speech)" } else { "" }
            )?;
            writeln!(out, "{} PII findings, {} unicode findings", findings.len(), sanitized.findings.len())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `psf scan --json-schema SCHEMA INPUT`: the output-schema check of a decision point,
/// run on a saved model answer.
pub(crate) fn run_schema(input: &Path, schema_path: &Path, format: OutputFormat) -> io::Result<ExitCode> {
    let (text, schema_text) = match (read_input(input), read_input(schema_path)) {
        (Ok(t), Ok(s)) => (t, s),
        (Err(e), _) => {
            eprintln!("psf: cannot read {}: {e}", input.display());
            return Ok(ExitCode::from(2));
        }
        (_, Err(e)) => {
            eprintln!("psf: cannot read {}: {e}", schema_path.display());
            return Ok(ExitCode::from(2));
        }
    };
    let schema = match serde_json::from_str(&schema_text)
        .map_err(|e| e.to_string())
        .and_then(|v| OutputSchema::new(&v).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("psf: {} is not a usable JSON Schema: {e}", schema_path.display());
            return Ok(ExitCode::from(2));
        }
    };
    let result = schema.check(&text);
    let mut out = io::stdout().lock();
    match format {
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&result).unwrap_or_default())?,
        OutputFormat::Text => match &result {
            SchemaCheck::Valid { span } => {
                writeln!(out, "valid: the JSON at bytes {}..{} satisfies the schema", span.start, span.end)?
            }
            SchemaCheck::Invalid { span, violations } => {
                for v in violations {
                    let path = if v.path.is_empty() { "(root)" } else { v.path.as_str() };
                    writeln!(out, "{path}: {}", v.message)?;
                }
                writeln!(
                    out,
                    "invalid: {} violations in the JSON at bytes {}..{}",
                    violations.len(),
                    span.start,
                    span.end
                )?;
            }
            SchemaCheck::NoJson => writeln!(out, "invalid: the text holds no JSON value")?,
        },
    }
    Ok(if matches!(result, SchemaCheck::Valid { .. }) { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub(crate) fn read_input(path: &Path) -> Result<String, String> {
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        io::stdin().lock().take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    } else {
        let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
        if meta.len() > MAX_INPUT_BYTES {
            return Err(format!("{} bytes is more than the {MAX_INPUT_BYTES} bytes psf scans", meta.len()));
        }
        bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    }
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(format!("input is more than the {MAX_INPUT_BYTES} bytes psf scans"));
    }
    String::from_utf8(bytes)
        .map_err(|e| format!("not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()))
}

/// Byte offset → (line, column in characters), both from 1.
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> LineIndex<'a> {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        LineIndex { text, starts }
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|s| *s <= offset).max(1);
        let start = self.starts[line - 1];
        let column = self.text.get(start..offset).map_or(1, |s| s.chars().count() + 1);
        (line, column)
    }
}
