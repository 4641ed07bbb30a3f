//! The structural pass: the manifest's own JSON Schema, applied to the parsed document.
//!
//! serde stops at the first problem; a person fixing a file wants all of them. So the
//! document is first validated against the schema that schemars derives from the
//! manifest types (one source of truth), every error is collected, and each is
//! translated into psf's codes and plain words, with the allowed keys or values looked
//! up in the schema for the "did you mean" help.

use std::sync::LazyLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{JsonType, ValidationError, Validator};
use serde_json::Value;

use crate::diagnostic::{Code, Diagnostic, did_you_mean};
use crate::manifest::Manifest;
use crate::yaml::{Document, escape_token};

/// The manifest schema, derived and compiled once.
static SCHEMA: LazyLock<Value> = LazyLock::new(Manifest::json_schema);

static VALIDATOR: LazyLock<Result<Validator, String>> =
    LazyLock::new(|| jsonschema::options().should_validate_formats(true).build(&SCHEMA).map_err(|e| e.to_string()));

/// Validates `doc` against the manifest schema and returns one diagnostic per problem.
pub(crate) fn check(doc: &Document) -> Vec<Diagnostic> {
    let validator = match &*VALIDATOR {
        Ok(v) => v,
        // The schema is generated from our own types, so this is a bug in psf, but a
        // request path must not panic on it.
        Err(e) => {
            let d = Diagnostic::new(Code::SchemaViolation, "", format!("psf's manifest schema does not compile: {e}"))
                .help("this is a bug in psf; please report it");
            return vec![Diagnostic { position: doc.spans.value_position(""), ..d }];
        }
    };
    if !doc.value.is_object() {
        let what = if doc.value.is_null() { "the file is empty" } else { "the top level is not a mapping" };
        let mut d = Diagnostic::new(Code::WrongType, "", format!("{what}; a manifest is a mapping of sections"))
            .help("start from `psf init`, which writes a commented manifest that passes `psf check`");
        d.position = doc.spans.value_position("");
        return vec![d];
    }
    let mut out = Vec::new();
    for error in validator.iter_errors(&doc.value) {
        for error in innermost(error) {
            out.extend(translate(&error, doc));
        }
    }
    out
}

/// `anyOf` and `oneOf` failures (schemars emits them for optional sections and
/// documented enums) say only "not valid under any schema". When the value has the
/// right type for one branch, that branch's own errors are the useful ones.
fn innermost(error: ValidationError<'_>) -> Vec<ValidationError<'static>> {
    let error = error.to_owned();
    let here = error.instance_path().to_string();
    let branches = match error.kind() {
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => context,
        _ => return vec![error],
    };
    let mismatched = |errors: &Vec<ValidationError<'static>>| {
        errors.iter().any(|e| {
            e.instance_path().to_string() == here
                && matches!(
                    e.kind(),
                    ValidationErrorKind::Type { .. }
                        | ValidationErrorKind::Constant { .. }
                        | ValidationErrorKind::Enum { .. }
                )
        })
    };
    let chosen = branches
        .iter()
        .enumerate()
        .filter(|(_, errors)| !errors.is_empty() && !mismatched(errors))
        .min_by_key(|(_, errors)| errors.len())
        .map(|(i, _)| i);
    let Some(chosen) = chosen else { return vec![error] };
    match error.into_parts().kind {
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            context.into_iter().nth(chosen).unwrap_or_default().into_iter().flat_map(innermost).collect()
        }
        _ => Vec::new(),
    }
}

