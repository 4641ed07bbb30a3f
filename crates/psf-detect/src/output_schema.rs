//! Output schema enforcement (OV-2): find the JSON in a model's answer and check it
//! against the decision point's JSON Schema, with a path to every violation.
//!
//! Models wrap JSON in prose or Markdown fences, so extraction tries, in order: the
//! whole text, the first fenced block (```` ```json ````), then the first balanced
//! `{…}` or `[…]` that parses. The schema is compiled once per decision point.

use std::ops::Range;

use serde::Serialize;
use serde_json::Value;

use crate::error::BuildError;

/// A compiled output schema.
#[derive(Debug)]
pub struct OutputSchema {
    validator: jsonschema::Validator,
}

/// One way the output breaks the schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// JSON pointer to the offending value in the output (`/reasons/2`); empty for the root.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// The result of checking one output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SchemaCheck {
    /// JSON was found and satisfies the schema.
    Valid {
        /// Byte range of the JSON in the output.
        span: Range<usize>,
    },
    /// JSON was found but breaks the schema.
    Invalid {
        /// Byte range of the JSON in the output.
        span: Range<usize>,
        /// Every violation, in the validator's order.
        violations: Vec<Violation>,
    },
    /// The output holds no JSON value.
    NoJson,
}

impl OutputSchema {
    /// Compiles `schema` (any draft the document declares; 2020-12 by default).
    pub fn new(schema: &Value) -> Result<OutputSchema, BuildError> {
        let validator =
            jsonschema::validator_for(schema).map_err(|e| BuildError::pattern("output schema", e.to_string()))?;
        Ok(OutputSchema { validator })
    }

    /// Checks the JSON in `output`.
    pub fn check(&self, output: &str) -> SchemaCheck {
        let Some((span, value)) = extract_json(output) else { return SchemaCheck::NoJson };
        let violations: Vec<Violation> = self
            .validator
            .iter_errors(&value)
            .map(|e| Violation { path: e.instance_path().to_string(), message: e.to_string() })
            .collect();
        if violations.is_empty() { SchemaCheck::Valid { span } } else { SchemaCheck::Invalid { span, violations } }
    }
}

/// The first JSON value in `text`, with its byte range.
pub fn extract_json(text: &str) -> Option<(Range<usize>, Value)> {
    let trimmed = text.trim();
    if let Ok(v) = serde_json::from_str::<Value>(trimmed) {
        let start = text.len() - text.trim_start().len();
        return Some((start..start + trimmed.len(), v));
    }
    if let Some(found) = fenced(text) {
        return Some(found);
    }
    embedded(text)
}

/// The body of the first Markdown code fence, if it parses.
fn fenced(text: &str) -> Option<(Range<usize>, Value)> {
    let open = text.find("```")?;
    let after = open + 3;
    let body_start = after + text[after..].find('\n')? + 1;
    let body_len = text[body_start..].find("```")?;
    let body = &text[body_start..body_start + body_len];
    let value = serde_json::from_str::<Value>(body.trim()).ok()?;
    let lead = body.len() - body.trim_start().len();
    let start = body_start + lead;
    Some((start..start + body.trim().len(), value))
}

/// The first balanced `{…}` or `[…]` (strings respected) that parses.
fn embedded(text: &str) -> Option<(Range<usize>, Value)> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(offset) = text[from..].find(['{', '[']) {
        let start = from + offset;
        if let Some(end) = balanced_end(bytes, start)
            && let Ok(v) = serde_json::from_str::<Value>(&text[start..end])
        {
            return Some((start..end, v));
        }
        from = start + 1;
    }
    None
}

/// Where the bracket opened at `start` closes, skipping brackets inside strings.
fn balanced_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b) in brackets(&bytes[start..]) {
        if matches!(b, b'{' | b'[') {
            depth += 1;
        } else {
            depth = depth.checked_sub(1)?;
            if depth == 0 {
                return Some(start + i + 1);
            }
        }
    }
    None
}

