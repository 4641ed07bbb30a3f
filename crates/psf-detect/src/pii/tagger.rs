//! Person names and street addresses (DG-1): a token tagger.
//!
//! Names and addresses have no checksum and no fixed shape, so no pattern can confirm
//! them. Each candidate word (one with a capital letter or a digit) is scored by two
//! logistic-regression heads, person and address, over hashed features of the word
//! and of the two tokens either side: the word itself, its shape (`Xx`, `d`, `X.`),
//! its last three letters, and the words, punctuation and shapes around it ("my name
//! is", "lives at", a number before a capitalised word), and which word lists the word
//! and its neighbours are on: first names and surnames (the US census lists), common
//! lower-case words (so `Force` or `Business` is read as a word, not a name),
//! countries and nations, and honorifics. Neighbouring words tagged alike become one finding.
//!
//! Two more heads, place (towns, countries) and organisation, are rivals of the person
//! head: a word whose place or organisation score beats its person score is not a
//! name. They learn what the person head alone kept confusing with names: "flew to
//! Zaandam", "originally from Tolmezzo". And a name of one word needs a higher score
//! ([`LONE_NAME_MARGIN`]) than one of two or more.
//!
//! The heads are trained by `cargo run --release -p psf-detect --example
//! train_entities` (data, licence and cross-validated figures in `models/README.md`);
//! their weights ship inside the crate. Scoring allocates one token list per text.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;

use crate::classifier::{DIMS, Model, models_from_bytes};
use crate::error::BuildError;

/// The committed heads: person, address, then the rivals place and organisation.
static MODEL: &[u8] = include_bytes!("../../models/entities-v1.bin");
/// The committed word lists, written by `--example build_lexicon`.
static LEXICON: &str = include_str!("../../models/lexicon-v1.txt");

/// What the tagger can tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// A person's name.
    Person,
    /// A street address, with its postcode, town and country where they follow.
    Address,
}

/// Probabilities at or above which a word is tagged, chosen by cross-validation for
/// the best F1 (see `models/README.md`).
pub const PERSON_THRESHOLD: f64 = 0.5;
/// How much more than [`PERSON_THRESHOLD`] a name of one word needs.
pub const LONE_NAME_MARGIN: f64 = 0.1;
/// See [`PERSON_THRESHOLD`].
pub const ADDRESS_THRESHOLD: f64 = 0.5;

/// Features per scored word (see [`Tokens::features`]).
pub const FEATURES: usize = 22;

/// The trained heads.
#[derive(Debug, Clone)]
pub struct Tagger {
    lexicon: Lexicon,
    person: Model,
    address: Model,
    /// Heads for what capitalised words are when they are not names: towns and
    /// countries, organisations. A word is a name only if the person head beats them.
    rivals: Vec<Model>,
    thresholds: [f64; 2],
}

/// One tagged run of words.
#[derive(Debug, Clone, PartialEq)]
pub struct Tagged {
    /// What it is.
    pub tag: Tag,
    /// Byte range in the text.
    pub span: Range<usize>,
    /// The mean probability of its words.
    pub confidence: f32,
    /// How many tagged words it joins.
    pub words: usize,
}

impl Tagger {
    /// The committed model.
    pub fn new() -> Result<Tagger, BuildError> {
        let heads = models_from_bytes(MODEL)
            .ok_or_else(|| BuildError::model("the shipped entity model, models/entities-v1.bin, is not readable"))?;
        Tagger::from_heads(heads, [PERSON_THRESHOLD, ADDRESS_THRESHOLD])
    }

    /// A tagger from trained heads (person, address, then any rivals of the person
    /// head) and their thresholds; the training program uses it to measure a fold's
    /// model.
    pub fn from_heads(heads: Vec<Model>, thresholds: [f64; 2]) -> Result<Tagger, BuildError> {
        let given = heads.len();
        let mut heads = heads.into_iter();
        let (Some(person), Some(address)) = (heads.next(), heads.next()) else {
            return Err(BuildError::model(format!("{given} heads given, at least 2 (person, address) needed")));
        };
        Ok(Tagger { lexicon: Lexicon::shipped()?, person, address, rivals: heads.collect(), thresholds })
    }

