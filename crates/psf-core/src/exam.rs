//! The knowledge check: psf's bank of PSF foundations questions (`exam/bank.yaml`, our own
//! words, each tagged with the competencies it tests), a reproducible draw that covers
//! every domain, a timed attempt whose clock is an input, and scoring per domain.
//!
//! Pure: no IO, no clock of its own. `psf exam` and the console run attempts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog;

/// The bank's text, as shipped (a certificate names its SHA-256).
pub const BANK_TEXT: &str = include_str!("../exam/bank.yaml");

/// Questions an attempt asks.
pub const QUESTIONS: usize = 20;
/// Questions an attempt asks at least from each domain.
pub const PER_DOMAIN: usize = 2;
/// Minutes an attempt lasts unless told otherwise.
pub const MINUTES: u32 = 20;
/// Days a pass stays current: the console's team table and the assessment agree.
pub const PASS_VALID_DAYS: i32 = 365;
/// The share of right answers that passes unless the manifest sets another.
pub const PASS_MARK: f64 = 0.75;

/// One question.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// Stable id, `ig-01`.
    pub id: String,
    /// The competencies it tests; the first names its domain.
    pub competencies: Vec<String>,
    /// The situation and the question.
    pub stem: String,
    /// Four options.
    pub options: Vec<String>,
    /// The index of the one best option, in `options` as written.
    pub answer: usize,
    /// Why, citing the competencies; shown after answering.
    pub explanation: String,
}

impl Question {
    /// Its domain: `IG` of `IG-1`.
    pub fn domain(&self) -> &str {
        self.competencies.first().and_then(|c| c.split('-').next()).unwrap_or("")
    }
}

/// The bank.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Bank {
    /// Its version, recorded with every result.
    pub version: String,
    /// Every question.
    pub questions: Vec<Question>,
}

/// The bank psf ships.
pub fn bank() -> Result<Bank, String> {
    let doc = crate::yaml::parse(BANK_TEXT)
        .map_err(|e| format!("the question bank is not valid YAML at {}: {}", e.position, e.message))?;
    serde_json::from_value(doc.value).map_err(|e| format!("the question bank is malformed: {e}"))
}

impl Bank {
    /// What is wrong with the bank, if anything: unknown competency ids, options that are
    /// not four distinct texts, an answer out of range, repeated ids or stems, explanations
    /// that do not cite the question's competencies, domains with too few questions.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut ids = std::collections::BTreeSet::new();
        let mut stems = std::collections::BTreeSet::new();
        for q in &self.questions {
            if !ids.insert(q.id.as_str()) {
                out.push(format!("{}: the id is used twice", q.id));
            }
            if !stems.insert(q.stem.trim().to_lowercase()) {
                out.push(format!("{}: the stem repeats another question's", q.id));
            }
            if q.competencies.is_empty() {
                out.push(format!("{}: names no competency", q.id));
            }
            for c in &q.competencies {
                if catalog::competency(c).is_none() {
                    out.push(format!("{}: `{c}` is not a competency", q.id));
                }
                if !q.explanation.contains(c.as_str()) {
                    out.push(format!("{}: the explanation does not cite {c}", q.id));
                }
            }
            let distinct: std::collections::BTreeSet<&str> = q.options.iter().map(|o| o.trim()).collect();
            if q.options.len() != 4 || distinct.len() != 4 || q.options.iter().any(|o| o.trim().is_empty()) {
                out.push(format!("{}: needs four distinct, non-empty options", q.id));
            }
            if q.answer >= q.options.len() {
                out.push(format!("{}: the answer {} is not one of its options", q.id, q.answer));
            }
        }
        // The best option must not give itself away by its length: guessing the longest
        // option must do little better than chance.
        let longest = self
            .questions
            .iter()
            .filter(|q| {
                let best = q.options.get(q.answer).map_or(0, |o| o.chars().count());
                q.options.iter().all(|o| o.chars().count() <= best)
            })
            .count();
        if self.questions.len() >= 10 && longest * 5 > self.questions.len() * 2 {
            out.push(format!(
                "the best option is the longest in {longest} of {} questions; lengthen the others so length does not give it away",
                self.questions.len()
            ));
        }
        for d in &catalog::DOMAINS {
            let n = self.questions.iter().filter(|q| q.domain() == d.id).count();
            if n < 10 {
                out.push(format!("domain {} has {n} questions; it needs at least 10", d.id));
            }
        }
        out
    }
}

