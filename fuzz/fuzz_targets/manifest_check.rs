//! `psf check` on arbitrary bytes: the YAML layer, the schema pass and the rules must
//! answer every input with diagnostics, never a panic, a hang or a stack overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let options = psf_core::CheckOptions { today: jiff::civil::date(2026, 11, 22) };
        let checked = psf_core::check(text, &options);
        for d in &checked.diagnostics {
            let _ = d.render("fuzz.yaml", text);
        }
    }
});
