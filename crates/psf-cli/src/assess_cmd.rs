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

fn parse_window(s: &str) -> Result<u32, String> {
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

/// `psf assess`.
pub fn run(args: &AssessArgs) -> io::Result<ExitCode> {
    let text = match read_manifest(&args.manifest) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let today = args.today.unwrap_or_else(crate::today);
    let file = args.manifest.display().to_string();
    let parsed = match ParsedManifest::new(&file, &text, today) {
        Ok(p) => p,
        Err(diagnostics) => {
            for d in &diagnostics {
                eprint!("{}", d.render(&file, &text));
            }
            return fail(&format!(
                "{file}: cannot assess a manifest with errors ({}); `psf check {file}` shows them",
                diagnostics.len()
            ));
        }
    };
    let runtime = match &args.store {
        None => None,
        Some(url) => match read_runtime(url, today, args.since) {
            Ok(r) => Some(r),
            Err(e) => return fail(&format!("cannot read the store {url}: {e}")),
        },
    };
    let key = match &args.sign {
        None => None,
        Some(path) => {
            let loaded = std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|t| attest::SigningKey::from_text(&t).map_err(|e| e.to_string()));
            match loaded {
                Ok(k) => Some(k),
                Err(e) => return fail(&format!("{}: {e}", path.display())),
            }
        }
    };
    let options = Options { today, window_days: args.since };
    let mut assessment = psf_assess::assess(&parsed.input(), runtime.as_ref(), &options);
    let previous = match (&args.previous, &args.out) {
        (Some(path), _) => Some((path.clone(), true)),
        (None, Some(dir)) if dir.join("report.json").is_file() => Some((dir.join("report.json"), false)),
        _ => None,
    };
    if let Some((path, named)) = previous {
        let compared = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|e| format!("not JSON: {e}")))
            .and_then(|v| assessment.compare_with(&v));
        match compared {
            Ok(()) => {}
            // A report the user named must be readable; one merely found in `--out` is
            // only a convenience.
            Err(e) if named => return fail(&format!("{}: {e}", path.display())),
            Err(e) => eprintln!("psf: not comparing with {}: {e}", path.display()),
        }
    }
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
    let failing = matches!((assessment.worst(), threshold), (Some(w), Some(t)) if w >= t);
    Ok(if failing && !args.soft_fail { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn read_runtime(url: &str, today: jiff::civil::Date, days: u32) -> Result<psf_assess::Runtime, String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let store = psf_store::Store::open(url).await.map_err(|e| e.to_string())?;
        // The window ends at the end of `today` (UTC), so `--today` reproduces a report.
        let end = today
            .tomorrow()
            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC))
            .map_err(|e| e.to_string())?
            .timestamp()
            .as_millisecond();
        let r = psf_assess::runtime::gather(&store, today, days, end).await.map_err(|e| e.to_string());
        store.close().await;
        r
    })
}

fn write_reports(dir: &Path, a: &psf_assess::Assessment, manifest: &psf_core::Manifest) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.md"), report::markdown(a))?;
    std::fs::write(dir.join("report.html"), psf_assess::html::html(a, manifest))?;
    std::fs::write(dir.join("report.json"), report::json(a))?;
    std::fs::write(dir.join("report.sarif"), report::sarif(a))?;
    std::fs::write(dir.join("report.junit.xml"), report::junit(a))?;
    std::fs::write(dir.join("report.oscal.json"), oscal_text(a))?;
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

/// `psf verify`: checks an attestation's signature, and that it is about `manifest`.
pub fn verify(attestation: &Path, key: &Path, manifest: Option<&Path>) -> io::Result<ExitCode> {
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
    let (name, digest) = verified.subject().unwrap_or_default();
    let p = &verified.statement["predicate"];
    writeln!(out, "verified: signed by key {}", verified.key_id)?;
    writeln!(out, "system    {}", p["system"].as_str().unwrap_or_default())?;
    writeln!(out, "date      {}", p["date"].as_str().unwrap_or_default())?;
    writeln!(out, "manifest  {name} (sha256 {digest})")?;
    writeln!(out, "counts    {}", p["counts"])?;
    if let Some(path) = manifest {
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
    Ok(ExitCode::SUCCESS)
}