    /// The tagged runs in `text`, in order.
    pub fn tag(&self, text: &str) -> Vec<Tagged> {
        let tokens = Tokens::new(text, &self.lexicon);
        let mut words: Vec<(usize, Tag, f64)> = Vec::new();
        let mut features = [0usize; FEATURES];
        for i in tokens.candidates() {
            tokens.features(i, &mut features);
            let mut person = self.person.probability(&features);
            let address = self.address.probability(&features);
            // The rivals only matter for a word that would otherwise be a name.
            if person >= address
                && person >= self.thresholds[0]
                && self.rivals.iter().any(|r| r.probability(&features) > person)
            {
                person = 0.0;
            }
            let (tag, p, threshold) = if person >= address {
                (Tag::Person, person, self.thresholds[0])
            } else {
                (Tag::Address, address, self.thresholds[1])
            };
            if p >= threshold {
                words.push((i, tag, p));
            }
        }
        let mut runs = tokens.runs(&words);
        // A lone capitalised word is more often a town or a firm than a name; two
        // name-like words in a row rarely are.
        runs.retain(|r| {
            r.tag != Tag::Person || r.words > 1 || f64::from(r.confidence) >= self.thresholds[0] + LONE_NAME_MARGIN
        });
        runs
    }
}

/// A token: a word (letters and digits, with `'` or `-` inside), or one punctuation
/// character, or a line break. Other whitespace separates tokens and is dropped.
#[derive(Debug, Clone, Copy)]
struct Token {
    start: usize,
    end: usize,
    /// Hash of the token in lower case.
    word: u64,
    /// Hash of its shape: each character as `X`, `x`, `d` or itself, runs collapsed.
    shape: u64,
    /// Hash of its last three characters in lower case.
    suffix: u64,
    /// Letters or digits, and at least one capital letter or digit.
    candidate: bool,
    /// The character of a punctuation token or line break; `None` for a word.
    punct: Option<char>,
    /// The word lists it is on ([`Lexicon`]'s bits).
    lists: u8,
}

/// A text's tokens.
#[derive(Debug)]
pub struct Tokens {
    tokens: Vec<Token>,
}

const START: u64 = 0x5354_4152_5400_0001;
const END: u64 = 0x454e_4400_0000_0002;
const PLACEHOLDER: u64 = 0x504c_4143_4500_0003;

/// The length of the redaction placeholder `rest` starts with: `[`, capitals and
/// underscores, an optional `_` and number, `]`.
fn placeholder(rest: &str) -> Option<usize> {
    let inner = rest.strip_prefix('[')?;
    let len = inner.bytes().take_while(|b| b.is_ascii_uppercase() || *b == b'_' || b.is_ascii_digit()).count();
    let starts_with_capital = inner.as_bytes().first().is_some_and(u8::is_ascii_uppercase);
    (starts_with_capital && inner.as_bytes().get(len) == Some(&b']')).then_some(len + 2)
}

impl Tokens {
    /// Splits `text` into tokens, looking each word up in `lexicon`.
    pub fn new(text: &str, lexicon: &Lexicon) -> Tokens {
        let mut tokens = Vec::with_capacity(text.len() / 5 + 1);
        let mut i = 0;
        while let Some(c) = char_at(text, i) {
            // A redaction placeholder (`[EMAIL]`, `[PERSON_2]`) is one token, never a
            // candidate: text psf redacted is not read as names.
            if let Some(len) = placeholder(&text[i..]) {
                let end = i + len;
                tokens.push(Token {
                    start: i,
                    end,
                    word: PLACEHOLDER,
                    shape: PLACEHOLDER,
                    suffix: PLACEHOLDER,
                    candidate: false,
                    punct: Some('['),
                    lists: 0,
                });
                i = end;
                continue;
            }
            if !c.is_alphanumeric() {
                if c == '\n' || !c.is_whitespace() {
                    let mut h = Fnv::new();
                    h.char(c);
                    let (word, end) = (h.0, i + c.len_utf8());
                    let punct = Some(c);
                    tokens.push(Token {
                        start: i,
                        end,
                        word,
                        shape: word,
                        suffix: word,
                        candidate: false,
                        punct,
                        lists: 0,
                    });
                }
                i += c.len_utf8();
                continue;
            }
            let start = i;
            let mut word = Fnv::new();
            let mut shape = Shape::new();
            let mut last = ['\0'; 3];
            let mut candidate = false;
            let mut c = c;
            loop {
                if c.is_ascii() {
                    candidate |= c.is_ascii_uppercase() || c.is_ascii_digit();
                    let l = c.to_ascii_lowercase();
                    word.char(l);
                    last = [last[1], last[2], l];
                } else {
                    candidate |= c.is_uppercase() || c.is_numeric();
                    for l in c.to_lowercase() {
                        word.char(l);
                        last = [last[1], last[2], l];
                    }
                }
                shape.push(c);
                i += c.len_utf8();
                // The word goes on through letters and digits, and through `'` or `-`
                // with a letter or digit after it.
                match char_at(text, i) {
                    Some(d) if d.is_alphanumeric() => c = d,
                    Some(d @ ('\'' | '’' | '-'))
                        if char_at(text, i + d.len_utf8()).is_some_and(char::is_alphanumeric) =>
                    {
                        c = d;
                    }
                    _ => break,
                }
            }
            let mut suffix = Fnv::new();
            for l in last.into_iter().filter(|l| *l != '\0') {
                suffix.char(l);
            }
            let (word, shape, suffix) = (word.0, shape.hash.0, suffix.0);
            tokens.push(Token { start, end: i, word, shape, suffix, candidate, punct: None, lists: 0 });
        }
        // Only a candidate's word lists and its neighbours' are features: the others
        // are not looked up.
        let count = tokens.len();
        for i in 0..count {
            if tokens[i].candidate {
                for t in &mut tokens[i.saturating_sub(1)..(i + 2).min(count)] {
                    if t.punct.is_none() && t.lists == 0 {
                        t.lists = lexicon.lists(t.word);
                    }
                }
            }
        }
        Tokens { tokens }
    }

