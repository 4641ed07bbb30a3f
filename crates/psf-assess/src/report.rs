//! Reports: the terminal summary, Markdown, JSON, SARIF and JUnit. Every report is a pure function of
//! an [`Assessment`], so the same assessment always renders the same bytes.

use std::fmt::Write as _;

use crate::{Assessment, Status};

fn mark(status: Status) -> &'static str {
    match status {
        Status::Enforced => "E",
        Status::Evidenced => "e",
        Status::Partial => "p",
        Status::Missing => "X",
        Status::Manual => "m",
        Status::NotApplicable => "-",
    }
}

fn colour(status: Status) -> &'static str {
    match status {
        Status::Enforced => "\x1b[1;32m",
        Status::Evidenced => "\x1b[32m",
        Status::Partial => "\x1b[33m",
        Status::Missing => "\x1b[1;31m",
        Status::Manual => "\x1b[36m",
        Status::NotApplicable => "\x1b[2m",
    }
}

/// The terminal summary: the summary line, the 8x5 grid, the rubric, and the gaps.
pub fn terminal(a: &Assessment, ansi: bool) -> String {
    let mut out = String::new();
    let paint = |s: Status, text: &str| if ansi { format!("{}{text}\x1b[0m", colour(s)) } else { text.to_string() };
    let _ = writeln!(out, "psf assess: {} ({}), {}", a.system, a.manifest.file, a.date);
    let _ = writeln!(out, "{}", a.summary_line());
    match &a.runtime {
        Some(r) => {
            let _ =
                writeln!(out, "runtime: {} requests from {} keys, {}..{}", r.requests, r.distinct_keys, r.from, r.to);
        }
        None => {
            let _ = writeln!(out, "runtime: no store given; nothing can be `enforced` (use --store)");
        }
    }
    let _ = writeln!(out);
    for d in &psf_core::catalog::DOMAINS {
        let _ = write!(out, "  {:<3}", d.id);
        for v in a.verdicts.iter().filter(|v| v.domain == d.id) {
            let _ = write!(out, " {}", paint(v.status, &format!("{} {}", v.id, mark(v.status))));
        }
        let _ = writeln!(out, "   {}", d.name);
    }
    let _ = writeln!(out, "\n  E enforced  e evidenced  p partial  X missing  m manual  - not applicable\n");
    let _ = writeln!(out, "CPAP rubric:");
    for d in &a.rubric {
        let _ = writeln!(out, "  {}/4 {:<11} {}: {}", d.level.0, d.level.name(), d.name, d.reason);
    }
    if let Some(line) = changes_line(a) {
        let _ = writeln!(out, "\n{line}");
    }
    let gaps: Vec<_> = a.verdicts.iter().filter(|v| matches!(v.status, Status::Missing | Status::Partial)).collect();
    if !gaps.is_empty() {
        let _ = writeln!(out, "\nGaps, most serious first:");
        for v in gaps
            .iter()
            .filter(|v| v.status == Status::Missing)
            .chain(gaps.iter().filter(|v| v.status == Status::Partial))
        {
            let _ = writeln!(out, "  {} {:<8} {}", v.id, v.status.as_str(), v.summary);
            if let Some(g) = v.gaps.first() {
                let _ = writeln!(out, "           fix: {g}");
            }
            if let Some(note) = v.suppression_note() {
                let _ = writeln!(out, "           {note}");
            }
        }
    }
    out
}

