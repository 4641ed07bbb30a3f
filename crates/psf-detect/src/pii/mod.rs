//! PII detection: candidate patterns, each confirmed by a validator.
//!
//! A pattern only proposes; a finding needs its validator's word (a checksum, a range
//! rule, or words around it). Overlapping findings are settled by evidence: a passed
//! checksum beats a valid structure beats context, so a card number is never also
//! tagged as a phone number.

mod stream;
pub mod tagger;
pub mod validate;

pub use stream::{HOLD, LOOK_BEHIND, StreamScanner};

use std::ops::Range;

use regex::{Regex, RegexSet};

use crate::error::BuildError;
use crate::finding::{EntityType, Evidence, Finding};
use crate::secrets;
use tagger::{Tag, Tagger};

/// How a candidate is confirmed.
type Validator = fn(&str, &str, Range<usize>) -> Option<(Evidence, f32, &'static str)>;

struct Pattern {
    entity: EntityType,
    regex: Regex,
    validate: Validator,
    /// Context words without which this pattern's validator can never succeed; the
    /// pattern is not run at all on a text without them.
    gate: Option<Regex>,
}

/// A compiled set of PII detectors. Build once, scan many; `Send + Sync`.
#[derive(Debug)]
pub struct PiiDetector {
    patterns: Vec<Pattern>,
    /// The patterns as one set: a single pass over the text says which of them match
    /// anywhere, and only those are searched one by one.
    any: RegexSet,
    secrets: bool,
    /// The name and address tagger, with the types asked of it.
    tagger: Option<(Tagger, Vec<EntityType>)>,
}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pattern").field("entity", &self.entity).finish_non_exhaustive()
    }
}

/// Chooses which entity types a [`PiiDetector`] looks for.
#[derive(Debug, Clone)]
pub struct PiiDetectorBuilder {
    entities: Vec<EntityType>,
}

impl Default for PiiDetectorBuilder {
    fn default() -> Self {
        PiiDetectorBuilder { entities: EntityType::ALL.to_vec() }
    }
}

impl PiiDetectorBuilder {
    /// Looks for every entity type.
    pub fn new() -> PiiDetectorBuilder {
        PiiDetectorBuilder::default()
    }

    /// Looks only for these types.
    pub fn entities(&mut self, entities: &[EntityType]) -> &mut PiiDetectorBuilder {
        self.entities = entities.to_vec();
        self
    }

    /// Compiles the detector.
    pub fn build(&self) -> Result<PiiDetector, BuildError> {
        let mut patterns = Vec::new();
        for (entity, pattern, validate) in PATTERNS {
            if self.entities.contains(entity) {
                let compile = |p: &str| Regex::new(p).map_err(|e| BuildError::pattern(entity.label(), e.to_string()));
                let regex = compile(pattern)?;
                let gate = match entity {
                    EntityType::Passport => Some(compile(&gate_pattern(&PASSPORT_WORDS))?),
                    EntityType::DateOfBirth => Some(compile(&gate_pattern(&BIRTH_WORDS))?),
                    _ => None,
                };
                patterns.push(Pattern { entity: *entity, regex, validate: *validate, gate });
            }
        }
        let secrets = self.entities.iter().any(|e| e.class() == crate::DataClass::Credential);
        let tagged: Vec<EntityType> =
            self.entities.iter().copied().filter(|e| matches!(e, EntityType::Person | EntityType::Address)).collect();
        let tagger = if tagged.is_empty() { None } else { Some((Tagger::new()?, tagged)) };
        let any = RegexSet::new(patterns.iter().map(|p| p.regex.as_str()))
            .map_err(|e| BuildError::pattern("the PII patterns as one set", e.to_string()))?;
        Ok(PiiDetector { patterns, any, secrets, tagger })
    }
}

impl PiiDetector {
    /// A detector for every entity type.
    pub fn new() -> Result<PiiDetector, BuildError> {
        PiiDetectorBuilder::new().build()
    }

