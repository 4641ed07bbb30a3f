//! `psf scan --eval`: precision, recall and F1 of the detectors on labelled data, and
//! their throughput, so every accuracy claim comes with the command that measured it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write as _};
use std::ops::Range;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use psf_detect::labelled::{SpanCounts, content_rows, json_records, pii_samples, psf_label, score_spans};
use psf_detect::{Category, ContentDetector, InjectionDetector, PiiDetector, Source};
use serde::Serialize;
use serde_json::Value;

use crate::OutputFormat;
use crate::scan_cmd::read_input;

/// Which detector to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum EvalKind {
    /// PII spans: objects with `full_text`/`text` and `spans` (code-point offsets).
    Pii,
    /// Prompt injection: JSONL with `text` and `label` (1 = injection).
    Injection,
    /// Content categories: the OpenAI moderation JSONL or the HateCheck CSV.
    Content,
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
struct Counts {
    tp: usize,
    fp: usize,
    #[serde(rename = "fn")]
    fn_: usize,
}

impl Counts {
    fn precision(self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    fn recall(self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    fn f1(self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }
    }
    fn add(&mut self, other: Counts) {
        self.tp += other.tp;
        self.fp += other.fp;
        self.fn_ += other.fn_;
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

pub(crate) fn run(kind: EvalKind, path: &Path, format: OutputFormat) -> io::Result<ExitCode> {
    let text = match read_input(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("psf: cannot read {}: {e}", path.display());
            return Ok(ExitCode::from(2));
        }
    };
    let result = match kind {
        EvalKind::Pii => eval_pii(&text),
        EvalKind::Injection => eval_injection(&text),
        EvalKind::Content => eval_content(&text),
    };
    match result {
        Ok(report) => {
            let mut out = io::stdout().lock();
            match format {
                OutputFormat::Json => {
                    writeln!(out, "{}", serde_json::to_string_pretty(&report.json).unwrap_or_default())?
                }
                OutputFormat::Text => out.write_all(report.text.as_bytes())?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("psf: {}: {e}", path.display());
            Ok(ExitCode::from(2))
        }
    }
}

struct Report {
    text: String,
    json: Value,
}

fn eval_pii(text: &str) -> Result<Report, String> {
    let detector = PiiDetector::new().map_err(|e| e.to_string())?;
    let samples = pii_samples(text)?;
    let gold: Vec<Vec<(&str, Range<usize>)>> = samples
        .iter()
        .map(|s| s.spans.iter().filter_map(|(t, r)| psf_label(t).map(|l| (l, r.clone()))).collect())
        .collect();
    let scored: BTreeSet<&str> = gold.iter().flatten().map(|(l, _)| *l).collect();
    let mut per_type: BTreeMap<&str, SpanCounts> = scored.iter().map(|l| (*l, SpanCounts::default())).collect();
    let mut cold = Stopwatch::default();
    for (sample, gold) in samples.iter().zip(&gold) {
        let found = cold.time(|| detector.scan(&sample.text));
        let found: Vec<(&str, Range<usize>)> =
            found.into_iter().map(|f| (f.entity.label(), f.span)).filter(|(l, _)| scored.contains(l)).collect();
        score_spans(&found, gold, &mut per_type);
    }
    let detected: BTreeSet<&str> = psf_detect::EntityType::ALL.iter().map(|t| t.label()).collect();
    let mut micro = SpanCounts::default();
    let mut micro_detected = SpanCounts::default();
    for (label, c) in &per_type {
        micro.add(*c);
        if detected.contains(label) {
            micro_detected.add(*c);
        }
    }
    let texts: Vec<&str> = samples.iter().map(|s| s.text.as_str()).collect();
    let throughput = Throughput::measure(&texts, cold, |t| !detector.scan(t).is_empty());
    let mut text = format!(
        "PII evaluation: {} texts, {} gold spans of scored types\n\
         (overlap match, same type: a gold span is found when a finding overlaps it; a finding is right when it overlaps a gold span)\n\n\
         {:<14} {:>5} {:>6} {:>5} {:>6} {:>9} {:>7} {:>6}\n",
        samples.len(),
        per_type.values().map(|c| c.gold_found + c.gold_missed).sum::<usize>(),
        "type",
        "gold",
        "found",
        "right",
        "missed",
        "precision",
        "recall",
        "f1"
    );
    for (label, c) in &per_type {
        let note = if detected.contains(label) { "" } else { "  (no psf detector yet)" };
        text.push_str(&format!(
            "{label:<14} {:>5} {:>6} {:>5} {:>6} {:>9.3} {:>7.3} {:>6.3}{note}\n",
            c.gold_found + c.gold_missed,
            c.found_right + c.found_wrong,
            c.found_right,
            c.gold_missed,
            c.precision(),
            c.recall(),
            c.f1()
        ));
    }
    text.push_str(&format!(
        "\nmicro, all scored types:        P {:.3} R {:.3} F1 {:.3}\nmicro, types psf detects today: P {:.3} R {:.3} F1 {:.3}\n{}",
        micro.precision(),
        micro.recall(),
        micro.f1(),
        micro_detected.precision(),
        micro_detected.recall(),
        micro_detected.f1(),
        throughput.text()
    ));
    let json = serde_json::json!({
        "kind": "pii",
        "texts": samples.len(),
        "per_type": per_type.iter().map(|(l, c)| (l.to_string(), span_metrics(*c))).collect::<BTreeMap<_, _>>(),
        "micro": span_metrics(micro),
        "micro_detected_types": span_metrics(micro_detected),
        "throughput": throughput,
    });
    Ok(Report { text, json })
}

fn span_metrics(c: SpanCounts) -> Value {
    serde_json::json!({
        "gold_found": c.gold_found, "gold_missed": c.gold_missed,
        "found_right": c.found_right, "found_wrong": c.found_wrong,
        "precision": c.precision(), "recall": c.recall(), "f1": c.f1(),
    })
}

fn metrics(c: Counts) -> Value {
    serde_json::json!({ "tp": c.tp, "fp": c.fp, "fn": c.fn_, "precision": c.precision(), "recall": c.recall(), "f1": c.f1() })
}

fn eval_injection(text: &str) -> Result<Report, String> {
    let detector = InjectionDetector::new().map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for (i, record) in json_records(text)?.into_iter().enumerate() {
        let body = record.get("text").and_then(Value::as_str).ok_or_else(|| format!("record {}: no `text`", i + 1))?;
        let label = match record.get("label") {
            Some(Value::Number(n)) => n.as_u64() == Some(1),
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => matches!(s.as_str(), "1" | "injection" | "true"),
            _ => return Err(format!("record {}: no `label`", i + 1)),
        };
        rows.push((body.to_string(), label));
    }
    let (mut tp, mut fp, mut fn_, mut tn) = (0usize, 0usize, 0usize, 0usize);
    let mut cold = Stopwatch::default();
    for (body, label) in &rows {
        let flagged = cold.time(|| detector.scan(body, Source::User).flagged);
        match (flagged, *label) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            (false, false) => tn += 1,
        }
    }
    let c = Counts { tp, fp, fn_ };
    let fpr = ratio(fp, fp + tn);
    let balanced = (c.recall() + ratio(tn, tn + fp)) / 2.0;
    let texts: Vec<&str> = rows.iter().map(|(body, _)| body.as_str()).collect();
    let throughput = Throughput::measure(&texts, cold, |t| detector.scan(t, Source::User).flagged);
    let text = format!(
        "injection evaluation: {} texts ({} injections, {} benign), user-input threshold\n\n\
         tp {tp}  fp {fp}  fn {fn_}  tn {tn}\nprecision {:.3}  recall {:.3}  f1 {:.3}\n\
         false-positive rate {:.3}  balanced accuracy {:.3}\n{}",
        rows.len(),
        tp + fn_,
        fp + tn,
        c.precision(),
        c.recall(),
        c.f1(),
        fpr,
        balanced,
        throughput.text()
    );
    let json = serde_json::json!({
        "kind": "injection",
        "texts": rows.len(),
        "counts": { "tp": tp, "fp": fp, "fn": fn_, "tn": tn },
        "precision": c.precision(),
        "recall": c.recall(),
        "f1": c.f1(),
        "false_positive_rate": fpr,
        "balanced_accuracy": balanced,
        "throughput": throughput,
    });
    Ok(Report { text, json })
}

fn eval_content(text: &str) -> Result<Report, String> {
    let detector = ContentDetector::new().map_err(|e| e.to_string())?;
    let rows = content_rows(text)?;
    let mut per_category = [Counts::default(); 5];
    let mut any = Counts::default();
    let mut any_tn = 0usize;
    // HateCheck: share of cases judged right, per functionality (its hard negatives).
    let mut functionality: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut cold = Stopwatch::default();
    for row in &rows {
        let report = cold.time(|| detector.scan(&row.text));
        for c in Category::ALL {
            if let Some(label) = row.labels[c as usize] {
                per_category[c as usize].add(outcome(report.flagged.contains(&c), label));
            }
        }
        if let Some(label) = row.any() {
            let flagged = !report.flagged.is_empty();
            any.add(outcome(flagged, label));
            any_tn += usize::from(!flagged && !label);
            if let Some(f) = &row.functionality {
                let e = functionality.entry(f.clone()).or_default();
                e.0 += usize::from(flagged == label);
                e.1 += 1;
            }
        }
    }
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let throughput = Throughput::measure(&texts, cold, |t| !detector.scan(t).flagged.is_empty());
    let mut text = format!(
        "content evaluation: {} texts, default thresholds (a category counts only on rows annotated for it)\n\n\
         {:<12} {:>5} {:>5} {:>5}  {:>9} {:>6} {:>6}\n",
        rows.len(),
        "category",
        "tp",
        "fp",
        "fn",
        "precision",
        "recall",
        "f1"
    );
    let mut line = |name: &str, c: Counts| {
        text.push_str(&format!(
            "{name:<12} {:>5} {:>5} {:>5}  {:>9.3} {:>6.3} {:>6.3}\n",
            c.tp,
            c.fp,
            c.fn_,
            c.precision(),
            c.recall(),
            c.f1()
        ));
    };
    for c in Category::ALL {
        line(c.as_str(), per_category[c as usize]);
    }
    line("any", any);
    let fpr = ratio(any.fp, any.fp + any_tn);
    text.push_str(&format!("\nany category: false-positive rate {fpr:.3}\n"));
    if !functionality.is_empty() {
        text.push_str("\naccuracy per HateCheck functionality:\n");
        for (f, (right, n)) in &functionality {
            text.push_str(&format!("  {f:<22} {:.3} ({right}/{n})\n", ratio(*right, *n)));
        }
    }
    text.push_str(&throughput.text());
    let json = serde_json::json!({
        "kind": "content",
        "texts": rows.len(),
        "per_category": Category::ALL.iter().map(|c| (c.as_str(), metrics(per_category[*c as usize]))).collect::<BTreeMap<_, _>>(),
        "any": metrics(any),
        "any_false_positive_rate": fpr,
        "functionality_accuracy": functionality.iter().map(|(f, (r, n))| (f.clone(), ratio(*r, *n))).collect::<BTreeMap<_, _>>(),
        "throughput": throughput,
    });
    Ok(Report { text, json })
}

fn outcome(flagged: bool, label: bool) -> Counts {
    Counts {
        tp: usize::from(flagged && label),
        fp: usize::from(flagged && !label),
        fn_: usize::from(!flagged && label),
    }
}

#[derive(Serialize)]
struct Throughput {
    bytes: usize,
    passes: usize,
    /// The scored pass, the process's first: regex states built as new text comes.
    first_pass_megabytes_per_second: f64,
    chars_per_second: f64,
    megabytes_per_second: f64,
    mean_us_per_text: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Time spent in the scans of the pass that scores the texts, the first a process
/// makes.
#[derive(Debug, Default, Clone, Copy)]
struct Stopwatch(Duration);

impl Stopwatch {
    fn time<T>(&mut self, scan: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = scan();
        self.0 += t.elapsed();
        out
    }
}

impl Throughput {
    /// How fast `scan` reads `texts`, as a running service sees it: after the pass
    /// that scored them (`first`, timed apart: the regex engines build their states as
    /// they meet new text, and a service that has run a while has them), whole passes
    /// for half a second (at least three, at most a hundred), each scan timed alone.
    fn measure(texts: &[&str], first: Stopwatch, mut scan: impl FnMut(&str) -> bool) -> Throughput {
        let mut latencies = Vec::with_capacity(texts.len() * 3);
        let mut passes = 0;
        let mut busy = Duration::ZERO;
        let started = Instant::now();
        while passes < 3 || (passes < 100 && started.elapsed() < Duration::from_millis(500)) {
            for text in texts {
                let t = Instant::now();
                std::hint::black_box(scan(std::hint::black_box(text)));
                let took = t.elapsed();
                busy += took;
                latencies.push(took);
            }
            passes += 1;
            if texts.is_empty() {
                break;
            }
        }
        latencies.sort();
        let pct = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1e6)
        };
        let secs = busy.as_secs_f64().max(1e-9);
        let pass_bytes = texts.iter().map(|t| t.len()).sum::<usize>();
        let (bytes, chars) = (pass_bytes * passes, texts.iter().map(|t| t.chars().count()).sum::<usize>() * passes);
        Throughput {
            bytes,
            passes,
            first_pass_megabytes_per_second: pass_bytes as f64 / first.0.as_secs_f64().max(1e-9) / 1e6,
            chars_per_second: chars as f64 / secs,
            megabytes_per_second: bytes as f64 / secs / 1e6,
            mean_us_per_text: secs * 1e6 / latencies.len().max(1) as f64,
            p50_us: pct(0.5),
            p99_us: pct(0.99),
        }
    }

    fn text(&self) -> String {
        format!(
            "throughput: {:.0} chars/s ({:.1} MB/s) on one thread; per text mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs \
             ({} timed passes after the scored one, which ran at {:.1} MB/s: the first a process makes)\n",
            self.chars_per_second,
            self.megabytes_per_second,
            self.mean_us_per_text,
            self.p50_us,
            self.p99_us,
            self.passes,
            self.first_pass_megabytes_per_second
        )
    }
}
