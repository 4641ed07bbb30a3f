//! Writes the entity tagger's word lists, `models/lexicon-v1.txt`.
//!
//! ```text
//! pip download --no-deps names==0.3.0 && tar xzf names-0.3.0.tar.gz
//! apt-get download wamerican-small && dpkg -x wamerican-small_*.deb scowl
//! cargo run --release -p psf-detect --example build_lexicon -- \
//!     names-0.3.0/names \
//!     --dictionary scowl/usr/share/dict/american-english-small \
//!     ../shared/datasets/openai-moderation/dev.jsonl \
//!     ../shared/datasets/deepset-prompt-injections/train.jsonl \
//!     --out crates/psf-detect/models/lexicon-v1.txt
//! ```
//!
//! The first argument is the folder of the US Census Bureau's 1990 name frequency
//! lists (`dist.female.first`, `dist.male.first`, `dist.all.last`; public domain, as
//! packaged in PyPI's `names` 0.3.0, MIT). Every first name is kept, and the
//! [`SURNAMES`] most frequent surnames.
//!
//! Common words tell a capitalised `Force` or `Business` from a name. They come from
//! the `--dictionary`, one word a line (Debian's `wamerican-small` 2020.12.07-2, the
//! SCOWL size-35 American list, © Kevin Atkinson, permissive licence quoted in
//! `models/README.md`; its lower-case entries without `'s`), and from the other
//! arguments, JSON-lines files whose `text` or `prompt` field is ordinary English and
//! some German: every word seen there in lower case at least twice. Days, months,
//! countries and nationalities are listed below, as they are capitalised but no one's
//! name.
//!
//! Output: sections headed `[first]`, `[last]`, `[word]` and `[place]`, one entry a
//! line, sorted, so a rerun is byte-identical.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

const SURNAMES: usize = 10_000;
const MIN_COUNT: usize = 2;

/// Capitalised words that are no one's name: days and months.
const CALENDAR: &str = "monday tuesday wednesday thursday friday saturday sunday january february march april \
    may june july august september october november december";