fn translate(error: &ValidationError<'_>, doc: &Document) -> Vec<Diagnostic> {
    let pointer = error.instance_path().to_string();
    let place = describe(&pointer);
    let spans = &doc.spans;
    let at_value = |d: Diagnostic| {
        let position = spans.value_position(&d.pointer);
        Diagnostic { position, ..d }
    };
    let schema = schema_at(&pointer);
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => unexpected
            .iter()
            .map(|key| {
                let child = format!("{pointer}/{}", escape_token(key));
                let known = schema.map(property_names).unwrap_or_default();
                let mut d =
                    Diagnostic::new(Code::UnknownField, child.clone(), format!("unknown field `{key}` in {place}"));
                d.help = Some(unknown_field_help(key, &known));
                d.position = spans.key_position(&child);
                d
            })
            .collect(),
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            let child = format!("{pointer}/{}", escape_token(name));
            let about = schema
                .and_then(|s| s.get("properties")?.get(name))
                .and_then(|p| resolve(p).get("description")?.as_str().map(str::to_owned));
            let mut d = Diagnostic::new(Code::MissingField, child, format!("missing field `{name}` in {place}"));
            d.help = Some(match about {
                Some(about) => format!("add `{name}:` here: {}", lowercase_first(&about)),
                None => format!("add `{name}:` here"),
            });
            d.position = spans.key_position(&pointer);
            vec![d]
        }
        ValidationErrorKind::Type { kind } => {
            let expected: Vec<JsonType> = match kind {
                TypeKind::Single(t) => vec![*t],
                TypeKind::Multiple(set) => set.into_iter().collect(),
            };
            let expected: Vec<JsonType> = expected.into_iter().filter(|t| *t != JsonType::Null).collect();
            let words: Vec<&str> = expected.iter().copied().map(type_words).collect();
            let found = value_words(error.instance());
            let d = Diagnostic::new(
                Code::WrongType,
                pointer.clone(),
                format!("{place} should be {}, found {found}", words.join(" or ")),
            )
            .help(expected.first().map_or("see `psf schema` for the expected shape", |t| type_help(*t)));
            vec![at_value(d)]
        }
        ValidationErrorKind::Enum { .. }
        | ValidationErrorKind::Constant { .. }
        | ValidationErrorKind::OneOfNotValid { .. }
        | ValidationErrorKind::AnyOf { .. } => {
            let options = schema.map(options).unwrap_or_default();
            let found = error.instance();
            let shown = found.as_str().map_or_else(|| found.to_string(), str::to_owned);
            let mut d = Diagnostic::new(
                Code::InvalidValue,
                pointer.clone(),
                format!("`{shown}` is not a valid value for {place}"),
            );
            if options.is_empty() {
                d.help = Some(format!("{place} does not have an allowed shape; `psf schema` shows what it accepts"));
            } else {
                let guess = found.as_str().and_then(|s| did_you_mean(s, options.iter().map(String::as_str)));
                d.help = Some(match guess {
                    Some(g) => format!("did you mean `{g}`? expected one of: {}", options.join(", ")),
                    None => format!("expected one of: {}", options.join(", ")),
                });
            }
            vec![at_value(d)]
        }
        ValidationErrorKind::Minimum { limit }
        | ValidationErrorKind::ExclusiveMinimum { limit }
        | ValidationErrorKind::Maximum { limit }
        | ValidationErrorKind::ExclusiveMaximum { limit } => {
            let side = match error.kind() {
                ValidationErrorKind::Minimum { .. } | ValidationErrorKind::ExclusiveMinimum { .. } => {
                    "below the minimum"
                }
                _ => "above the maximum",
            };
            let d = Diagnostic::new(
                Code::OutOfRange,
                pointer.clone(),
                format!("{place} is {}, {side} of {limit}", error.instance()),
            )
            .help(range_help(schema));
            vec![at_value(d)]
        }
        ValidationErrorKind::MinLength { .. } | ValidationErrorKind::MinItems { .. } => {
            let d = Diagnostic::new(Code::Empty, pointer.clone(), format!("{place} must not be empty"));
            let d = match schema.and_then(|s| s.get("description")).and_then(Value::as_str) {
                Some(about) => d.help(format!("fill it in: {}", lowercase_first(about))),
                None => d,
            };
            vec![at_value(d)]
        }
        ValidationErrorKind::Format { format } if format == "date" => {
            let d = Diagnostic::new(
                Code::BadDate,
                pointer.clone(),
                format!("{place} is {}, not a calendar date", error.instance()),
            )
            .help("write dates as YYYY-MM-DD, e.g. 2026-03-31");
            vec![at_value(d)]
        }
        _ => {
            let d = Diagnostic::new(Code::SchemaViolation, pointer.clone(), format!("{place}: {error}"));
            vec![at_value(d)]
        }
    }
}

fn unknown_field_help(key: &str, known: &[String]) -> String {
    if key == "score" {
        return "a risk's score is likelihood x impact and is derived, never typed; remove it".into();
    }
    if known.is_empty() {
        return "remove it".into();
    }
    match did_you_mean(key, known.iter().map(String::as_str)) {
        Some(guess) => format!("did you mean `{guess}`?"),
        None => format!("expected one of: {}", known.join(", ")),
    }
}

