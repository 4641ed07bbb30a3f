//! `psf export` (EA-4): one bundle for auditors and regulators — the manifest and its
//! schema, the assessment in every format, the evidence it cites, checksums, and a
//! signed attestation whose subjects are every file of the bundle.
//!
//! The bundle is a directory, or one `.tar.gz` file when `--out` ends so. Its bytes
//! depend only on the inputs and `--today` (sorted entries, fixed times and owners in
//! the archive), so two exports of the same evidence are the same file.

use std::collections::BTreeMap;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use psf_assess::attest;
use serde_json::{Value, json};

use crate::assess_cmd::{self, Inputs};

/// What `psf export` was asked.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The manifest.
    #[arg(long, default_value = "psf.yaml")]
    manifest: PathBuf,
    /// The gateway's store, for runtime evidence (`sqlite://psf.db`).
    #[arg(long)]
    store: Option<String>,
    /// The evaluation window: `30d`, `12w`.
    #[arg(long, default_value = "30d", value_parser = assess_cmd::parse_window)]
    since: u32,
    /// Assess as of this date; default today.
    #[arg(long, value_name = "DATE")]
    today: Option<jiff::civil::Date>,
    /// Sign the bundle with this private key (`psf keygen`): attestation.dsse.json.
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
    /// An earlier JSON report, for the change since.
    #[arg(long, value_name = "REPORT.json")]
    previous: Option<PathBuf>,
    /// A new directory, or a file ending in `.tar.gz`.
    #[arg(long, value_name = "DIR|FILE.tar.gz", required_unless_present = "package", conflicts_with = "package")]
    out: Option<PathBuf>,
    /// Instead of the evidence bundle, the workflow package: the manifest and its schema,
    /// the executive flow view (SVG and one HTML page), and integration documentation per
    /// decision point with working OpenAI SDK and curl examples. A new directory, or a
    /// file ending in `.tar.gz`.
    #[arg(long, value_name = "DIR|FILE.tar.gz")]
    package: Option<PathBuf>,
}

fn fail(m: &str) -> io::Result<ExitCode> {
    eprintln!("psf: {m}");
    Ok(ExitCode::from(2))
}

/// Refuses to write over anything: a tarball that exists, or a directory with files.
fn check_new(out: &Path) -> Result<(), String> {
    if out.exists() && (is_tarball(out) || std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(true)) {
        return Err(format!("{} already exists; export into a new directory or file", out.display()));
    }
    Ok(())
}

fn write_out(out: &Path, files: &BTreeMap<String, Vec<u8>>, day: jiff::civil::Date) -> io::Result<()> {
    if is_tarball(out) { write_tarball(out, files, day) } else { write_dir(out, files) }
}

/// `psf export`.
pub fn run(args: &ExportArgs) -> io::Result<ExitCode> {
    let today = args.today.unwrap_or_else(crate::today);
    let out = match (&args.package, &args.out) {
        (Some(package), _) => return package_run(args, package, today),
        (None, Some(out)) => out,
        (None, None) => {
            return fail(
                "give `--out DIR|FILE.tar.gz` for the evidence bundle, or `--package` for the workflow package",
            );
        }
    };
    if let Err(e) = check_new(out) {
        return fail(&e);
    }
    let inputs = Inputs {
        manifest: &args.manifest,
        store: args.store.as_deref(),
        since: args.since,
        today,
        sign: args.sign.as_deref(),
        previous: args.previous.as_deref().map(|p| (p.to_path_buf(), true)),
        keep_rows: true,
    };
    let assessed = match assess_cmd::prepare(&inputs) {
        Ok(a) => a,
        Err(e) => return fail(&e),
    };
    // The window's events, from the side records the assessment read.
    let events: Option<Vec<psf_store::Event>> = assessed.runtime.as_ref().map(|rt| {
        let window = rt.summary.since_ms..rt.summary.until_ms;
        rt.facts.events.iter().filter(|e| window.contains(&e.ts_ms)).cloned().collect()
    });
    let files = bundle(&assessed, &args.manifest, events.as_deref());
    let mut all = files.clone();
    if let Some(key) = &assessed.key {
        let subjects: Vec<(String, String)> =
            files.iter().map(|(name, bytes)| (name.clone(), attest::digest(bytes))).collect();
        all.insert(
            "attestation.dsse.json".into(),
            attest::sign_bundle(&assessed.assessment, key, &subjects).into_bytes(),
        );
    }
    if let Err(e) = write_out(out, &all, today) {
        return fail(&format!("cannot write {}: {e}", out.display()));
    }
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "exported {} files to {}", all.len(), out.display())?;
    writeln!(stdout, "{}", assessed.assessment.summary_line())?;
    if let Some(key) = &assessed.key {
        writeln!(
            stdout,
            "signed with key {}; check it with `psf verify attestation.dsse.json --key PUB --bundle DIR`",
            key.key_id()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `psf export --package`: made from the manifest alone, which must pass `psf check`.
fn package_run(args: &ExportArgs, out: &Path, today: jiff::civil::Date) -> io::Result<ExitCode> {
    if let Err(e) = check_new(out) {
        return fail(&e);
    }
    let text = match crate::read_manifest(&args.manifest) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let file = args.manifest.display().to_string();
    let checked = psf_core::check(&text, &psf_core::CheckOptions { today });
    let Some(manifest) = checked.manifest.as_ref().filter(|_| checked.is_valid()) else {
        for d in checked.diagnostics.iter().filter(|d| d.severity == psf_core::Severity::Error) {
            eprint!("{}", d.render(&file, &text));
        }
        return fail(&format!("{file}: a package is made from a valid manifest; `psf check {file}` shows what to fix"));
    };
    let name = args.manifest.file_name().map_or_else(|| "psf.yaml".into(), |n| n.to_string_lossy().to_string());
    let files = psf_assess::package::files(&name, &text, manifest);
    if let Err(e) = write_out(out, &files, today) {
        return fail(&format!("cannot write {}: {e}", out.display()));
    }
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "exported the workflow package ({} files) to {}", files.len(), out.display())?;
    writeln!(stdout, "flow.html is the one-page view; integration/ has a page and examples per decision point")?;
    Ok(ExitCode::SUCCESS)
}

fn is_tarball(path: &Path) -> bool {
    let name = path.to_string_lossy();
    name.ends_with(".tar.gz") || name.ends_with(".tgz")
}

/// The bundle's files by path, attestation aside.
fn bundle(
    a: &assess_cmd::Assessed,
    manifest_path: &Path,
    events: Option<&[psf_store::Event]>,
) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let manifest_name =
        manifest_path.file_name().map_or_else(|| "psf.yaml".into(), |n| n.to_string_lossy().to_string());
    files.insert(format!("manifest/{manifest_name}"), a.text.as_bytes().to_vec());
    files.insert("manifest/psf.schema.json".into(), pretty(&psf_core::Manifest::json_schema()));
    for (name, text) in assess_cmd::reports(&a.assessment, a.parsed.manifest()) {
        files.insert(format!("assessment/{name}"), text.into_bytes());
    }
    files.insert("evidence/manifest-nodes.json".into(), pretty(&manifest_nodes(a)));
    if let Some(events) = events {
        let mut lines = String::new();
        for e in events {
            lines.push_str(&serde_json::to_string(e).unwrap_or_default());
            lines.push('\n');
        }
        files.insert("evidence/events.jsonl".into(), lines.into_bytes());
    }
    if let Some(r) = &a.assessment.runtime {
        files.insert("evidence/runtime.json".into(), pretty(&serde_json::to_value(r).unwrap_or_default()));
    }
    if let Some(rt) = &a.runtime {
        // What `psf verify --bundle` recomputes every verdict from: the window's audit
        // records as stored (redacted), and the side records the obligations read.
        files.insert("evidence/audit.jsonl".into(), a.rows.as_bytes().to_vec());
        files.insert("evidence/store.json".into(), pretty(&serde_json::to_value(&rt.facts).unwrap_or_default()));
    }
    files.insert("README.txt".into(), readme(a, events.is_some()).into_bytes());
    let sums: String = files.iter().map(|(name, bytes)| format!("{}  {name}\n", attest::digest(bytes))).collect();
    files.insert("SHA256SUMS".into(), sums.into_bytes());
    files
}