/// How deeply `json` nests arrays and objects, read as bytes without parsing it: the
/// deepest level (0 for a bare value), or, once it goes deeper than `limit`, the offset
/// of the bracket that does. Reading stops there, so text nested past any sensible
/// depth costs no more than its first levels, and nothing recursive ever sees it (IG-2:
/// the structure of a request is checked before anything parses its parts).
pub fn json_nesting(json: &[u8], limit: usize) -> Result<usize, usize> {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for (i, b) in brackets(json) {
        if matches!(b, b'{' | b'[') {
            depth += 1;
            if depth > limit {
                return Err(i);
            }
            deepest = deepest.max(depth);
        } else {
            depth = depth.saturating_sub(1);
        }
    }
    Ok(deepest)
}

/// The brackets (`{`, `[`, `}`, `]`) of JSON text outside its strings, with their
/// offsets.
fn brackets(bytes: &[u8]) -> impl Iterator<Item = (usize, u8)> + '_ {
    let (mut in_string, mut escaped) = (false, false);
    bytes.iter().enumerate().filter_map(move |(i, &b)| {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            return None;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' | b'}' | b']' => return Some((i, b)),
            _ => {}
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nesting_counts_arrays_and_objects_outside_strings() {
        let depth = |s: &str| json_nesting(s.as_bytes(), usize::MAX);
        assert_eq!(depth("42"), Ok(0));
        assert_eq!(depth("{}"), Ok(1));
        assert_eq!(depth(r#"{"a": [1, {"b": []}], "c": {}}"#), Ok(4));
        // Brackets inside strings, escaped quotes included, are text.
        assert_eq!(depth(r#"{"a": "[[[{{{", "b": "say \"[[\" twice"}"#), Ok(1));
        assert_eq!(depth(r#"["\\", ["x"]]"#), Ok(2));
        // Past the limit: the offset of the bracket that opens one level too many.
        assert_eq!(json_nesting(b"[[[[1]]]]", 3), Err(3));
        assert_eq!(json_nesting(b"[[[1]]]", 3), Ok(3));
        let deep = "[".repeat(100_000);
        assert_eq!(json_nesting(deep.as_bytes(), 32), Err(32));
    }

    fn schema() -> OutputSchema {
        OutputSchema::new(&json!({
            "type": "object",
            "required": ["outcome", "reasons"],
            "additionalProperties": false,
            "properties": {
                "outcome": {"enum": ["refer", "decline"]},
                "reasons": {"type": "array", "maxItems": 3, "items": {"type": "string", "maxLength": 20}}
            }
        }))
        .unwrap()
    }

    #[test]
    fn extracts_bare_fenced_and_embedded_json() {
        let (span, v) = extract_json("  {\"a\": 1}\n").unwrap();
        assert_eq!((span, v), (2..10, json!({"a": 1})));
        let text = "Here you go:\n```json\n{\"a\": [1, \"}\"]}\n```\nThanks.";
        let (span, v) = extract_json(text).unwrap();
        assert_eq!(v, json!({"a": [1, "}"]}));
        assert_eq!(&text[span], "{\"a\": [1, \"}\"]}");
        let (_, v) = extract_json("The answer is {\"ok\": true} as you see {not json}").unwrap();
        assert_eq!(v, json!({"ok": true}));
        assert!(extract_json("no json here {at all").is_none());
    }

    #[test]
    fn violations_have_paths() {
        let s = schema();
        assert!(matches!(s.check(r#"{"outcome": "refer", "reasons": ["thin file"]}"#), SchemaCheck::Valid { .. }));
        match s
            .check(r#"Result: {"outcome": "approve", "reasons": ["a", "this reason is far too long to fit"], "x": 1}"#)
        {
            SchemaCheck::Invalid { violations, .. } => {
                let paths: Vec<&str> = violations.iter().map(|v| v.path.as_str()).collect();
                assert!(paths.contains(&"/outcome"), "{paths:?}");
                assert!(paths.contains(&"/reasons/1"), "{paths:?}");
                assert!(paths.contains(&""), "additionalProperties is reported at the root: {paths:?}");
            }
            other => panic!("expected violations, got {other:?}"),
        }
        assert_eq!(s.check("I cannot help with that."), SchemaCheck::NoJson);
    }

    #[test]
    fn a_bad_schema_is_a_build_error() {
        assert!(OutputSchema::new(&json!({"type": "objekt"})).is_err());
    }
}
