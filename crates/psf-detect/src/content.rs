//! Content categories (OV-3): violence, self-harm, sexual content, hate and harassment.
//!
//! Each category is one head of a multi-label logistic-regression classifier over the
//! same hashed features as the injection classifier (character 3–5-grams, words and
//! word pairs of the detection form), so a text is hashed once for all five. Each head
//! weighs a feature by its idf and by how unevenly its classes use it
//! ([`Model::train_idf_ratio`]), which a few hundred examples per category need. The heads
//! are trained by `cargo run --release -p psf-detect --example train_content` from the
//! OpenAI moderation evaluation set and the HateCheck suite (`models/README.md` has the
//! data, licences and cross-validated figures); their weights ship inside the crate.
//!
//! A sixth head, the general head, learns "harmful in any category" from every
//! positive of every category; on a text of `GENERAL_MIN_WORDS` words or more, when it
//! fires and no category did, the text goes to the category that scored highest.
//!
//! A short list of patterns per category adds what a few hundred training texts
//! cannot teach (first-person statements of self-harm, direct threats, several
//! explicit terms together), each as independent evidence with its own weight, as in
//! the injection detector; a negation just before a pattern ("I would never …")
//! cancels it.
//!
//! Counter-speech is where word-level filters fail: "saying 'I hate women' is vile"
//! repeats the hateful words in order to condemn them. A passage in quotation marks is
//! therefore also scored on its own and removed: when the text *around* the quote
//! scores low and the quote alone explains the score, the text reports or rebuts the
//! quote rather than making it, and the score is taken from the surroundings. Plain
//! negation ("I don't hate …") is left to the word-pair features, which learnt it from
//! HateCheck's negation cases.

use regex::bytes::RegexSet;
use serde::Serialize;

use crate::classifier::{self, Model};
use crate::error::BuildError;
use crate::sanitize::sanitize;

/// The trained heads shipped with psf, in [`Category::ALL`] order, then the general head.
const MODELS: &[u8] = include_bytes!("../models/content-v1.bin");

/// The fewest words a text needs for the general head to judge it: it learnt from
/// paragraphs, and on a single sentence (HateCheck's counter-speech, reclaimed words)
/// it is wrong more often than the category heads, which learnt sentences too.
const GENERAL_MIN_WORDS: usize = 20;

/// How much of a text one score reads. Whole chunks: scoring sentences too (measured
/// with the five category heads, before the general head) raised "any category" F1 on
/// the moderation set only from 0.593 to 0.609 while its false-positive rate went from
/// 0.12 to 0.22.
const SCOPE: classifier::Scope = classifier::Scope::Chunks;

/// A category of harmful content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Violence, threats and gore.
    Violence,
    /// Self-harm and suicide.
    SelfHarm,
    /// Sexual content.
    Sexual,
    /// Hate against a protected group.
    Hate,
    /// Harassment of a person.
    Harassment,
}

impl Category {
    /// Every category, in the order of the model's heads.
    pub const ALL: [Category; 5] =
        [Category::Violence, Category::SelfHarm, Category::Sexual, Category::Hate, Category::Harassment];

