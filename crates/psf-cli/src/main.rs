//! `psf`: the Production Safety Framework, implemented.
//!
//! The binary is thin: it parses arguments, reads files, and prints what the library
//! crates return. Exit codes follow the convention of checkers used in CI: 0 success,
//! 1 the input has problems, 2 the command could not do its job. Output goes through
//! `io::Write`, never `print!`, so a closed pipe (`psf check | head`) ends the program
//! quietly instead of panicking.
#![deny(clippy::print_stdout)]

mod assess_cmd;
mod catalog_cmd;
mod check_cmd;
mod drill_cmd;
mod eval_cmd;
mod exam_cmd;
mod export_cmd;
mod keys_cmd;
mod oversight_cmd;
mod scan_cmd;
mod scan_eval_cmd;
mod serve_cmd;
mod users_cmd;

use std::io::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "psf", version, about = "The Production Safety Framework, implemented: catalog, manifest checks, detectors, the gateway.", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the PSF catalog: 8 domains, 40 competencies, and what evidences each.
    Catalog {
        /// Output format.
        #[arg(long, value_enum, default_value_t = CatalogFormat::Table)]
        format: CatalogFormat,
        /// Only this domain (IG, OV, DG, MS, HO, OB, IR, EA).
        #[arg(long)]
        domain: Option<String>,
    },
    /// Validate deployment manifests; every problem is reported with file:line:col.
    Check {
        /// Manifest files to check.
        #[arg(default_value = "psf.yaml")]
        files: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
        /// Judge review dates against this date (YYYY-MM-DD) instead of today.
        #[arg(long, value_name = "DATE")]
        today: Option<jiff::civil::Date>,
    },
    /// Print the JSON Schema of psf.yaml, for editor completion and validation.
    Schema,
    /// What changed between two manifests, by area: oversight, data flow, models and
    /// providers (a change to oversight or scope calls for an oversight review, HO-5).
    Diff {
        /// The manifest before.
        old: PathBuf,
        /// The manifest after.
        new: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Scan text for PII, hidden characters and prompt injection; or evaluate the detectors.
    Scan {
        /// The text to scan, or `-` for standard input.
        #[arg(default_value = "-")]
        input: PathBuf,
        /// Print the text with PII replaced by labels such as [EMAIL].
        #[arg(long, conflicts_with_all = ["tokenize", "eval"])]
        redact: bool,
        /// Print the text with PII replaced by placeholders such as [EMAIL_1].
        #[arg(long, conflicts_with = "eval")]
        tokenize: bool,
        /// Evaluate a detector on labelled data at INPUT: precision, recall, F1, throughput.
        #[arg(long, value_enum)]
        eval: Option<scan_eval_cmd::EvalKind>,
        /// Check the JSON in INPUT against this JSON Schema file (exit 1 if it breaks it).
        #[arg(long, value_name = "SCHEMA", conflicts_with_all = ["redact", "tokenize", "eval"])]
        json_schema: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Run the gateway: an OpenAI-compatible endpoint that enforces the manifest on every call.
    Serve {
        /// The deployment manifest.
        #[arg(long, env = "PSF_MANIFEST", default_value = "psf.yaml")]
        manifest: PathBuf,
        /// Address to listen on.
        #[arg(long, env = "PSF_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Where audit records, keys, reviews and incidents are kept: sqlite://PATH, or
        /// postgres://USER@HOST:PORT/DB shared by every gateway of a cluster.
        #[arg(long, env = "PSF_STORE", hide_env_values = true, default_value = "sqlite://psf.db")]
        store: String,
        /// Redis for a cluster: request rate limits shared by every gateway, incident
        /// changes pushed at once (redis://HOST:PORT).
        #[arg(long, env = "PSF_REDIS", hide_env_values = true)]
        redis: Option<String>,
        /// Sign the console scorecard's attestation download with this private key
        /// (`psf keygen`).
        #[arg(long, value_name = "KEY")]
        sign: Option<PathBuf>,
        /// Mark the console's cookies Secure: set when psf is reached over TLS (a proxy
        /// in front of it).
        #[arg(long)]
        secure_cookies: bool,
    },
    /// Run the gateway in front of a mock model, with a demo key and example calls.
    Demo {
        /// Address for the gateway.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// The mock model's latency.
        #[arg(long, default_value_t = 50)]
        upstream_latency_ms: u64,
        /// Where audit records and keys are kept.
        #[arg(long, default_value = "sqlite://psf-demo.db")]
        store: String,
    },
    /// Run a mock model upstream (OpenAI and Anthropic protocols, streaming, faults).
    MockUpstream {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9009")]
        listen: String,
        /// Delay before each reply.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
    },
    /// Manage client API keys in the store.
    Keys {
        #[command(subcommand)]
        command: keys_cmd::KeysCommand,
        /// The manifest whose apps keys belong to.
        #[arg(long, env = "PSF_MANIFEST", default_value = "psf.yaml", global = true)]
        manifest: PathBuf,
        /// The store.
        #[arg(long, env = "PSF_STORE", hide_env_values = true, default_value = "sqlite://psf.db", global = true)]
        store: String,
    },
    /// The console's users: create (with a role), list, set a password, disable.
    Users {
        #[command(subcommand)]
        command: users_cmd::UsersCommand,
        /// The store the gateway uses.
        #[arg(long, env = "PSF_STORE", hide_env_values = true, default_value = "sqlite://psf.db", global = true)]
        store: String,
    },
    /// The human review queue: list, show, approve, edit or reject held answers; record overrides.
    Review {
        #[command(subcommand)]
        command: oversight_cmd::ReviewCommand,
        /// The manifest that names the reviewers.
        #[arg(long, env = "PSF_MANIFEST", default_value = "psf.yaml", global = true)]
        manifest: PathBuf,
        /// The store the gateways use.
        #[arg(long, env = "PSF_STORE", hide_env_values = true, default_value = "sqlite://psf.db", global = true)]
        store: String,
    },
    /// Incidents and the kill switch: declare, resolve, list, post-incident reviews, comms.
    Incident {
        #[command(subcommand)]
        command: oversight_cmd::IncidentCommand,
        /// The manifest whose apps, points and providers scopes name.
        #[arg(long, env = "PSF_MANIFEST", default_value = "psf.yaml", global = true)]
        manifest: PathBuf,
        /// The store the gateways use.
        #[arg(long, env = "PSF_STORE", hide_env_values = true, default_value = "sqlite://psf.db", global = true)]
        store: String,
    },
    /// Retention: sweep expired records now (`psf serve` does it hourly).
    Retention {
        #[command(subcommand)]
        command: oversight_cmd::RetentionCommand,
        /// The manifest whose `retention` applies.
        #[arg(long, env = "PSF_MANIFEST", default_value = "psf.yaml", global = true)]
        manifest: PathBuf,
        /// The store.
        #[arg(long, env = "PSF_STORE", hide_env_values = true, default_value = "sqlite://psf.db", global = true)]
        store: String,
    },
    /// Erase a subject (right to erasure): destroy its data key and records, print a receipt.
    Erase {
        /// The identifier the requests carried in `x-psf-subject`.
        #[arg(long)]
        subject: String,
        /// Who asks for the erasure.
        #[arg(long)]
        by: String,
        /// The store.
        #[arg(long, env = "PSF_STORE", hide_env_values = true, default_value = "sqlite://psf.db")]
        store: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Create or upgrade the store's schema (`psf serve` does it at start too).
    Migrate {
        /// sqlite://PATH or postgres://USER@HOST:PORT/DB.
        #[arg(long, env = "PSF_STORE", hide_env_values = true, default_value = "sqlite://psf.db")]
        store: String,
    },
    /// Create a key pair for signing assessments (`psf assess --sign`).
    Keygen {
        /// Where to write psf-signing.key and psf-signing.pub.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Replace existing key files.
        #[arg(long)]
        force: bool,
    },
    /// Verify a signed assessment (attestation.dsse.json) against a public key.
    Verify {
        /// The attestation.
        attestation: PathBuf,
        /// The public key (psf-signing.pub).
        #[arg(long)]
        key: PathBuf,
        /// Also check that the assessment is about this manifest, byte for byte.
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// Also re-hash every file the attestation names, in this exported bundle (`psf export`).
        #[arg(long, value_name = "DIR")]
        bundle: Option<PathBuf>,
        /// Refuse an assessment older than this many days.
        #[arg(long, value_name = "DAYS")]
        max_age: Option<u32>,
    },
    /// The regression gate: run a golden suite through the gateway against the baseline
    /// and the candidate model, compare pass rates per check kind (exit 1 on a
    /// regression), and report counterfactual fairness pairs.
    Eval(eval_cmd::GateArgs),
    /// Take the PSF foundations knowledge check: 20 questions across the 8 domains, 20
    /// minutes; a pass can be written as a signed certificate (`--certificate --sign`).
    Exam(exam_cmd::ExamArgs),
    /// Export the evidence bundle for auditors: manifest, every report, the evidence cited,
    /// checksums, and a signed attestation over them all (`--sign`).
    Export(export_cmd::ExportArgs),
    /// Write monitoring dashboards for the gateway's metrics.
    Dashboards {
        /// A Grafana dashboard (JSON model; import it and pick the Prometheus data source).
        #[arg(long)]
        grafana: bool,
        /// Write it to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Rehearse the kill switch against live gateways: time to disable and to recover, recorded.
    Drill(drill_cmd::DrillArgs),
    /// Decide each of the 40 competencies from the manifest and the gateway's records,
    /// score the CPAP rubric, and report (exit 1 on findings at `--fail-on`).
    Assess(assess_cmd::AssessArgs),
    /// Write a commented starter psf.yaml that passes `psf check`.
    Init {
        /// Where to write it.
        #[arg(default_value = "psf.yaml")]
        path: PathBuf,
        /// Overwrite the file if it exists.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CatalogFormat {
    Table,
    Json,
    Markdown,
    /// An OSCAL 1.2.2 catalog.
    Oscal,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

/// `psf diff`: exit 0 whether or not anything changed; 2 when a file cannot be read.
fn diff(old: &std::path::Path, new: &std::path::Path, format: OutputFormat) -> io::Result<ExitCode> {
    let parse = |path: &std::path::Path| -> Result<serde_json::Value, String> {
        let text = read_manifest(path)?;
        psf_core::yaml::parse(&text)
            .map(|d| d.value)
            .map_err(|e| format!("{}:{}: {}", path.display(), e.position, e.message))
    };
    let (a, b) = match (parse(old), parse(new)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("psf: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let changes = psf_core::diff::diff(&a, &b);
    let mut out = io::stdout().lock();
    match format {
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&changes).unwrap_or_default())?,
        OutputFormat::Text if changes.is_empty() => writeln!(out, "no changes")?,
        OutputFormat::Text => {
            for c in &changes {
                writeln!(out, "{}", psf_core::diff::describe(c))?;
            }
            let oversight = changes.iter().filter(|c| c.area == psf_core::diff::Area::Oversight).count();
            writeln!(out, "{} changes; {oversight} to oversight", changes.len())?;
            if oversight > 0 {
                writeln!(out, "oversight changed: review it and record the review under `oversight_reviews:` (HO-5)")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads a manifest file with the same limits as `psf check`.
fn read_manifest(path: &std::path::Path) -> Result<String, String> {
    check_cmd::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// `psf dashboards`.
fn dashboards(grafana: bool, out: Option<&std::path::Path>) -> io::Result<ExitCode> {
    if !grafana {
        eprintln!("psf: say which dashboards: --grafana");
        return Ok(ExitCode::from(2));
    }
    let text = serde_json::to_string_pretty(&psf_gateway::dashboards::grafana()).map_err(io::Error::other)? + "\n";
    match out {
        Some(path) => std::fs::write(path, text)?,
        None => io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

fn today() -> jiff::civil::Date {
    jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Catalog { format, domain } => catalog_cmd::run(format, domain.as_deref()),
        Command::Check { files, format, today: date } => check_cmd::run(&files, format, date.unwrap_or_else(today)),
        Command::Schema => schema(),
        Command::Diff { old, new, format } => diff(&old, &new, format),
        Command::Scan { input, redact, tokenize, eval, json_schema, format } => match (eval, json_schema) {
            (Some(kind), _) => scan_eval_cmd::run(kind, &input, format),
            (None, Some(schema)) => scan_cmd::run_schema(&input, &schema, format),
            (None, None) => {
                let transform = if redact {
                    scan_cmd::Transform::Redact
                } else if tokenize {
                    scan_cmd::Transform::Tokenize
                } else {
                    scan_cmd::Transform::None
                };
                scan_cmd::run(&input, transform, format)
            }
        },
        Command::Init { path, force } => init(&path, force),
        Command::Assess(args) => assess_cmd::run(&args),
        Command::Serve { manifest, listen, store, redis, sign, secure_cookies } => {
            let console = serve_cmd::ConsoleOptions { sign, secure_cookies };
            serve_cmd::serve(&manifest, &listen, &store, redis.as_deref(), &console)
        }
        Command::Users { command, store } => users_cmd::run(command, &store),
        Command::Demo { listen, upstream_latency_ms, store } => serve_cmd::demo(&listen, upstream_latency_ms, &store),
        Command::MockUpstream { listen, latency_ms } => serve_cmd::mock_upstream(&listen, latency_ms),
        Command::Keys { command, manifest, store } => keys_cmd::keys(command, &manifest, &store),
        Command::Review { command, manifest, store } => oversight_cmd::review(command, &manifest, &store),
        Command::Incident { command, manifest, store } => oversight_cmd::incident(command, &manifest, &store),
        Command::Drill(args) => drill_cmd::run(&args),
        Command::Dashboards { grafana, out } => dashboards(grafana, out.as_deref()),
        Command::Keygen { out, force } => assess_cmd::keygen(&out, force),
        Command::Verify { attestation, key, manifest, bundle, max_age } => assess_cmd::verify(
            &attestation,
            &key,
            &assess_cmd::VerifyChecks { manifest: manifest.as_deref(), bundle: bundle.as_deref(), max_age },
        ),
        Command::Export(args) => export_cmd::run(&args),
        Command::Exam(args) => exam_cmd::run(&args),
        Command::Eval(args) => eval_cmd::run(&args),
        Command::Migrate { store } => oversight_cmd::migrate(&store),
        Command::Erase { subject, by, store, format } => oversight_cmd::erase(&subject, &by, &store, format),
        Command::Retention { command, manifest, store } => oversight_cmd::retention(command, &manifest, &store),
    };
    match result {
        Ok(code) => code,
        // The reader went away (`psf catalog | head`): nothing is left to say.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("psf: cannot write output: {e}");
            ExitCode::from(2)
        }
    }
}

fn schema() -> io::Result<ExitCode> {
    match serde_json::to_string_pretty(&psf_core::Manifest::json_schema()) {
        Ok(text) => {
            writeln!(io::stdout().lock(), "{text}")?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("psf: cannot print the schema: {e}");
            Ok(ExitCode::from(2))
        }
    }
}

fn init(path: &std::path::Path, force: bool) -> io::Result<ExitCode> {
    if path.exists() && !force {
        eprintln!("psf: {} already exists\n  help: pass --force to overwrite it, or give another path", path.display());
        return Ok(ExitCode::from(2));
    }
    match std::fs::write(path, psf_core::starter::starter(today())) {
        Ok(()) => {
            writeln!(
                io::stdout().lock(),
                "wrote {}\nnext: put the accountable owner's name and email in `system.owner`, then run `psf check {}`",
                path.display(),
                path.display()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("psf: cannot write {}: {e}", path.display());
            Ok(ExitCode::from(2))
        }
    }
}
