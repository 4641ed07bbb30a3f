//! What to do with findings: redact, tokenize (and restore), or hash.

use std::collections::HashMap;
use std::fmt::Write as _;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::finding::{EntityType, Finding};

/// How a redaction looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedactStyle {
    /// `[EMAIL]`.
    Label,
    /// One `*` per character, so lengths and layout survive.
    Mask,
}

/// Replaces every finding in `text`. `findings` must come from a scan of `text`
/// (ordered, non-overlapping).
pub fn redact(text: &str, findings: &[Finding], style: RedactStyle) -> String {
    replace(text, findings, |f, original, out| match style {
        RedactStyle::Label => {
            let _ = write!(out, "[{}]", f.entity.label());
        }
        RedactStyle::Mask => out.extend(original.chars().map(|_| '*')),
    })
}

/// Replaces each finding with `[LABEL:hhhhhhhhhhhh]`, the first 12 hex digits of the
/// HMAC-SHA256 of the value under `key`: equal values stay linkable across records,
/// without the value being recoverable by anyone who lacks the key.
pub fn hash(text: &str, findings: &[Finding], key: &[u8]) -> String {
    replace(text, findings, |f, original, out| {
        let digest = match Hmac::<Sha256>::new_from_slice(key) {
            Ok(mut mac) => {
                mac.update(original.as_bytes());
                mac.finalize().into_bytes()
            }
            // HMAC takes keys of any length; this arm cannot happen.
            Err(_) => Default::default(),
        };
        let _ = write!(out, "[{}:", f.entity.label());
        for b in &digest[..6] {
            let _ = write!(out, "{b:02x}");
        }
        out.push(']');
    })
}

fn replace(text: &str, findings: &[Finding], mut with: impl FnMut(&Finding, &str, &mut String)) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in findings {
        if f.span.start < at || f.span.end > text.len() {
            continue;
        }
        out.push_str(&text[at..f.span.start]);
        with(f, &text[f.span.clone()], &mut out);
        at = f.span.end;
    }
    out.push_str(&text[at..]);
    out
}

/// What [`Vault::apply`] does with one finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Leave the value as it is.
    Keep,
    /// Replace it with its label, `[EMAIL]`.
    Redact,
    /// Replace it with a placeholder that `detokenize` restores.
    Tokenize,
}

/// The placeholders issued for one request, and the values behind them.
///
/// The model sees `[EMAIL_1]`; the gateway puts the caller's own value back in the
/// reply. The same value gets the same placeholder throughout a request, so the model
/// can still tell two people apart.
#[derive(Debug, Default, Clone)]
pub struct Vault {
    by_value: HashMap<(EntityType, String), String>,
    by_placeholder: HashMap<String, String>,
    counters: HashMap<EntityType, usize>,
}

impl Vault {
    /// An empty vault.
    pub fn new() -> Vault {
        Vault::default()
    }

    /// Replaces every finding with its placeholder.
    pub fn tokenize(&mut self, text: &str, findings: &[Finding]) -> String {
        replace(text, findings, |f, original, out| {
            let placeholder = self.placeholder(f.entity, original, text);
            out.push_str(&placeholder);
        })
    }

    /// Treats each finding as `op` says: keep it, redact it with its label, or replace it
    /// with its placeholder. One pass, so one text can mix policies per data class.
    pub fn apply(&mut self, text: &str, findings: &[Finding], mut op: impl FnMut(&Finding) -> Op) -> String {
        replace(text, findings, |f, original, out| match op(f) {
            Op::Keep => out.push_str(original),
            Op::Redact => {
                let _ = write!(out, "[{}]", f.entity.label());
            }
            Op::Tokenize => {
                let placeholder = self.placeholder(f.entity, original, text);
                out.push_str(&placeholder);
            }
        })
    }

    /// The placeholder for `value`, never one that already occurs in `text` (detokenizing
    /// would otherwise turn the caller's own `[EMAIL_1]` into someone's address).
    fn placeholder(&mut self, entity: EntityType, value: &str, text: &str) -> String {
        if let Some(p) = self.by_value.get(&(entity, value.to_string())) {
            return p.clone();
        }
        let n = self.counters.entry(entity).or_insert(0);
        let mut placeholder;
        loop {
            *n += 1;
            placeholder = format!("[{}_{n}]", entity.label());
            if !text.contains(&placeholder) {
                break;
            }
        }
        self.by_value.insert((entity, value.to_string()), placeholder.clone());
        self.by_placeholder.insert(placeholder.clone(), value.to_string());
        placeholder
    }

    /// Puts the original values back for every placeholder this vault issued; anything
    /// else that looks like a placeholder is left alone.
    pub fn detokenize(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find('[') {
            out.push_str(&rest[..open]);
            let candidate = &rest[open..];
            let close = candidate.find(']').filter(|c| *c <= 40);
            match close.and_then(|c| self.by_placeholder.get(&candidate[..=c]).map(|v| (c, v))) {
                Some((c, value)) => {
                    out.push_str(value);
                    rest = &candidate[c + 1..];
                }
                None => {
                    out.push('[');
                    rest = &candidate[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// Each placeholder issued and the value it stands for, to keep while an answer
    /// waits for review (sorted, so the same vault gives the same list).
    pub fn restorations(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> =
            self.by_placeholder.iter().map(|(p, v)| (p.clone(), v.clone())).collect();
        pairs.sort();
        pairs
    }

    /// A vault that restores these placeholders (it issues no new ones).
    pub fn from_restorations(pairs: impl IntoIterator<Item = (String, String)>) -> Vault {
        Vault { by_placeholder: pairs.into_iter().collect(), ..Vault::default() }
    }

    /// How many distinct values the vault holds.
    pub fn len(&self) -> usize {
        self.by_placeholder.len()
    }

    /// Whether the vault holds nothing.
    pub fn is_empty(&self) -> bool {
        self.by_placeholder.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PiiDetector;

    #[test]
    fn redact_tokenize_detokenize_hash() {
        let d = PiiDetector::new().unwrap();
        let text = "Mail a@example.com or b@example.com, again a@example.com.";
        let found = d.scan(text);
        assert_eq!(redact(text, &found, RedactStyle::Label), "Mail [EMAIL] or [EMAIL], again [EMAIL].");
        assert_eq!(
            redact(text, &found, RedactStyle::Mask),
            "Mail ************* or *************, again *************."
        );
        let mut vault = Vault::new();
        let tokenized = vault.tokenize(text, &found);
        assert_eq!(tokenized, "Mail [EMAIL_1] or [EMAIL_2], again [EMAIL_1].");
        assert_eq!(vault.len(), 2);
        assert_eq!(vault.detokenize(&tokenized), text);
        assert_eq!(vault.detokenize("[EMAIL_3] and [x] stay"), "[EMAIL_3] and [x] stay");
        // What a held answer keeps restores the same way.
        let kept = Vault::from_restorations(vault.restorations());
        assert_eq!(kept.detokenize(&tokenized), text);
        // A placeholder the caller wrote themselves is never issued.
        let own = "[EMAIL_1] is mine; mail c@example.com";
        let mut fresh = Vault::new();
        let t = fresh.tokenize(own, &d.scan(own));
        assert_eq!(t, "[EMAIL_1] is mine; mail [EMAIL_2]");
        assert_eq!(fresh.detokenize(&t), own);
        let hashed = hash(text, &found, b"k");
        assert!(hashed.starts_with("Mail [EMAIL:") && !hashed.contains("a@example.com"));
        let again = hash(text, &found, b"k");
        assert_eq!(hashed, again);
        assert_ne!(hashed, hash(text, &found, b"other key"));
    }
}