/// "Since the assessment of 2026-10-23: IG-3 partial → enforced, …", or that nothing
/// changed; `None` when no earlier assessment was given.
pub(crate) fn changes_line(a: &Assessment) -> Option<String> {
    let c = a.since_previous.as_ref()?;
    if c.changes.is_empty() {
        return Some(format!("Since the assessment of {}: no competency changed status.", c.previous_date));
    }
    let list: Vec<String> = c.changes.iter().map(|x| format!("{} {} → {}", x.id, x.from, x.to.as_str())).collect();
    let better = c.changes.iter().filter(|x| x.is_improvement()).count();
    Some(format!(
        "Since the assessment of {}: {} better, {} worse or moved: {}.",
        c.previous_date,
        better,
        c.changes.len() - better,
        list.join(", ")
    ))
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown report: summary, grid, rubric, risks, each competency's verdict with its
/// evidence and remediation, and the evidence appendix.
pub fn markdown(a: &Assessment) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# PSF assessment: {}\n", a.system);
    let _ = writeln!(out, "**{}**\n", a.summary_line());
    let _ = writeln!(
        out,
        "Assessed {} from `{}` (sha256 `{}`), catalog PSF v{}, psf {}, window {} days.",
        a.date, a.manifest.file, a.manifest.sha256, a.catalog_version, a.psf_version, a.window_days
    );
    match &a.runtime {
        Some(r) => {
            let _ = writeln!(
                out,
                "Runtime records {}..{}: {} requests from {} keys on {} days; {} audit records scanned for PII.\n",
                r.from, r.to, r.requests, r.distinct_keys, r.active_days, r.pii_sample.records
            );
        }
        None => {
            let _ = writeln!(out, "No runtime records were read, so no competency can be `enforced`.\n");
        }
    }
    if let Some(line) = changes_line(a) {
        let _ = writeln!(out, "{line}\n");
    }
    let _ = writeln!(out, "## At a glance\n\n| domain | 1 | 2 | 3 | 4 | 5 |\n|---|---|---|---|---|---|");
    for d in &psf_core::catalog::DOMAINS {
        let cells: Vec<String> =
            a.verdicts.iter().filter(|v| v.domain == d.id).map(|v| v.status.as_str().to_string()).collect();
        let _ = writeln!(out, "| {} {} | {} |", d.id, d.name, cells.join(" | "));
    }
    let _ = writeln!(out, "\n## CPAP rubric\n\n| dimension | level | why | next level needs |\n|---|---|---|---|");
    for d in &a.rubric {
        let _ = writeln!(
            out,
            "| {} | {}/4 {} | {} | {} |",
            d.name,
            d.level.0,
            d.level.name(),
            md_escape(&d.reason),
            md_escape(&d.next)
        );
    }
    if !a.risks.is_empty() {
        let _ = writeln!(
            out,
            "\n## Risk register\n\n| risk | L x I | band | AI-specific | mitigations | not met |\n|---|---|---|---|---|---|"
        );
        for r in &a.risks {
            let _ = writeln!(
                out,
                "| {} {} | {} x {} = {} | {} | {} | {} | {} |",
                r.id,
                md_escape(&r.title),
                r.likelihood,
                r.impact,
                r.score,
                r.band,
                if r.ai_specific { "yes" } else { "no" },
                r.mitigations.join(", "),
                r.unmet_mitigations.join(", ")
            );
        }
        let _ = writeln!(
            out,
            "\nHeat map (count of risks by likelihood, rows 5 to 1, and impact, columns 1 to 5):\n\n| L \\ I | 1 | 2 | 3 | 4 | 5 |\n|---|---|---|---|---|---|"
        );
        for l in (1..=5u8).rev() {
            let row: Vec<String> = (1..=5u8)
                .map(|i| a.risks.iter().filter(|r| r.likelihood == l && r.impact == i).count().to_string())
                .collect();
            let _ = writeln!(out, "| {l} | {} |", row.join(" | "));
        }
    }
    let _ = writeln!(out, "\n## Competencies");
    for d in &psf_core::catalog::DOMAINS {
        let _ = writeln!(out, "\n### {} {}\n", d.id, d.name);
        for v in a.verdicts.iter().filter(|v| v.domain == d.id) {
            let _ = writeln!(
                out,
                "- **{} {}** (PSF {}): **{}**. {}",
                v.id,
                v.title,
                v.statement,
                v.status.as_str(),
                v.summary
            );
            for e in &v.evidence {
                let label = if e.contradicts { "**contradicts the manifest**" } else { "evidence" };
                let _ = writeln!(out, "  - {label}: `{}`: {}{}", e.source, e.observation, cited(e));
            }
            for g in &v.gaps {
                let _ = writeln!(out, "  - to meet it: {g}");
            }
            if let Some(note) = v.suppression_note() {
                let _ = writeln!(out, "  - {note}");
            }
        }
    }
    let _ = writeln!(
        out,
        "\n## Evidence appendix\n\n| competency | kind | source | window | sha256 |\n|---|---|---|---|---|"
    );
    for v in &a.verdicts {
        for e in &v.evidence {
            let _ = writeln!(
                out,
                "| {} | {} | `{}` | {} | `{}` |",
                v.id,
                e.kind,
                md_escape(&e.source),
                e.window.as_deref().unwrap_or("-"),
                e.sha256
            );
        }
    }
    let _ = writeln!(out, "\n---\n{}", psf_core::catalog::ATTRIBUTION);
    out
}

/// The JSON report (schema [`crate::SCHEMA_VERSION`]).
pub fn json(a: &Assessment) -> String {
    serde_json::to_string_pretty(a).map_or_else(|e| format!("{{\"error\": \"{e}\"}}"), |s| s + "\n")
}

/// Where a verdict points in the manifest: the file and line of its first manifest
/// evidence (`psf.yaml:42 /decision_points/0`), or the manifest's first line.
fn location(a: &Assessment, v: &crate::Verdict) -> (String, u64) {
    v.evidence
        .iter()
        .filter(|e| e.kind == "manifest")
        .find_map(|e| {
            let place = e.source.split_whitespace().next()?;
            let (file, line) = place.rsplit_once(':')?;
            Some((file.to_string(), line.parse().ok()?))
        })
        .unwrap_or_else(|| (a.manifest.file.clone(), 1))
}