    /// The category's name, e.g. `self_harm`.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Violence => "violence",
            Category::SelfHarm => "self_harm",
            Category::Sexual => "sexual",
            Category::Hate => "hate",
            Category::Harassment => "harassment",
        }
    }

    /// Parses [`Category::as_str`]'s names.
    pub fn parse(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The patterns, over the lowercase detection form, with the weight each carries as
/// evidence. Kept as data so each is reviewable.
const PATTERNS: &[(Category, f64, &str)] = &[
    (
        Category::SelfHarm,
        0.9,
        r"\b(kill(ing)?|hurt(ing)?|harm(ing)?|cut(ting)?|starv(e|ing)|hang(ing)?) (myself|my ?self)\b|\bend(ing)? (my|it all|my own) ?(life)?\b.{0,20}\b(tonight|today|now|soon)\b",
    ),
    (
        Category::SelfHarm,
        0.8,
        r"\b(i|i'm|i am) (want(ing)? to|going to|gonna|ready to|about to) (die|end (it|my life))\b",
    ),
    (
        Category::SelfHarm,
        0.7,
        r"\b(commit(ting)?|attempt(ed|ing)?) suicide\b|\bsuicidal (thoughts|feelings)\b|\bi'?m suicidal\b",
    ),
    (
        Category::SelfHarm,
        0.9,
        r"\bhow (to|do i|can i|should i) (kill myself|commit suicide|end my life|cut myself|overdose)\b",
    ),
    (
        Category::Violence,
        0.8,
        r"\b(i('ll| will| am going to|'m going to|'m gonna| gonna)|we('ll| will)) (kill|murder|stab|shoot|strangle|behead|slaughter|beat|torture) (you|him|her|them|everyone|every)\b",
    ),
    (Category::Violence, 0.7, r"\b(beat|stab|burn|kick|torture)(ed|ing)? (you |him |her |them )?to death\b"),
    (
        Category::Violence,
        0.6,
        r"\b(slit|cut) (your|his|her|their) throats?\b|\bblow (you|them|him|her) up\b|\bput a bullet in\b",
    ),
    (
        Category::Sexual,
        0.5,
        r"\b(had|have|having) (hot |rough |wild |explicit )?(sex|intercourse)\b|\b(orgasm(ed|s)?|moan(ed|ing)|undress(ed|ing)?|naked bod(y|ies)|blow ?job|porn(o|ographic)?|horny|masturbat\w*|erotic)\b",
    ),
];

/// Words that, just before a pattern, say it is not meant ("I would never hurt myself").
const NEGATIONS: &[&str] =
    &["never", "not", "don't", "dont", "won't", "wont", "wouldn't", "no longer", "didn't", "stop"];

/// The outcome of scanning one text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContentReport {
    /// Each category's score, 0 to 1, in [`Category::ALL`] order.
    pub scores: [(Category, f64); 5],
    /// The general head's score, 0 to 1: whether the text is harmful in any category
    /// (`None` for a detector without that head).
    pub harmful: Option<f64>,
    /// The categories whose score reached their threshold; or, when none did and the
    /// general head reached its own, the category that scored highest.
    pub flagged: Vec<Category>,
    /// Whether a quoted passage was discounted as reported or rebutted speech.
    pub quote_discounted: bool,
}

impl ContentReport {
    /// The score of one category.
    pub fn score(&self, category: Category) -> f64 {
        self.scores[category.index()].1
    }
}

/// A compiled content detector. Build once, scan many; `Send + Sync`.
#[derive(Debug, Clone)]
pub struct ContentDetector {
    set: RegexSet,
    /// The same patterns one by one, to find where a matched one is.
    singles: Vec<regex::bytes::Regex>,
    /// One head per category, in [`Category::ALL`] order, and optionally a sixth, the
    /// general head: whether the text is harmful in any category.
    heads: Vec<Model>,
    thresholds: [f64; 5],
    general_threshold: f64,
    quotes: bool,
}

impl ContentDetector {
    /// Default thresholds per category, in [`Category::ALL`] order, chosen on the
    /// cross-validated figures in `models/README.md`.
    pub const THRESHOLDS: [f64; 5] = [0.5, 0.5, 0.5, 0.5, 0.5];
    /// The general head's default threshold (see `models/README.md`).
    pub const GENERAL_THRESHOLD: f64 = 0.4;

    /// The shipped model with the default thresholds.
    pub fn new() -> Result<ContentDetector, BuildError> {
        let heads = classifier::models_from_bytes(MODELS)
            .ok_or_else(|| BuildError::model("the shipped content model, models/content-v1.bin, is not readable"))?;
        ContentDetector::with_heads(heads)
    }

    /// A detector with the given heads (one per category, in [`Category::ALL`] order,
    /// then optionally the general head), as the training program builds them.
    pub fn with_heads(heads: Vec<Model>) -> Result<ContentDetector, BuildError> {
        let n = Category::ALL.len();
        if heads.len() != n && heads.len() != n + 1 {
            let message = format!("{} heads given, one per category ({n}) and optionally a general one", heads.len());
            return Err(BuildError::model(message));
        }
        // Byte-level, non-Unicode matching over the lowercase text keeps the automaton
        // small.
        let patterns: Vec<String> = PATTERNS.iter().map(|(_, _, p)| format!("(?-u){p}")).collect();
        let compile_error = |e: regex::Error| BuildError::pattern("content", e.to_string());
        let set = RegexSet::new(&patterns).map_err(compile_error)?;
        let singles =
            patterns.iter().map(|p| regex::bytes::Regex::new(p)).collect::<Result<_, _>>().map_err(compile_error)?;
        Ok(ContentDetector {
            set,
            singles,
            heads,
            thresholds: Self::THRESHOLDS,
            general_threshold: Self::GENERAL_THRESHOLD,
            quotes: true,
        })
    }

