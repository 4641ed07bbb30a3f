//! YAML text to a JSON value, remembering where every node came from.
//!
//! Validation works on `serde_json::Value` (the manifest's JSON Schema and serde both
//! speak it), but every problem must point at a line and column of the file the person
//! wrote. So this module walks saphyr's event stream once, builds the value, and records
//! for each node its JSON pointer (`/decision_points/0/model`) with the position of the
//! node's value and, for mapping entries, of its key.
//!
//! Scalars are resolved with the YAML 1.2 core schema: `yes`, `on` and `2026-01-02` stay
//! strings, which is what people who write `psf.yaml` mean by them.

use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use serde_json::{Map, Number, Value};

/// Documents nest deeper than this only by accident or malice; refuse them before the
/// recursion that builds the value can exhaust the stack.
const MAX_DEPTH: usize = 64;

/// Aliases can make a small file expand into billions of nodes ("billion laughs").
const MAX_NODES: usize = 200_000;

/// A position in the source text, both numbers counted from 1, columns in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl Position {
    fn from_span(span: &Span) -> Position {
        Position { line: span.start.line(), column: span.start.col() + 1 }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Where a node sits in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSpan {
    /// The node's key, when the node is the value of a mapping entry.
    pub key: Option<Position>,
    /// The node's value.
    pub value: Position,
}

/// Positions of the nodes of one document, by JSON pointer.
#[derive(Debug, Default, Clone)]
pub struct SpanMap {
    nodes: HashMap<String, NodeSpan>,
}

impl SpanMap {
    /// The span of the node at `pointer`, if the document has such a node.
    pub fn get(&self, pointer: &str) -> Option<NodeSpan> {
        self.nodes.get(pointer).copied()
    }

    /// The best position to report a problem with the node at `pointer`: its value, or
    /// failing that the nearest ancestor that exists (a missing field is reported at the
    /// mapping that lacks it).
    pub fn value_position(&self, pointer: &str) -> Position {
        self.nearest(pointer).value
    }

    /// Like [`SpanMap::value_position`], but a mapping entry is reported at its key.
    pub fn key_position(&self, pointer: &str) -> Position {
        let span = self.nearest(pointer);
        span.key.unwrap_or(span.value)
    }

    fn nearest(&self, pointer: &str) -> NodeSpan {
        let mut p = pointer;
        loop {
            if let Some(span) = self.nodes.get(p) {
                return *span;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => {
                    let start = Position { line: 1, column: 1 };
                    return NodeSpan { key: None, value: start };
                }
            }
        }
    }
}

/// A parsed YAML document.
#[derive(Debug, Clone)]
pub struct Document {
    /// The document as JSON.
    pub value: Value,
    /// Where each node came from.
    pub spans: SpanMap,
}

/// Why a text is not a YAML document psf can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// What is wrong, as a sentence fragment without a trailing period.
    pub message: String,
    /// Where.
    pub position: Position,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.position, self.message)
    }
}

impl std::error::Error for YamlError {}

/// Escapes one reference token of a JSON pointer (RFC 6901).
pub fn escape_token(token: &str) -> std::borrow::Cow<'_, str> {
    if token.contains(['~', '/']) { token.replace('~', "~0").replace('/', "~1").into() } else { token.into() }
}

/// Parses `text` as a single YAML document.
pub fn parse(text: &str) -> Result<Document, YamlError> {
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        spans: SpanMap::default(),
        anchors: HashMap::new(),
        nodes: 0,
        last: Position { line: 1, column: 1 },
    };
    builder.document()
}

