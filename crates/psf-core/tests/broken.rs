//! The broken-manifest corpus: each file in `tests/broken/` states, in `# expect:` lines
//! at its top, every error `psf check` must report — code and line — and no other error
//! may appear. Warnings are ignored unless expected.

use std::collections::BTreeSet;
use std::path::Path;

use psf_core::{CheckOptions, Severity, check};

fn today() -> jiff::civil::Date {
    jiff::civil::date(2026, 11, 22)
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone)]
struct Expect {
    code: String,
    line: Option<usize>,
}

fn expectations(text: &str) -> Vec<Expect> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|rest| {
            let mut parts = rest.split_whitespace();
            let code = parts.next().unwrap_or_default().to_string();
            assert_eq!(parts.next(), Some("line"), "malformed expect line: {rest}");
            let line = parts.next().and_then(|l| l.parse().ok());
            Expect { code, line }
        })
        .collect()
}

#[test]
fn every_broken_manifest_reports_exactly_its_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 25, "the corpus must hold at least 25 broken manifests");
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let want = expectations(&text);
        assert!(!want.is_empty(), "{} has no `# expect:` line", path.display());
        let checked = check(&text, &CheckOptions { today: today() });
        assert!(!checked.is_valid(), "{} passed `psf check`", path.display());
        let name = path.file_name().unwrap().to_string_lossy();
        let got: Vec<(String, usize)> = checked
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error || want.iter().any(|w| w.code == d.code.as_str()))
            .map(|d| (d.code.as_str().to_string(), d.position.line))
            .collect();
        for w in &want {
            let found = got.iter().any(|(c, l)| *c == w.code && w.line.is_none_or(|wl| wl == *l));
            if !found {
                failures.push(format!("{name}: expected {} at line {:?}, got {got:?}", w.code, w.line));
            }
        }
        let wanted_codes: BTreeSet<&str> = want.iter().map(|w| w.code.as_str()).collect();
        for (code, line) in &got {
            if !wanted_codes.contains(code.as_str()) {
                failures.push(format!("{name}: unexpected {code} at line {line}"));
            }
        }
        for d in &checked.diagnostics {
            assert!(d.help.is_some(), "{name}: {} has no help", d.code);
            assert!(
                d.position.line >= 1 && d.position.line <= text.lines().count() + 1,
                "{name}: {} points outside the file",
                d.code
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn examples_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let checked = check(&text, &CheckOptions { today: today() });
            assert!(checked.is_valid(), "{}: {:#?}", path.display(), checked.diagnostics);
            count += 1;
        }
    }
    assert!(count >= 3);
}

#[test]
fn the_high_stakes_examples_have_no_warnings() {
    for name in ["customer-support.yaml", "loan-prescreening.yaml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name);
        let text = std::fs::read_to_string(path).unwrap();
        let checked = check(&text, &CheckOptions { today: today() });
        let warnings: Vec<_> = checked.diagnostics.iter().map(|d| format!("{} {}", d.code, d.message)).collect();
        assert!(warnings.is_empty(), "{name}: {warnings:#?}");
    }
}

#[test]
fn stale_evidence_warns_but_stays_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/loan-prescreening.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    // Two years on, reviews and drills are stale: warnings, not errors.
    let later = jiff::civil::date(2028, 11, 22);
    let checked = check(&text, &CheckOptions { today: later });
    assert!(checked.is_valid());
    let codes: BTreeSet<&str> = checked.diagnostics.iter().map(|d| d.code.as_str()).collect();
    for code in ["W301", "W310", "W311", "W312"] {
        assert!(codes.contains(code), "{code} missing from {codes:?}");
    }
}