    /// The same detector with another threshold for `category`.
    pub fn with_threshold(mut self, category: Category, threshold: f64) -> ContentDetector {
        self.thresholds[category.index()] = threshold;
        self
    }

    /// The same detector with another threshold for the general head.
    pub fn with_general_threshold(mut self, threshold: f64) -> ContentDetector {
        self.general_threshold = threshold;
        self
    }

    /// The same detector scoring quoted passages like any other words, to measure
    /// what the quote handling is worth.
    pub fn without_quote_handling(mut self) -> ContentDetector {
        self.quotes = false;
        self
    }

    /// Scores `text` in every category.
    pub fn scan(&self, text: &str) -> ContentReport {
        let detection = sanitize(text).for_detection;
        // The five categories, then the general head's score (0 without one).
        let mut scores = [0.0; 6];
        let thresholds: [f64; 6] =
            std::array::from_fn(|i| self.thresholds.get(i).copied().unwrap_or(self.general_threshold));
        let heads = self.heads.len();
        classifier::predict_all(&self.heads, &detection, SCOPE, &mut scores[..heads]);
        let mut quote_discounted = false;
        // A quote can only lower a score that reached its threshold; below every
        // threshold there is nothing to discount, and no reason to score the parts.
        let reached = scores[..heads].iter().zip(&thresholds).any(|(s, t)| s >= t);
        if let Some((outside, quoted)) = split_quotes(&detection).filter(|_| self.quotes && reached) {
            let mut around = [0.0; 6];
            classifier::predict_all(&self.heads, &outside, SCOPE, &mut around[..heads]);
            let mut inside = [0.0; 6];
            classifier::predict_all(&self.heads, &quoted, SCOPE, &mut inside[..heads]);
            for (i, s) in scores[..heads].iter_mut().enumerate() {
                // The quote alone explains the score and the words around it do not
                // share it: the text reports or rebuts what it quotes.
                if *s >= thresholds[i] && around[i] < thresholds[i] / 2.0 && inside[i] >= thresholds[i] {
                    *s = around[i];
                    quote_discounted = true;
                }
            }
        }
        let [violence, self_harm, sexual, hate, harassment, general] = scores;
        let mut categories = [violence, self_harm, sexual, hate, harassment];
        self.add_patterns(&detection, &mut categories);
        let mut flagged: Vec<Category> =
            Category::ALL.into_iter().filter(|c| categories[c.index()] >= self.thresholds[c.index()]).collect();
        // The general head learnt "harmful" from every positive of every category,
        // more than any one head has; when it fires and no category did, the text goes
        // to the category that scored highest.
        let harmful = (heads > Category::ALL.len()).then_some(general);
        if flagged.is_empty()
            && harmful.is_some_and(|g| g >= self.general_threshold)
            && detection.split_whitespace().nth(GENERAL_MIN_WORDS - 1).is_some()
            && let Some(top) =
                Category::ALL.into_iter().max_by(|a, b| categories[a.index()].total_cmp(&categories[b.index()]))
        {
            flagged.push(top);
        }
        ContentReport { scores: Category::ALL.map(|c| (c, categories[c.index()])), harmful, flagged, quote_discounted }
    }
}

impl ContentDetector {
    /// Each matched pattern not negated just before it is one more independent piece
    /// of evidence: `score = 1 - (1 - score) * (1 - weight)`.
    fn add_patterns(&self, detection: &str, scores: &mut [f64; 5]) {
        let matches = self.set.matches(detection.as_bytes());
        if !matches.matched_any() {
            return;
        }
        for i in matches.iter() {
            let (category, weight, _) = PATTERNS[i];
            // The set says which pattern matched; find where, to look for a negation.
            let meant = self.singles[i].find_iter(detection.as_bytes()).any(|m| !negated(detection, m.start()));
            if meant {
                let s = &mut scores[category.index()];
                *s = 1.0 - (1.0 - *s) * (1.0 - weight);
            }
        }
    }
}