    /// Indices of the words the tagger scores.
    pub fn candidates(&self) -> impl Iterator<Item = usize> + '_ {
        self.tokens.iter().enumerate().filter(|(_, t)| t.candidate).map(|(i, _)| i)
    }

    /// The byte range of token `i`.
    pub fn span(&self, i: usize) -> Range<usize> {
        self.tokens.get(i).map_or(0..0, |t| t.start..t.end)
    }

    /// The feature buckets of token `i`, each below [`DIMS`].
    pub fn features(&self, i: usize, out: &mut [usize; FEATURES]) {
        let at = |d: isize| -> (u64, u64, u64) {
            match i.checked_add_signed(d).and_then(|j| self.tokens.get(j)) {
                Some(t) => (t.word, t.shape, u64::from(t.lists)),
                None if d < 0 => (START, START, 0),
                None => (END, END, 0),
            }
        };
        let t = self.tokens.get(i).copied().unwrap_or(Token {
            start: 0,
            end: 0,
            word: END,
            shape: END,
            suffix: END,
            candidate: false,
            punct: None,
            lists: 0,
        });
        let (w_2, s_2, _) = at(-2);
        let (w_1, s_1, l_1) = at(-1);
        let (w1, s1, l1) = at(1);
        let (w2, s2, _) = at(2);
        let lists = u64::from(t.lists);
        let len = (t.end - t.start).min(8) as u64;
        let all = [
            mix(1, t.word, 0),
            mix(2, t.shape, 0),
            mix(3, t.suffix, 0),
            mix(4, t.shape, len),
            mix(5, w_1, 0),
            mix(6, w1, 0),
            mix(7, w_2, 0),
            mix(8, w2, 0),
            mix(9, s_1, t.shape),
            mix(10, t.shape, s1),
            mix(11, w_1, t.shape),
            mix(12, t.shape, w1),
            mix(13, w_2, w_1),
            mix(14, w1, w2),
            mix(15, mix(0, s_1, t.shape) as u64, s1),
            mix(16, s_2, s2),
            mix(17, lists, 0),
            mix(18, l_1, l1),
            mix(19, lists, t.shape),
            mix(20, lists, w_1),
            mix(21, mix(0, l_1, lists) as u64, l1),
            mix(22, t.suffix, l1),
        ];
        *out = all;
    }

    /// Joins tagged words into runs: words with the same tag with nothing between
    /// them but joining tokens — for names one initial's full stop or lower-case
    /// particle (`ten`, `van`); for addresses up to two of `.` `,` `#` `/` `-`, a line
    /// break or a lower-case word.
    fn runs(&self, words: &[(usize, Tag, f64)]) -> Vec<Tagged> {
        let mut out: Vec<Tagged> = Vec::new();
        // The last tagged word: its token, its tag, and its run's sum of probabilities
        // (the run itself, last in `out`, counts its words).
        let mut last: Option<(usize, Tag, f64)> = None;
        for &(i, tag, p) in words {
            let Some(t) = self.tokens.get(i) else { continue };
            let joined = last.filter(|(j, last_tag, _)| {
                let gap = self.tokens.get(j + 1..i).unwrap_or_default();
                let joins = |g: &Token| match (tag, g.punct) {
                    (_, None) => !g.candidate,
                    (Tag::Person, Some(c)) => c == '.',
                    (Tag::Address, Some(c)) => matches!(c, '.' | ',' | '\n' | '#' | '/' | '-'),
                };
                let most = if tag == Tag::Person { 1 } else { 2 };
                *last_tag == tag && gap.len() <= most && gap.iter().all(joins)
            });
            match (joined, out.last_mut()) {
                (Some((_, _, sum)), Some(run)) => {
                    run.words += 1;
                    run.span.end = t.end;
                    run.confidence = ((sum + p) / run.words as f64) as f32;
                    last = Some((i, tag, sum + p));
                }
                _ => {
                    out.push(Tagged { tag, span: t.start..t.end, confidence: p as f32, words: 1 });
                    last = Some((i, tag, p));
                }
            }
        }
        out
    }
}

