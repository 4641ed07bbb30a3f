//! `psf assess`: the manifest and the gateway's records in, verdicts and reports out.

use std::io::{self, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use psf_assess::{FindingSeverity, Options, ParsedManifest, attest, report};

use crate::read_manifest;

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The summary for a terminal.
    Terminal,
    /// Markdown.
    Markdown,
    /// JSON (schema `psf.assessment/v1`).
    Json,
    /// SARIF 2.1.0, for code-scanning views.
    Sarif,
    /// JUnit XML, for CI test views.
    Junit,
    /// OSCAL 1.2.2 assessment results.
    Oscal,
    /// One self-contained HTML page, fit to print.
    Html,
}

/// When `psf assess` exits 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Any partial or missing competency.
    Medium,
    /// Any missing competency (the default).
    High,
    /// Never.
    None,
}

/// What `psf assess` was asked.
#[derive(Debug, clap::Args)]
pub struct AssessArgs {
    /// The manifest.
    #[arg(long, default_value = "psf.yaml")]
    manifest: PathBuf,
    /// The gateway's store, for runtime evidence (`sqlite://psf.db`); without it nothing
    /// can be `enforced`.
    #[arg(long)]
    store: Option<String>,
    /// The evaluation window: `30d`, `12w` (days or weeks).
    #[arg(long, default_value = "30d", value_parser = parse_window)]
    since: u32,
    /// The report printed on standard output.
    #[arg(long, value_enum, default_value_t = Format::Terminal)]
    format: Format,
    /// Also write report.md, report.html, report.json, report.sarif, report.junit.xml and
    /// report.oscal.json into this directory. A report.json already there is the
    /// previous assessment the reports compare with, unless `--previous` names one.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// An earlier JSON report (`--format json`) to show the change since.
    #[arg(long, value_name = "REPORT.json")]
    previous: Option<PathBuf>,
    /// Sign the assessment with this private key (`psf keygen`) and write
    /// attestation.dsse.json (an in-toto Statement in a DSSE envelope) into `--out`.
    #[arg(long, value_name = "KEY", requires = "out")]
    sign: Option<PathBuf>,
    /// Exit 1 when a finding is at least this severe.
    #[arg(long, value_enum, default_value_t = FailOn::High)]
    fail_on: FailOn,
    /// Report findings but exit 0 (for a first run in CI).
    #[arg(long)]
    soft_fail: bool,
    /// Assess as of this date (reproducible reports); default today. With a store, the
    /// window ends at the end of this day (UTC).
    #[arg(long, value_name = "DATE")]
    today: Option<jiff::civil::Date>,
}

pub(crate) fn parse_window(s: &str) -> Result<u32, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u32 = n.parse().map_err(|_| format!("`{s}` is not a window; write it as `30d` or `12w`"))?;
    let days = match unit {
        "d" | "" => n,
        "w" => n.saturating_mul(7),
        _ => return Err(format!("`{s}`: the unit must be `d` (days) or `w` (weeks)")),
    };
    if days == 0 || days > 3660 {
        return Err(format!("`{s}`: the window must be between 1 day and 10 years"));
    }
    Ok(days)
}

fn fail(message: &str) -> io::Result<ExitCode> {
    eprintln!("psf: {message}");
    Ok(ExitCode::from(2))
}

/// What `psf assess` and `psf export` both start from: the manifest checked, the store
/// read, the assessment made and set against an earlier report.
pub(crate) struct Assessed {
    pub parsed: ParsedManifest,
    /// The manifest file's bytes, as assessed.
    pub text: String,
    pub assessment: psf_assess::Assessment,
    pub key: Option<attest::SigningKey>,
    /// The runtime evidence, when a store was read.
    pub runtime: Option<psf_assess::Runtime>,
    /// Every audit record of the window as a JSON line, when [`Inputs::keep_rows`] asked.
    pub rows: String,
}

/// Where the inputs of an assessment are.
pub(crate) struct Inputs<'a> {
    pub manifest: &'a Path,
    pub store: Option<&'a str>,
    pub since: u32,
    pub today: jiff::civil::Date,
    pub sign: Option<&'a Path>,
    /// An earlier JSON report, and whether the user named it (then it must be readable).
    pub previous: Option<(PathBuf, bool)>,
    /// Keep every audit record read, for a bundle.
    pub keep_rows: bool,
}

