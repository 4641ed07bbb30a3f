//! `psf exam`: the PSF foundations knowledge check in the terminal.
//!
//! Twenty questions drawn from psf's bank so that every domain is asked at least twice,
//! options shuffled, a countdown shown with every question, free movement between
//! questions, a review before submitting, then the result per domain and the
//! explanations of what was missed. `--seed` makes a draw reproducible; a passed
//! attempt can be written as a signed certificate that `psf verify` checks.
//!
//! The terminal is read a line at a time, so the exam works in any terminal, over SSH,
//! and under a test driving it through tmux.

use std::io::{self, BufRead as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use psf_core::exam::{self, Attempt, Score};
use serde_json::json;

/// What `psf exam` was asked.
#[derive(Debug, clap::Args)]
pub struct ExamArgs {
    /// Draw with this seed (the same seed asks the same questions in the same order).
    #[arg(long)]
    seed: Option<u64>,
    /// Minutes for the attempt.
    #[arg(long, default_value_t = exam::MINUTES)]
    minutes: u32,
    /// The manifest whose `knowledge_check.pass_mark` applies (default 75%).
    #[arg(long, default_value = "psf.yaml")]
    manifest: PathBuf,
    /// Your name, for the certificate.
    #[arg(long, requires = "email")]
    name: Option<String>,
    /// Your email, for the certificate.
    #[arg(long, requires = "name")]
    email: Option<String>,
    /// Write the result as JSON here.
    #[arg(long, value_name = "FILE")]
    result: Option<PathBuf>,
    /// On a pass, write a signed certificate here (needs `--sign`, `--name`, `--email`).
    #[arg(long, value_name = "FILE", requires_all = ["sign", "name"])]
    certificate: Option<PathBuf>,
    /// The private key (`psf keygen`) that signs the certificate.
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
    /// Record the result in the gateway's store (needs `--name`, `--email`), where the
    /// console's team table and the assessment read it.
    #[arg(long, value_name = "URL", requires = "name")]
    store: Option<String>,
}

fn fail(message: &str) -> io::Result<ExitCode> {
    eprintln!("psf: {message}");
    Ok(ExitCode::from(2))
}

fn now_ms() -> i64 {
    psf_store::now_ms()
}

/// The pass mark: the manifest's when it has one and is readable, else the default.
fn pass_mark(manifest: &std::path::Path) -> f64 {
    let Ok(text) = std::fs::read_to_string(manifest) else { return exam::PASS_MARK };
    psf_core::check(&text, &psf_core::CheckOptions { today: crate::today() })
        .manifest
        .and_then(|m| m.knowledge_check.map(|k| k.pass_mark))
        .unwrap_or(exam::PASS_MARK)
}

fn domain_name(id: &str) -> &'static str {
    psf_core::catalog::DOMAINS.iter().find(|d| d.id == id).map_or("", |d| d.name)
}

fn clock(ms: i64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}", s / 60, s % 60)
}

