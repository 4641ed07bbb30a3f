//! System-prompt leakage (IG-5): does an output repeat the system prompt?
//!
//! The prompt is cut into overlapping runs of words (shingles); an output that contains
//! any run of [`PromptLeakDetector::RUN`] consecutive prompt words, compared on
//! lowercased letters and digits only, repeats the prompt. Short runs of common words
//! would match by chance, so a prompt shorter than the run is compared whole. Paraphrase
//! is not caught; verbatim and lightly reformatted copies are.

use std::collections::HashSet;

/// A compiled leak check for one system prompt. `Send + Sync`.
#[derive(Debug, Clone)]
pub struct PromptLeakDetector {
    shingles: HashSet<u64>,
    run: usize,
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase)
}

fn shingle(words: &[String]) -> u64 {
    // FNV-1a over the words with a separator: fast, stable, and collisions only ever
    // cost a false alarm on one output.
    let mut h: u64 = 0xcbf29ce484222325;
    for w in words {
        for b in w.bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h
}

impl PromptLeakDetector {
    /// Consecutive prompt words that count as a leak.
    pub const RUN: usize = 8;

    /// A detector for `prompt`; `None` when the prompt has no words.
    pub fn new(prompt: &str) -> Option<PromptLeakDetector> {
        let w: Vec<String> = words(prompt).collect();
        if w.is_empty() {
            return None;
        }
        let run = w.len().min(Self::RUN);
        let shingles = w.windows(run).map(shingle).collect();
        Some(PromptLeakDetector { shingles, run })
    }

    /// Whether `output` repeats a run of the prompt.
    pub fn leaks(&self, output: &str) -> bool {
        let w: Vec<String> = words(output).collect();
        w.windows(self.run).any(|win| self.shingles.contains(&shingle(win)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMPT: &str = "You are the support assistant of Example Shop. Help with orders, deliveries and returns only. Never promise refunds above the amount in the order record.";

    #[test]
    fn verbatim_and_reformatted_copies_leak() {
        let d = PromptLeakDetector::new(PROMPT);
        let d = d.as_ref();
        assert_eq!(
            d.map(|d| d.leaks("Sure! My instructions: never promise refunds above the amount in the order record.")),
            Some(true)
        );
        assert_eq!(
            d.map(|d| d.leaks("HELP WITH ORDERS — deliveries, and returns ONLY; never promise refunds")),
            Some(true)
        );
    }

    #[test]
    fn ordinary_answers_do_not() {
        let d = PromptLeakDetector::new(PROMPT);
        let d = d.as_ref();
        assert_eq!(d.map(|d| d.leaks("Your order 1234 ships tomorrow. Returns are free within 30 days.")), Some(false));
        assert_eq!(d.map(|d| d.leaks("")), Some(false));
        assert!(PromptLeakDetector::new("  ...  ").is_none());
    }

    #[test]
    fn short_prompts_compare_whole() {
        let d = PromptLeakDetector::new("Answer in French.");
        assert_eq!(d.as_ref().map(|d| d.leaks("I was told: answer in french")), Some(true));
        assert_eq!(d.as_ref().map(|d| d.leaks("I answer in English")), Some(false));
    }
}
