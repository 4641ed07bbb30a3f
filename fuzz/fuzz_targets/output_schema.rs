//! JSON extraction from arbitrary model output: whatever span it reports must hold the
//! value it returns, and checking against a schema must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use psf_detect::{OutputSchema, extract_json};
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
    if let Some(schema) = SCHEMA.as_ref() {
        let _ = schema.check(text);
    }
});
