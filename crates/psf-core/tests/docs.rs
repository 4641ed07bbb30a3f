//! `docs/check-codes.md` is generated from the codes themselves, so it cannot drift.
//! Run with `PSF_UPDATE_DOCS=1` to rewrite it after adding a code.

use std::fmt::Write as _;
use std::path::Path;

use psf_core::Code;

fn render() -> String {
    let mut out = String::from(
        "# `psf check` codes\n\n\
         Generated from `crates/psf-core/src/diagnostic.rs` by `cargo test -p psf-core --test docs` \
         (set `PSF_UPDATE_DOCS=1` to rewrite). Codes are stable: a code never changes meaning and a \
         retired code is never reused.\n\n\
         Errors (`E…`) make a manifest invalid (`psf check` exits 1). Warnings (`W…`) leave it valid \
         but name evidence the assessment will find missing.\n\n\
         | code | severity | meaning |\n|---|---|---|\n",
    );
    for code in Code::ALL {
        let _ = writeln!(out, "| {} | {} | {} |", code.as_str(), code.severity().as_str(), code.summary());
    }
    out
}

/// Compares a generated doc with the committed one; rewrites it with `PSF_UPDATE_DOCS`.
#[expect(clippy::unwrap_used, reason = "a doc that cannot be written must fail the test")]
fn check_doc(name: &str, want: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs").join(name);
    if std::env::var_os("PSF_UPDATE_DOCS").is_some() {
        std::fs::write(&path, want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(have, want, "docs/{name} is out of date: run `PSF_UPDATE_DOCS=1 cargo test -p psf-core --test docs`");
}

#[test]
fn codes_doc_is_current() {
    check_doc("check-codes.md", &render());
}

fn render_gateway_codes() -> String {
    use psf_core::code::{Code, Use};
    let mut out = String::from(
        "# Gateway codes\n\n\
         Generated from `crates/psf-core/src/code.rs` by `cargo test -p psf-core --test docs` \
         (set `PSF_UPDATE_DOCS=1` to rewrite). Every stage decision in an audit record, every \
         refusal's `error.code`, every answer state and every stored event kind is one of these. \
         Codes are stable: a code never changes meaning and a retired code is never reused.\n\n\
         A refusal's HTTP status, error `type` and audit outcome come from this table and nowhere \
         else.\n\n\
         | code | competency | used as | HTTP | error type | outcome | meaning |\n|---|---|---|---|---|---|---|\n",
    );
    for code in Code::ALL {
        let used = match code.usage() {
            Use::Stage => "stage",
            Use::StageAndRefusal => "stage, refusal",
            Use::Refusal => "refusal",
            Use::Answer => "answer",
            Use::Event => "event",
        };
        let (status, kind, outcome) = match code.refusal() {
            Some(r) if *code == Code::Ms4UpstreamRejected => {
                ("4xx or 502".to_string(), r.error_type, r.outcome.as_str())
            }
            Some(r) => (r.status.to_string(), r.error_type, r.outcome.as_str()),
            None => (String::new(), "", ""),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {used} | {status} | {kind} | {outcome} | {} |",
            code.as_str(),
            code.competency().unwrap_or("—"),
            code.summary()
        );
    }
    out
}

#[test]
fn gateway_codes_doc_is_current() {
    check_doc("codes.md", &render_gateway_codes());
}