/// Checks the manifest (printing its errors), reads the store, loads the signing key,
/// assesses, and compares with the earlier report; the error is the message to print.
pub(crate) fn prepare(i: &Inputs<'_>) -> Result<Assessed, String> {
    let text = read_manifest(i.manifest)?;
    let file = i.manifest.display().to_string();
    // A manifest with errors is still assessed (the competencies they bear on are not
    // met); only one that cannot be read as a manifest at all stops here.
    let parsed = match ParsedManifest::with_errors(&file, &text, i.today) {
        Ok(p) => p,
        Err(diagnostics) => {
            for d in &diagnostics {
                eprint!("{}", d.render(&file, &text));
            }
            return Err(format!(
                "{file}: cannot be read as a manifest ({} errors); `psf check {file}` shows them",
                diagnostics.len()
            ));
        }
    };
    for d in parsed.errors() {
        eprint!("{}", d.render(&file, &text));
    }
    if !parsed.errors().is_empty() {
        eprintln!(
            "psf: {file} has {} errors; the competencies they bear on are not met in the report",
            parsed.errors().len()
        );
    }
    let mut rows = String::new();
    let runtime = match i.store {
        None => None,
        Some(url) => {
            let mut keep = |row: &str| {
                if i.keep_rows {
                    rows.push_str(row);
                    rows.push('\n');
                }
            };
            Some(
                read_runtime_with(url, i.today, i.since, &mut keep)
                    .map_err(|e| format!("cannot read the store {url}: {e}"))?,
            )
        }
    };
    let key = match i.sign {
        None => None,
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|t| attest::SigningKey::from_text(&t).map_err(|e| e.to_string()))
                .map_err(|e| format!("{}: {e}", path.display()))?,
        ),
    };
    let options = Options { today: i.today, window_days: i.since };
    let mut assessment = psf_assess::assess(&parsed.input(), runtime.as_ref(), &options);
    if let Some((path, named)) = &i.previous {
        let compared = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|e| format!("not JSON: {e}")))
            .and_then(|v| assessment.compare_with(&v));
        match compared {
            Ok(()) => {}
            // A report the user named must be readable; one merely found in `--out` is
            // only a convenience.
            Err(e) if *named => return Err(format!("{}: {e}", path.display())),
            Err(e) => eprintln!("psf: not comparing with {}: {e}", path.display()),
        }
    }
    Ok(Assessed { parsed, text, assessment, key, runtime, rows })
}

/// The earlier report to compare with: the one named, or a report.json already in `dir`.
pub(crate) fn previous_report(named: Option<&Path>, dir: Option<&Path>) -> Option<(PathBuf, bool)> {
    match (named, dir) {
        (Some(path), _) => Some((path.to_path_buf(), true)),
        (None, Some(dir)) if dir.join("report.json").is_file() => Some((dir.join("report.json"), false)),
        _ => None,
    }
}