/// Text folded at 88 columns, each line after `indent`.
fn wrap(text: &str, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + word.len() + 1 > 88 - indent.len() {
            out.push_str(indent);
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(indent);
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn show(out: &mut impl io::Write, a: &Attempt, i: usize, now: i64) -> io::Result<()> {
    let asked = &a.asked[i];
    writeln!(
        out,
        "\n[{}/{}] {} · {} left · {} answered",
        i + 1,
        a.asked.len(),
        domain_name(asked.question.domain()),
        clock(a.remaining_ms(now)),
        a.answered()
    )?;
    write!(out, "{}", wrap(&asked.question.stem, ""))?;
    for (k, option) in asked.shown().iter().enumerate() {
        let mark = if a.answers[i] == Some(k) { "*" } else { " " };
        let letter = char::from(b'a' + k as u8);
        let text = wrap(option, "      ");
        writeln!(out, "  {mark} {letter}) {}", text.trim_start().trim_end())?;
    }
    write!(out, "answer a-d · n next · p previous · g N go to · r review · s submit · q quit > ")?;
    out.flush()
}

fn review(out: &mut impl io::Write, a: &Attempt, now: i64) -> io::Result<()> {
    writeln!(out, "\nReview · {} left", clock(a.remaining_ms(now)))?;
    for (i, (asked, answer)) in a.asked.iter().zip(&a.answers).enumerate() {
        let given = answer.map_or_else(|| "—".to_string(), |k| char::from(b'a' + k as u8).to_string());
        let stem: String = asked.question.stem.chars().take(70).collect();
        writeln!(out, "  {:>2}. [{}] {given}  {stem}…", i + 1, asked.question.domain())?;
    }
    let open = a.answers.iter().filter(|x| x.is_none()).count();
    writeln!(out, "{} answered, {open} open; g N goes to a question, s submits", a.answered())
}

/// What the person typed, read as a command.
enum Command {
    Answer(usize),
    Next,
    Previous,
    Go(usize),
    Review,
    Submit,
    Quit,
    Unknown(String),
}

fn parse(line: &str) -> Command {
    let t = line.trim().to_lowercase();
    match t.as_str() {
        "a" | "b" | "c" | "d" => Command::Answer(usize::from(t.as_bytes()[0] - b'a')),
        "" | "n" => Command::Next,
        "p" => Command::Previous,
        "r" => Command::Review,
        "s" => Command::Submit,
        "q" => Command::Quit,
        _ => match t.strip_prefix('g').map(str::trim).and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => Command::Go(n),
            None => Command::Unknown(t),
        },
    }
}

/// `psf exam`.
pub fn run(args: &ExamArgs) -> io::Result<ExitCode> {
    let bank = match exam::bank() {
        Ok(b) => b,
        Err(e) => return fail(&e),
    };
    let key = match &args.sign {
        None => None,
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| psf_assess::attest::SigningKey::from_text(&t).map_err(|e| e.to_string()))
        {
            Ok(k) => Some(k),
            Err(e) => return fail(&format!("{}: {e}", path.display())),
        },
    };
    if args.minutes == 0 || args.minutes > 240 {
        return fail("--minutes must be between 1 and 240");
    }
    let seed = args.seed.unwrap_or_else(|| u64::try_from(now_ms()).unwrap_or(0));
    let mark = pass_mark(&args.manifest);
    let mut attempt = Attempt::new(exam::draw(&bank, seed), now_ms(), args.minutes);
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "psf knowledge check · bank {} · {} questions across the 8 PSF domains · {} minutes · pass mark {:.0}%",
        bank.version,
        attempt.asked.len(),
        args.minutes,
        mark * 100.0
    )?;
    writeln!(out, "Type a letter to answer (then Enter); move with n, p or g N; r reviews; s submits.")?;
    let stdin = io::stdin();
    let mut lines = stdin.lock().lines();
    let mut at = 0usize;
    let mut confirming = false;
    loop {
        let now = now_ms();
        if attempt.expired(now) {
            writeln!(out, "\nTime is up: submitted with {} of {} answered.", attempt.answered(), attempt.asked.len())?;
            break;
        }
        if !confirming {
            show(&mut out, &attempt, at, now)?;
        }
        let Some(line) = lines.next() else {
            writeln!(out, "\n(input ended: submitting)")?;
            break;
        };
        let line = line?;
        if confirming {
            confirming = false;
            if line.trim().eq_ignore_ascii_case("y") {
                break;
            }
            continue;
        }
        match parse(&line) {
            Command::Answer(k) => match attempt.answer(at, k, now_ms()) {
                Ok(()) => at = (at + 1).min(attempt.asked.len() - 1),
                Err(e) => writeln!(out, "{e}")?,
            },
            Command::Next => at = (at + 1).min(attempt.asked.len() - 1),
            Command::Previous => at = at.saturating_sub(1),
            Command::Go(n) if (1..=attempt.asked.len()).contains(&n) => at = n - 1,
            Command::Go(n) => writeln!(out, "there is no question {n}; they run 1 to {}", attempt.asked.len())?,
            Command::Review => review(&mut out, &attempt, now_ms())?,
            Command::Submit => {
                let open = attempt.asked.len() - attempt.answered();
                if open == 0 {
                    break;
                }
                write!(out, "{open} questions are unanswered and count as wrong. Submit anyway? (y/n) > ")?;
                out.flush()?;
                confirming = true;
            }
            Command::Quit => {
                writeln!(out, "quit: nothing recorded")?;
                return Ok(ExitCode::from(2));
            }
            Command::Unknown(t) => writeln!(out, "`{t}` is not a choice: a-d, n, p, g N, r, s or q")?,
        }
    }
    let score = attempt.score(mark);
    report(&mut out, &score)?;
    let date = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let predicate = json!({
        "person": {"name": args.name, "email": args.email},
        "date": date.to_string(),
        "bank_version": bank.version,
        "seed": seed,
        "questions": attempt.asked.iter().map(|a| a.question.id.clone()).collect::<Vec<_>>(),
        "score": score,
    });
    if let Some(path) = &args.result
        && let Err(e) = std::fs::write(path, serde_json::to_string_pretty(&predicate).unwrap_or_default() + "\n")
    {
        return fail(&format!("cannot write {}: {e}", path.display()));
    }
    if let (Some(url), Some(name), Some(email)) = (&args.store, &args.name, &args.email) {
        let result = psf_store::ExamResult {
            id: String::new(),
            email: email.clone(),
            name: name.clone(),
            taken_ms: now_ms(),
            bank_version: bank.version.clone(),
            right: score.right,
            total: score.total,
            pass_mark: score.pass_mark,
            passed: score.passed,
            per_domain: score.per_domain.clone(),
        };
        let recorded =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string()).and_then(
                |rt| {
                    rt.block_on(async {
                        let store = psf_store::Store::open(url).await.map_err(|e| e.to_string())?;
                        let r = store.insert_exam_result(&result).await.map_err(|e| e.to_string());
                        store.close().await;
                        r
                    })
                },
            );
        match recorded {
            Ok(r) => writeln!(out, "result recorded in {url} ({})", r.id)?,
            Err(e) => return fail(&format!("cannot record the result in {url}: {e}")),
        }
    }
    if let (Some(path), Some(key)) = (&args.certificate, &key) {
        if !score.passed {
            writeln!(out, "no certificate: the attempt did not pass")?;
        } else {
            let envelope = psf_assess::attest::certificate(
                &psf_assess::attest::digest(exam::BANK_TEXT.as_bytes()),
                &predicate,
                key,
            );
            if let Err(e) = std::fs::write(path, envelope) {
                return fail(&format!("cannot write {}: {e}", path.display()));
            }
            writeln!(
                out,
                "certificate written to {}; `psf verify {} --key PUB` checks it",
                path.display(),
                path.display()
            )?;
        }
    }
    Ok(if score.passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn report(out: &mut impl io::Write, s: &Score) -> io::Result<()> {
    writeln!(
        out,
        "\nResult: {} of {} ({:.0}%) — {} (pass mark {:.0}%)",
        s.right,
        s.total,
        s.share * 100.0,
        if s.passed { "PASSED" } else { "not passed" },
        s.pass_mark * 100.0
    )?;
    for d in &psf_core::catalog::DOMAINS {
        if let Some((right, total)) = s.per_domain.get(d.id) {
            writeln!(out, "  {} {:<32} {right}/{total}", d.id, d.name)?;
        }
    }
    if !s.missed.is_empty() {
        writeln!(out, "\nTo read again:")?;
        for q in &s.missed {
            write!(out, "{}", wrap(&format!("[{}] {}", q.id, q.stem), "  "))?;
            write!(out, "{}", wrap(&format!("Best answer: {}", q.options[q.answer]), "    "))?;
            write!(out, "{}", wrap(&format!("Why: {}", q.explanation), "    "))?;
        }
    }
    Ok(())
}