struct Builder<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    spans: SpanMap,
    anchors: HashMap<usize, Value>,
    nodes: usize,
    last: Position,
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Position), YamlError> {
        match self.parser.next_event() {
            Some(Ok((event, span))) => {
                self.last = Position::from_span(&span);
                Ok((event, self.last))
            }
            Some(Err(e)) => Err(YamlError {
                message: e.info().to_string(),
                position: Position { line: e.marker().line(), column: e.marker().col() + 1 },
            }),
            None => Err(self.error(self.last, "unexpected end of input")),
        }
    }

    fn error(&self, position: Position, message: impl Into<String>) -> YamlError {
        YamlError { message: message.into(), position }
    }

    fn document(&mut self) -> Result<Document, YamlError> {
        let (event, pos) = self.next()?;
        if event != Event::StreamStart {
            return Err(self.error(pos, "expected the start of a YAML stream"));
        }
        let value = match self.next()? {
            (Event::StreamEnd, _) => Value::Null,
            (Event::DocumentStart(_), _) => {
                let (event, pos) = self.next()?;
                let value = self.node(event, pos, String::new(), None, 0)?;
                match self.next()? {
                    (Event::DocumentEnd, _) => {}
                    (_, pos) => return Err(self.error(pos, "expected the end of the document")),
                }
                match self.next()? {
                    (Event::StreamEnd, _) => {}
                    (_, pos) => {
                        return Err(self.error(pos, "found a second YAML document; a manifest is one document"));
                    }
                }
                value
            }
            (_, pos) => return Err(self.error(pos, "expected a YAML document")),
        };
        Ok(Document { value, spans: std::mem::take(&mut self.spans) })
    }

    fn node(
        &mut self,
        event: Event<'a>,
        pos: Position,
        pointer: String,
        key: Option<Position>,
        depth: usize,
    ) -> Result<Value, YamlError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(
                self.error(pos, format!("the document has more than {MAX_NODES} nodes once aliases are expanded"))
            );
        }
        if depth > MAX_DEPTH {
            return Err(self.error(pos, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.spans.nodes.insert(pointer.clone(), NodeSpan { key, value: pos });
        let (value, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => (self.scalar(&text, style, tag.as_deref(), pos)?, anchor),
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(v) => {
                    self.nodes += count_nodes(v);
                    (v.clone(), 0)
                }
                None => return Err(self.error(pos, "alias to an anchor that is not defined")),
            },
            Event::SequenceStart(anchor, tag) => {
                self.refuse_tag(tag.as_deref(), pos)?;
                let mut items = Vec::new();
                loop {
                    let (event, item_pos) = self.next()?;
                    if event == Event::SequenceEnd {
                        break;
                    }
                    let child = format!("{pointer}/{}", items.len());
                    items.push(self.node(event, item_pos, child, None, depth + 1)?);
                }
                (Value::Array(items), anchor)
            }
            Event::MappingStart(anchor, tag) => {
                self.refuse_tag(tag.as_deref(), pos)?;
                let mut map = Map::new();
                loop {
                    let (event, key_pos) = self.next()?;
                    let key = match event {
                        Event::MappingEnd => break,
                        Event::Scalar(text, ..) => text.into_owned(),
                        _ => {
                            return Err(
                                self.error(key_pos, "mapping keys must be plain text, not lists, mappings or aliases")
                            );
                        }
                    };
                    if map.contains_key(&key) {
                        return Err(self.error(key_pos, format!("duplicate key `{key}`")));
                    }
                    let child = format!("{pointer}/{}", escape_token(&key));
                    let (event, value_pos) = self.next()?;
                    let value = self.node(event, value_pos, child, Some(key_pos), depth + 1)?;
                    map.insert(key, value);
                }
                (Value::Object(map), anchor)
            }
            _ => return Err(self.error(pos, "unexpected YAML event")),
        };
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
        Ok(value)
    }

    fn refuse_tag(&self, tag: Option<&Tag>, pos: Position) -> Result<(), YamlError> {
        match tag {
            Some(tag) if !tag.is_yaml_core_schema() => Err(self.error(pos, format!("unsupported YAML tag `{tag}`"))),
            _ => Ok(()),
        }
    }

    fn scalar(&self, text: &str, style: ScalarStyle, tag: Option<&Tag>, pos: Position) -> Result<Value, YamlError> {
        if let Some(tag) = tag {
            if !tag.is_yaml_core_schema() {
                return Err(self.error(pos, format!("unsupported YAML tag `{tag}`")));
            }
            let resolved = match tag.suffix.as_str() {
                "str" => Some(Value::String(text.to_string())),
                "null" => resolve_null(text),
                "bool" => resolve_bool(text),
                "int" => resolve_int(text),
                "float" => resolve_float(text).or_else(|| resolve_int(text)),
                _ => None,
            };
            return resolved.ok_or_else(|| self.error(pos, format!("`{text}` cannot be read as `!!{}`", tag.suffix)));
        }
        if style != ScalarStyle::Plain {
            return Ok(Value::String(text.to_string()));
        }
        if let Some(v) = resolve_null(text).or_else(|| resolve_bool(text)) {
            return Ok(v);
        }
        if let Some(v) = resolve_int(text).or_else(|| resolve_float(text)) {
            return Ok(v);
        }
        if matches!(text, ".inf" | ".Inf" | ".INF" | "+.inf" | "-.inf" | "-.Inf" | "-.INF" | ".nan" | ".NaN") {
            return Err(self.error(pos, format!("`{text}` is not a finite number")));
        }
        Ok(Value::String(text.to_string()))
    }
}