/// SARIF 2.1.0, for code-scanning views: one rule per competency, one result per
/// competency not met (`missing` → error, `partial` → warning, `manual` → note), located
/// at the manifest line its evidence cites.
pub fn sarif(a: &Assessment) -> String {
    let rules: Vec<serde_json::Value> = psf_core::catalog::COMPETENCIES
        .iter()
        .map(|c| {
            serde_json::json!({
                "id": c.id,
                "name": c.title,
                "shortDescription": {"text": c.title},
                "fullDescription": {"text": c.requirement},
                "help": {"text": format!("{} (PSF {})", c.requirement, c.statement)},
                "properties": {"domain": c.domain, "psf_statement": c.statement},
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = a
        .verdicts
        .iter()
        .filter_map(|v| {
            let level = match v.status {
                Status::Missing => "error",
                Status::Partial => "warning",
                Status::Manual => "note",
                _ => return None,
            };
            let (file, line) = location(a, v);
            let mut text = format!("{} {} is {}: {}", v.id, v.title, v.status.as_str(), v.summary);
            for g in &v.gaps {
                let _ = write!(text, "\nTo meet it: {g}");
            }
            let mut result = serde_json::json!({
                "ruleId": v.id,
                "level": level,
                "message": {"text": text},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": file},
                    "region": {"startLine": line.max(1)},
                }}],
                "properties": {"status": v.status.as_str()},
            });
            // SARIF's own field, so code-scanning views show the result as suppressed
            // rather than drop it.
            if let (true, Some(s)) = (v.is_suppressed(), &v.suppression) {
                result["suppressions"] = serde_json::json!([{
                    "kind": "external",
                    "status": "accepted",
                    "justification": format!("{} (until {})", s.reason, s.expires),
                }]);
            }
            Some(result)
        })
        .collect();
    let log = serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "psf",
                "version": a.psf_version,
                "informationUri": env!("CARGO_PKG_REPOSITORY"),
                "rules": rules,
            }},
            "automationDetails": {"id": format!("psf-assess/{}/{}", a.system, a.date)},
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&log).map_or_else(|e| format!("{{\"error\": \"{e}\"}}"), |s| s + "\n")
}

/// Escapes text for XML and HTML content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 has no place for other control characters.
            c if c.is_control() && !matches!(c, '\n' | '\t' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML, for CI test views: a suite per domain, a test case per competency; missing
/// and partial ones fail, manual, not-applicable and suppressed ones are skipped.
pub fn junit(a: &Assessment) -> String {
    let failing = |v: &crate::Verdict| matches!(v.status, Status::Missing | Status::Partial) && !v.is_suppressed();
    let skipped = |v: &crate::Verdict| matches!(v.status, Status::Manual | Status::NotApplicable) || v.is_suppressed();
    let total_failures = a.verdicts.iter().filter(|v| failing(v)).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"psf assess: {}\" tests=\"{}\" failures=\"{total_failures}\">",
        xml_escape(&a.system),
        a.verdicts.len()
    );
    for d in &psf_core::catalog::DOMAINS {
        let vs: Vec<&crate::Verdict> = a.verdicts.iter().filter(|v| v.domain == d.id).collect();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{} {}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">",
            d.id,
            xml_escape(d.name),
            vs.len(),
            vs.iter().filter(|v| failing(v)).count(),
            vs.iter().filter(|v| skipped(v)).count()
        );
        for v in vs {
            let name = xml_escape(&format!("{} {}", v.id, v.title));
            let _ = write!(out, "    <testcase classname=\"psf.{}\" name=\"{name}\"", d.id);
            if failing(v) {
                let mut body = v.summary.clone();
                for g in &v.gaps {
                    let _ = write!(body, "\nTo meet it: {g}");
                }
                let _ = writeln!(
                    out,
                    ">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>",
                    v.status.as_str(),
                    xml_escape(&v.summary),
                    xml_escape(&body)
                );
            } else if skipped(v) {
                let message = v.suppression_note().filter(|_| v.is_suppressed()).unwrap_or_else(|| v.summary.clone());
                let _ = writeln!(out, ">\n      <skipped message=\"{}\"/>\n    </testcase>", xml_escape(&message));
            } else {
                let _ = writeln!(out, "/>");
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// The records an evidence item cites, as a report shows them: ` (records: r1, r2, … of 120)`.
pub(crate) fn cited(e: &crate::Evidence) -> String {
    match &e.records {
        Some(r) if !r.ids.is_empty() => {
            let more = if r.count > r.ids.len() as u64 { format!(", … ({} in all)", r.count) } else { String::new() };
            format!(" (records: {}{more})", r.ids.join(", "))
        }
        _ => String::new(),
    }
}