/// `psf assess`.
pub fn run(args: &AssessArgs) -> io::Result<ExitCode> {
    let inputs = Inputs {
        manifest: &args.manifest,
        store: args.store.as_deref(),
        since: args.since,
        today: args.today.unwrap_or_else(crate::today),
        sign: args.sign.as_deref(),
        previous: previous_report(args.previous.as_deref(), args.out.as_deref()),
        keep_rows: false,
    };
    let Assessed { parsed, assessment, key, .. } = match prepare(&inputs) {
        Ok(a) => a,
        Err(e) => return fail(&e),
    };
    if let Some(dir) = &args.out
        && let Err(e) = write_reports(dir, &assessment, parsed.manifest())
    {
        return fail(&format!("cannot write reports into {}: {e}", dir.display()));
    }
    if let (Some(dir), Some(key)) = (&args.out, &key) {
        let path = dir.join("attestation.dsse.json");
        if let Err(e) = std::fs::write(&path, attest::sign(&assessment, key)) {
            return fail(&format!("cannot write {}: {e}", path.display()));
        }
        eprintln!("psf: signed with key {} into {}", key.key_id(), path.display());
    }
    let text = match args.format {
        Format::Terminal => {
            report::terminal(&assessment, io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        }
        Format::Markdown => report::markdown(&assessment),
        Format::Json => report::json(&assessment),
        Format::Sarif => report::sarif(&assessment),
        Format::Junit => report::junit(&assessment),
        Format::Oscal => oscal_text(&assessment),
        Format::Html => psf_assess::html::html(&assessment, parsed.manifest()),
    };
    io::stdout().lock().write_all(text.as_bytes())?;
    let threshold = match args.fail_on {
        FailOn::Medium => Some(FindingSeverity::Medium),
        FailOn::High => Some(FindingSeverity::High),
        FailOn::None => None,
    };
    let failing =
        matches!((assessment.worst(), threshold), (Some(w), Some(t)) if w >= t) || !parsed.errors().is_empty();
    Ok(if failing && !args.soft_fail { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Reads the runtime evidence from a store, handing each audit record of the window to
/// `each` as its JSON line (`psf export` writes them into the bundle as they are read).
pub(crate) fn read_runtime_with(
    url: &str,
    today: jiff::civil::Date,
    days: u32,
    each: &mut dyn FnMut(&str),
) -> Result<psf_assess::Runtime, String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let store = psf_store::Store::open(url).await.map_err(|e| e.to_string())?;
        // A progress line on a terminal: a large store takes a while to read.
        let tty = io::stderr().is_terminal();
        let mut show = |p: psf_assess::runtime::Progress| {
            if tty {
                let count = if p.total > 0 { format!(" {}/{}", p.done, p.total) } else { String::new() };
                eprint!("\r\x1b[2Kpsf: reading the store: {}{count}", p.step);
            }
        };
        // The window ends at the end of `today` (UTC), so `--today` reproduces a report.
        let r = psf_assess::runtime::gather_with(&store, today, days, &mut show, each).await.map_err(|e| e.to_string());
        if tty {
            eprint!("\r\x1b[2K");
        }
        store.close().await;
        r
    })
}

/// Every report format, by file name.
pub(crate) fn reports(a: &psf_assess::Assessment, manifest: &psf_core::Manifest) -> Vec<(&'static str, String)> {
    vec![
        ("report.md", report::markdown(a)),
        ("report.html", psf_assess::html::html(a, manifest)),
        ("report.json", report::json(a)),
        ("report.sarif", report::sarif(a)),
        ("report.junit.xml", report::junit(a)),
        ("report.oscal.json", oscal_text(a)),
    ]
}

fn write_reports(dir: &Path, a: &psf_assess::Assessment, manifest: &psf_core::Manifest) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in reports(a, manifest) {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

fn oscal_text(a: &psf_assess::Assessment) -> String {
    let doc = psf_assess::oscal::assessment_results(a);
    serde_json::to_string_pretty(&doc).map_or_else(|e| format!("{{\"error\": \"{e}\"}}"), |s| s + "\n")
}

/// `psf keygen`: a new signing key pair for attestations.
pub fn keygen(dir: &Path, force: bool) -> io::Result<ExitCode> {
    let (private, public) = match attest::generate() {
        Ok(k) => k,
        Err(e) => return fail(&e.to_string()),
    };
    let (key_path, pub_path) = (dir.join("psf-signing.key"), dir.join("psf-signing.pub"));
    if !force && (key_path.exists() || pub_path.exists()) {
        return fail(&format!("{} already exists; pass --force to replace it", key_path.display()));
    }
    std::fs::create_dir_all(dir)?;
    write_private(&key_path, &private)?;
    std::fs::write(&pub_path, &public)?;
    let id = attest::SigningKey::from_text(&private).map(|k| k.key_id()).unwrap_or_default();
    writeln!(
        io::stdout().lock(),
        "key {id}\nprivate key {} (keep it secret)\npublic key  {} (give it to whoever verifies)",
        key_path.display(),
        pub_path.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> io::Result<()> {
    std::fs::write(path, text)
}

/// What `psf verify` checks besides the signature.
pub struct VerifyChecks<'a> {
    /// The assessment is about this manifest, byte for byte.
    pub manifest: Option<&'a Path>,
    /// Every file the attestation names is in this bundle directory, unchanged.
    pub bundle: Option<&'a Path>,
    /// The assessment is at most this many days old.
    pub max_age: Option<u32>,
}

/// The rest of `psf verify` for a knowledge-check certificate: who passed, when, with
/// which bank, and, with `--max-age`, whether the pass is still current.
fn verify_certificate(
    out: &mut impl io::Write,
    v: &attest::Verified,
    checks: &VerifyChecks<'_>,
) -> io::Result<ExitCode> {
    let p = &v.statement["predicate"];
    let date = p["date"].as_str().unwrap_or_default();
    writeln!(out, "verified: signed by key {}", v.key_id)?;
    writeln!(out, "knowledge-check certificate")?;
    writeln!(
        out,
        "person    {} <{}>",
        p["person"]["name"].as_str().unwrap_or_default(),
        p["person"]["email"].as_str().unwrap_or_default()
    )?;
    writeln!(out, "date      {date}")?;
    writeln!(
        out,
        "bank      {} (sha256 {})",
        p["bank_version"].as_str().unwrap_or_default(),
        v.subject().map(|s| s.1).unwrap_or_default()
    )?;
    writeln!(
        out,
        "score     {} of {} (pass mark {})",
        p["score"]["right"], p["score"]["total"], p["score"]["pass_mark"]
    )?;
    if p["score"]["passed"] != true {
        writeln!(out, "NOT VERIFIED: the certificate does not record a pass")?;
        return Ok(ExitCode::from(1));
    }
    if let Some(days) = checks.max_age {
        let age = date.parse::<jiff::civil::Date>().ok().map(|d| (crate::today() - d).get_days());
        match age {
            Some(age) if age <= i32::try_from(days).unwrap_or(i32::MAX) => {
                writeln!(out, "and it is {age} days old, within {days}")?
            }
            _ => {
                writeln!(out, "NOT VERIFIED: the pass of {date} is older than {days} days")?;
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `psf verify`: checks an attestation's signature, and what `checks` asks.
pub fn verify(attestation: &Path, key: &Path, checks: &VerifyChecks<'_>) -> io::Result<ExitCode> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let (envelope, public) = match (read(attestation), read(key)) {
        (Ok(e), Ok(k)) => (e, k),
        (Err(e), _) | (_, Err(e)) => return fail(&e),
    };
    let mut out = io::stdout().lock();
    let verified = match attest::verify(&envelope, &public) {
        Ok(v) => v,
        Err(e) => {
            writeln!(out, "NOT VERIFIED: {e}")?;
            return Ok(ExitCode::from(1));
        }
    };
    if verified.is_certificate() {
        return verify_certificate(&mut out, &verified, checks);
    }
    let (name, digest) = verified.subject().unwrap_or_default();
    let p = &verified.statement["predicate"];
    let date = p["date"].as_str().unwrap_or_default();
    writeln!(out, "verified: signed by key {}", verified.key_id)?;
    writeln!(out, "system    {}", p["system"].as_str().unwrap_or_default())?;
    writeln!(out, "date      {date}")?;
    writeln!(out, "manifest  {name} (sha256 {digest})")?;
    writeln!(out, "counts    {}", p["counts"])?;
    if let Some(days) = checks.max_age {
        let age = date.parse::<jiff::civil::Date>().ok().map(|d| (crate::today() - d).get_days());
        match age {
            Some(age) if age <= i32::try_from(days).unwrap_or(i32::MAX) => {
                writeln!(out, "and it is {age} days old, within {days}")?;
            }
            Some(age) => {
                writeln!(out, "NOT VERIFIED: the assessment is {age} days old, older than {days}")?;
                return Ok(ExitCode::from(1));
            }
            None => {
                writeln!(out, "NOT VERIFIED: the assessment's date {date:?} is not a date")?;
                return Ok(ExitCode::from(1));
            }
        }
    }
    if let Some(path) = checks.manifest {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => return fail(&format!("cannot read {}: {e}", path.display())),
        };
        let actual = attest::digest(&bytes);
        if actual != digest {
            writeln!(out, "NOT VERIFIED: {} is not the manifest that was assessed (sha256 {actual})", path.display())?;
            return Ok(ExitCode::from(1));
        }
        writeln!(out, "and {} is the manifest that was assessed", path.display())?;
    }
    if let Some(dir) = checks.bundle {
        // The first subject is the manifest where it was assessed; the bundle's files follow.
        let files = &verified.subjects()[1..];
        if files.is_empty() {
            writeln!(
                out,
                "NOT VERIFIED: the attestation names no bundle files (it was made by `psf assess`, not `psf export`)"
            )?;
            return Ok(ExitCode::from(1));
        }
        let mut bad = Vec::new();
        for (file, want) in files {
            match std::fs::read(dir.join(file)) {
                Ok(bytes) if attest::digest(&bytes) == *want => {}
                Ok(_) => bad.push(format!("{file} was changed")),
                Err(e) => bad.push(format!("{file}: {e}")),
            }
        }
        if !bad.is_empty() {
            writeln!(out, "NOT VERIFIED: {}", bad.join("; "))?;
            return Ok(ExitCode::from(1));
        }
        writeln!(out, "and all {} files of the bundle in {} are as signed", files.len(), dir.display())?;
        let manifest = files.iter().map(|(f, _)| *f).find(|f| f.starts_with("manifest/") && !f.ends_with(".json"));
        match recompute(dir, manifest.unwrap_or("manifest/psf.yaml")) {
            Ok(n) => {
                writeln!(out, "and all {n} verdicts, the rubric and the counts recompute from the bundle's records")?
            }
            Err(e) => {
                writeln!(out, "NOT VERIFIED: {e}")?;
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Assesses again from the bundle alone — its manifest, its audit records and side
/// records, on the report's day and window — and compares with the report it holds.
/// Returns how many verdicts matched; the error names those that did not.
fn recompute(dir: &Path, manifest_name: &str) -> Result<usize, String> {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).map_err(|e| format!("cannot read {name} in the bundle: {e}"))
    };
    let report: serde_json::Value = serde_json::from_str(&read("assessment/report.json")?)
        .map_err(|e| format!("assessment/report.json is not JSON: {e}"))?;
    let text = read(manifest_name)?;
    let file = report["manifest"]["file"].as_str().unwrap_or(manifest_name);
    let today: jiff::civil::Date =
        report["date"].as_str().and_then(|d| d.parse().ok()).ok_or("assessment/report.json has no `date`")?;
    let window_days = report["window_days"]
        .as_u64()
        .and_then(|d| u32::try_from(d).ok())
        .ok_or("assessment/report.json has no `window_days`")?;
    let parsed = ParsedManifest::with_errors(file, &text, today)
        .map_err(|d| format!("{manifest_name} in the bundle cannot be read as a manifest ({} errors)", d.len()))?;
    let runtime = if report["runtime"].is_null() {
        None
    } else {
        let facts = serde_json::from_str(&read("evidence/store.json")?)
            .map_err(|e| format!("evidence/store.json is not the store's side records: {e}"))?;
        Some(psf_assess::runtime::from_bundle(&read("evidence/audit.jsonl")?, facts, today, window_days)?)
    };
    let again = psf_assess::assess(&parsed.input(), runtime.as_ref(), &Options { today, window_days });
    let again = serde_json::to_value(&again).map_err(|e| e.to_string())?;
    let verdicts = |v: &serde_json::Value| v["verdicts"].as_array().cloned().unwrap_or_default();
    let (stated, recomputed) = (verdicts(&report), verdicts(&again));
    if stated.len() != recomputed.len() {
        return Err(format!("the report has {} verdicts, the recomputation {}", stated.len(), recomputed.len()));
    }
    let differ: Vec<String> = stated
        .iter()
        .zip(&recomputed)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| {
            let id = a["id"].as_str().unwrap_or("?");
            if a["status"] == b["status"] {
                format!("{id}'s evidence differs from what the bundle's records give (a cited record changed or went)")
            } else {
                format!(
                    "{id} is {} in the report but {} from the bundle's records",
                    a["status"].as_str().unwrap_or("?"),
                    b["status"].as_str().unwrap_or("?")
                )
            }
        })
        .collect();
    if !differ.is_empty() {
        return Err(format!("the bundle's records do not give the report's verdicts: {}", differ.join("; ")));
    }
    for field in ["counts", "rubric", "runtime"] {
        if report[field] != again[field] {
            return Err(format!("the report's `{field}` does not recompute from the bundle's records"));
        }
    }
    Ok(recomputed.len())
}
