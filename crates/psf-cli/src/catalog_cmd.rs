//! `psf catalog`.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::process::ExitCode;

use psf_core::catalog::{self, ATTRIBUTION, COMPETENCIES, Competency, DOMAINS, Domain, PSF_VERSION};
use serde::Serialize;

use crate::CatalogFormat;

#[derive(Serialize)]
struct DomainOut<'a> {
    #[serde(flatten)]
    domain: &'a Domain,
    competencies: Vec<&'a Competency>,
}

pub(crate) fn run(format: CatalogFormat, domain: Option<&str>) -> io::Result<ExitCode> {
    let domains: Vec<&Domain> = match domain {
        None => DOMAINS.iter().collect(),
        Some(id) => match catalog::domain(id) {
            Some(d) => vec![d],
            None => {
                let ids: Vec<&str> = DOMAINS.iter().map(|d| d.id).collect();
                eprintln!("psf: no PSF domain `{id}`\n  help: use one of {}", ids.join(", "));
                return Ok(ExitCode::from(2));
            }
        },
    };
    let text = match format {
        CatalogFormat::Oscal => {
            let mut doc = psf_assess::oscal::catalog(&format!("{}T00:00:00Z", crate::today()));
            if let Some(groups) = doc.pointer_mut("/catalog/groups").and_then(serde_json::Value::as_array_mut) {
                groups.retain(|g| domains.iter().any(|d| g["id"] == d.id.to_lowercase()));
            }
            serde_json::to_string_pretty(&doc).map_err(io::Error::other)? + "\n"
        }
        CatalogFormat::Table => table(&domains),
        CatalogFormat::Markdown => markdown(&domains),
        CatalogFormat::Json => {
            let out: Vec<DomainOut> = domains
                .iter()
                .map(|d| DomainOut { domain: d, competencies: catalog::competencies_of(d.id).collect() })
                .collect();
            let doc = serde_json::json!({
                "framework": "Production Safety Framework",
                "version": PSF_VERSION,
                "attribution": ATTRIBUTION,
                "competency_count": out.iter().map(|d| d.competencies.len()).sum::<usize>(),
                "domains": out,
            });
            match serde_json::to_string_pretty(&doc) {
                Ok(s) => s + "\n",
                Err(e) => {
                    eprintln!("psf: cannot write JSON: {e}");
                    return Ok(ExitCode::from(2));
                }
            }
        }
    };
    io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn kinds(c: &Competency) -> String {
    let mut kinds: Vec<&str> = c.evidence.iter().map(|e| e.kind.as_str()).collect();
    kinds.dedup();
    kinds.join(", ")
}

fn table(domains: &[&Domain]) -> String {
    let mut out = String::new();
    for d in domains {
        let _ = writeln!(out, "{} {}. {} — {}", d.id, d.number, d.name, d.aim);
        for c in catalog::competencies_of(d.id) {
            let _ = writeln!(out, "  {:<5} {:<48} {:<13} {}", c.id, c.title, c.enforcement.as_str(), kinds(c));
        }
        out.push('\n');
    }
    let shown: usize = domains.iter().map(|d| catalog::competencies_of(d.id).count()).sum();
    let _ = writeln!(out, "{shown} of {} competencies. {ATTRIBUTION}", COMPETENCIES.len());
    out
}

fn markdown(domains: &[&Domain]) -> String {
    let mut out = format!("# Production Safety Framework v{PSF_VERSION}\n\n");
    for d in domains {
        let _ = writeln!(out, "## {} — {} (domain {})\n\n{}\n", d.id, d.name, d.number, d.aim);
        out.push_str("| id | competency | requirement | PSF | enforced | evidence |\n|---|---|---|---|---|---|\n");
        for c in catalog::competencies_of(d.id) {
            let evidence: Vec<String> =
                c.evidence.iter().map(|e| format!("{}: `{}`", e.kind.as_str(), e.source.replace('|', "\\|"))).collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                c.id,
                c.title,
                c.requirement,
                c.statement,
                c.enforcement.as_str(),
                evidence.join("<br>")
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "---\n\n{ATTRIBUTION}");
    out
}