    /// Every PII finding in `text`, ordered by position, without overlaps.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        let mut found = Vec::new();
        // Phone numbers are found last, and a candidate stops where a finding with
        // stronger evidence starts: `+44 20 7946 0958 536-22-8726` is a phone number
        // followed by an SSN, not one long number.
        let matching = self.any.matches(text);
        let phone = |i: &usize| self.patterns[*i].entity == EntityType::Phone;
        let all = 0..self.patterns.len();
        for i in all.clone().filter(|i| !phone(i)).chain(all.filter(phone)) {
            let p = &self.patterns[i];
            // A pattern that matches nowhere is not searched; context-only ones need
            // their context words too.
            if !matching.matched(i) || p.gate.as_ref().is_some_and(|g| !g.is_match(text)) {
                continue;
            }
            // Not `find_iter`: when a candidate fails validation, the real value may start
            // inside it (`…32 4111 1111 1111 1111` after an IBAN), so resume one character
            // after its start rather than after its end.
            let mut at = 0;
            while let Some(m) = p.regex.find_at(text, at) {
                let end = if p.entity == EntityType::Phone {
                    found
                        .iter()
                        .map(|f: &Finding| f.span.start)
                        .filter(|s| *s > m.start() && *s < m.end())
                        .min()
                        .unwrap_or(m.end())
                } else {
                    m.end()
                };
                let end = m.start() + text[m.start()..end].trim_end_matches([' ', '-', '.']).len();
                // A candidate inside a finding of an earlier pattern is not a candidate:
                // skipping past it could skip the real value that starts within it.
                let confirmed = confirm(p, text, m.start(), end)
                    .filter(|c| !found.iter().any(|f| f.span.start < c.span.end && c.span.start < f.span.end));
                match confirmed {
                    Some(finding) => {
                        at = finding.span.end.max(m.start() + 1);
                        found.push(finding);
                    }
                    // A failed phone candidate is one long number: its tail is no phone.
                    None if p.entity == EntityType::Phone => at = m.end().max(m.start() + 1),
                    None => at = m.start() + text[m.start()..].chars().next().map_or(1, char::len_utf8),
                }
                if at > text.len() {
                    break;
                }
            }
        }
        if self.secrets {
            for s in secrets::scan(text) {
                found.push(Finding {
                    entity: s.entity,
                    span: s.span,
                    confidence: 0.95,
                    evidence: Evidence::Structure,
                    validator: "credential_format",
                });
            }
        }
        if let Some((tagger, wanted)) = &self.tagger {
            for t in tagger.tag(text) {
                let entity = match t.tag {
                    Tag::Person => EntityType::Person,
                    Tag::Address => EntityType::Address,
                };
                if wanted.contains(&entity) {
                    found.push(Finding {
                        entity,
                        span: t.span,
                        confidence: t.confidence,
                        evidence: Evidence::Model,
                        validator: "entity_tagger",
                    });
                }
            }
        }
        resolve_overlaps(found)
    }
}

/// Validates the candidate `start..end`, and if it fails, its prefixes that end at a
/// separator: a greedy pattern can run past the value into the next number
/// (`4111 1111 1111 1111 536-22-8726`).
fn confirm(p: &Pattern, text: &str, start: usize, end: usize) -> Option<Finding> {
    let mut end = end;
    loop {
        let span = start..end;
        let is_bounded = bounded(text, span.clone());
        if is_bounded
            && let Some((evidence, confidence, validator)) = (p.validate)(text, &text[span.clone()], span.clone())
        {
            return Some(Finding { entity: p.entity, span, confidence, evidence, validator });
        }
        // A phone candidate that failed validation is not shortened (part of a longer
        // number is no phone number); one that ran into a token (`… 0958 0A`) is.
        if p.entity == EntityType::Phone && is_bounded {
            return None;
        }
        end = text[start..end].rfind([' ', '-', '.'])? + start;
        if end <= start {
            return None;
        }
    }
}

/// Keeps the best-evidenced finding where findings overlap: stronger evidence first,
/// then the longer span, then the earlier one.
fn resolve_overlaps(mut found: Vec<Finding>) -> Vec<Finding> {
    found.sort_by(|a, b| {
        b.evidence
            .cmp(&a.evidence)
            .then((b.span.end - b.span.start).cmp(&(a.span.end - a.span.start)))
            .then(a.span.start.cmp(&b.span.start))
    });
    let mut kept: Vec<Finding> = Vec::with_capacity(found.len());
    for f in found {
        if !kept.iter().any(|k| k.span.start < f.span.end && f.span.start < k.span.end) {
            kept.push(f);
        }
    }
    kept.sort_by_key(|f| f.span.start);
    kept
}

