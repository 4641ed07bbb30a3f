//! Trains psf's injection classifier and reports cross-validated figures.
//!
//! ```text
//! cargo run --release -p psf-detect --example train_injection -- \
//!     ../shared/datasets/deepset-prompt-injections/train.jsonl \
//!     --out crates/psf-detect/models/injection-v1.bin
//! ```
//!
//! Input: JSON lines with `text` and `label` (1 = injection). The run is deterministic:
//! a fixed shuffle, stratified 5-fold cross-validation of the classifier alone and of
//! the full detector (patterns + classifier), then a final fit on all the data.

use std::process::ExitCode;

mod support;

use psf_detect::classifier::Model;
use psf_detect::{InjectionDetector, Source, sanitize};
use support::{Confusion, shuffle};

const EPOCHS: usize = 40;
const RATE: f32 = 3.0;
const L2: f32 = 1e-6;
const FOLDS: usize = 5;

fn main() -> ExitCode {
    let Some((inputs, out)) = support::args("train_injection DATA.jsonl... [--out MODEL.bin]") else {
        return ExitCode::from(2);
    };
    let mut rows: Vec<(String, bool)> = Vec::new();
    for path in &inputs {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("cannot read {path}: {e}");
                return ExitCode::from(2);
            }
        };
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                eprintln!("{path}:{}: not JSON", i + 1);
                return ExitCode::from(2);
            };
            let (Some(t), Some(l)) = (v["text"].as_str(), v["label"].as_u64()) else {
                eprintln!("{path}:{}: needs `text` and `label`", i + 1);
                return ExitCode::from(2);
            };
            rows.push((sanitize(t).for_detection, l == 1));
        }
    }
    shuffle(&mut rows, 0x5eed);
    println!("{} rows, {} injections", rows.len(), rows.iter().filter(|r| r.1).count());

    // Stratified folds: positives and negatives dealt out in turn.
    let mut fold_of = vec![0; rows.len()];
    let (mut p, mut n) = (0, 0);
    for (i, (_, y)) in rows.iter().enumerate() {
        let k = if *y { &mut p } else { &mut n };
        fold_of[i] = *k % FOLDS;
        *k += 1;
    }
    let thresholds = [0.5, 0.6, 0.7, 0.8, 0.9];
    let mut clf = vec![Confusion::default(); thresholds.len()];
    let mut full = vec![Confusion::default(); thresholds.len()];
    for fold in 0..FOLDS {
        let train: Vec<(String, bool)> =
            rows.iter().zip(&fold_of).filter(|(_, f)| **f != fold).map(|(r, _)| r.clone()).collect();
        let model = Model::train(&train, EPOCHS, RATE, L2);
        let Ok(detector) = InjectionDetector::with_model(0.0, 0.0, Some(model.clone())) else {
            eprintln!("cannot build the detector");
            return ExitCode::from(2);
        };
        for ((text, y), _) in rows.iter().zip(&fold_of).filter(|(_, f)| **f == fold) {
            let p = model.predict(text);
            let s = detector.scan(text, Source::User).score;
            for (t, th) in thresholds.iter().enumerate() {
                clf[t].add(p >= *th, *y);
                full[t].add(s >= *th, *y);
            }
        }
    }
    println!("\n{FOLDS}-fold cross-validation (held-out folds only)");
    println!("threshold | classifier: recall  FPR  | patterns+classifier: recall  FPR   precision  F1");
    for (t, th) in thresholds.iter().enumerate() {
        let (r1, f1) = (clf[t].recall(), clf[t].fpr());
        let (r2, f2) = (full[t].recall(), full[t].fpr());
        let (p2, f2_score) = (full[t].precision(), full[t].f1());
        println!(
            "   {th:.1}    |             {r1:.3}  {f1:.3}  |                      {r2:.3}  {f2:.3}  {p2:.3}      {f2_score:.3}"
        );
    }
    let model = Model::train(&rows, EPOCHS, RATE, L2);
    if let Some(out) = out {
        if let Err(e) = std::fs::write(&out, model.to_bytes()) {
            eprintln!("cannot write {out}: {e}");
            return ExitCode::from(2);
        }
        println!("\nwrote {out} (trained on all {} rows)", rows.len());
    }
    ExitCode::SUCCESS
}