/// Every manifest node the assessment cites, with where it is and its SHA-256 (the
/// digest the report's evidence carries).
fn manifest_nodes(a: &assess_cmd::Assessed) -> Value {
    let input = a.parsed.input();
    let mut nodes = Vec::new();
    for v in &a.assessment.verdicts {
        for e in v.evidence.iter().filter(|e| e.kind == "manifest") {
            // `file:line /pointer`
            let pointer = e.source.rsplit_once(' ').map_or("", |(_, p)| p);
            let pointer = if pointer == "/" { "" } else { pointer };
            nodes.push(json!({
                "competency": v.id,
                "source": e.source,
                "sha256": e.sha256,
                "node": input.value.pointer(pointer).cloned().unwrap_or(Value::Null),
            }));
        }
    }
    json!({"manifest": a.assessment.manifest.file, "nodes": nodes})
}

fn readme(a: &assess_cmd::Assessed, with_events: bool) -> String {
    let x = &a.assessment;
    format!(
        "PSF evidence bundle: {}\n\
         Assessed {} by psf {} against PSF catalog v{}, evaluation window {} days.\n\
         {}\n\n\
         manifest/                 the manifest as assessed, and the JSON Schema it validates against\n\
         assessment/report.html    the report to read or print; .md, .json (psf.assessment/v1), .sarif,\n\
         \x20                         .junit.xml and .oscal.json (OSCAL 1.2.2 assessment results) say the same\n\
         evidence/manifest-nodes.json  every manifest node the verdicts cite, with its SHA-256\n\
         {}\
         SHA256SUMS                the SHA-256 of every file above (`sha256sum -c SHA256SUMS`)\n\
         attestation.dsse.json     when signed: an in-toto Statement over all these files, Ed25519 in DSSE;\n\
         \x20                         `psf verify attestation.dsse.json --key psf-signing.pub --bundle .`\n",
        x.system,
        x.date,
        x.psf_version,
        x.catalog_version,
        x.window_days,
        x.summary_line(),
        if with_events {
            "evidence/events.jsonl     the gateway's events in the window (alerts, anomalies, reviews, incidents)\n\
             evidence/runtime.json     the counts read from the gateway's records\n"
        } else {
            "(no store was given: the bundle holds no runtime evidence)\n"
        }
    )
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s.into_bytes()
}

fn write_dir(dir: &Path, files: &BTreeMap<String, Vec<u8>>) -> io::Result<()> {
    for (name, bytes) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, bytes)?;
    }
    Ok(())
}

/// A gzipped tar whose bytes depend only on the files and the day.
fn write_tarball(path: &Path, files: &BTreeMap<String, Vec<u8>>, day: jiff::civil::Date) -> io::Result<()> {
    let bytes = psf_assess::package::tar_gz(files, day)?;
    let mut file = std::fs::File::create(path)?;
    file.write_all(&bytes)?;
    file.sync_all()
}