/// A match must not be glued to letters or digits on either side (`x4111…` or an id
/// inside a longer token is not a card number).
///
/// A dot between digits glues too: `84.17.61.18` inside `01.84.17.61.18` is not an IP.
fn bounded(text: &str, span: Range<usize>) -> bool {
    let glued = |c: Option<char>, beyond: Option<char>| {
        c.is_some_and(|c| c.is_alphanumeric() || c == '_')
            || (c == Some('.') && beyond.is_some_and(|b| b.is_ascii_digit()))
    };
    let mut before = text[..span.start].chars().rev();
    let mut after = text[span.end..].chars();
    !glued(before.next(), before.next()) && !glued(after.next(), after.next())
}

/// Whether any of `words` appears within `window` bytes before `start`, in the same
/// sentence, ignoring case.
fn context_before(text: &str, start: usize, window: usize, words: &[&str]) -> bool {
    let mut from = start.saturating_sub(window);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let from = sentence_start(text, from, start);
    let before = text[from..start].to_ascii_lowercase();
    words.iter().any(|w| before.contains(w))
}

/// Where the sentence that `end` is in starts, looking back no further than `from`. A
/// full stop ends a sentence only after a word or number of two or more characters and before a
/// space: `d.o.b.` and `3.5` end nothing.
fn sentence_start(text: &str, from: usize, end: usize) -> usize {
    let b = text.as_bytes();
    let mut i = end;
    while i > from {
        i -= 1;
        let ends = match b[i] {
            b'!' | b'?' | b'\n' => true,
            b'.' => {
                b.get(i + 1) == Some(&b' ')
                    && i >= 2
                    && b[i - 1].is_ascii_alphanumeric()
                    && b[i - 2].is_ascii_alphanumeric()
            }
            _ => false,
        };
        if ends {
            return i + 1;
        }
    }
    from
}

fn email(_: &str, m: &str, _: Range<usize>) -> Option<(Evidence, f32, &'static str)> {
    let (local, domain) = m.split_once('@')?;
    let ok = local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && !domain.contains("..")
        && !domain.starts_with('-');
    ok.then_some((Evidence::Structure, 0.99, "email_format"))
}

fn credit_card(_: &str, m: &str, _: Range<usize>) -> Option<(Evidence, f32, &'static str)> {
    // One kind of separator, used consistently, or none.
    let seps: Vec<u8> = m.bytes().filter(|b| !b.is_ascii_digit()).collect();
    if seps.windows(2).any(|w| w[0] != w[1]) {
        return None;
    }
    // Printed card numbers group as 4-4-4-4(-3), 4-6-5 or 4-6-4; any other grouping is
    // two numbers side by side.
    let groups: Vec<usize> = m.split([' ', '-']).map(str::len).collect();
    let grouped = groups.len() == 1
        || matches!(groups.as_slice(), [4, 6, 5] | [4, 6, 4])
        || (groups[..groups.len() - 1].iter().all(|g| *g == 4) && (1..=4).contains(&groups[groups.len() - 1]));
    if !grouped {
        return None;
    }
    let number: String = m.chars().filter(char::is_ascii_digit).collect();
    let brand = validate::card_brand(&number).or_else(|| jcb15(&number))?;
    validate::luhn(&number).then_some((Evidence::Checksum, 0.98, brand))
}

/// Older 15-digit JCB numbers start 1800 or 2131.
fn jcb15(number: &str) -> Option<&'static str> {
    ((number.starts_with("1800") || number.starts_with("2131")) && number.len() == 15).then_some("jcb")
}

fn iban(_: &str, m: &str, _: Range<usize>) -> Option<(Evidence, f32, &'static str)> {
    let upper = m.to_ascii_uppercase();
    validate::iban(&upper).then_some((Evidence::Checksum, 0.99, "iban_mod97"))
}

fn us_ssn(text: &str, m: &str, r: Range<usize>) -> Option<(Evidence, f32, &'static str)> {
    if !validate::us_ssn(m) {
        return None;
    }
    let separated = m.contains(['-', ' ']);
    let context = context_before(text, r.start, 48, &["ssn", "social security", "social-security"]);
    match (separated, context) {
        (true, _) => Some((Evidence::Structure, if context { 0.95 } else { 0.85 }, "ssn_ranges")),
        (false, true) => Some((Evidence::Context, 0.8, "ssn_ranges+context")),
        (false, false) => None,
    }
}

