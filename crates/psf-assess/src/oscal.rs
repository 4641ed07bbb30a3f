//! OSCAL 1.2.2 output: the PSF catalog as an OSCAL catalog, and an assessment as OSCAL
//! assessment results, for GRC tools that read OSCAL.
//!
//! Control ids are the competency ids in lower case (`ig-1`), grouped by domain (`ig`).
//! Every verdict is a finding on its control's statement (`ig-1_smt`): `satisfied` when
//! enforced, evidenced or not applicable, `not-satisfied` otherwise, with psf's own status
//! kept as a property; each item of evidence is an observation (`EXAMINE` for the
//! manifest, `TEST` for the gateway's records). UUIDs are derived from the content, so the
//! same assessment gives the same document.

use psf_core::catalog::{COMPETENCIES, DOMAINS};
use serde_json::{Value, json};

use crate::context::sha256_hex;
use crate::{Assessment, Status};

/// The OSCAL version written.
pub const OSCAL_VERSION: &str = "1.2.2";
/// The namespace of psf's own properties.
const NS: &str = "https://github.com/psf-rs/psf/ns/oscal";

/// A name-based UUID (version 5 layout, SHA-256 of `parts`), stable across runs.
fn uuid(parts: &[&str]) -> String {
    let h = sha256_hex(parts.join("\u{1f}").as_bytes());
    let b = h.as_bytes();
    let s = |r: std::ops::Range<usize>| std::str::from_utf8(&b[r]).unwrap_or("0");
    // Version nibble 5; variant bits 10 (8, 9, a or b).
    let variant = match b[16] {
        b'0' | b'4' | b'8' | b'c' => '8',
        b'1' | b'5' | b'9' | b'd' => '9',
        b'2' | b'6' | b'a' | b'e' => 'a',
        _ => 'b',
    };
    format!("{}-{}-5{}-{variant}{}-{}", s(0..8), s(8..12), s(13..16), s(17..20), s(20..32))
}

fn attribution() -> String {
    format!(
        "{} psf's catalog paraphrases each statement in its own words and cites its statement id.",
        psf_core::catalog::ATTRIBUTION
    )
}

/// The PSF catalog as an OSCAL catalog.
pub fn catalog(last_modified: &str) -> Value {
    let groups: Vec<Value> = DOMAINS
        .iter()
        .map(|d| {
            let controls: Vec<Value> = COMPETENCIES
                .iter()
                .filter(|c| c.domain == d.id)
                .map(|c| {
                    let id = c.id.to_lowercase();
                    json!({
                        "id": id,
                        "title": c.title,
                        "props": [
                            {"name": "label", "value": c.id},
                            {"name": "psf-statement", "ns": NS, "value": c.statement},
                        ],
                        "parts": [{"id": format!("{id}_smt"), "name": "statement", "prose": c.requirement}],
                    })
                })
                .collect();
            json!({"id": d.id.to_lowercase(), "title": d.name, "controls": controls})
        })
        .collect();
    json!({"catalog": {
        "uuid": uuid(&["psf-catalog", psf_core::catalog::PSF_VERSION]),
        "metadata": {
            "title": format!("Production Safety Framework {} (psf catalog)", psf_core::catalog::PSF_VERSION),
            "last-modified": last_modified,
            "version": psf_core::catalog::PSF_VERSION,
            "oscal-version": OSCAL_VERSION,
            "remarks": attribution(),
        },
        "groups": groups,
    }})
}

fn state(s: Status) -> &'static str {
    match s {
        Status::Enforced | Status::Evidenced | Status::NotApplicable => "satisfied",
        Status::Partial | Status::Missing | Status::Manual => "not-satisfied",
    }
}

/// An assessment as OSCAL assessment results.
pub fn assessment_results(a: &Assessment) -> Value {
    let date = a.date.to_string();
    let at = format!("{date}T00:00:00Z");
    let start = a
        .date
        .checked_sub(jiff::Span::new().days(i64::from(a.window_days)))
        .map_or_else(|_| at.clone(), |d| format!("{d}T00:00:00Z"));
    let base = [a.system.as_str(), date.as_str(), a.manifest.sha256.as_str()];
    let mut observations = Vec::new();
    let mut findings = Vec::new();
    for v in &a.verdicts {
        let mut related = Vec::new();
        for (i, e) in v.evidence.iter().enumerate() {
            let id = uuid(&[&base[..], &[v.id, "observation", &i.to_string()]].concat());
            let method = if e.kind == "manifest" { "EXAMINE" } else { "TEST" };
            let mut description = format!("{}: {}", e.source, e.observation);
            if let Some(w) = &e.window {
                description.push_str(&format!(" (window {w})"));
            }
            observations.push(json!({
                "uuid": id,
                "title": format!("{} evidence {}", v.id, i + 1),
                "description": description,
                "methods": [method],
                "props": [{"name": "evidence-sha256", "ns": NS, "value": e.sha256}],
                "collected": at,
            }));
            related.push(json!({"observation-uuid": id}));
        }
        let control = v.id.to_lowercase();
        let mut description = v.summary.clone();
        for g in &v.gaps {
            description.push_str(&format!("\n\nTo meet it: {g}"));
        }
        let mut finding = json!({
            "uuid": uuid(&[&base[..], &[v.id, "finding"]].concat()),
            "title": format!("{} {}", v.id, v.title),
            "description": description,
            "props": [{"name": "psf-status", "ns": NS, "value": v.status.as_str()}],
            "target": {
                "type": "statement-id",
                "target-id": format!("{control}_smt"),
                "status": {"state": state(v.status)},
            },
        });
        if !related.is_empty() {
            finding["related-observations"] = Value::Array(related);
        }
        findings.push(finding);
    }
    let controls: Vec<Value> = COMPETENCIES.iter().map(|c| json!({"control-id": c.id.to_lowercase()})).collect();
    let mut result = json!({
        "uuid": uuid(&[&base[..], &["result"]].concat()),
        "title": format!("psf assessment of {}", a.system),
        "description": format!(
            "The 40 PSF competencies decided by psf {} from the manifest {} (sha256 {}){}.",
            a.psf_version,
            a.manifest.file,
            a.manifest.sha256,
            if a.runtime.is_some() { " and the gateway's records in the window" } else { " alone (no runtime records)" }
        ),
        "start": start,
        "end": at,
        "reviewed-controls": {"control-selections": [{"include-controls": controls}]},
        "findings": findings,
    });
    if !observations.is_empty() {
        result["observations"] = Value::Array(observations);
    }
    json!({"assessment-results": {
        "uuid": uuid(&[&base[..], &["assessment-results"]].concat()),
        "metadata": {
            "title": format!("psf assessment: {}", a.system),
            "last-modified": at,
            "version": a.psf_version,
            "oscal-version": OSCAL_VERSION,
            "remarks": attribution(),
        },
        "import-ap": {
            "href": a.manifest.file,
            "remarks": "psf assesses the deployment its manifest describes; there is no separate OSCAL assessment plan.",
        },
        "results": [result],
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_stable_and_shaped_as_oscal_wants() {
        let u = uuid(&["a", "b"]);
        assert_eq!(u, uuid(&["a", "b"]));
        assert_ne!(u, uuid(&["a", "c"]));
        let parts: Vec<&str> = u.split('-').collect();
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
        assert!(parts[2].starts_with('5') && matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{u}");
    }
}