/// Countries and nations, and their people and languages, in lower case; for names of
/// several words, the words that are not common words.
const PLACES: &str = "afghanistan albania algeria andorra angola argentina armenia australia austria \
    azerbaijan bahamas bahrain bangladesh barbados belarus belgium belize benin bhutan bolivia bosnia \
    herzegovina botswana brazil brunei bulgaria burundi cambodia cameroon canada chad chile china \
    colombia congo croatia cuba cyprus czech czechia denmark djibouti dominica ecuador egypt eritrea \
    estonia eswatini ethiopia fiji finland france gabon gambia georgia germany ghana greece greenland \
    grenada guatemala guinea guyana haiti honduras hungary iceland india indonesia iran iraq ireland \
    israel italy jamaica japan jordan kazakhstan kenya kiribati korea kosovo kuwait kyrgyzstan laos \
    latvia lebanon lesotho liberia libya liechtenstein lithuania luxembourg madagascar malawi malaysia \
    maldives mali malta mauritania mauritius mexico micronesia moldova monaco mongolia montenegro \
    morocco mozambique myanmar namibia nauru nepal netherlands nicaragua niger nigeria norway oman \
    pakistan palau palestine panama paraguay peru philippines poland portugal qatar romania russia \
    rwanda samoa senegal serbia seychelles singapore slovakia slovenia somalia spain lanka sudan \
    suriname sweden switzerland syria taiwan tajikistan tanzania thailand togo tonga trinidad tobago \
    tunisia turkey turkmenistan tuvalu uganda ukraine emirates uruguay uzbekistan vanuatu vatican \
    venezuela vietnam yemen zambia zimbabwe zealand africa europe asia america antarctica oceania \
    england scotland wales britain usa uk eu \
    afghan albanian algerian american argentinian australian austrian belgian bolivian brazilian \
    british bulgarian canadian chilean chinese colombian croatian cuban cypriot danish dutch \
    egyptian english estonian ethiopian european filipino finnish french german greek hungarian \
    icelandic indian indonesian iranian iraqi irish israeli italian jamaican japanese jordanian \
    kenyan korean latvian lebanese lithuanian malaysian maltese mexican moroccan nepalese nigerian \
    norwegian pakistani peruvian polish portuguese romanian russian saudi scottish serbian slovak \
    slovenian somali spanish swedish swiss syrian thai tunisian turkish ukrainian vietnamese welsh";
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = args.iter().position(|a| a == "--out").and_then(|i| args.get(i + 1)).cloned();
    let inputs: Vec<&String> = args.iter().filter(|a| !a.starts_with("--") && Some(*a) != out.as_ref()).collect();
    let dictionary = args.iter().position(|a| a == "--dictionary").and_then(|i| args.get(i + 1)).cloned();
    let inputs: Vec<&String> = inputs.into_iter().filter(|a| Some(*a) != dictionary.as_ref()).collect();
    let (Some(census), corpora, Some(dictionary)) = (inputs.first(), &inputs[1.min(inputs.len())..], &dictionary)
    else {
        eprintln!("usage: build_lexicon CENSUS_DIR --dictionary WORDS CORPUS.jsonl... --out LEXICON.txt");
        return ExitCode::from(2);
    };
    match run(census, dictionary, corpora, out.as_deref()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("build_lexicon: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(census: &str, dictionary: &str, corpora: &[&String], out: Option<&str>) -> Result<(), String> {
    let read = |path: String| std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"));
    let names = |text: String, most: usize| -> BTreeSet<String> {
        text.lines().filter_map(|l| l.split_whitespace().next()).take(most).map(str::to_lowercase).collect()
    };
    let mut entries: BTreeSet<(&str, String)> = BTreeSet::new();
    for file in ["dist.female.first", "dist.male.first"] {
        entries.extend(names(read(format!("{census}/{file}"))?, usize::MAX).into_iter().map(|n| ("first", n)));
    }
    entries.extend(names(read(format!("{census}/dist.all.last"))?, SURNAMES).into_iter().map(|n| ("last", n)));
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for path in corpora {
        for (i, line) in read(path.to_string())?.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("{path}:{}: {e}", i + 1))?;
            let text = v["text"].as_str().or_else(|| v["prompt"].as_str()).unwrap_or_default();
            for word in words(text).filter(|w| !w.chars().any(char::is_uppercase)) {
                *counts.entry(word.to_owned()).or_default() += 1;
            }
        }
    }
    entries.extend(counts.into_iter().filter(|(_, n)| *n >= MIN_COUNT).map(|(w, _)| ("word", w)));
    let lower = |w: &&str| !w.is_empty() && w.chars().all(|c| c.is_lowercase() || c == '-');
    let dictionary = read(dictionary.to_owned())?;
    entries.extend(dictionary.lines().map(str::trim).filter(lower).map(|w| ("word", w.to_owned())));
    entries.extend(CALENDAR.split_whitespace().map(|w| ("word", w.to_owned())));
    entries.extend(PLACES.split_whitespace().map(|w| ("place", w.to_owned())));
    let mut text = String::new();
    let mut section = "";
    for (kind, word) in &entries {
        if *kind != section {
            text.push_str(&format!("[{kind}]\n"));
            section = kind;
        }
        text.push_str(word);
        text.push('\n');
    }
    match out {
        Some(path) => std::fs::write(path, &text).map_err(|e| format!("{path}: {e}"))?,
        None => print!("{text}"),
    }
    let count = |kind: &str| entries.iter().filter(|e| e.0 == kind).count();
    eprintln!(
        "{} entries: {} first names, {} surnames, {} common words, {} places",
        entries.len(),
        count("first"),
        count("last"),
        count("word"),
        count("place")
    );
    Ok(())
}

/// Runs of letters, with `'` or `-` inside.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphabetic() || c == '\'' || c == '-'))
        .map(|w| w.trim_matches(['\'', '-']))
        .filter(|w| !w.is_empty())
}
