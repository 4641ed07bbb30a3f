//! Key-shaped strings: a manifest is committed to git, so it must never hold a secret.
//!
//! This is a deliberately small, prefix-anchored list of the credential formats people
//! actually paste into config files. The full credential detector (entropy, context,
//! more formats) belongs to the detector library; this one only has to keep secrets out
//! of `psf.yaml` without false alarms on ordinary prose.

use serde_json::Value;

use crate::diagnostic::{Code, Diagnostic};
use crate::yaml::{Document, escape_token};

/// A credential format: the literal it starts with, the characters its body may hold,
/// and the shortest body that counts.
struct Shape {
    prefix: &'static str,
    body: fn(u8) -> bool,
    min_body: usize,
    name: &'static str,
}

fn token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn upper_alnum(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}

fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

const SHAPES: &[Shape] = &[
    Shape { prefix: "sk-ant-", body: token_char, min_body: 20, name: "an Anthropic API key" },
    Shape { prefix: "sk-", body: token_char, min_body: 20, name: "an OpenAI-style API key" },
    Shape { prefix: "sk_live_", body: alnum, min_body: 16, name: "a Stripe secret key" },
    Shape { prefix: "rk_live_", body: alnum, min_body: 16, name: "a Stripe restricted key" },
    Shape { prefix: "AKIA", body: upper_alnum, min_body: 16, name: "an AWS access key id" },
    Shape { prefix: "ASIA", body: upper_alnum, min_body: 16, name: "an AWS temporary access key id" },
    Shape { prefix: "AIza", body: token_char, min_body: 35, name: "a Google API key" },
    Shape { prefix: "ghp_", body: alnum, min_body: 36, name: "a GitHub token" },
    Shape { prefix: "gho_", body: alnum, min_body: 36, name: "a GitHub token" },
    Shape { prefix: "ghs_", body: alnum, min_body: 36, name: "a GitHub token" },
    Shape { prefix: "github_pat_", body: token_char, min_body: 22, name: "a GitHub token" },
    Shape { prefix: "glpat-", body: token_char, min_body: 20, name: "a GitLab token" },
    Shape { prefix: "xoxb-", body: token_char, min_body: 20, name: "a Slack token" },
    Shape { prefix: "xoxp-", body: token_char, min_body: 20, name: "a Slack token" },
    Shape { prefix: "hf_", body: alnum, min_body: 30, name: "a Hugging Face token" },
    Shape { prefix: "Bearer ", body: token_char, min_body: 20, name: "a bearer token" },
];

/// What kind of secret `text` appears to contain, if any.
pub(crate) fn find(text: &str) -> Option<&'static str> {
    let bytes = text.as_bytes();
    for shape in SHAPES {
        for (start, _) in text.match_indices(shape.prefix) {
            // The prefix must start a token: `task-` must not match `sk-`.
            if start > 0 && token_char(bytes[start - 1]) {
                continue;
            }
            let body = &bytes[start + shape.prefix.len()..];
            let len = body.iter().take_while(|b| (shape.body)(**b)).count();
            if len >= shape.min_body {
                return Some(shape.name);
            }
        }
    }
    if text.contains("-----BEGIN") && text.contains("PRIVATE KEY") {
        return Some("a private key");
    }
    if has_jwt(text) {
        return Some("a JSON Web Token");
    }
    if has_url_password(text) {
        return Some("a URL with a password in it");
    }
    if text.contains("hooks.slack.com/services/") {
        return Some("a Slack webhook URL (its path is the secret)");
    }
    None
}

fn has_jwt(text: &str) -> bool {
    text.match_indices("eyJ").any(|(start, _)| {
        let token: &str = text[start..]
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
            .next()
            .unwrap_or_default();
        let parts: Vec<&str> = token.split('.').collect();
        parts.len() == 3 && parts[1].starts_with("eyJ") && parts.iter().all(|p| p.len() >= 8)
    })
}

fn has_url_password(text: &str) -> bool {
    text.match_indices("://").any(|(i, _)| {
        let rest = &text[i + 3..];
        let authority = rest.split(['/', ' ', '\n', '"', '\'']).next().unwrap_or_default();
        match authority.rsplit_once('@') {
            Some((userinfo, _)) => match userinfo.split_once(':') {
                Some((_, password)) => !password.is_empty() && !password.starts_with("${"),
                None => false,
            },
            None => false,
        }
    })
}

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

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn finds_key_shapes() {
        assert!(find("sk-proj-abcdefghijklmnopqrstuvwx").is_some());
        assert_eq!(find("key: sk-ant-api03-abcdefghijklmnopqrstuv"), Some("an Anthropic API key"));
        assert!(find("AKIAIOSFODNN7EXAMPLE").is_some());
        assert!(find("-----BEGIN RSA PRIVATE KEY-----\nMIIE").is_some());
        assert!(
            find("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U")
                .is_some()
        );
        assert!(find("postgres://app:hunter22@db.internal/psf").is_some());
        assert!(find("https://hooks.slack.com/services/T000/B000/XXXX").is_some());
    }

    #[test]
    fn ignores_near_misses() {
        assert!(find("task-force-of-twenty-people-here").is_none());
        assert!(find("sk-short").is_none());
        assert!(find("OPENAI_API_KEY").is_none());
        assert!(find("postgres://app:${DB_PASSWORD}@db/psf").is_none());
        assert!(find("https://api.openai.com/v1").is_none());
        assert!(find("Answer questions about the staff handbook. Be brief.").is_none());
        assert!(find("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").is_none());
    }
}
