//! The content detector (classifier heads, patterns with negation, quote splitting) on
//! arbitrary text: every score in 0..1, flags only at or above a score, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use psf_detect::ContentDetector;
use std::sync::LazyLock;

static DETECTOR: LazyLock<Option<ContentDetector>> = LazyLock::new(|| ContentDetector::new().ok());

fuzz_target!(|data: &[u8]| {
    let (Ok(text), Some(detector)) = (std::str::from_utf8(data), DETECTOR.as_ref()) else { return };
    let report = detector.scan(text);
    assert!(report.scores.iter().all(|(_, s)| (0.0..=1.0).contains(s)));
    assert!(report.flagged.iter().all(|c| report.score(*c) >= 0.3));
});
