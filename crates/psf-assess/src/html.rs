//! The HTML report: one self-contained file (no scripts, no fonts, no requests), fit
//! to read on a screen and to print.
//!
//! Order: the summary line, then a plain-language executive summary with the top gaps
//! (owner and due date) and the change since the previous assessment; the 8x5 grid;
//! the CPAP rubric; the risk register with its heat map; the workflow as an SVG
//! diagram; every competency domain by domain with its evidence and remediation; the
//! evidence appendix.
//!
//! Due dates follow psf's remediation windows: a missing competency is due 30 days after
//! the assessment, a partial one 90 days after; a suppressed gap is due when its
//! suppression expires.

use std::fmt::Write as _;

use jiff::ToSpan as _;
use jiff::civil::Date;
use psf_core::Manifest;
use psf_core::manifest::Autonomy;

use crate::report::xml_escape as esc;
use crate::{Assessment, Status, Verdict};

/// Days after the assessment a missing competency is due.
pub const MISSING_DUE_DAYS: i32 = 30;
/// Days after the assessment a partial competency is due.
pub const PARTIAL_DUE_DAYS: i32 = 90;
/// How many gaps the executive summary lists.
const TOP_GAPS: usize = 10;

const STYLE: &str = "
:root { --ink: #1d1d1f; --muted: #555; --line: #d0d0d5; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: var(--ink);
       max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { font-size: 1.6rem; margin: 0 0 .2rem; }
h2 { font-size: 1.25rem; border-bottom: 2px solid var(--line); padding-bottom: .2rem; margin-top: 2rem; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
.summary { font-size: 1.2rem; font-weight: 600; margin: .3rem 0; }
.meta, .note { color: var(--muted); font-size: .9rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f5; }
code { font-size: .85em; word-break: break-all; }
table.heat td { text-align: center; width: 3rem; }
.h0 { background: #fff; } .h1 { background: #fde2c0; } .h2 { background: #f9b98a; } .h3 { background: #ef8a62; color: #fff; }
.verdict { border-left: 4px solid var(--line); padding: .2rem .8rem; margin: .8rem 0; break-inside: avoid; }
.verdict ul { margin: .2rem 0; padding-left: 1.2rem; }
td.due { white-space: nowrap; }
.better { color: #1b5e20; } .worse { color: #8b1a1a; }
svg { max-width: 100%; height: auto; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  h2 { break-after: avoid; } section { break-inside: auto; } table, .verdict, svg { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
@page { margin: 16mm; }
";

/// The colours of the statuses and the grid, shared with the console.
pub const STATUS_STYLE: &str = "
.s { display: inline-block; padding: 0 6px; border-radius: 4px; font-weight: 600; white-space: nowrap; }
.enforced { background: #1b5e20; color: #fff; }
.evidenced { background: #c8e6c9; color: #123d16; }
.partial { background: #ffe0a3; color: #4d3200; }
.missing { background: #f8c4c4; color: #6b0f0f; }
.manual { background: #e0e0e0; color: #2b2b2b; }
.not_applicable { background: #f3f3f3; color: #444; }
table.grid td { text-align: center; font-size: .85rem; }
";

/// The CSS class of a status (its JSON name).
fn class(s: Status) -> &'static str {
    match s {
        Status::Enforced => "enforced",
        Status::Evidenced => "evidenced",
        Status::Partial => "partial",
        Status::Missing => "missing",
        Status::Manual => "manual",
        Status::NotApplicable => "not_applicable",
    }
}

/// A status as a coloured label.
pub fn badge(s: Status) -> String {
    format!("<span class=\"s {}\">{}</span>", class(s), s.as_str())
}

/// When a gap is due: the suppression's expiry, or the remediation window.
pub fn due(a: &Assessment, v: &Verdict) -> Option<Date> {
    if let Some(s) = v.suppression.as_ref().filter(|_| v.is_suppressed()) {
        return Some(s.expires);
    }
    let days = match v.status {
        Status::Missing => MISSING_DUE_DAYS,
        Status::Partial => PARTIAL_DUE_DAYS,
        _ => return None,
    };
    a.date.checked_add(days.days()).ok()
}

/// The report as one HTML document. `manifest` is the one assessed, for the workflow
/// diagram.
pub fn html(a: &Assessment, manifest: &Manifest) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = format!("PSF assessment: {}", a.system);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}{STATUS_STYLE}</style>\n</head>\n<body>\n<header>\n<h1>{}</h1>\n\
         <p class=\"summary\">{}</p>\n<p class=\"meta\">Assessed {} from <code>{}</code> (sha256 <code>{}</code>); \
         PSF catalog v{}; psf {}; evaluation window {} days. Accountable owner: {}.</p>\n</header>\n",
        esc(&title),
        esc(&title),
        esc(&a.summary_line()),
        a.date,
        esc(&a.manifest.file),
        esc(&a.manifest.sha256),
        esc(a.catalog_version),
        esc(a.psf_version),
        a.window_days,
        esc(&a.owner)
    );
    executive_summary(&mut out, a);
    grid(&mut out, a, &|id| format!("#{id}"));
    rubric(&mut out, a);
    risks(&mut out, a);
    out.push_str("<section id=\"workflow\">\n<h2>Workflow</h2>\n");
    out.push_str(
        "<p class=\"note\">Who calls what: applications, the decision points they reach (blue: advisory, amber: \
         supervised, red: autonomous), the model each uses and its fallbacks in order (dashed), and where a person \
         reviews.</p>\n",
    );
    out.push_str(&workflow_svg(manifest));
    out.push_str("</section>\n");
    domains(&mut out, a);
    appendix(&mut out, a);
    let _ = write!(
        out,
        "<footer class=\"note\"><p>Written by psf {} from the evidence listed above; verdicts never count \
         <em>manual</em> as met.</p></footer>\n</body>\n</html>\n",
        esc(a.psf_version)
    );
    out
}

fn executive_summary(out: &mut String, a: &Assessment) {
    let c = &a.counts;
    let met = c.enforced + c.evidenced + c.not_applicable;
    let _ = write!(
        out,
        "<section id=\"summary\">\n<h2>Executive summary</h2>\n<p>{met} of the {} competencies are met: {} \
         enforced by the gateway with records to show it, {} evidenced by documentation that passes its checks, \
         and {} declared not applicable. {} missing and {} only partly met. {} a person to check, \
         as psf has no automated test for {}.</p>\n",
        a.verdicts.len(),
        c.enforced,
        c.evidenced,
        c.not_applicable,
        match c.missing {
            1 => "One is".to_string(),
            n => format!("{n} are"),
        },
        c.partial,
        if c.manual == 1 { "1 needs".to_string() } else { format!("{} need", c.manual) },
        if c.manual == 1 { "it" } else { "them" }
    );
    match &a.runtime {
        Some(r) => {
            let _ = writeln!(
                out,
                "<p>In the window {} to {}, the gateway handled {} requests from {} keys on {} days; {} audit \
                 records were scanned for personal data.</p>",
                r.from, r.to, r.requests, r.distinct_keys, r.active_days, r.pii_sample.records
            );
        }
        None => out.push_str(
            "<p>No gateway records were read, so no competency can be shown <em>enforced</em>; \
             run <code>psf assess --store</code> against the gateway's store.</p>\n",
        ),
    }
    let gaps: Vec<&Verdict> = a
        .verdicts
        .iter()
        .filter(|v| v.status == Status::Missing)
        .chain(a.verdicts.iter().filter(|v| v.status == Status::Partial))
        .take(TOP_GAPS)
        .collect();
    if gaps.is_empty() {
        out.push_str("<p>No competency is missing or partly met.</p>\n");
    } else {
        let _ = writeln!(
            out,
            "<h3>Top gaps</h3>\n<table>\n<thead><tr><th scope=\"col\">Competency</th><th scope=\"col\">Status</th>\
             <th scope=\"col\">What would meet it</th><th scope=\"col\">Owner</th><th scope=\"col\">Due</th></tr></thead>\n<tbody>"
        );
        for v in gaps {
            let mut what = v.gaps.first().map(|g| esc(g)).unwrap_or_else(|| esc(&v.summary));
            if let Some(note) = v.suppression_note() {
                let _ = write!(what, "<br><span class=\"note\">{}</span>", esc(&note));
            }
            let _ = writeln!(
                out,
                "<tr><td><a href=\"#{}\">{} {}</a></td><td>{}</td><td>{what}</td><td>{}</td><td class=\"due\">{}</td></tr>",
                v.id,
                v.id,
                esc(v.title),
                badge(v.status),
                esc(&a.owner),
                due(a, v).map(|d| d.to_string()).unwrap_or_default()
            );
        }
        out.push_str("</tbody>\n</table>\n");
        let _ = writeln!(
            out,
            "<p class=\"note\">Due dates: missing competencies {MISSING_DUE_DAYS} days after the assessment, partial ones \
             {PARTIAL_DUE_DAYS} days after; a suppressed gap when its suppression expires.</p>"
        );
    }
    out.push_str("<h3>Change since the previous assessment</h3>\n");
    match &a.since_previous {
        None => out.push_str("<p>No earlier assessment was given to compare with.</p>\n"),
        Some(c) if c.changes.is_empty() => {
            let _ = writeln!(out, "<p>Since {}: no competency changed status.</p>", c.previous_date);
        }
        Some(c) => {
            let _ = writeln!(out, "<p>Since {}:</p>\n<ul>", c.previous_date);
            for x in &c.changes {
                let (css, word) = if x.is_improvement() { ("better", "better") } else { ("worse", "worse") };
                let _ = writeln!(
                    out,
                    "<li class=\"{css}\">{} {}: {} → {} ({word})</li>",
                    x.id,
                    esc(a.verdicts.iter().find(|v| v.id == x.id).map_or("", |v| v.title)),
                    esc(&x.from),
                    x.to.as_str()
                );
            }
            out.push_str("</ul>\n");
        }
    }
    out.push_str("</section>\n");
}

/// The 8x5 grid: a row per domain, a cell per competency coloured by status, each
/// linking to `href(id)` (an anchor in the report, a page in the console).
pub fn grid(out: &mut String, a: &Assessment, href: &dyn Fn(&str) -> String) {
    out.push_str(
        "<section id=\"grid\">\n<h2>At a glance</h2>\n<table class=\"grid\">\n<thead><tr><th scope=\"col\">Domain</th>\
         <th scope=\"col\">1</th><th scope=\"col\">2</th><th scope=\"col\">3</th><th scope=\"col\">4</th>\
         <th scope=\"col\">5</th></tr></thead>\n<tbody>\n",
    );
    for d in &psf_core::catalog::DOMAINS {
        let _ = write!(out, "<tr><th scope=\"row\">{} {}</th>", d.id, esc(d.name));
        for v in a.verdicts.iter().filter(|v| v.domain == d.id) {
            let _ = write!(
                out,
                "<td class=\"{}\" title=\"{}\"><a href=\"{}\" style=\"color:inherit\">{}<br>{}</a></td>",
                class(v.status),
                esc(&format!("{} {}: {}", v.id, v.title, v.summary)),
                esc(&href(v.id)),
                v.id,
                v.status.as_str()
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

/// The CPAP rubric: each dimension's level, why, and what the next level needs.
pub fn rubric(out: &mut String, a: &Assessment) {
    out.push_str(
        "<section id=\"rubric\">\n<h2>CPAP rubric</h2>\n<table>\n<thead><tr><th scope=\"col\">Dimension</th>\
         <th scope=\"col\">Level</th><th scope=\"col\">Why</th><th scope=\"col\">The next level needs</th></tr></thead>\n<tbody>\n",
    );
    for d in &a.rubric {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}/4 {}</td><td>{}</td><td>{}</td></tr>",
            esc(d.name),
            d.level.0,
            esc(d.level.name()),
            esc(&d.reason),
            esc(&d.next)
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn risks(out: &mut String, a: &Assessment) {
    out.push_str("<section id=\"risks\">\n<h2>Risk register</h2>\n");
    if a.risks.is_empty() {
        out.push_str("<p>The manifest lists no risks.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<table>\n<thead><tr><th scope=\"col\">Risk</th><th scope=\"col\">Likelihood × impact</th>\
         <th scope=\"col\">Band</th><th scope=\"col\">AI-specific</th><th scope=\"col\">Mitigated by</th>\
         <th scope=\"col\">Mitigations not met</th></tr></thead>\n<tbody>\n",
    );
    for r in &a.risks {
        let _ = writeln!(
            out,
            "<tr><td>{} {}</td><td>{} × {} = {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.id),
            esc(&r.title),
            r.likelihood,
            r.impact,
            r.score,
            esc(r.band),
            if r.ai_specific { "yes" } else { "no" },
            esc(&r.mitigations.join(", ")),
            esc(&r.unmet_mitigations.join(", "))
        );
    }
    out.push_str(
        "</tbody>\n</table>\n<h3>Heat map</h3>\n<table class=\"heat\" aria-label=\"Risks by likelihood and impact\">\n",
    );
    out.push_str("<thead><tr><th scope=\"col\">Likelihood \\ impact</th>");
    for i in 1..=5 {
        let _ = write!(out, "<th scope=\"col\">{i}</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for l in (1..=5u8).rev() {
        let _ = write!(out, "<tr><th scope=\"row\">{l}</th>");
        for i in 1..=5u8 {
            let n = a.risks.iter().filter(|r| r.likelihood == l && r.impact == i).count();
            // Shade by the cell's score band, not by its count: a single risk at 5 × 5 is
            // the one to see.
            let band = match l * i {
                0..=4 => 0,
                5..=9 => 1,
                10..=14 => 2,
                _ => 3,
            };
            let _ = write!(out, "<td class=\"h{band}\">{}</td>", if n == 0 { String::new() } else { n.to_string() });
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn domains(out: &mut String, a: &Assessment) {
    out.push_str("<section id=\"domains\">\n<h2>Domain by domain</h2>\n");
    for d in &psf_core::catalog::DOMAINS {
        let _ = writeln!(out, "<h3>{} {}</h3>", d.id, esc(d.name));
        for v in a.verdicts.iter().filter(|v| v.domain == d.id) {
            let _ = write!(
                out,
                "<div class=\"verdict\" id=\"{}\">\n<p><strong>{} {}</strong> (PSF {}) {}</p>\n<p>{}</p>\n",
                v.id,
                v.id,
                esc(v.title),
                esc(v.statement),
                badge(v.status),
                esc(&v.summary)
            );
            if !v.evidence.is_empty() {
                out.push_str("<p>Evidence:</p>\n<ul>\n");
                for e in &v.evidence {
                    let mark = if e.contradicts { "<strong>contradicts the manifest:</strong> " } else { "" };
                    let _ = writeln!(
                        out,
                        "<li>{mark}<code>{}</code>: {}{}</li>",
                        esc(&e.source),
                        esc(&e.observation),
                        esc(&crate::report::cited(e))
                    );
                }
                out.push_str("</ul>\n");
            }
            if !v.gaps.is_empty() {
                out.push_str("<p>To meet it:</p>\n<ul>\n");
                for g in &v.gaps {
                    let _ = writeln!(out, "<li>{}</li>", esc(g));
                }
                out.push_str("</ul>\n");
            }
            if let Some(note) = v.suppression_note() {
                let _ = writeln!(out, "<p class=\"note\">{}</p>", esc(&note));
            }
            out.push_str("</div>\n");
        }
    }
    out.push_str("</section>\n");
}

fn appendix(out: &mut String, a: &Assessment) {
    out.push_str(
        "<section id=\"appendix\">\n<h2>Evidence appendix</h2>\n<table>\n<thead><tr><th scope=\"col\">Competency</th>\
         <th scope=\"col\">Kind</th><th scope=\"col\">Source</th><th scope=\"col\">Window</th>\
         <th scope=\"col\">sha256</th></tr></thead>\n<tbody>\n",
    );
    for v in &a.verdicts {
        for e in &v.evidence {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td><code>{}</code></td></tr>",
                v.id,
                esc(e.kind),
                esc(&e.source),
                esc(e.window.as_deref().unwrap_or("")),
                esc(&e.sha256)
            );
        }
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

/// The workflow: one row per decision point — its applications on the left, the
/// decision point (filled by autonomy, with stakes and reviewers), then its model and
/// fallbacks in order, ending at the degraded response when there is one.
pub fn workflow_svg(m: &Manifest) -> String {
    const ROW: usize = 96;
    const BOX_W: usize = 190;
    const BOX_H: usize = 64;
    const GAP: usize = 40;
    let chains: Vec<Vec<&psf_core::manifest::Model>> = m.decision_points.iter().map(|dp| m.chain(&dp.model)).collect();
    let columns = 2 + chains.iter().map(Vec::len).max().unwrap_or(0) + 1;
    let width = 20 + columns * (BOX_W + GAP);
    let height = 40 + m.decision_points.len().max(1) * ROW;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-labelledby=\"wf-title\" viewBox=\"0 0 {width} {height}\" \
         width=\"{width}\" height=\"{height}\" font-family=\"system-ui, sans-serif\" font-size=\"12\">\n\
         <title id=\"wf-title\">Workflow of {}</title>\n\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" \
         orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#555\"/></marker></defs>\n",
        esc(&m.system.name)
    );
    let heads = ["Applications", "Decision point", "Model, then fallbacks"];
    for (i, h) in heads.iter().enumerate() {
        let _ = writeln!(svg, "<text x=\"{}\" y=\"20\" font-weight=\"600\">{h}</text>", 20 + i * (BOX_W + GAP));
    }
    let node = |svg: &mut String, col: usize, row: usize, fill: &str, lines: &[String], dashed: bool| {
        let (x, y) = (20 + col * (BOX_W + GAP), 36 + row * ROW);
        let dash = if dashed { " stroke-dasharray=\"5 3\"" } else { "" };
        let _ = writeln!(
            svg,
            "<rect x=\"{x}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"6\" fill=\"{fill}\" stroke=\"#555\"{dash}/>"
        );
        for (k, line) in lines.iter().enumerate() {
            let weight = if k == 0 { " font-weight=\"600\"" } else { "" };
            // Long ids are cut to fit the box; the full text is in the title.
            let shown: String =
                if line.chars().count() > 28 { line.chars().take(27).chain(['…']).collect() } else { line.clone() };
            let _ = writeln!(
                svg,
                "<text x=\"{}\" y=\"{}\"{weight}><title>{}</title>{}</text>",
                x + 8,
                y + 18 + k * 16,
                esc(line),
                esc(&shown)
            );
        }
    };
    let arrow = |svg: &mut String, from_col: usize, row: usize, label: &str, dashed: bool| {
        let x1 = 20 + from_col * (BOX_W + GAP) + BOX_W;
        let y = 36 + row * ROW + BOX_H / 2;
        let dash = if dashed { " stroke-dasharray=\"5 3\"" } else { "" };
        let _ = writeln!(
            svg,
            "<line x1=\"{x1}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#555\"{dash} marker-end=\"url(#arrow)\"/>",
            x1 + GAP
        );
        if !label.is_empty() {
            let _ =
                writeln!(svg, "<text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#555\">{label}</text>", x1 + 2, y - 14);
        }
    };
    for (row, (dp, chain)) in m.decision_points.iter().zip(&chains).enumerate() {
        let apps: Vec<String> = m.apps.iter().filter(|a| a.decision_point == dp.id).map(|a| a.id.clone()).collect();
        let app_lines = if apps.is_empty() { vec!["(any key)".to_string()] } else { apps };
        node(&mut svg, 0, row, "#f2f2f5", &app_lines, false);
        arrow(&mut svg, 0, row, "", false);
        let (fill, autonomy) = match dp.autonomy {
            Autonomy::Advisory => ("#dbe9f7", "advisory"),
            Autonomy::Supervised => ("#ffe0a3", "supervised"),
            Autonomy::Autonomous => ("#f8c4c4", "autonomous"),
        };
        let review = match (dp.reviewers.len(), dp.reviewers.first()) {
            (1, Some(p)) => format!("reviewer: {}", p.name),
            (0, _) => "no reviewers".to_string(),
            (n, _) => format!("{n} reviewers"),
        };
        let stakes = serde_json::to_value(dp.stakes).ok().and_then(|v| v.as_str().map(str::to_string));
        let dp_lines = [dp.id.clone(), format!("{autonomy}, {} stakes", stakes.unwrap_or_default()), review];
        node(&mut svg, 1, row, fill, &dp_lines, false);
        for (k, model) in chain.iter().enumerate() {
            arrow(&mut svg, 1 + k, row, if k == 0 { "" } else { "fallback" }, k > 0);
            let lines = [model.id.clone(), format!("provider {}", model.provider), model.model.clone()];
            node(&mut svg, 2 + k, row, "#fff", &lines, k > 0);
        }
        if dp.degraded_response.is_some() {
            arrow(&mut svg, 1 + chain.len(), row, "all fail", true);
            node(&mut svg, 2 + chain.len(), row, "#f3f3f3", &["degraded response".to_string()], true);
        }
    }
    svg.push_str("</svg>\n");
    svg
}
