//! Credentials of known formats: API keys, tokens, private keys, JWTs, URLs with
//! passwords. Prefix-anchored, so ordinary prose does not trip them.

use std::ops::Range;
use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use crate::finding::EntityType;

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
    Shape {
        prefix: "hooks.slack.com/services/",
        body: |b| token_char(b) || b == b'/',
        min_body: 20,
        name: "a Slack webhook URL",
    },
];

/// A credential found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    /// Byte range of the credential.
    pub span: Range<usize>,
    /// What it appears to be, e.g. "a GitHub token".
    pub name: &'static str,
    /// The entity type it is reported as.
    pub entity: EntityType,
}

/// The literals a credential starts with or holds: each shape's prefix, then the
/// private key header, the JWT header and the URL scheme separator.
fn literals() -> impl Iterator<Item = &'static str> {
    SHAPES.iter().map(|s| s.prefix).chain([PEM, JWT, SCHEME])
}

const PEM: &str = "-----BEGIN";
const JWT: &str = "eyJ";
const SCHEME: &str = "://";

/// All the literals in one automaton: one pass over the text finds every occurrence.
static LITERALS: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| AhoCorasick::new(literals()).ok());

/// Where each literal occurs in `text`, as (literal index, start), overlaps included
/// (`sk-ant-` is also `sk-`), by literal then start.
fn occurrences(text: &str) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = match LITERALS.as_ref() {
        Some(ac) => ac.find_overlapping_iter(text).map(|m| (m.pattern().as_usize(), m.start())).collect(),
        // Building the automaton of these few literals cannot fail; if it somehow did,
        // a search per literal finds the same.
        None => literals().enumerate().flat_map(|(i, l)| text.match_indices(l).map(move |(at, _)| (i, at))).collect(),
    };
    out.sort_unstable();
    out
}

/// Every credential in `text`, in no particular order, possibly overlapping.
pub fn scan(text: &str) -> Vec<Secret> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let found = occurrences(text);
    // Where literal `i` starts (the shapes' prefixes first, then PEM, JWT, SCHEME).
    let at = |i: usize| found.iter().filter(move |(l, _)| *l == i).map(|(_, start)| *start);
    for (i, shape) in SHAPES.iter().enumerate() {
        for start in at(i) {
            // The prefix must start a token: `task-` must not match `sk-`.
            if start > 0 && token_char(bytes[start - 1]) && !shape.prefix.contains('.') {
                continue;
            }
            let body_start = start + shape.prefix.len();
            let len = bytes[body_start..].iter().take_while(|b| (shape.body)(**b)).count();
            if len >= shape.min_body {
                out.push(Secret { span: start..body_start + len, name: shape.name, entity: EntityType::ApiKey });
            }
        }
    }
    for start in at(SHAPES.len()) {
        let header_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        if !text[start..header_end].contains("PRIVATE KEY") {
            continue;
        }
        let end = text[start..]
            .find("-----END")
            .and_then(|i| text[start + i + 8..].find("-----").map(|j| start + i + 8 + j + 5))
            .unwrap_or(text.len());
        out.push(Secret { span: start..end, name: "a private key", entity: EntityType::PrivateKey });
    }
    for start in at(SHAPES.len() + 1) {
        if start > 0 && token_char(bytes[start - 1]) {
            continue;
        }
        let len = bytes[start..].iter().take_while(|b| token_char(**b) || **b == b'.').count();
        let token = &text[start..start + len];
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() == 3 && parts[1].starts_with("eyJ") && parts.iter().all(|p| p.len() >= 8) {
            out.push(Secret { span: start..start + len, name: "a JSON Web Token", entity: EntityType::Jwt });
        }
    }
    for i in at(SHAPES.len() + 2) {
        let scheme_len =
            bytes[..i].iter().rev().take_while(|b| b.is_ascii_alphanumeric() || b"+.-".contains(b)).count();
        let rest = &text[i + 3..];
        let authority_len = rest.find(['/', ' ', '\n', '"', '\'', '\t']).unwrap_or(rest.len());
        let authority = &rest[..authority_len];
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
            && !password.is_empty()
            && !password.starts_with("${")
            && scheme_len > 0
        {
            let span = i - scheme_len..i + 3 + authority_len;
            out.push(Secret { span, name: "a URL with a password in it", entity: EntityType::UrlCredentials });
        }
    }
    out
}

/// What kind of credential `text` appears to contain, if any.
pub fn first(text: &str) -> Option<&'static str> {
    scan(text).into_iter().min_by_key(|s| s.span.start).map(|s| s.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_key_shapes_with_spans() {
        let text = "key=sk-proj-abcdefghijklmnopqrstuvwx end";
        let found = scan(text);
        assert_eq!(found.len(), 1);
        assert_eq!(&text[found[0].span.clone()], "sk-proj-abcdefghijklmnopqrstuvwx");
        assert_eq!(first("key: sk-ant-api03-abcdefghijklmnopqrstuv"), Some("an Anthropic API key"));
        assert!(first("AKIAIOSFODNN7EXAMPLE").is_some());
        let pem = "x -----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- y";
        let s = scan(pem);
        assert_eq!(&pem[s[0].span.clone()], "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----");
        assert!(
            first("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U")
                .is_some()
        );
        let url = "see postgres://app:hunter22@db.internal/psf now";
        let s = scan(url);
        assert_eq!(&url[s[0].span.clone()], "postgres://app:hunter22@db.internal");
        assert!(first("https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX").is_some());
    }

    #[test]
    fn ignores_near_misses() {
        for text in [
            "task-force-of-twenty-people-here",
            "sk-short",
            "OPENAI_API_KEY",
            "postgres://app:${DB_PASSWORD}@db/psf",
            "https://api.openai.com/v1",
            "Answer questions about the staff handbook. Be brief.",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "-----BEGIN CERTIFICATE-----",
        ] {
            assert!(first(text).is_none(), "{text}");
        }
    }
}
