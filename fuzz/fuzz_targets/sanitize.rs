//! The sanitiser on arbitrary text: spans on character boundaries, stripping only ever
//! removes characters.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let s = psf_detect::sanitize(text);
    for f in &s.findings {
        assert!(text.is_char_boundary(f.span.start) && text.is_char_boundary(f.span.end));
    }
    assert!(s.stripped.len() <= text.len());
});
