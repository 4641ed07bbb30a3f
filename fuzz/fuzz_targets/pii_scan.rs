//! The PII detector and its operations on arbitrary text: findings must be ordered,
//! disjoint and on character boundaries; tokenizing then detokenizing must give the
//! text back; redacting must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use psf_detect::{PiiDetector, RedactStyle, Vault, redact};
use std::sync::LazyLock;

static DETECTOR: LazyLock<Option<PiiDetector>> = LazyLock::new(|| PiiDetector::new().ok());

fuzz_target!(|data: &[u8]| {
    let (Ok(text), Some(detector)) = (std::str::from_utf8(data), DETECTOR.as_ref()) else { return };
    let found = detector.scan(text);
    for w in found.windows(2) {
        assert!(w[0].span.end <= w[1].span.start);
    }
    for f in &found {
        assert!(text.is_char_boundary(f.span.start) && text.is_char_boundary(f.span.end));
    }
    let _ = redact(text, &found, RedactStyle::Mask);
    let mut vault = Vault::new();
    let tokenized = vault.tokenize(text, &found);
    assert_eq!(vault.detokenize(&tokenized), text);
});