fn range_help(schema: Option<&Value>) -> String {
    let s = schema.map(resolve);
    let min = s.and_then(|s| s.get("minimum"));
    let max = s.and_then(|s| s.get("maximum"));
    match (min, max) {
        (Some(a), Some(b)) => format!("use a value from {a} to {b}"),
        (Some(a), None) => format!("use a value of at least {a}"),
        (None, Some(b)) => format!("use a value of at most {b}"),
        (None, None) => "use a value within range".into(),
    }
}

/// A pointer in words: `/decision_points/0/model` → "`decision_points[0].model`".
pub(crate) fn describe(pointer: &str) -> String {
    if pointer.is_empty() {
        return "the top level".into();
    }
    let mut out = String::new();
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{token}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&token);
        }
    }
    format!("`{out}`")
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn type_words(t: JsonType) -> &'static str {
    match t {
        JsonType::Array => "a list",
        JsonType::Boolean => "true or false",
        JsonType::Integer => "a whole number",
        JsonType::Null => "empty",
        JsonType::Number => "a number",
        JsonType::Object => "a mapping",
        JsonType::String => "text",
    }
}

fn type_help(t: JsonType) -> &'static str {
    match t {
        JsonType::Array => "write it as a list: one `- item` per line, or `[a, b]` on one line",
        JsonType::Boolean => "write `true` or `false`, without quotes",
        JsonType::Integer | JsonType::Number => "write the number without quotes or units",
        JsonType::Object => "write it as `key: value` lines indented under it",
        JsonType::String => "write it as text; quote it if it looks like a number, a date or true/false",
        JsonType::Null => "remove the value",
    }
}

fn value_words(v: &Value) -> String {
    match v {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the text \"{s}\""),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// Follows `$ref`s into `$defs`.
fn resolve(schema: &Value) -> &Value {
    let mut s = schema;
    for _ in 0..16 {
        match s.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/")) {
            Some(name) => match SCHEMA.get("$defs").and_then(|d| d.get(name)) {
                Some(next) => s = next,
                None => break,
            },
            None => break,
        }
    }
    s
}

/// The (resolved) schema of the node at `pointer`, walking the manifest schema along it.
fn schema_at(pointer: &str) -> Option<&'static Value> {
    let mut s: &'static Value = &SCHEMA;
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        s = descend(s, &token)?;
    }
    Some(resolve(s))
}

fn descend(schema: &'static Value, token: &str) -> Option<&'static Value> {
    let s = resolve(schema);
    if let Some(p) = s.get("properties").and_then(|p| p.get(token)) {
        return Some(p);
    }
    if let Some(items) = s.get("items").filter(|_| token.parse::<usize>().is_ok()) {
        return Some(items);
    }
    if let Some(extra) = s.get("additionalProperties").filter(|v| v.is_object()) {
        return Some(extra);
    }
    ["anyOf", "oneOf", "allOf"]
        .iter()
        .filter_map(|k| s.get(*k)?.as_array())
        .flatten()
        .find_map(|branch| descend(branch, token))
}

/// The keys a mapping schema allows, in schema order.
fn property_names(schema: &Value) -> Vec<String> {
    let s = resolve(schema);
    let mut names: Vec<String> =
        s.get("properties").and_then(Value::as_object).map(|p| p.keys().cloned().collect()).unwrap_or_default();
    for branch in ["anyOf", "oneOf"].iter().filter_map(|k| s.get(*k)?.as_array()).flatten() {
        names.extend(property_names(branch));
    }
    names
}

/// The values an enum schema allows.
fn options(schema: &Value) -> Vec<String> {
    let s = resolve(schema);
    let mut out: Vec<String> = Vec::new();
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        out.extend(values.iter().filter(|v| !v.is_null()).map(text));
    }
    if let Some(c) = s.get("const") {
        out.push(text(c));
    }
    for branch in ["anyOf", "oneOf"].iter().filter_map(|k| s.get(*k)?.as_array()).flatten() {
        out.extend(options(branch));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_pointers() {
        assert_eq!(describe(""), "the top level");
        assert_eq!(describe("/decision_points/0/model"), "`decision_points[0].model`");
        assert_eq!(describe("/a~1b"), "`a/b`");
    }

    #[test]
    fn schema_lookup() {
        let s = schema_at("/decision_points/0").unwrap();
        assert!(property_names(s).contains(&"autonomy".to_string()));
        let s = schema_at("/decision_points/3/autonomy").unwrap();
        assert_eq!(options(s), ["advisory", "supervised", "autonomous"]);
        let s = schema_at("/incident_plan/failure_modes/0").unwrap();
        assert!(property_names(s).contains(&"runbook".to_string()));
    }
}
