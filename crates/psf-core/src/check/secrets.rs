//! Key-shaped strings: a manifest is committed to git, so it must never hold a secret.
//! The credential formats themselves live in `psf_detect::secrets`, shared with the
//! gateway's PII detector.

use psf_detect::secrets::first as find;
use serde_json::Value;

use crate::diagnostic::{Code, Diagnostic};
use crate::yaml::{Document, escape_token};

/// Reports every string in the document that holds a secret. The secret itself is
/// never repeated in the message.
pub(crate) fn check(doc: &Document) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    walk(&doc.value, String::new(), &mut |pointer, text| {
        if let Some(kind) = find(text) {
            let mut d = Diagnostic::new(
                Code::SecretInClear,
                pointer.to_string(),
                format!("{} holds what looks like {kind}", super::structure::describe(pointer)),
            )
            .help(
                "remove it from the manifest and rotate it: anyone with the file has it; \
                 reference secrets by environment variable instead (`api_key_env: OPENAI_API_KEY`, \
                 or `${VAR}` in any value)",
            );
            d.position = doc.spans.value_position(pointer);
            d.show_source = false;
            out.push(d);
        }
    });
    out
}

fn walk(value: &Value, pointer: String, f: &mut impl FnMut(&str, &str)) {
    match value {
        Value::String(s) => f(&pointer, s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, format!("{pointer}/{i}"), f);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                walk(v, format!("{pointer}/{}", escape_token(k)), f);
            }
        }
        _ => {}
    }
}