fn count_nodes(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Value::Object(map) => 1 + map.values().map(count_nodes).sum::<usize>(),
        _ => 1,
    }
}

fn resolve_null(text: &str) -> Option<Value> {
    matches!(text, "" | "~" | "null" | "Null" | "NULL").then_some(Value::Null)
}

fn resolve_bool(text: &str) -> Option<Value> {
    match text {
        "true" | "True" | "TRUE" => Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => Some(Value::Bool(false)),
        _ => None,
    }
}

fn resolve_int(text: &str) -> Option<Value> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(hex) = digits.strip_prefix("0x") {
        (16, hex)
    } else if let Some(oct) = digits.strip_prefix("0o") {
        (8, oct)
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i64::from_str_radix(digits, radix).ok()?;
    Some(Value::Number(Number::from(if negative { -magnitude } else { magnitude })))
}

fn resolve_float(text: &str) -> Option<Value> {
    // The core schema's float form: digits with a dot and/or an exponent. Rust's parser
    // accepts more (`inf`, `NaN`), so check the shape first.
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mantissa_ok = !mantissa.is_empty()
        && mantissa != "."
        && mantissa.chars().filter(|c| *c == '.').count() <= 1
        && mantissa.chars().all(|c| c.is_ascii_digit() || c == '.');
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
    });
    if !mantissa_ok || !exponent_ok || (exponent.is_none() && !mantissa.contains('.')) {
        return None;
    }
    let f: f64 = text.parse().ok()?;
    Number::from_f64(f).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_and_positions() {
        let text = "a: 1\nb:\n  - x\n  - 'y'\n  - {c: true, d: ~}\ne: 2026-01-02\n";
        let doc = parse(text).unwrap();
        assert_eq!(doc.value, json!({"a": 1, "b": ["x", "y", {"c": true, "d": null}], "e": "2026-01-02"}));
        let span = doc.spans.get("/b/1").unwrap();
        assert_eq!(span.value, Position { line: 4, column: 5 });
        let span = doc.spans.get("/b/2/d").unwrap();
        assert_eq!(span.key, Some(Position { line: 5, column: 15 }));
        assert_eq!(doc.spans.key_position("/e"), Position { line: 6, column: 1 });
        // A missing node is reported at its nearest ancestor.
        assert_eq!(doc.spans.value_position("/b/2/zz"), Position { line: 5, column: 5 });
    }

    #[test]
    fn core_schema_scalars() {
        let doc = parse("[yes, on, 0x1F, -0o17, 1.5e3, .5, 1., '12', !!str 12, 1e5, +3]").unwrap();
        assert_eq!(doc.value, json!(["yes", "on", 31, -15, 1500.0, 0.5, 1.0, "12", "12", 100000.0, 3]));
        assert!(parse("a: .nan").is_err());
    }

    #[test]
    fn errors_point_at_the_problem() {
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.position.line, 2);
        assert!(err.message.contains("duplicate key `a`"));
        let err = parse("a: [1, 2\n").unwrap_err();
        assert!(err.position.line >= 1);
        assert!(parse("a: 1\n---\nb: 2\n").unwrap_err().message.contains("second YAML document"));
        assert!(parse("a: !custom x").unwrap_err().message.contains("unsupported YAML tag"));
    }

    #[test]
    fn aliases_expand_within_limits() {
        let doc = parse("a: &x {k: 1}\nb: *x\n").unwrap();
        assert_eq!(doc.value["b"], json!({"k": 1}));
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(parse(&bomb).unwrap_err().message.contains("aliases are expanded"));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(parse(&deep).unwrap_err().message.contains("nesting deeper"));
        // Deeper still, the parser's own limit answers first; either way, no overflow.
        let deeper = "[".repeat(100_000);
        assert!(parse(&deeper).is_err());
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        let doc = parse("\"a/b~c\": 1").unwrap();
        assert!(doc.spans.get("/a~1b~0c").is_some());
    }
}
