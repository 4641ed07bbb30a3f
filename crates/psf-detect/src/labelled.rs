//! Labelled data for measuring and training the detectors, read from text (the caller
//! does the IO), and the span scoring that `psf scan --eval pii` and the entity
//! trainer share.
//!
//! Content comes in two formats, told apart by their first character:
//!
//! - the OpenAI moderation evaluation set: JSON lines with `prompt` and 0/1 columns
//!   `S` `H` `V` `HR` `SH` `S3` `H2` `V2` (any may be missing: not annotated);
//! - the HateCheck suite: CSV with `functionality`, `test_case`, `label_gold`
//!   (`hateful` / `non-hateful`) and `templ_id`.
//!
//! PII comes as a JSON array or JSON lines of objects with `full_text` and `spans` of
//! `entity_type`/`start_position`/`end_position` (presidio-research's format), or
//! `text` and `spans` of `entity_type`/`start`/`end`; offsets count code points.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Serialize;
use serde_json::Value;

use crate::content::Category;

/// One text with its gold PII spans.
#[derive(Debug, Clone, PartialEq)]
pub struct PiiSample {
    /// The text.
    pub text: String,
    /// The dataset's entity type (e.g. `PERSON`) and byte range of each gold span.
    pub spans: Vec<(String, Range<usize>)>,
    /// The record's `template_id`, so cross-validation can keep a template's texts in
    /// one fold.
    pub group: Option<String>,
}

/// The records of a JSON array, or of JSON lines (blank lines skipped).
pub fn json_records(text: &str) -> Result<Vec<Value>, String> {
    if text.trim_start().starts_with('[') {
        return serde_json::from_str(text).map_err(|e| format!("not a JSON array of records: {e}"));
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: not JSON: {e}", i + 1)))
        .collect()
}

/// Reads PII samples; the error names the record and what is wrong with it.
pub fn pii_samples(text: &str) -> Result<Vec<PiiSample>, String> {
    let records = json_records(text)?;
    let mut samples = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        let n = i + 1;
        let body = record
            .get("full_text")
            .or_else(|| record.get("text"))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("record {n}: no `full_text` or `text` string"))?;
        // Offsets are code points; psf works in bytes.
        let bytes_at: Vec<usize> = body.char_indices().map(|(b, _)| b).chain([body.len()]).collect();
        let mut spans = Vec::new();
        for span in record.get("spans").and_then(Value::as_array).into_iter().flatten() {
            let entity = span
                .get("entity_type")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("record {n}: a span has no `entity_type`"))?;
            let get = |a: &str, b: &str| span.get(a).or_else(|| span.get(b)).and_then(Value::as_u64);
            let (Some(s), Some(e)) = (get("start_position", "start"), get("end_position", "end")) else {
                return Err(format!("record {n}: a span lacks start or end"));
            };
            let at = |o: u64| usize::try_from(o).ok().and_then(|o| bytes_at.get(o).copied());
            let (Some(start), Some(end)) = (at(s), at(e)) else {
                return Err(format!("record {n}: span {s}..{e} is outside the text"));
            };
            if start > end {
                return Err(format!("record {n}: span {s}..{e} ends before it starts"));
            }
            spans.push((entity.to_owned(), start..end));
        }
        let group = record.get("template_id").filter(|v| !v.is_null()).map(|v| v.to_string());
        samples.push(PiiSample { text: body.to_owned(), spans, group });
    }
    Ok(samples)
}

/// The psf label a dataset's entity type is scored as (`STREET_ADDRESS` → `ADDRESS`);
/// `None` for the types psf does not look for (organisations, titles, dates, ages).
pub fn psf_label(entity_type: &str) -> Option<&'static str> {
    Some(match entity_type.to_ascii_uppercase().as_str() {
        "EMAIL_ADDRESS" | "EMAIL" => "EMAIL",
        "PHONE_NUMBER" | "PHONE" => "PHONE",
        "CREDIT_CARD" => "CREDIT_CARD",
        "IBAN_CODE" | "IBAN" => "IBAN",
        "US_SSN" => "US_SSN",
        "UK_NHS" | "UK_NINO" => "UK_NINO",
        "IP_ADDRESS" => "IP_ADDRESS",
        "MAC_ADDRESS" => "MAC_ADDRESS",
        "CRYPTO" | "CRYPTO_ADDRESS" => "CRYPTO_ADDRESS",
        "PERSON" => "PERSON",
        // A postcode is part of an address; a town or country alone (GPE) is not.
        "STREET_ADDRESS" | "ADDRESS" | "ZIP_CODE" => "ADDRESS",
        _ => return None,
    })
}

