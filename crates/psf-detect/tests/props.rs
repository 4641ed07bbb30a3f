//! Property tests for the detectors and the operations on their findings.

use proptest::prelude::*;
use psf_detect::{
    Evidence, InjectionDetector, PiiDetector, RedactStyle, Source, StreamScanner, Vault, extract_json, json_nesting,
    redact, sanitize,
};

/// The detector every property uses: built once, as the crate means detectors to be
/// (build once, scan many), not once per generated case.
#[expect(clippy::unwrap_used, reason = "a property cannot be checked without its detector")]
fn pii() -> &'static PiiDetector {
    static DETECTOR: std::sync::OnceLock<PiiDetector> = std::sync::OnceLock::new();
    DETECTOR.get_or_init(|| PiiDetector::new().unwrap())
}

/// Text that mixes prose with PII of several types, so properties see real findings.
fn texty() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z ,.]{0,30}",
        Just("jane.doe@example.com".to_string()),
        Just("4111 1111 1111 1111".to_string()),
        Just("+44 20 7946 0958".to_string()),
        Just("GB82 WEST 1234 5698 7654 32".to_string()),
        Just("536-22-8726".to_string()),
        Just("192.168.0.1".to_string()),
        Just("sk-proj-4fGh7Jk2Lm9Np3Qr5St8Uv1Wx6Yz0Ab".to_string()),
        Just("[EMAIL_1]".to_string()),
        "\\PC{0,12}",
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|parts| parts.join(" "))
}

/// Longer text: PII-bearing pieces with runs of filler between them, so a stream scan
/// has to decide findings long before it ends.
fn long_texty() -> impl Strategy<Value = String> {
    let filler = (50usize..400).prop_map(|n| "plain words and more plain words. ".repeat(n / 30 + 1));
    proptest::collection::vec(prop_oneof![texty(), filler], 0..10).prop_map(|parts| parts.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn a_stream_scan_over_any_chunking_finds_what_the_whole_scan_finds(
        text in long_texty(),
        sizes in proptest::collection::vec(1usize..64, 1..16),
    ) {
        let d = pii();
        let whole: Vec<_> = d.scan(&text).into_iter().map(|f| (f.entity, f.span)).collect();
        let mut scanner = StreamScanner::new(d);
        let mut streamed = Vec::new();
        let (mut at, mut i) = (0, 0);
        while at < text.len() {
            let mut end = (at + sizes[i % sizes.len()]).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            streamed.extend(scanner.feed(&text[at..end]));
            at = end;
            i += 1;
        }
        streamed.extend(scanner.finish());
        let streamed: Vec<_> = streamed.into_iter().map(|f| (f.entity, f.span)).collect();
        prop_assert_eq!(streamed, whole);
    }

    #[test]
    fn findings_are_ordered_disjoint_and_on_char_boundaries(text in texty()) {
        let d = pii();
        let found = d.scan(&text);
        for w in found.windows(2) {
            prop_assert!(w[0].span.end <= w[1].span.start);
        }
        for f in &found {
            prop_assert!(text.is_char_boundary(f.span.start) && text.is_char_boundary(f.span.end));
            prop_assert!((0.0..=1.0).contains(&f.confidence));
        }
    }

    /// Every rule-confirmed value is gone after redaction. The name and address
    /// tagger reads words in their context, and redaction changes the context, so a
    /// word it passed over beside `jane.doe@example.com` may read differently beside
    /// `[EMAIL]`: its findings are held to no more than what they were.
    #[test]
    fn redaction_leaves_no_detected_span(text in texty()) {
        let d = pii();
        let found = d.scan(&text);
        let redacted = redact(&text, &found, RedactStyle::Label);
        let again = d.scan(&redacted);
        let (tagged, confirmed): (Vec<_>, Vec<_>) = again.iter().partition(|f| f.evidence == Evidence::Model);
        prop_assert!(confirmed.is_empty(), "{redacted:?} still has {confirmed:?}");
        for f in tagged {
            let word = &redacted[f.span.clone()];
            prop_assert!(text.contains(word) && !word.contains('['), "{word:?} is new in {redacted:?}");
        }
    }

    #[test]
    fn tokenize_then_detokenize_is_the_identity(text in texty()) {
        let d = pii();
        let found = d.scan(&text);
        let mut vault = Vault::new();
        let tokenized = vault.tokenize(&text, &found);
        for f in &found {
            let value = &text[f.span.clone()];
            // The same value may also stand where it is no finding (`zip +44 …` is read
            // as a postcode's context): only the occurrences that are findings go.
            let findings = found.iter().filter(|g| &text[g.span.clone()] == value).count();
            let left = text.matches(value).count().saturating_sub(findings);
            prop_assert!(
                tokenized.matches(value).count() <= left || value.len() < 4,
                "{value} survived tokenization"
            );
        }
        prop_assert_eq!(vault.detokenize(&tokenized), text);
    }

    #[test]
    fn sanitize_and_injection_never_panic(text in "\\PC{0,200}") {
        let s = sanitize(&text);
        for f in &s.findings {
            prop_assert!(text.is_char_boundary(f.span.start) && text.is_char_boundary(f.span.end));
        }
        let r = InjectionDetector::new().unwrap().scan(&text, Source::Tool);
        prop_assert!((0.0..=1.0).contains(&r.score));
    }
}

proptest! {
    #[test]
    fn extracted_json_is_what_its_span_holds(prefix in "\\PC{0,30}", json in prop_oneof![Just("{\"a\": [1, \"}\"]}"), Just("[1, 2]"), Just("{}")], suffix in "\\PC{0,30}") {
        let text = format!("{prefix}{json}{suffix}");
        if let Some((span, value)) = extract_json(&text) {
            let reparsed: serde_json::Value = serde_json::from_str(text[span].trim()).unwrap();
            prop_assert_eq!(reparsed, value);
        }
    }
}

/// Any JSON value: scalars, strings full of brackets and escapes, arrays, objects.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[\\[\\]{}\"\\\\a-z ]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(12, 64, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(("[\\[{\"a-z]{0,4}", inner), 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// How deeply a parsed value nests arrays and objects.
fn depth(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        serde_json::Value::Object(fields) => 1 + fields.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

proptest! {
    /// Reading the bytes gives the depth parsing gives, compact or pretty, and a limit
    /// below it is reported at a bracket of the text.
    #[test]
    fn json_nesting_is_the_parsed_depth(value in json_value(), pretty in any::<bool>()) {
        let text = if pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) };
        let text = text.unwrap();
        let d = depth(&value);
        prop_assert_eq!(json_nesting(text.as_bytes(), usize::MAX), Ok(d));
        prop_assert_eq!(json_nesting(text.as_bytes(), d), Ok(d));
        if let Some(limit) = d.checked_sub(1) {
            let at = json_nesting(text.as_bytes(), limit).unwrap_err();
            prop_assert!(matches!(text.as_bytes()[at], b'[' | b'{'), "byte {} of {}", at, text);
        }
    }
}

/// Found by the property above: the same number twice, once after `zip` (read as a
/// postcode's context, so no phone finding). Tokenizing replaces only the finding.
#[test]
fn tokenize_replaces_the_finding_not_every_copy_of_its_value() {
    let text = "+44 20 7946 0958 zIp +44 20 7946 0958";
    let found = pii().scan(text);
    assert_eq!(found.len(), 1, "{found:?}");
    let mut vault = Vault::new();
    let tokenized = vault.tokenize(text, &found);
    assert_eq!(tokenized, "[PHONE_1] zIp +44 20 7946 0958");
    assert_eq!(vault.detokenize(&tokenized), text);
}