fn uk_nino(_: &str, m: &str, _: Range<usize>) -> Option<(Evidence, f32, &'static str)> {
    validate::uk_nino(&m.to_ascii_uppercase()).then_some((Evidence::Structure, 0.9, "nino_format"))
}

/// A case-insensitive search for any of `words`, taken literally.
fn gate_pattern(words: &[&str]) -> String {
    let escaped: Vec<String> = words.iter().map(|w| regex::escape(w)).collect();
    format!("(?i){}", escaped.join("|"))
}

const PASSPORT_WORDS: [&str; 4] = ["passport", "reisepass", "passeport", "pasaporte"];
const BIRTH_WORDS: [&str; 9] = ["born", "birth", "dob", "d.o.b", "geboren", "né le", "née le", "nacido", "nata il"];

fn passport(text: &str, m: &str, r: Range<usize>) -> Option<(Evidence, f32, &'static str)> {
    let has_digit = m.bytes().filter(u8::is_ascii_digit).count() >= 5;
    (has_digit && context_before(text, r.start, 40, &PASSPORT_WORDS)).then_some((
        Evidence::Context,
        0.8,
        "passport_context",
    ))
}

fn ip(_: &str, m: &str, _: Range<usize>) -> Option<(Evidence, f32, &'static str)> {
    if m.contains(':') {
        validate::ipv6(m).then_some((Evidence::Structure, 0.95, "ipv6"))
    } else {
        validate::ipv4(m).then_some((Evidence::Structure, 0.95, "ipv4"))
    }
}

fn mac(_: &str, m: &str, _: Range<usize>) -> Option<(Evidence, f32, &'static str)> {
    validate::mac(m).then_some((Evidence::Structure, 0.9, "mac_format"))
}

fn birth_date(text: &str, m: &str, r: Range<usize>) -> Option<(Evidence, f32, &'static str)> {
    (validate::birth_date(m) && context_before(text, r.start, 40, &BIRTH_WORDS)).then_some((
        Evidence::Context,
        0.85,
        "date+birth_context",
    ))
}

fn crypto(_: &str, m: &str, _: Range<usize>) -> Option<(Evidence, f32, &'static str)> {
    if let Some(hex) = m.strip_prefix("0x") {
        // Mixed case must be an EIP-55 checksum, which needs Keccak; accept the
        // unambiguous all-lower or all-upper forms and mixed case only as structure.
        let _ = hex;
        return Some((Evidence::Structure, 0.85, "eth_format"));
    }
    if m.to_ascii_lowercase().starts_with("bc1") {
        return validate::bech32(m).then_some((Evidence::Checksum, 0.99, "bech32"));
    }
    validate::base58check(m).then_some((Evidence::Checksum, 0.99, "base58check"))
}

fn phone(text: &str, m: &str, r: Range<usize>) -> Option<(Evidence, f32, &'static str)> {
    let body = m.split(['x', 'X']).next().unwrap_or(m).trim_end_matches([' ', '.']);
    let digits = body.bytes().filter(u8::is_ascii_digit).count();
    if !(7..=15).contains(&digits) {
        return None;
    }
    let plain = body.bytes().all(|b| b.is_ascii_digit());
    if plain && digits < 9 {
        return None;
    }
    let first = body.bytes().find(u8::is_ascii_digit).unwrap_or(b'0');
    if body.bytes().filter(u8::is_ascii_digit).all(|b| b == first) {
        return None;
    }
    // Dates, times, amounts, postcodes and house numbers look like digit groups too.
    let groups: Vec<&str> = body.split([' ', '.', '-']).filter(|g| !g.is_empty()).collect();
    let after = &text[r.end..];
    let currency = text[..r.start].chars().next_back().is_some_and(|c| "$€£¥".contains(c));
    let time_follows = after.starts_with(':');
    let international = body.starts_with('+') || body.contains('(');
    // 3-2-4 with dashes is how SSNs are written, not phone numbers.
    let ssn_shaped =
        matches!(groups.iter().map(|g| g.len()).collect::<Vec<_>>().as_slice(), [3, 2, 4]) && body.contains('-');
    let context = context_before(text, r.start, 32, &["phone", "call", "tel", "mobile", "cell", "fax", "number"]);
    let postcode = context_before(text, r.start, 16, &["zip", "postal", "postcode", "plz", "cep"]);
    if looks_like_date(&groups) || currency || time_follows || postcode || ssn_shaped {
        return None;
    }
    // "17031 2202 Rissik St": a short digit run followed by a word is a street address.
    let next_word: String = after.trim_start_matches([' ', '\t']).chars().take_while(|c| c.is_alphabetic()).collect();
    let label_word = ["office", "mobile", "home", "work", "fax", "cell", "tel", "phone", "ext"]
        .iter()
        .any(|w| next_word.eq_ignore_ascii_case(w));
    if !next_word.is_empty()
        && after.starts_with([' ', '\t'])
        && !label_word
        && !international
        && !context
        && digits < 10
    {
        return None;
    }
    let formatted = international || groups.len() > 1;
    let confidence = match (formatted, context) {
        (_, true) => 0.9,
        (true, false) => 0.75,
        (false, false) => 0.6,
    };
    Some((Evidence::Context, confidence, "phone_digits"))
}