/// Span counts for one entity type under overlap matching: a gold span is found when a
/// finding of its type overlaps it, and a finding is right when it overlaps a gold span
/// of its type. One finding over an address's street line and its postcode line thus
/// finds both gold spans, as a redaction of it would hide both.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SpanCounts {
    /// Gold spans a finding overlaps.
    pub gold_found: usize,
    /// Gold spans no finding overlaps.
    pub gold_missed: usize,
    /// Findings that overlap a gold span.
    pub found_right: usize,
    /// Findings that overlap none.
    pub found_wrong: usize,
}

impl SpanCounts {
    /// Right findings over all findings.
    pub fn precision(&self) -> f64 {
        ratio(self.found_right, self.found_right + self.found_wrong)
    }
    /// Found gold spans over all gold spans.
    pub fn recall(&self) -> f64 {
        ratio(self.gold_found, self.gold_found + self.gold_missed)
    }
    /// The harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }
    }
    /// Adds another's counts.
    pub fn add(&mut self, other: SpanCounts) {
        self.gold_found += other.gold_found;
        self.gold_missed += other.gold_missed;
        self.found_right += other.found_right;
        self.found_wrong += other.found_wrong;
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Scores one text's findings against its gold spans (both as type label and byte
/// range), adding to `counts` per type.
pub fn score_spans<'a>(
    found: &[(&'a str, Range<usize>)],
    gold: &[(&'a str, Range<usize>)],
    counts: &mut BTreeMap<&'a str, SpanCounts>,
) {
    let overlaps =
        |a: &(&str, Range<usize>), b: &(&str, Range<usize>)| a.0 == b.0 && a.1.start < b.1.end && b.1.start < a.1.end;
    for f in found {
        let c = counts.entry(f.0).or_default();
        if gold.iter().any(|g| overlaps(f, g)) {
            c.found_right += 1;
        } else {
            c.found_wrong += 1;
        }
    }
    for g in gold {
        let c = counts.entry(g.0).or_default();
        if found.iter().any(|f| overlaps(f, g)) {
            c.gold_found += 1;
        } else {
            c.gold_missed += 1;
        }
    }
}

/// One labelled text.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentRow {
    /// The text.
    pub text: String,
    /// Per category in [`Category::ALL`] order: `Some(true)` present, `Some(false)`
    /// absent, `None` not annotated.
    pub labels: [Option<bool>; 5],
    /// HateCheck's functionality (e.g. `counter_quote_nh`), to report the hard cases
    /// apart.
    pub functionality: Option<String>,
    /// Rows made from the same template share a group, so cross-validation can keep
    /// them in one fold.
    pub group: Option<String>,
}

impl ContentRow {
    /// Whether any category is present (`Some(true)`), absent in all annotated ones
    /// (`Some(false)`), or nothing is annotated (`None`).
    pub fn any(&self) -> Option<bool> {
        if self.labels.contains(&Some(true)) {
            Some(true)
        } else if self.labels.iter().all(Option::is_none) {
            None
        } else {
            Some(false)
        }
    }
}

/// Reads either format; the error names the line and what is wrong with it.
pub fn content_rows(text: &str) -> Result<Vec<ContentRow>, String> {
    if text.trim_start().starts_with('{') { moderation(text) } else { hatecheck(text) }
}

fn moderation(text: &str) -> Result<Vec<ContentRow>, String> {
    // Columns per category in [`Category::ALL`] order; a category is present when any
    // of its columns is 1 and annotated when any is present at all.
    const COLUMNS: [&[&str]; 5] = [&["V", "V2"], &["SH"], &["S", "S3"], &["H", "H2"], &["HR"]];
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("line {}: not JSON ({e})", i + 1))?;
        let prompt = v["prompt"].as_str().ok_or_else(|| format!("line {}: no `prompt` string", i + 1))?;
        let labels = COLUMNS.map(|cols| {
            let known: Vec<u64> = cols.iter().filter_map(|c| v[*c].as_u64()).collect();
            (!known.is_empty()).then(|| known.contains(&1))
        });
        rows.push(ContentRow { text: prompt.to_owned(), labels, functionality: None, group: None });
    }
    Ok(rows)
}

fn hatecheck(text: &str) -> Result<Vec<ContentRow>, String> {
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| format!("not CSV: {e}"))?.clone();
    let column = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            format!("no `{name}` column: expected the moderation JSONL or the HateCheck CSV (functionality, test_case, label_gold, templ_id)")
        })
    };
    let (case, gold, functionality, template) =
        (column("test_case")?, column("label_gold")?, column("functionality")?, column("templ_id")?);
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("row {}: {e}", i + 2))?;
        let field = |at: usize| record.get(at).unwrap_or_default();
        let hateful = match field(gold) {
            "hateful" => true,
            "non-hateful" => false,
            other => return Err(format!("row {}: label_gold is {other:?}, not hateful or non-hateful", i + 2)),
        };
        // A hateful case says nothing of the other categories (a threat is also
        // violent); a non-hateful one is harmless in all of them.
        let labels =
            Category::ALL.map(|c| if c == Category::Hate { Some(hateful) } else { (!hateful).then_some(false) });
        rows.push(ContentRow {
            text: field(case).trim().to_owned(),
            labels,
            functionality: Some(field(functionality).to_owned()),
            group: Some(format!("hatecheck:{}", field(template))),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pii_records_in_code_points_and_says_what_is_wrong() {
        let json = r#"[{"full_text":"é Ann","spans":[{"entity_type":"PERSON","start_position":2,"end_position":5}],"template_id":7}]"#;
        let s = pii_samples(json).unwrap();
        assert_eq!(s[0].spans, [("PERSON".to_owned(), 3..6)]);
        assert_eq!(&s[0].text[3..6], "Ann");
        assert_eq!(s[0].group.as_deref(), Some("7"));
        let lines = "{\"text\":\"x\",\"spans\":[{\"entity_type\":\"EMAIL\",\"start\":0,\"end\":1}]}\n";
        assert_eq!(pii_samples(lines).unwrap()[0].spans[0].1, 0..1);
        assert!(
            pii_samples(r#"[{"text":"ab","spans":[{"entity_type":"X","start":1,"end":9}]}]"#)
                .unwrap_err()
                .contains("record 1: span 1..9 is outside")
        );
        assert!(pii_samples("[{}]").unwrap_err().contains("no `full_text`"));
    }

    #[test]
    fn one_finding_over_two_gold_spans_finds_both() {
        let mut counts = BTreeMap::new();
        let gold = [("ADDRESS", 0..10), ("ADDRESS", 11..20), ("PERSON", 30..35)];
        let found = [("ADDRESS", 2..18), ("PERSON", 40..45)];
        score_spans(&found, &gold, &mut counts);
        let a = counts["ADDRESS"];
        assert_eq!((a.gold_found, a.gold_missed, a.found_right, a.found_wrong), (2, 0, 1, 0));
        let p = counts["PERSON"];
        assert_eq!((p.gold_found, p.gold_missed, p.found_right, p.found_wrong), (0, 1, 0, 1));
        assert_eq!(p.f1(), 0.0);
        assert_eq!(a.f1(), 1.0);
    }

    #[test]
    fn reads_moderation_lines_with_missing_columns() {
        let rows =
            content_rows("{\"prompt\":\"a\",\"S\":0,\"H\":1,\"V\":0,\"HR\":0,\"SH\":0}\n{\"prompt\":\"b\",\"S3\":1}\n")
                .unwrap();
        assert_eq!(rows[0].labels, [Some(false), Some(false), Some(false), Some(true), Some(false)]);
        assert_eq!(rows[1].labels, [None, None, Some(true), None, None]);
        assert_eq!(rows[0].any(), Some(true));
        assert!(content_rows("{\"text\":1}").unwrap_err().contains("line 1"));
    }

    #[test]
    fn reads_hatecheck_rows() {
        let csv = ",functionality,case_id,test_case,label_gold,templ_id\n\
                   0,derog_neg_emote_h,1,\"I hate them, all. \",hateful,1\n\
                   1,counter_quote_nh,2,x,non-hateful,2\n";
        let rows = content_rows(csv).unwrap();
        assert_eq!(rows[0].text, "I hate them, all.");
        assert_eq!(rows[0].labels[3], Some(true));
        assert_eq!(rows[0].labels[0], None);
        assert_eq!(rows[1].any(), Some(false));
        assert_eq!(rows[1].functionality.as_deref(), Some("counter_quote_nh"));
        assert!(content_rows("a,b\n1,2\n").unwrap_err().contains("no `test_case` column"));
        assert!(
            content_rows(",functionality,test_case,label_gold,templ_id\n0,f,t,maybe,1\n")
                .unwrap_err()
                .contains("row 2")
        );
    }
}
