//! The starter manifest that `psf init` writes.

use jiff::civil::Date;

const TEMPLATE: &str = include_str!("starter.yaml");

/// A commented manifest for a small deployment that passes `psf check`, with review
/// dates set to `today`.
pub fn starter(today: Date) -> String {
    TEMPLATE.replace("{today}", &today.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CheckOptions, check};

    #[test]
    fn starter_passes_check() {
        let today = jiff::civil::date(2026, 11, 22);
        let checked = check(&starter(today), &CheckOptions { today });
        assert!(checked.is_valid(), "{:#?}", checked.diagnostics);
    }
}