/// Word lists: which of first names, surnames, common words and honorifics each word
/// is on, keyed by the hash of its lower-case form.
#[derive(Debug, Clone)]
pub struct Lexicon {
    lists: HashMap<u64, u8, BuildHasherDefault<Prehashed>>,
}

impl Lexicon {
    /// On the list of first names.
    pub const FIRST: u8 = 1;
    /// On the list of surnames.
    pub const LAST: u8 = 2;
    /// A word seen in lower case in ordinary text.
    pub const WORD: u8 = 4;
    /// A title before a name.
    pub const HONORIFIC: u8 = 8;
    /// A country or nation, or its people.
    pub const PLACE: u8 = 16;

    const HONORIFICS: [&str; 13] =
        ["mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "madam", "dame", "rev", "herr", "frau"];

    /// The committed lists.
    pub fn shipped() -> Result<Lexicon, BuildError> {
        Lexicon::parse(LEXICON)
    }

    /// Reads `[first]`, `[last]`, `[word]` and `[place]` sections of one lower-case entry a line.
    pub fn parse(text: &str) -> Result<Lexicon, BuildError> {
        let mut lists: HashMap<u64, u8, BuildHasherDefault<Prehashed>> = HashMap::default();
        let mut add = |word: &str, bit: u8| {
            let mut h = Fnv::new();
            word.chars().flat_map(char::to_lowercase).for_each(|c| h.char(c));
            *lists.entry(h.0).or_default() |= bit;
        };
        let mut bit = None;
        for (n, line) in text.lines().enumerate() {
            match line.trim() {
                "" => {}
                "[first]" => bit = Some(Lexicon::FIRST),
                "[last]" => bit = Some(Lexicon::LAST),
                "[word]" => bit = Some(Lexicon::WORD),
                "[place]" => bit = Some(Lexicon::PLACE),
                word => match bit {
                    Some(b) => add(word, b),
                    None => {
                        return Err(BuildError::model(format!("lexicon line {}: an entry before any section", n + 1)));
                    }
                },
            }
        }
        for word in Lexicon::HONORIFICS {
            add(word, Lexicon::HONORIFIC);
        }
        Ok(Lexicon { lists })
    }

    /// The lists a word is on, by the hash of its lower-case form.
    fn lists(&self, word: u64) -> u8 {
        self.lists.get(&word).copied().unwrap_or(0)
    }
}

/// The hasher for keys that are hashes already.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// The character at byte `i`, if `i` is inside `text` and on a boundary.
fn char_at(text: &str, i: usize) -> Option<char> {
    match text.as_bytes().get(i) {
        Some(b) if b.is_ascii() => Some(char::from(*b)),
        _ => text.get(i..).and_then(|rest| rest.chars().next()),
    }
}

/// FNV-1a over characters.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    /// One round per character, not per byte: [`mix`] spreads the bits later.
    fn char(&mut self, c: char) {
        self.0 ^= u64::from(u32::from(c));
        self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
    }
}

/// A word's shape, built a character at a time.
struct Shape {
    hash: Fnv,
    last: Option<char>,
    len: u8,
}

impl Shape {
    fn new() -> Shape {
        Shape { hash: Fnv::new(), last: None, len: 0 }
    }

