//! Trains psf's entity tagger (person names and street addresses) and reports
//! cross-validated figures.
//!
//! ```text
//! cargo run --release -p psf-detect --example train_entities -- \
//!     ../shared/datasets/presidio-synth-pii/dev.json \
//!     --negatives ../shared/datasets/openai-moderation/dev.jsonl \
//!     --negatives ../shared/datasets/deepset-prompt-injections/train.jsonl \
//!     --out crates/psf-detect/models/entities-v1.bin
//! ```
//!
//! Input: any file `psf_detect::labelled::pii_samples` reads. Every candidate word (a
//! capital letter or a digit in it) is a training row for each head: positive when it
//! lies in a gold span of the head's type. The run is deterministic: a fixed shuffle;
//! 5-fold cross-validation over templates (every sentence made from one template sits
//! in one fold, so a held-out fold's sentences are wordings the model never saw),
//! scored per span as `psf scan --eval pii` scores them; then a final fit on
//! everything.
//!
//! The synthetic sentences hold few numbers that are not addresses, so a model trained
//! on them alone reads `14 Stores` or `iPhone 15` as addresses. `--negatives` files
//! (JSON lines with `text` or `prompt`: ordinary prompts, which hold next to no street
//! addresses) add their candidate words as negatives for the address head only (they
//! do name people). They are dealt into the same folds, and the held-out ones give the
//! rate of address findings per 100 ordinary prompts, all of them false.

#[expect(dead_code, reason = "the confusion counts serve the other trainers")]
mod support;

use std::collections::BTreeMap;
use std::ops::Range;
use std::process::ExitCode;

use psf_detect::classifier::Model;
use psf_detect::labelled::{PiiSample, SpanCounts, json_records, pii_samples, psf_label, score_spans};
use psf_detect::pii::tagger::{FEATURES, Lexicon, Tag, Tagger, Tokens};
use support::shuffle;

const EPOCHS: usize = 30;
const RATE: f32 = 0.5;
const L2: f32 = 1e-6;
const FOLDS: usize = 5;
const THRESHOLDS: [f64; 8] = [0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9];
const HEADS: [&str; 2] = ["PERSON", "ADDRESS"];
/// The dataset's labels the rival heads learn: towns and countries, organisations.
const RIVALS: [&str; 2] = ["GPE", "ORGANIZATION"];

/// A candidate word's features and whether it is in a person's name and in an address.
type Row = ([usize; FEATURES], [bool; 4]);