/// A small, seedable generator (SplitMix64): draws must be reproducible for tests and
/// the same on every platform, and need no cryptographic strength.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// One question of an attempt, its options in the order shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Asked {
    /// The question.
    pub question: Question,
    /// `order[k]` is the index in `question.options` of the option shown at `k`.
    pub order: Vec<usize>,
}

impl Asked {
    /// The options in the order shown.
    pub fn shown(&self) -> Vec<&str> {
        self.order.iter().filter_map(|i| self.question.options.get(*i).map(String::as_str)).collect()
    }

    /// Where the right option is shown.
    pub fn right(&self) -> usize {
        self.order.iter().position(|i| *i == self.question.answer).unwrap_or(0)
    }
}

/// Draws an attempt: [`PER_DOMAIN`] questions from every domain, the rest from the whole
/// bank, in a shuffled order with shuffled options. The same seed gives the same attempt.
pub fn draw(bank: &Bank, seed: u64) -> Vec<Asked> {
    let mut rng = Rng::new(seed);
    let mut chosen: Vec<usize> = Vec::with_capacity(QUESTIONS);
    for d in &catalog::DOMAINS {
        let mut pool: Vec<usize> = (0..bank.questions.len()).filter(|i| bank.questions[*i].domain() == d.id).collect();
        rng.shuffle(&mut pool);
        chosen.extend(pool.into_iter().take(PER_DOMAIN));
    }
    let mut rest: Vec<usize> = (0..bank.questions.len()).filter(|i| !chosen.contains(i)).collect();
    rng.shuffle(&mut rest);
    chosen.extend(rest.into_iter().take(QUESTIONS.saturating_sub(chosen.len())));
    rng.shuffle(&mut chosen);
    chosen
        .into_iter()
        .map(|i| {
            let question = bank.questions[i].clone();
            let mut order: Vec<usize> = (0..question.options.len()).collect();
            rng.shuffle(&mut order);
            Asked { question, order }
        })
        .collect()
}

/// An attempt under way: the questions, the answers given (by shown position), and a
/// deadline. Time comes in as an argument, so the deadline can be tested.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The questions, in order.
    pub asked: Vec<Asked>,
    /// The shown position chosen for each, if any.
    pub answers: Vec<Option<usize>>,
    /// When it started and when it ends (ms since the epoch).
    pub started_ms: i64,
    /// The deadline.
    pub deadline_ms: i64,
}

impl Attempt {
    /// A new attempt of `asked`, starting at `now_ms`, lasting `minutes`.
    pub fn new(asked: Vec<Asked>, now_ms: i64, minutes: u32) -> Attempt {
        let answers = vec![None; asked.len()];
        Attempt { asked, answers, started_ms: now_ms, deadline_ms: now_ms + i64::from(minutes) * 60_000 }
    }

    /// Milliseconds left at `now_ms` (0 once the time is up).
    pub fn remaining_ms(&self, now_ms: i64) -> i64 {
        (self.deadline_ms - now_ms).max(0)
    }

    /// Whether the time is up at `now_ms`.
    pub fn expired(&self, now_ms: i64) -> bool {
        now_ms >= self.deadline_ms
    }

    /// Answers question `index` with the option shown at `choice`; refused once the time
    /// is up or for a question or option that does not exist.
    pub fn answer(&mut self, index: usize, choice: usize, now_ms: i64) -> Result<(), String> {
        if self.expired(now_ms) {
            return Err("the time is up; the attempt was submitted as it stood".into());
        }
        let Some(asked) = self.asked.get(index) else { return Err(format!("there is no question {}", index + 1)) };
        if choice >= asked.order.len() {
            return Err(format!(
                "question {} has options a to {}",
                index + 1,
                char::from(b'a' + asked.order.len() as u8 - 1)
            ));
        }
        self.answers[index] = Some(choice);
        Ok(())
    }

    /// How many are answered.
    pub fn answered(&self) -> usize {
        self.answers.iter().filter(|a| a.is_some()).count()
    }

    /// The result with `pass_mark` (a share, 0..1).
    pub fn score(&self, pass_mark: f64) -> Score {
        let mut per_domain: BTreeMap<String, (u32, u32)> = BTreeMap::new();
        let mut missed = Vec::new();
        for (asked, answer) in self.asked.iter().zip(&self.answers) {
            let right = *answer == Some(asked.right());
            let e = per_domain.entry(asked.question.domain().to_string()).or_default();
            e.1 += 1;
            if right {
                e.0 += 1;
            } else {
                missed.push(asked.question.clone());
            }
        }
        let right: u32 = per_domain.values().map(|(r, _)| r).sum();
        let total = u32::try_from(self.asked.len()).unwrap_or(u32::MAX);
        let share = if total == 0 { 0.0 } else { f64::from(right) / f64::from(total) };
        Score { right, total, share, pass_mark, passed: share >= pass_mark, per_domain, missed }
    }
}