/// Whether the few words before byte `at` of `text` negate what follows.
fn negated(text: &str, at: usize) -> bool {
    let mut start = at.saturating_sub(24);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    // `at` is where a pattern of ASCII words begins; step back to a boundary if not.
    let mut end = at;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let window = format!(" {} ", &text[start..end].replace(|c: char| !c.is_alphanumeric() && c != '\'', " "));
    NEGATIONS.iter().any(|n| window.contains(&format!(" {n} ")))
}

/// The text outside quotation marks and the text inside them, when a quoted passage of
/// at least two words sits beside at least two words of its own; `None` otherwise.
fn split_quotes(text: &str) -> Option<(String, String)> {
    let mut outside = String::with_capacity(text.len());
    let mut quoted = String::new();
    let mut rest = text;
    while let Some(open) = rest.find(['"', '\u{201c}', '\u{201e}', '\u{00ab}']) {
        let mark = rest[open..].chars().next()?;
        let close_marks: &[char] = match mark {
            '"' => &['"'],
            '\u{00ab}' => &['\u{00bb}'],
            _ => &['\u{201d}', '\u{201c}', '"'],
        };
        let after = &rest[open + mark.len_utf8()..];
        let Some(close) = after.find(close_marks) else { break };
        outside.push_str(&rest[..open]);
        outside.push(' ');
        quoted.push_str(&after[..close]);
        quoted.push(' ');
        let close_len = after[close..].chars().next().map_or(1, char::len_utf8);
        rest = &after[close + close_len..];
    }
    outside.push_str(rest);
    let words = |s: &str| s.split_whitespace().filter(|w| w.chars().any(char::is_alphanumeric)).count();
    (words(&quoted) >= 2 && words(&outside) >= 2).then_some((outside, quoted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_general_head_flags_a_paragraph_the_category_heads_miss() {
        let text = "You are a pathetic, worthless loser and everyone at the office laughs at you behind your \
                    back; do us all a favour and stop showing up, nobody wants to see your ugly face again.";
        let d = ContentDetector::new().unwrap();
        let report = d.scan(text);
        assert!(report.harmful.is_some_and(|g| g >= ContentDetector::GENERAL_THRESHOLD), "{report:?}");
        assert_eq!(report.flagged.len(), 1, "{report:?}");
        let categories_only = d.clone().with_general_threshold(f64::INFINITY).scan(text);
        assert!(categories_only.flagged.is_empty(), "{categories_only:?}");
        // An ordinary paragraph of the same length stays clear.
        let calm = "Our neighbourhood association will meet on Thursday evening to discuss the new parking \
                    rules, the summer fair and the repairs needed on the playground near the school.";
        assert!(d.scan(calm).flagged.is_empty());
    }

    #[test]
    fn the_general_head_does_not_judge_a_single_sentence() {
        // Below GENERAL_MIN_WORDS only the category heads decide, however the general
        // head scores: it learnt from paragraphs.
        let d = ContentDetector::new().unwrap().with_general_threshold(0.0);
        let short = "What time does the library open on Saturdays?";
        assert!(d.scan(short).flagged.is_empty());
        let long =
            format!("{short} {}", "I would also like to know whether I can return books at the desk. ".repeat(2));
        assert!(!d.scan(&long).flagged.is_empty(), "a threshold of 0 flags whatever the head judges");
    }

    #[test]
    fn the_shipped_model_loads_and_scores_every_category() {
        let d = ContentDetector::new().unwrap();
        let r = d.scan("What time does the library open on Saturdays?");
        assert!(r.flagged.is_empty(), "{r:?}");
        assert_eq!(r.scores.map(|(c, _)| c), Category::ALL);
        assert!(r.scores.iter().all(|(_, s)| (0.0..=1.0).contains(s)));
    }

    #[test]
    fn quotes_split_from_their_surroundings() {
        let (outside, quoted) = split_quotes("saying \u{201c}we hate them all\u{201d} is wrong and cruel").unwrap();
        assert_eq!(quoted.trim(), "we hate them all");
        assert!(outside.contains("saying") && outside.contains("wrong and cruel"));
        assert!(split_quotes("no quotes here at all").is_none());
        assert!(split_quotes("a \"single\" word quoted").is_none());
        assert!(split_quotes("\"only a quote here\"").is_none());
        // An unclosed quote leaves the text whole.
        assert!(split_quotes("he said \"and then left the room").is_none());
    }

    #[test]
    fn names_round_trip() {
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Some(c));
        }
        assert_eq!(Category::parse("spam"), None);
    }
}
