//! Property tests: whatever a person does to a manifest, `psf check` answers with
//! diagnostics that point inside the file, and never panics.

use proptest::prelude::*;
use psf_core::{CheckOptions, check};

const EXAMPLES: [&str; 3] = [
    include_str!("../../../examples/internal-faq.yaml"),
    include_str!("../../../examples/customer-support.yaml"),
    include_str!("../../../examples/loan-prescreening.yaml"),
];

/// An edit a person (or a bad merge) might make.
#[derive(Debug, Clone)]
enum Edit {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    InsertText(usize, String),
    DeleteChars(usize, usize),
    Indent(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let fragment = prop_oneof![
        Just(": ".to_string()),
        Just("- ".to_string()),
        Just("\t".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("{".to_string()),
        Just("]".to_string()),
        Just("#".to_string()),
        Just("!!binary ".to_string()),
        Just("sk-proj-abcdefghijklmnopqrstuvwxyz".to_string()),
        Just("2026-02-30".to_string()),
        Just("\u{feff}".to_string()),
        Just("\u{202e}".to_string()),
        "[a-z_]{1,12}",
        "[ -~]{1,20}",
    ];
    prop_oneof![
        any::<usize>().prop_map(Edit::DeleteLine),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        (any::<usize>(), fragment).prop_map(|(at, s)| Edit::InsertText(at, s)),
        (any::<usize>(), 1usize..40).prop_map(|(at, n)| Edit::DeleteChars(at, n)),
        (any::<usize>(), 1usize..6).prop_map(|(at, n)| Edit::Indent(at, n)),
    ]
}

fn apply(text: &str, edit: &Edit) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let n = lines.len().max(1);
    match edit {
        Edit::DeleteLine(i) => {
            if !lines.is_empty() {
                lines.remove(i % n);
            }
        }
        Edit::DuplicateLine(i) => {
            if let Some(l) = lines.get(i % n).cloned() {
                lines.insert(i % n, l);
            }
        }
        Edit::SwapLines(a, b) => {
            if !lines.is_empty() {
                lines.swap(a % n, b % n);
            }
        }
        Edit::Indent(i, by) => {
            if let Some(l) = lines.get_mut(i % n) {
                l.insert_str(0, &" ".repeat(*by));
            }
        }
        Edit::InsertText(at, s) => {
            let mut t = lines.join("\n");
            let at = floor_char_boundary(&t, at % (t.len() + 1));
            t.insert_str(at, s);
            return t;
        }
        Edit::DeleteChars(at, len) => {
            let t = lines.join("\n");
            let start = floor_char_boundary(&t, at % (t.len() + 1));
            let end = floor_char_boundary(&t, (start + len).min(t.len()));
            return format!("{}{}", &t[..start], &t[end..]);
        }
    }
    lines.join("\n")
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_edits_never_panic_and_point_inside_the_file(
        which in 0usize..EXAMPLES.len(),
        edits in proptest::collection::vec(edit(), 1..4),
    ) {
        let mut text = EXAMPLES[which].to_string();
        for e in &edits {
            text = apply(&text, e);
        }
        let checked = check(&text, &CheckOptions { today: jiff::civil::date(2026, 11, 22) });
        let lines = text.lines().count().max(1);
        for d in &checked.diagnostics {
            prop_assert!(d.position.line >= 1 && d.position.line <= lines + 1, "{} at {} of {lines} lines", d.code, d.position);
            prop_assert!(d.position.column >= 1);
            prop_assert!(!d.message.is_empty() && d.help.is_some(), "{} lacks text or help", d.code);
            let rendered = d.render("psf.yaml", &text);
            prop_assert!(rendered.starts_with("psf.yaml:"));
        }
        // A manifest either checks out or says why.
        prop_assert!(checked.is_valid() || checked.errors() > 0);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = check(&text, &CheckOptions { today: jiff::civil::date(2026, 11, 22) });
    }
}
