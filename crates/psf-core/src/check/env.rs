//! `${VAR}` and `${VAR:-default}` references in manifest values, expanded when a
//! gateway loads the manifest (not by `psf check`, which treats them as references).
//!
//! Only string values are expanded, and only references whose name is a valid
//! environment variable name; anything else stays as written.

use serde_json::Value;

use crate::diagnostic::{Code, Diagnostic};
use crate::yaml::SpanMap;

/// Expands every reference in the string values of `value`; reports unset variables
/// without a default at their position.
pub(crate) fn expand(
    value: &mut Value,
    pointer: &mut String,
    spans: &SpanMap,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<Diagnostic>,
) {
    match value {
        Value::String(s) if s.contains("${") => match expand_str(s, env) {
            Ok(expanded) => *s = expanded,
            Err(name) => {
                let mut d = Diagnostic::new(
                    Code::UnsetVariable,
                    pointer.clone(),
                    format!("environment variable `{name}` is not set"),
                )
                .help(format!("set `{name}` before starting the gateway, or give a default: `${{{name}:-value}}`"));
                d.position = spans.value_position(pointer);
                errors.push(d);
            }
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = pointer.len();
                pointer.push_str(&format!("/{i}"));
                expand(item, pointer, spans, env, errors);
                pointer.truncate(len);
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&crate::yaml::escape_token(k));
                expand(item, pointer, spans, env, errors);
                pointer.truncate(len);
            }
        }
        _ => {}
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Expands the references in one string; `Err(name)` for the first unset variable
/// without a default.
pub(crate) fn expand_str(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if !valid_name(name) {
            out.push_str(&rest[start..start + 2 + end + 1]);
        } else {
            match (env(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => return Err(name.to_string()),
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "HOST").then(|| "10.0.0.1".to_string())
    }

    #[test]
    fn references_expand() {
        assert_eq!(expand_str("http://${HOST}:8080/v1", &env), Ok("http://10.0.0.1:8080/v1".into()));
        assert_eq!(expand_str("${PORT:-9000}", &env), Ok("9000".into()));
        assert_eq!(expand_str("${HOST:-x}", &env), Ok("10.0.0.1".into()));
        assert_eq!(expand_str("${NOPE}", &env), Err("NOPE".into()));
        // Not references: left as written.
        assert_eq!(expand_str("${not a name} and ${", &env), Ok("${not a name} and ${".into()));
    }
}