    fn push(&mut self, c: char) {
        let class = if c.is_ascii() {
            match c {
                'A'..='Z' => 'X',
                'a'..='z' => 'x',
                '0'..='9' => 'd',
                _ => c,
            }
        } else if c.is_uppercase() {
            'X'
        } else if c.is_lowercase() {
            'x'
        } else if c.is_numeric() {
            'd'
        } else {
            c
        };
        // Runs collapse, and only the first five classes count: `Xx` for every
        // capitalised word, `d` for every number.
        if self.last != Some(class) && self.len < 5 {
            self.hash.char(class);
            self.last = Some(class);
            self.len += 1;
        }
    }
}

/// A feature bucket from a feature kind and up to two hashed values (splitmix64's
/// finaliser, so close inputs land far apart).
fn mix(kind: u64, a: u64, b: u64) -> usize {
    let mut z = kind.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ a ^ b.rotate_left(29).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z as usize) & (DIMS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_words_whole_and_punctuation_apart() {
        let text = "Mr. O'Brien-Smith lives at 12 Elm St,\nApt. 4";
        let t = Tokens::new(text, &Lexicon::shipped().unwrap());
        let words: Vec<&str> = (0..t.tokens.len()).map(|i| &text[t.span(i)]).collect();
        assert_eq!(words, ["Mr", ".", "O'Brien-Smith", "lives", "at", "12", "Elm", "St", ",", "\n", "Apt", ".", "4"]);
        let candidates: Vec<&str> = t.candidates().map(|i| &text[t.span(i)]).collect();
        assert_eq!(candidates, ["Mr", "O'Brien-Smith", "12", "Elm", "St", "Apt", "4"]);
    }

    #[test]
    fn the_lexicon_knows_names_words_and_titles_in_any_case() {
        let lexicon = Lexicon::shipped().unwrap();
        let t = Tokens::new("Dr MARY Smith signed the Business plan", &lexicon);
        let lists: Vec<u8> = t.tokens.iter().map(|t| t.lists).collect();
        assert_eq!(lists[0], Lexicon::HONORIFIC);
        assert!(lists[1] & Lexicon::FIRST != 0);
        assert!(lists[2] & Lexicon::LAST != 0);
        assert!(lists[5] & Lexicon::WORD != 0);
        assert!(Lexicon::parse("anna\n").unwrap_err().to_string().contains("line 1"));
    }

    #[test]
    fn a_redaction_placeholder_is_one_token_and_no_candidate() {
        let text = "to [PERSON_2] at [ADDRESS], [not one]";
        let t = Tokens::new(text, &Lexicon::shipped().unwrap());
        let words: Vec<&str> = (0..t.tokens.len()).map(|i| &text[t.span(i)]).collect();
        assert_eq!(words, ["to", "[PERSON_2]", "at", "[ADDRESS]", ",", "[", "not", "one", "]"]);
        assert_eq!(t.candidates().count(), 0);
    }

    #[test]
    fn features_are_bounded_and_depend_on_the_neighbours() {
        let lexicon = Lexicon::shipped().unwrap();
        let a = Tokens::new("my name is Anna", &lexicon);
        let b = Tokens::new("the city is Anna", &lexicon);
        let (mut fa, mut fb) = ([0; FEATURES], [0; FEATURES]);
        a.features(3, &mut fa);
        b.features(3, &mut fb);
        assert!(fa.iter().chain(&fb).all(|f| *f < DIMS));
        assert_eq!(fa[0], fb[0], "the word itself is the same");
        assert_ne!(fa[4..], fb[4..], "its context is not");
    }

    #[test]
    fn runs_join_words_across_an_initial_and_address_punctuation() {
        let text = "Karin M. Beike, 12 Elm St,\nSpringfield";
        let t = Tokens::new(text, &Lexicon::shipped().unwrap());
        let idx = |w: &str| (0..t.tokens.len()).find(|i| &text[t.span(*i)] == w).unwrap();
        let words = [
            (idx("Karin"), Tag::Person, 0.9),
            (idx("M"), Tag::Person, 0.7),
            (idx("Beike"), Tag::Person, 0.8),
            (idx("12"), Tag::Address, 0.9),
            (idx("Elm"), Tag::Address, 0.9),
            (idx("St"), Tag::Address, 0.9),
            (idx("Springfield"), Tag::Address, 0.6),
        ];
        let runs = t.runs(&words);
        let spans: Vec<&str> = runs.iter().map(|r| &text[r.span.clone()]).collect();
        assert_eq!(spans, ["Karin M. Beike", "12 Elm St,\nSpringfield"]);
        assert!((runs[0].confidence - 0.8).abs() < 1e-6);
    }
}
