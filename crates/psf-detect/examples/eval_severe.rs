//! Figures for the severe tier (OV-3) and refusal detection (OV-5).
//!
//! `cargo run --release -p psf-detect --example eval_severe -- ../shared/datasets`
//!
//! - psf's own severe set: `testdata/severe/dev.jsonl` (the patterns were written
//!   against it) and `testdata/severe/test.jsonl` (written before any tuning and never
//!   tuned on): recall per category and flags on the look-alikes;
//! - HarmBench's human-labelled model answers: how many harmful answers (label 1) and
//!   how many refusals and harmless answers (label 0) the tier flags, per category;
//! - XSTest: compliant answers to safe prompts that look unsafe ("kill a Python
//!   process"), which the tier must pass; and its hand-labelled refusals, for OV-5.

use std::collections::BTreeMap;

use psf_detect::SevereDetector;
use psf_detect::refusal::is_refusal;
use serde_json::Value;

fn lines(path: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .map(|s| s.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
        .unwrap_or_else(|e| {
            eprintln!("cannot read {path}: {e}");
            Vec::new()
        })
}

/// `show`: print the misses and false flags (for the set the patterns are written
/// against; the held-out set reports counts only, so reading it cannot tune them).
fn own(d: &SevereDetector, path: &str, show: bool) {
    let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let (mut look, mut look_flagged) = (0, 0);
    for row in lines(path) {
        let text = row["text"].as_str().unwrap_or_default();
        let found = d.scan(text);
        match row["category"].as_str() {
            Some(c) => {
                let e = per.entry(c.to_string()).or_default();
                e.0 += 1;
                e.1 += usize::from(found.is_some());
                if found.is_none() && show {
                    println!("    missed [{c}]: {text}");
                }
            }
            None => {
                look += 1;
                if let Some(f) = found {
                    look_flagged += 1;
                    if show {
                        println!("    flagged look-alike [{}]: {text}", f.category.as_str());
                    }
                }
            }
        }
    }
    let (n, hit) = per.values().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    println!("{path}: recall {hit}/{n}; look-alikes flagged {look_flagged}/{look}");
    for (c, (n, hit)) in per {
        println!("    {c:<18} {hit}/{n}");
    }
}

fn main() {
    let data = std::env::args().nth(1).unwrap_or_else(|| "../shared/datasets".into());
    let d = match SevereDetector::new() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            return;
        }
    };
    let here = env!("CARGO_MANIFEST_DIR");
    own(&d, &format!("{here}/testdata/severe/dev.jsonl"), true);
    own(&d, &format!("{here}/testdata/severe/test.jsonl"), false);

    let mut per: BTreeMap<String, [(usize, usize); 2]> = BTreeMap::new();
    for row in lines(&format!("{data}/harmbench/classifier_val.jsonl")) {
        let label = usize::from(row["label"].as_i64() == Some(1));
        let cat = row["semantic_category"].as_str().unwrap_or("none").to_string();
        let found = d.scan(row["text"].as_str().unwrap_or_default());
        let flagged = found.is_some();
        if std::env::var_os("SHOW_HARMBENCH").is_some() && flagged && label == 0 {
            let text: String = row["text"].as_str().unwrap_or_default().chars().take(300).collect();
            println!("    harmbench label 0 flagged {:?}: {}", found.map(|f| f.category), text.replace('\n', " "));
        }
        let e = &mut per.entry(cat).or_default()[label];
        e.0 += 1;
        e.1 += usize::from(flagged);
    }
    println!("HarmBench classifier_val (flagged harmful answers; flagged refusals and harmless answers):");
    for (c, [neg, pos]) in &per {
        println!("    {c:<30} harmful {}/{}   not harmful {}/{}", pos.1, pos.0, neg.1, neg.0);
    }

    let rows = lines(&format!("{data}/xstest/completions.jsonl"));
    let benign: Vec<&Value> =
        rows.iter().filter(|r| r["prompt_label"] == "safe" && r["final_label"] == "full_compliance").collect();
    let flagged = benign.iter().filter(|r| d.scan(r["text"].as_str().unwrap_or_default()).is_some()).count();
    println!("XSTest compliant answers to safe prompts flagged: {flagged}/{}", benign.len());
    let (mut tp, mut fp, mut fn_, mut tn) = (0, 0, 0, 0);
    for r in &rows {
        let refusal = r["final_label"] == "full_refusal";
        if r["final_label"] == "partial_refusal" {
            continue;
        }
        match (is_refusal(r["text"].as_str().unwrap_or_default()), refusal) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            (false, false) => tn += 1,
        }
    }
    println!(
        "XSTest refusals (OV-5, full refusals against full compliance): recall {:.3}, false positives {fp}/{}",
        tp as f64 / (tp + fn_).max(1) as f64,
        fp + tn
    );
}
