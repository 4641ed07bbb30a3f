//! EA-1: does an owner read as one person? Decided by psf's name tagger (the detector
//! that finds people's names in traffic), not by a list of team words: a team, role,
//! product or vendor is refused however it is spelled, because the tagger does not read
//! it as a person's name, or because the email is not that person's own.

use std::sync::OnceLock;

use psf_detect::{EntityType, PiiDetector};

fn tagger() -> Option<&'static PiiDetector> {
    static DETECTOR: OnceLock<Option<PiiDetector>> = OnceLock::new();
    DETECTOR.get_or_init(|| psf_detect::PiiDetectorBuilder::new().entities(&[EntityType::Person]).build().ok()).as_ref()
}

/// Frames a name is read in: a person's name is tagged in each, a unit's in none.
const FRAMES: [&str; 3] = ["I spoke with {} about it yesterday.", "Please ask {} to sign.", "Signed, {}"];

/// Mailboxes that belong to a function, not a person.
const ROLE_MAILBOXES: [&str; 14] = [
    "admin",
    "ai",
    "compliance",
    "contact",
    "help",
    "hello",
    "info",
    "ml",
    "noreply",
    "office",
    "ops",
    "security",
    "support",
    "team",
];

/// Why `name <email>` does not read as one person, or `None` when it does.
pub fn why_not_a_person(name: &str, email: &str) -> Option<String> {
    // A title says nothing of whether the rest is a name.
    const TITLES: [&str; 10] = ["dr", "dr.", "prof", "prof.", "mr", "mr.", "ms", "ms.", "mrs", "mrs."];
    let words: Vec<&str> = name.split_whitespace().filter(|w| !TITLES.contains(&w.to_lowercase().as_str())).collect();
    let joined = words.join(" ");
    let name = joined.as_str();
    if words.len() < 2 {
        return Some(format!("`{name}` is not a given name and a family name"));
    }
    if words.iter().any(|w| w.chars().any(|c| c.is_ascii_digit())) {
        return Some(format!("`{name}` has digits in it"));
    }
    let Some(tagger) = tagger() else { return Some("the name tagger could not be loaded".into()) };
    let tagged = FRAMES
        .iter()
        .filter(|frame| {
            let text = frame.replace("{}", name);
            let start = frame.find("{}").unwrap_or(0);
            let end = start + name.len();
            tagger
                .scan(&text)
                .iter()
                .any(|f| f.entity == EntityType::Person && f.span.start <= start && f.span.end >= end)
        })
        .count();
    if tagged < 2 {
        return Some(format!("psf's name tagger does not read `{name}` as a person's name"));
    }
    let local = email.split('@').next().unwrap_or_default().to_lowercase();
    let parts: Vec<&str> = local.split(['.', '_', '-', '+']).filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| ROLE_MAILBOXES.contains(p)) {
        return Some(format!("`{email}` is a shared mailbox"));
    }
    // The person's own address carries their name: a given or family name, or initials
    // with one of them (`jdoe`, `jane.d`).
    let names: Vec<String> = words.iter().map(|w| fold(w)).collect();
    let own = names.iter().filter(|n| n.len() >= 2).any(|n| local.contains(n.as_str()))
        || names.iter().any(|n| n.len() >= 3 && parts.iter().any(|p| p.len() >= 3 && n.starts_with(p)));
    if !own {
        return Some(format!("`{email}` does not read as {name}'s own address"));
    }
    None
}

/// A word in lower-case ASCII letters, accents taken off (`Álvarez` → `alvarez`).
fn fold(word: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    word.nfd().filter(char::is_ascii_alphabetic).map(|c| c.to_ascii_lowercase()).collect()
}

#[cfg(test)]
mod tests {
    use super::why_not_a_person;

    #[test]
    fn people_pass_and_units_do_not() {
        for (name, email) in [
            ("Dana Whitfield", "dana.whitfield@example.com"),
            ("Priya Raman", "praman@example.org"),
            ("Tomás Álvarez", "tomas.alvarez@example.es"),
            ("Amara Okafor", "amara@example.com"),
            ("Dr. Helena Vogt", "helena.vogt@example.de"),
        ] {
            assert_eq!(why_not_a_person(name, email), None, "{name}");
        }
        for (name, email) in [
            ("Credit Analytics", "credit.analytics@example.com"),
            ("Risk Analytics", "risk@example.com"),
            ("Data Science", "data.science@example.com"),
            ("People Services", "people@example.com"),
            ("Dana Whitfield", "support@example.com"),
            ("Dana Whitfield", "x7@example.com"),
            ("Dana", "dana@example.com"),
        ] {
            assert!(why_not_a_person(name, email).is_some(), "{name} <{email}> passed");
        }
    }
}
