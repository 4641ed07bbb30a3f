//! Topic scope (OV-3): is an answer about what this deployment is for?
//!
//! A scope is two lists of topics, each a word or phrase: `deny` (the answer must not
//! touch them) and `allow` (what the deployment is for). Topics are matched as whole
//! words in the detection form (case, width and homoglyph tricks undone), with plural
//! endings, so "refund" also finds "Refunds". An answer mentions a denied topic, or —
//! when it has enough words to be about something — mentions none of the allowed
//! ones; short answers ("Yes.", "Done, anything else?") are never out of scope.

use regex::Regex;

use crate::error::BuildError;
use crate::sanitize::sanitize;

/// Answers with fewer words than this are too short to judge against an allow-list.
pub const MIN_WORDS_FOR_SCOPE: usize = 12;

/// Why an answer is out of scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutOfScope {
    /// It mentions a denied topic (the topic as the manifest lists it).
    Denied(String),
    /// It is long enough to be about something and mentions no allowed topic.
    NotAllowed,
}

/// A compiled topic scope. Build once, check many; `Send + Sync`.
#[derive(Debug, Clone)]
pub struct TopicScope {
    allow: Option<Regex>,
    deny: Vec<(String, Regex)>,
}

impl TopicScope {
    /// Compiles the lists; empty entries are ignored.
    pub fn new(allow: &[String], deny: &[String]) -> Result<TopicScope, BuildError> {
        let compile = |topics: &[&String]| -> Result<Option<Regex>, BuildError> {
            if topics.is_empty() {
                return Ok(None);
            }
            let alternatives: Vec<String> = topics.iter().map(|t| phrase(t)).collect();
            Regex::new(&format!(r"\b(?:{})(?:s|es)?\b", alternatives.join("|")))
                .map(Some)
                .map_err(|e| BuildError::pattern("topic", e.to_string()))
        };
        let allow: Vec<&String> = allow.iter().filter(|t| !t.trim().is_empty()).collect();
        let mut denied = Vec::new();
        for topic in deny.iter().filter(|t| !t.trim().is_empty()) {
            if let Some(re) = compile(&[topic])? {
                denied.push((topic.clone(), re));
            }
        }
        Ok(TopicScope { allow: compile(&allow)?, deny: denied })
    }

    /// Whether the scope lists anything at all.
    pub fn is_empty(&self) -> bool {
        self.allow.is_none() && self.deny.is_empty()
    }

    /// The first denied topic `text` mentions.
    pub fn denied(&self, text: &str) -> Option<&str> {
        if self.deny.is_empty() {
            return None;
        }
        self.denied_in(&sanitize(text).for_detection)
    }

    /// Whether `text` is long enough to be about something and mentions none of the
    /// allowed topics (always `false` without an allow-list).
    pub fn off_topic(&self, text: &str) -> bool {
        self.allow.is_some() && self.off_topic_in(&sanitize(text).for_detection)
    }

    /// Checks a whole answer against both lists.
    pub fn check(&self, text: &str) -> Option<OutOfScope> {
        let detection = sanitize(text).for_detection;
        if let Some(topic) = self.denied_in(&detection) {
            return Some(OutOfScope::Denied(topic.to_owned()));
        }
        self.off_topic_in(&detection).then_some(OutOfScope::NotAllowed)
    }

    fn denied_in(&self, detection: &str) -> Option<&str> {
        self.deny.iter().find(|(_, re)| re.is_match(detection)).map(|(t, _)| t.as_str())
    }

    fn off_topic_in(&self, detection: &str) -> bool {
        let Some(allow) = &self.allow else { return false };
        let words = detection.split_whitespace().filter(|w| w.chars().any(char::is_alphabetic)).count();
        words >= MIN_WORDS_FOR_SCOPE && !allow.is_match(detection)
    }
}

/// A topic as a pattern: its words lowercased and escaped, any run of spaces or
/// hyphens between them.
fn phrase(topic: &str) -> String {
    let lower = sanitize(topic).for_detection;
    let words: Vec<String> =
        lower.split(|c: char| c.is_whitespace() || c == '-').filter(|w| !w.is_empty()).map(regex::escape).collect();
    words.join(r"[\s\-]+")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(allow: &[&str], deny: &[&str]) -> TopicScope {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        TopicScope::new(&s(allow), &s(deny)).unwrap()
    }

    #[test]
    fn denied_topics_are_whole_words_with_plurals() {
        let s = scope(&[], &["medical advice", "crypto"]);
        assert_eq!(s.check("I can't give MEDICAL-ADVICE here."), Some(OutOfScope::Denied("medical advice".into())));
        assert_eq!(s.denied("Buy cryptos now"), Some("crypto"));
        assert_eq!(s.check("cryptography is a field of study"), None);
        assert_eq!(s.check("Ｃｒｙｐｔｏ tips"), Some(OutOfScope::Denied("crypto".into())));
    }

    #[test]
    fn an_allow_list_judges_only_answers_long_enough() {
        let s = scope(&["refund", "order", "delivery"], &[]);
        assert_eq!(s.check("Sure."), None);
        assert_eq!(s.check("Your refund was sent to the card you paid with and should arrive in three days."), None);
        assert_eq!(
            s.check("The French revolution began in 1789 and changed the politics of Europe for a very long time."),
            Some(OutOfScope::NotAllowed)
        );
    }

    #[test]
    fn empty_lists_check_nothing() {
        let s = scope(&[" "], &[""]);
        assert!(s.is_empty());
        assert_eq!(s.check("anything at all, however long it goes on and on and on for many words"), None);
    }
}
