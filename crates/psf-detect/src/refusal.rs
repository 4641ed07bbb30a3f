//! Refusal detection (OV-5): did the model decline to answer?
//!
//! A refusal is a defined state the gateway records and counts, not an error: the
//! answer is still delivered. Phrases are matched at the start of the answer or of a
//! sentence, on the lowercase text, so "I can't wait to help" is no refusal.

/// What a refusal may open with before it says so.
const OPENERS: &[&str] = &[
    "i'm so sorry",
    "i'm sorry",
    "i am sorry",
    "i'm really sorry",
    "sorry",
    "unfortunately",
    "regrettably",
    "i'm afraid",
    "i am afraid",
    "as an ai language model",
    "as an ai assistant",
    "as a responsible ai",
    "as an ai",
    "apologies",
    "i apologize",
    "i apologise",
    "however",
    "but",
];

/// The refusing subject and modal; a refusal verb must follow.
const CORES: &[&str] = &[
    "i can't",
    "i cannot",
    "i can not",
    "i won't be able to",
    "i will not be able to",
    "i won't",
    "i will not",
    "i'm unable to",
    "i am unable to",
    "i'm not able to",
    "i am not able to",
    "i'm not permitted to",
    "i am not permitted to",
    "i'm not allowed to",
    "i am not allowed to",
    "i'm not going to",
    "i am not going to",
    "i'm not in a position to",
    "i am not in a position to",
    "i do not",
    "i don't",
    "that's not something i can",
    "that is not something i can",
    "this is not something i can",
    "it's not appropriate for me to",
    "it is not appropriate for me to",
    "it's not within my programming",
    "it is not within my programming",
];

/// Words that may stand between the modal and the verb.
const FILLERS: &[&str] =
    &["really ", "currently ", "directly ", "ethically ", "in good conscience ", "personally ", "actually "];

/// What a refusal refuses to do ("I can't wait" is no refusal).
const VERBS: &[&str] = &[
    "help",
    "assist",
    "provide",
    "comply",
    "do that",
    "do this",
    "do so",
    "share",
    "discuss",
    "give",
    "write",
    "create",
    "generate",
    "answer",
    "support",
    "fulfil",
    "engage",
    "offer",
    "produce",
    "continue",
    "talk about",
    "tell",
    "recommend",
    "disclose",
    "condone",
    "encourage",
    "participate",
    "promote",
    "facilitate",
    "endorse",
    "feel comfortable",
    "be of",
    "make",
    "describe",
    "respond",
    "complete",
    "perform",
    "reveal",
    "go into",
    "entertain",
    "agree",
    "be able to",
    "ethical",
    "or ethical",
    "guidelines",
    "",
];

/// Refusals that need no verb after them, and refusals in other languages.
const WHOLE: &[&str] = &[
    "i must decline",
    "i have to decline",
    "i must refuse",
    "i refuse to",
    "i'm not comfortable",
    "i am not comfortable",
    "je ne peux pas",
    "désolé, mais je ne peux",
    "désolée, mais je ne peux",
    "lo siento, pero no puedo",
    "lo siento, no puedo",
    "no puedo ayudar",
    "no puedo proporcionar",
    "ich kann dabei nicht",
    "ich kann ihnen dabei nicht",
    "ich kann dir dabei nicht",
    "es tut mir leid, aber ich kann",
    "leider kann ich",
    "mi dispiace, ma non posso",
    "non posso aiutarti",
    "non posso fornire",
    "sinto muito, mas não posso",
    "desculpe, mas não posso",
    "não posso ajudar",
];

/// Whether `answer` is a refusal: one of its first three sentences declines.
pub fn is_refusal(answer: &str) -> bool {
    let lower = answer.to_lowercase().replace(['\u{2019}', '\u{2018}'], "'");
    lower.split(['.', '!', '?', '\n']).take(3).any(sentence_declines)
}

fn sentence_declines(sentence: &str) -> bool {
    let mut s = sentence.trim_start();
    // "I'm sorry, but as an AI, I cannot …": peel the openers off, in any order.
    while let Some(rest) =
        OPENERS.iter().find_map(|o| s.strip_prefix(o).filter(|r| !r.starts_with(char::is_alphanumeric)))
    {
        s = rest.trim_start_matches([',', ' ', ':', ';', '-']);
    }
    if WHOLE.iter().any(|w| s.starts_with(w)) {
        return true;
    }
    CORES.iter().any(|core| {
        let Some(mut rest) = s.strip_prefix(core) else { return false };
        if rest.starts_with(char::is_alphanumeric) {
            return false;
        }
        rest = rest.trim_start();
        while let Some(r) = FILLERS.iter().find_map(|f| rest.strip_prefix(f)) {
            rest = r;
        }
        // The empty verb: a core that ends the sentence ("I'm sorry, I can't.").
        VERBS.iter().any(|v| if v.is_empty() { rest.trim().is_empty() } else { rest.starts_with(v) })
    })
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
        for refusal in [
            "I am sorry, but I cannot help with that request.",
            "Unfortunately, I cannot assist with this.",
            "I'm afraid I can't do that.",
            "As an AI, I am not permitted to discuss this.",
            "Lo siento, pero no puedo ayudarte con eso.",
            "Je ne peux pas vous aider avec cela.",
            "Es tut mir leid, aber ich kann dabei nicht helfen.",
        ] {
            assert!(is_refusal(refusal), "{refusal}");
        }
        for answer in [
            "I don't know the tracking number yet; it arrives by email.",
            "I can't wait to see it!",
            "Sorry for the delay: your parcel ships today.",
        ] {
            assert!(!is_refusal(answer), "{answer}");
        }
    }
}
