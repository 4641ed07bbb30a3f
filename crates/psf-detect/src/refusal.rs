//! Refusal detection (OV-5): did the model decline to answer?
//!
//! A refusal is a defined state the gateway records and counts, not an error: the
//! answer is still delivered. Phrases are matched at the start of the answer or of a
//! sentence, on the lowercase text, so "I can't wait to help" is no refusal.

const PHRASES: &[&str] = &[
    "i can't help with",
    "i cannot help with",
    "i can't assist with",
    "i cannot assist with",
    "i can't provide",
    "i cannot provide",
    "i can't comply",
    "i cannot comply",
    "i won't be able to help",
    "i'm not able to help",
    "i am not able to help",
    "i'm unable to",
    "i am unable to",
    "i must decline",
    "i'm sorry, but i can't",
    "i'm sorry, but i cannot",
    "sorry, but i can't",
    "as an ai language model, i cannot",
];

/// Whether `answer` is a refusal.
pub fn is_refusal(answer: &str) -> bool {
    let lower = answer.to_lowercase().replace('\u{2019}', "'");
    lower
        .split(['.', '!', '?', '\n'])
        .take(3)
        .map(str::trim_start)
        .any(|sentence| PHRASES.iter().any(|p| sentence.starts_with(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_and_near_misses() {
        assert!(is_refusal("I can't help with that request."));
        assert!(is_refusal("I’m sorry, but I can’t share that."));
        assert!(is_refusal("Thanks for asking. I must decline to give legal advice."));
        assert!(!is_refusal("I can't wait to help you with your order!"));
        assert!(!is_refusal("Your parcel arrives Tuesday. If it does not, I can help with a claim."));
    }
}