/// `1992-11-12 07`, `10/23/1951`, `23.10.1951`: a year with a month and day around it.
fn looks_like_date(groups: &[&str]) -> bool {
    let num = |g: &str| g.parse::<u32>().ok();
    let year = |g: &str| g.len() == 4 && num(g).is_some_and(|y| (1900..=2099).contains(&y));
    let day_or_month = |g: &str| g.len() <= 2 && num(g).is_some_and(|v| (1..=31).contains(&v));
    match groups {
        [y, m, d, ..] if year(y) => day_or_month(m) && day_or_month(d),
        [a, b, y, ..] => day_or_month(a) && day_or_month(b) && year(y),
        _ => false,
    }
}

/// The candidate patterns, in precedence order for equal evidence.
const PATTERNS: &[(EntityType, &str, Validator)] = &[
    (EntityType::Email, r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}", email),
    (EntityType::CreditCard, r"\d(?:[ -]?\d){11,18}", credit_card),
    // Printed IBANs group by four; a free run of alphanumerics would swallow the next word.
    (EntityType::Iban, r"(?i)[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?", iban),
    (EntityType::UsSsn, r"\d{3}-\d{2}-\d{4}|\d{3} \d{2} \d{4}|\d{9}", us_ssn),
    (EntityType::UkNino, r"(?i)[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]", uk_nino),
    (EntityType::Passport, r"[A-Z0-9]{6,9}", passport),
    (
        EntityType::IpAddress,
        r"\d{1,3}(?:\.\d{1,3}){3}|(?i:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?:\d{1,3}(?:\.\d{1,3}){3})?",
        ip,
    ),
    (EntityType::MacAddress, r"(?i)[0-9a-f]{2}(?:[:-][0-9a-f]{2}){5}", mac),
    (
        EntityType::DateOfBirth,
        r"(?i)\d{4}-\d{2}-\d{2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{1,2} (?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* \d{4}|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* \d{1,2},? \d{4}",
        birth_date,
    ),
    (
        EntityType::CryptoAddress,
        r"0x[0-9a-fA-F]{40}|(?i:bc1[02-9ac-hj-np-z]{11,71})|[13][1-9A-HJ-NP-Za-km-z]{25,34}",
        crypto,
    ),
    (
        EntityType::Phone,
        r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{1,12}(?:[ .-]\d{1,10}){0,5}(?: ?(?:x|ext\.?) ?\d{1,5})?",
        phone,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn types(text: &str) -> Vec<(&'static str, String)> {
        let d = PiiDetector::new().unwrap();
        d.scan(text).into_iter().map(|f| (f.entity.label(), text[f.span].to_string())).collect()
    }

    #[test]
    fn overlaps_go_to_the_strongest_evidence() {
        assert_eq!(types("card 4111 1111 1111 1111 ok"), [("CREDIT_CARD", "4111 1111 1111 1111".to_string())]);
        assert_eq!(types("from 48.90.248.226 today"), [("IP_ADDRESS", "48.90.248.226".to_string())]);
        assert_eq!(types("SSN 536-22-8726."), [("US_SSN", "536-22-8726".to_string())]);
    }

    #[test]
    fn scans_a_mixed_prompt() {
        let text = "I'm jane.doe@example.com, call +44 20 7946 0958; IBAN GB82 WEST 1234 5698 7654 32.";
        let got = types(text);
        assert_eq!(
            got,
            [
                ("EMAIL", "jane.doe@example.com".to_string()),
                ("PHONE", "+44 20 7946 0958".to_string()),
                ("IBAN", "GB82 WEST 1234 5698 7654 32".to_string()),
            ]
        );
    }
}
