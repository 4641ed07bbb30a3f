//! The injection detector (with its base64, hex, URL, rot13, leet and spacing decoders)
//! on arbitrary text: a score in 0..1, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use psf_detect::{InjectionDetector, Source};
use std::sync::LazyLock;

static DETECTOR: LazyLock<Option<InjectionDetector>> = LazyLock::new(|| InjectionDetector::new().ok());

fuzz_target!(|data: &[u8]| {
    let (Ok(text), Some(detector)) = (std::str::from_utf8(data), DETECTOR.as_ref()) else { return };
    let report = detector.scan(text, Source::Tool);
    assert!((0.0..=1.0).contains(&report.score));
});