fn main() -> ExitCode {
    let Some((inputs, out)) = support::args("train_entities DATA... [--negatives PROMPTS.jsonl]... [--out MODEL.bin]")
    else {
        return ExitCode::from(2);
    };
    let negative_paths = support::values("--negatives");
    let mut negatives: Vec<String> = Vec::new();
    for path in &negative_paths {
        match std::fs::read_to_string(path).map_err(|e| e.to_string()).and_then(|t| prompts(&t)) {
            Ok(p) => negatives.extend(p),
            Err(e) => {
                eprintln!("{path}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let mut samples: Vec<PiiSample> = Vec::new();
    for path in &inputs {
        match std::fs::read_to_string(path).map_err(|e| e.to_string()).and_then(|t| pii_samples(&t)) {
            Ok(s) => samples.extend(s),
            Err(e) => {
                eprintln!("{path}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let gold: Vec<Vec<(&str, Range<usize>)>> = samples
        .iter()
        .map(|s| {
            s.spans
                .iter()
                .filter_map(|(t, r)| psf_label(t).filter(|l| HEADS.contains(l)).map(|l| (l, r.clone())))
                .collect()
        })
        .collect();
    let Ok(lexicon) = Lexicon::shipped() else {
        eprintln!("the committed lexicon, models/lexicon-v1.txt, is not readable");
        return ExitCode::from(1);
    };
    let rivals: Vec<Vec<(&str, Range<usize>)>> = samples
        .iter()
        .map(|s| {
            s.spans
                .iter()
                .filter_map(|(t, r)| RIVALS.iter().find(|l| **l == t.as_str()).map(|l| (*l, r.clone())))
                .collect()
        })
        .collect();
    let rows: Vec<Vec<Row>> =
        samples.iter().zip(&gold).zip(&rivals).map(|((s, g), r)| rows_of(&s.text, g, r, &lexicon)).collect();
    let negative_rows: Vec<Vec<Row>> = negatives.iter().map(|t| rows_of(t, &[], &[], &lexicon)).collect();

    // Folds: templates dealt out whole, in a fixed shuffled order.
    let mut order: Vec<usize> = (0..samples.len()).collect();
    shuffle(&mut order, 0x5eed);
    let mut fold_of = vec![0usize; samples.len()];
    let mut template_fold: BTreeMap<String, usize> = BTreeMap::new();
    for (n, &i) in order.iter().enumerate() {
        let group = samples[i].group.clone().unwrap_or_else(|| format!("row {n}"));
        let next = template_fold.len();
        fold_of[i] = *template_fold.entry(group).or_insert(next % FOLDS);
    }
    let words: usize = rows.iter().map(Vec::len).sum();
    println!(
        "{} texts, {} templates, {} candidate words ({} in names, {} in addresses); {} ordinary prompts ({} words) as address negatives",
        samples.len(),
        template_fold.len(),
        words,
        rows.iter().flatten().filter(|r| r.1[0]).count(),
        rows.iter().flatten().filter(|r| r.1[1]).count(),
        negatives.len(),
        negative_rows.iter().map(Vec::len).sum::<usize>()
    );
    let mut false_addresses = [0usize; THRESHOLDS.len()];

    // `--errors` prints the held-out mistakes at 0.5, for finding what features miss.
    let show_errors = std::env::args().any(|a| a == "--errors");
    let mut totals: Vec<BTreeMap<&str, SpanCounts>> = vec![BTreeMap::new(); THRESHOLDS.len()];
    for fold in 0..FOLDS {
        let train: Vec<&Row> = (0..samples.len()).filter(|i| fold_of[*i] != fold).flat_map(|i| &rows[i]).collect();
        let train_negatives: Vec<&Row> =
            (0..negatives.len()).filter(|i| i % FOLDS != fold).flat_map(|i| &negative_rows[i]).collect();
        let heads = fit(&train, &train_negatives);
        for (t, threshold) in THRESHOLDS.iter().enumerate() {
            let Ok(tagger) = Tagger::from_heads(heads.clone(), [*threshold; 2]) else {
                eprintln!("two heads were trained but the tagger would not take them");
                return ExitCode::from(1);
            };
            for i in (0..samples.len()).filter(|i| fold_of[*i] == fold) {
                let found: Vec<(&str, Range<usize>)> = tagger
                    .tag(&samples[i].text)
                    .into_iter()
                    .map(|x| (if x.tag == Tag::Person { HEADS[0] } else { HEADS[1] }, x.span))
                    .collect();
                if show_errors && *threshold == 0.5 {
                    print_errors(&samples[i].text, &found, &gold[i]);
                }
                score_spans(&found, &gold[i], &mut totals[t]);
            }
            for text in negatives.iter().skip(fold).step_by(FOLDS) {
                false_addresses[t] += tagger.tag(text).iter().filter(|x| x.tag == Tag::Address).count();
            }
        }
    }
    println!("\n{FOLDS}-fold cross-validation over templates, per span (overlap match):");
    println!(
        "{:>9}  {:>21}  {:>21}  {:>26}",
        "threshold", "person P / R / F1", "address P / R / F1", "addresses / 100 prompts"
    );
    for ((threshold, counts), wrong) in THRESHOLDS.iter().zip(&totals).zip(false_addresses) {
        let cell = |l: &str| {
            let c = counts.get(l).copied().unwrap_or_default();
            format!("{:.3} / {:.3} / {:.3}", c.precision(), c.recall(), c.f1())
        };
        let per_100 = 100.0 * wrong as f64 / negatives.len().max(1) as f64;
        println!("{threshold:>9.2}  {:>21}  {:>21}  {per_100:>26.1}", cell(HEADS[0]), cell(HEADS[1]));
    }

    if let Some(out) = out {
        let all: Vec<&Row> = rows.iter().flatten().collect();
        let all_negatives: Vec<&Row> = negative_rows.iter().flatten().collect();
        let bytes: Vec<u8> = fit(&all, &all_negatives).iter().flat_map(Model::to_bytes).collect();
        if let Err(e) = std::fs::write(&out, &bytes) {
            eprintln!("{out}: {e}");
            return ExitCode::from(1);
        }
        println!("\nwrote {out} ({} bytes), trained on all {} texts", bytes.len(), samples.len());
    }
    ExitCode::SUCCESS
}

/// The training rows of one text: each candidate word with its labels.
fn rows_of(text: &str, gold: &[(&str, Range<usize>)], rivals: &[(&str, Range<usize>)], lexicon: &Lexicon) -> Vec<Row> {
    let tokens = Tokens::new(text, lexicon);
    tokens
        .candidates()
        .map(|i| {
            let span = tokens.span(i);
            let inside = |head: &str| {
                gold.iter().chain(rivals).any(|(l, g)| *l == head && g.start < span.end && span.start < g.end)
            };
            let mut features = [0; FEATURES];
            tokens.features(i, &mut features);
            (features, [inside(HEADS[0]), inside(HEADS[1]), inside(RIVALS[0]), inside(RIVALS[1])])
        })
        .collect()
}

/// The person and address heads, trained on `rows` in their order; the address head
/// also on `negatives`, interleaved so they are not all seen last.
fn fit(rows: &[&Row], negatives: &[&Row]) -> Vec<Model> {
    let heads = if std::env::args().any(|a| a == "--no-rivals") { 2 } else { 4 };
    (0..heads)
        .map(|h| {
            let mut samples: Vec<(Vec<usize>, bool)> = rows.iter().map(|(f, y)| (f.to_vec(), y[h])).collect();
            if h == 1 {
                let step = (samples.len() / negatives.len().max(1)).max(1);
                for (k, (f, _)) in negatives.iter().enumerate() {
                    samples.insert((k * (step + 1)).min(samples.len()), (f.to_vec(), false));
                }
            }
            Model::train_features(&samples, EPOCHS, RATE, L2)
        })
        .collect()
}

/// The `text` or `prompt` of each record.
fn prompts(text: &str) -> Result<Vec<String>, String> {
    json_records(text)?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v["text"]
                .as_str()
                .or_else(|| v["prompt"].as_str())
                .map(str::to_owned)
                .ok_or_else(|| format!("record {}: no `text` or `prompt`", i + 1))
        })
        .collect()
}

/// Prints the findings that overlap no gold span and the gold spans no finding overlaps.
fn print_errors(text: &str, found: &[(&str, Range<usize>)], gold: &[(&str, Range<usize>)]) {
    let hit =
        |a: &(&str, Range<usize>), b: &(&str, Range<usize>)| a.0 == b.0 && a.1.start < b.1.end && b.1.start < a.1.end;
    for f in found.iter().filter(|f| !gold.iter().any(|g| hit(f, g))) {
        println!("wrong  {:<8} {:?}  in {:?}", f.0, &text[f.1.clone()], text);
    }
    for g in gold.iter().filter(|g| !found.iter().any(|f| hit(f, g))) {
        println!("missed {:<8} {:?}  in {:?}", g.0, &text[g.1.clone()], text);
    }
}