/// The result of an attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    /// Right answers.
    pub right: u32,
    /// Questions asked.
    pub total: u32,
    /// `right / total`.
    pub share: f64,
    /// The pass mark it was judged against.
    pub pass_mark: f64,
    /// Whether `share` reaches the pass mark.
    pub passed: bool,
    /// Right and asked, per domain.
    pub per_domain: BTreeMap<String, (u32, u32)>,
    /// The questions answered wrongly or not at all, for their explanations.
    #[serde(skip)]
    pub missed: Vec<Question>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bank_is_valid() {
        let b = bank().unwrap();
        assert_eq!(b.problems(), Vec::<String>::new());
        assert!(b.questions.len() >= 80);
    }

    #[test]
    fn a_bad_bank_says_what_is_wrong() {
        let mut b = bank().unwrap();
        for q in &mut b.questions {
            let best = q.answer;
            q.options[best] = format!("{}, which makes it by far the longest option of the four", q.options[best]);
        }
        b.questions[1].competencies = vec!["XX-9".into()];
        b.questions[2].stem = b.questions[0].stem.clone();
        b.questions[3].options[1] = b.questions[3].options[0].clone();
        b.questions[4].answer = 7;
        let problems = b.problems().join("\n");
        for expect in [
            "`XX-9` is not a competency",
            "repeats another question's",
            "four distinct",
            "is not one of its options",
            "the best option is the longest",
        ] {
            assert!(problems.contains(expect), "{expect}: {problems}");
        }
    }

    #[test]
    fn a_draw_covers_every_domain_and_is_reproducible() {
        let b = bank().unwrap();
        for seed in 0..200 {
            let asked = draw(&b, seed);
            assert_eq!(asked.len(), QUESTIONS);
            for d in &catalog::DOMAINS {
                assert!(
                    asked.iter().filter(|a| a.question.domain() == d.id).count() >= PER_DOMAIN,
                    "seed {seed}: {}",
                    d.id
                );
            }
            let ids: std::collections::BTreeSet<&str> = asked.iter().map(|a| a.question.id.as_str()).collect();
            assert_eq!(ids.len(), QUESTIONS, "no question twice");
            for a in &asked {
                let mut o = a.order.clone();
                o.sort_unstable();
                assert_eq!(o, [0, 1, 2, 3]);
                assert_eq!(a.shown()[a.right()], a.question.options[a.question.answer]);
            }
        }
        assert_eq!(draw(&b, 1), draw(&b, 1));
        assert_ne!(draw(&b, 1), draw(&b, 2));
        // The right answer is not always shown first.
        let firsts = (0..50).filter(|s| draw(&b, *s)[0].right() == 0).count();
        assert!(firsts < 30, "{firsts}");
    }

    #[test]
    fn scoring_counts_per_domain_and_the_pass_mark_decides() {
        let b = bank().unwrap();
        let mut a = Attempt::new(draw(&b, 7), 0, MINUTES);
        for i in 0..15 {
            let right = a.asked[i].right();
            a.answer(i, right, 1000).unwrap();
        }
        // One wrong answer, four unanswered.
        let wrong = (a.asked[15].right() + 1) % 4;
        a.answer(15, wrong, 1000).unwrap();
        let s = a.score(PASS_MARK);
        assert_eq!((s.right, s.total, s.passed), (15, 20, true));
        assert_eq!(s.missed.len(), 5);
        assert_eq!(s.per_domain.values().map(|(_, n)| n).sum::<u32>(), 20);
        assert!(!a.score(0.8).passed);
        assert!(a.answer(0, 9, 1000).unwrap_err().contains("options a to d"));
    }

    #[test]
    fn the_timer_expires_with_the_injected_clock() {
        let b = bank().unwrap();
        let mut a = Attempt::new(draw(&b, 3), 1_000_000, 20);
        assert_eq!(a.remaining_ms(1_000_000), 20 * 60_000);
        assert_eq!(a.remaining_ms(1_000_000 + 19 * 60_000), 60_000);
        assert!(!a.expired(1_000_000 + 20 * 60_000 - 1));
        assert!(a.answer(0, 0, 1_000_000 + 20 * 60_000 - 1).is_ok());
        assert!(a.expired(1_000_000 + 20 * 60_000));
        assert!(a.answer(1, 0, 1_000_000 + 20 * 60_000).unwrap_err().contains("time is up"));
        assert_eq!(a.remaining_ms(i64::MAX), 0);
    }
}
