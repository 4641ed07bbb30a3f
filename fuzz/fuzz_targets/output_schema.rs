//! JSON extraction from arbitrary model output: whatever span it reports must hold the
//! value it returns, and checking against a schema must not panic. Nesting read from
//! the bytes must equal the parsed value's depth.
#![no_main]

use libfuzzer_sys::fuzz_target;
use psf_detect::{OutputSchema, extract_json, json_nesting};
use std::sync::LazyLock;

static SCHEMA: LazyLock<Option<OutputSchema>> = LazyLock::new(|| {
    let schema = serde_json::json!({"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}});
    OutputSchema::new(&schema).ok()
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some((span, value)) = extract_json(text) {
        let reparsed: serde_json::Value = serde_json::from_str(text[span].trim()).expect("the span holds JSON");
        assert_eq!(reparsed, value);
    }
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        assert_eq!(json_nesting(data, usize::MAX), Ok(depth(&value)));
    }
    if let Some(schema) = SCHEMA.as_ref() {
        let _ = schema.check(text);
    }
});

/// How deeply a parsed value nests arrays and objects.
fn depth(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        serde_json::Value::Object(fields) => 1 + fields.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}
