//! Labelled data for measuring and training the content detector, read from text (the
//! caller does the IO). Two formats, told apart by their first character:
//!
//! - the OpenAI moderation evaluation set: JSON lines with `prompt` and 0/1 columns
//!   `S` `H` `V` `HR` `SH` `S3` `H2` `V2` (any may be missing: not annotated);
//! - the HateCheck suite: CSV with `functionality`, `test_case`, `label_gold`
//!   (`hateful` / `non-hateful`) and `templ_id`.

use crate::content::Category;

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
