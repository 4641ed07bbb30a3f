//! Problems found in a manifest, with stable codes, and how they are shown to people.

use std::fmt::Write as _;

use serde::Serialize;

use crate::yaml::Position;

/// How serious a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The manifest is invalid.
    Error,
    /// Valid, but the assessment will count it against the deployment.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

macro_rules! codes {
    ($($variant:ident = $code:literal, $severity:ident, $summary:literal;)*) => {
        /// A stable code for each kind of problem. Codes never change meaning; retired
        /// codes are not reused.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Code {
            $(#[doc = $summary] $variant,)*
        }

        impl Code {
            /// Every code, in order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as printed, e.g. `E202`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            /// Whether the problem makes the manifest invalid.
            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity,)* }
            }

            /// One line on what the code means.
            pub fn summary(self) -> &'static str {
                match self { $(Code::$variant => $summary,)* }
            }
        }
    };
}

codes! {
    Syntax = "E100", Error, "The file is not valid YAML.";
    UnknownField = "E101", Error, "A key that the manifest format does not have.";
    MissingField = "E102", Error, "A required key is missing.";
    WrongType = "E103", Error, "A value has the wrong type (text, number, list, mapping).";
    InvalidValue = "E104", Error, "A value is not one of the allowed choices.";
    OutOfRange = "E105", Error, "A number is outside its allowed range.";
    Empty = "E106", Error, "A text or list that must not be empty is empty.";
    BadDate = "E107", Error, "A date is not a real calendar date in YYYY-MM-DD form.";
    SchemaViolation = "E108", Error, "A value breaks another rule of the manifest schema.";
    UnsupportedVersion = "E109", Error, "The manifest format version is not one this psf reads.";
    DuplicateId = "E201", Error, "Two entries of one list share an id.";
    UnknownModel = "E202", Error, "A decision point names a model that is not defined.";
    UnknownProvider = "E203", Error, "A model names a provider that is not defined.";
    UnknownFallback = "E204", Error, "A model falls back to a model that is not defined.";
    FallbackCycle = "E205", Error, "Fallbacks lead back to a model already in the chain.";
    UnknownDecisionPoint = "E206", Error, "An app names a decision point that is not defined.";
    UnknownControl = "E207", Error, "A control id is not one of IG-1 … EA-5.";
    NoReviewers = "E208", Error, "A supervised decision point has nobody to review it.";
    BadId = "E209", Error, "An id uses characters other than lowercase letters, digits, `-`, `_`, `.`.";
    BadEmail = "E210", Error, "An email address is not well formed.";
    OwnerNotAPerson = "E211", Error, "The accountable owner is a team, role, vendor or shared mailbox.";
    RetentionTooShort = "E212", Error, "Audit records are kept for fewer than 30 days.";
    SecretInClear = "E213", Error, "A key, token or password is written in the manifest.";
    BadEnvName = "E214", Error, "An environment variable name is not well formed.";
    BadKeyRef = "E215", Error, "An API key reference is not exactly one of a SHA-256 or an env var.";
    BadOutputSchema = "E216", Error, "An output JSON Schema is not a valid schema.";
    RegionNotAllowed = "E217", Error, "A provider processes data in a region residency does not allow.";
    UnmitigatedRisk = "E218", Error, "A high or critical risk marked `mitigate` names no mitigating control.";
    BadUrl = "E219", Error, "A URL is not an http or https URL.";
    DuplicateNotApplicable = "E220", Error, "A competency is declared not applicable twice.";
    UnsetVariable = "E221", Error, "A `${VAR}` reference names an environment variable that is not set and has no default.";
    AlertWithoutCondition = "E222", Error, "An alert rule has none of `above`, `below`, `baseline_factor` or `baseline_sigmas`.";
    AlertUnknownDecisionPoint = "E223", Error, "An alert rule watches a decision point that is not defined.";
    SevereWithoutReason = "E224", Error, "A decision point narrows the severe tier (OV-3) without a written reason, or allows sexual content involving minors.";
    EmbeddingsPolicy = "E225", Error, "An embeddings decision point tokenizes a class of personal data (a token would change the vector), or its model's provider serves no embeddings.";
    TermsStale = "W301", Warning, "Vendor terms never reviewed, reviewed over a year ago, or not permitting the use (MS-5).";
    NoDpa = "W302", Warning, "A third-party provider has no data processing agreement on record (MS-5).";
    NoRationale = "W303", Warning, "A model has no documented rationale (MS-1).";
    NoEvaluation = "W304", Warning, "A model has no evaluation on record (MS-2, MS-3).";
    HighStakesUnsupervised = "W305", Warning, "A high-stakes, irreversible or vulnerable-people decision point has no human review (HO-2).";
    NoDisclosure = "W306", Warning, "A decision point does not tell users they deal with an AI (HO-3).";
    NoFallback = "W307", Warning, "A decision point has neither a fallback model nor a degraded response (MS-4).";
    IncidentPlanGap = "W308", Warning, "The incident plan is missing or misses an AI failure mode (IR-1).";
    CommsNotApproved = "W309", Warning, "A comms template has no approval on record (IR-4).";
    DrillGap = "W310", Warning, "No drill in the last year, or a drill took over 15 minutes to disable (IR-2, IR-5).";
    ReviewOverdue = "W311", Warning, "A risk, regulation or review date has passed.";
    NoEthicalReview = "W312", Warning, "A high-risk system has no ethical review in the last year (EA-5).";
    NoFairnessEvaluation = "W313", Warning, "No fairness evaluation or no documented limitations (EA-2).";
    NoAlerts = "W314", Warning, "No alert rules on latency, errors or throughput (OB-1).";
    NoRiskRegister = "W315", Warning, "The risk register is empty or has no AI-specific risk.";
    ResidualAboveInherent = "W316", Warning, "A risk's residual score is above its inherent score.";
    DataNotLicensed = "W317", Warning, "A data source is not licensed for its use (DG-4).";
    NoRateLimit = "W318", Warning, "No rate limit applies to the gateway (IG-4).";
    NoOversightReview = "W319", Warning, "The oversight design has never been reviewed (HO-5).";
    NoSystemPrompt = "W320", Warning, "A decision point has no system prompt to guard (IG-5).";
    EmailAlertSink = "W321", Warning, "An alert notifies an email address, which psf does not send to: it delivers alerts to webhooks and its log (OB-1).";
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One problem in a manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    /// Error or warning; follows from the code.
    pub severity: Severity,
    /// The stable code.
    pub code: Code,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// JSON pointer to the node concerned (`/decision_points/0/model`).
    pub pointer: String,
    /// Where in the file.
    #[serde(flatten)]
    pub position: Position,
    /// Whether rendering may quote the source line: not for a line that holds a
    /// secret, nor for a section that is missing (its position is only a stand-in).
    #[serde(skip)]
    pub show_source: bool,
}

impl Diagnostic {
    /// A diagnostic with the code's severity and no help.
    pub fn new(code: Code, pointer: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: code.severity(),
            code,
            message: message.into(),
            help: None,
            pointer: pointer.into(),
            position: Position::default(),
            show_source: true,
        }
    }

    /// Adds how to fix it.
    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Renders the diagnostic for a terminal:
    ///
    /// ```text
    /// psf.yaml:14:12: error[E202]: decision point `triage` names model `gpt-5`, which is not defined
    ///    |
    /// 14 |     model: gpt-5
    ///    |            ^^^^^
    ///    = help: define it under `models:`, or use one of: small, large
    /// ```
    pub fn render(&self, file: &str, source: &str) -> String {
        let Position { line, column } = self.position;
        let mut out = format!("{file}:{line}:{column}: {}[{}]: {}\n", self.severity.as_str(), self.code, self.message);
        let quoted = if self.show_source { source.lines().nth(line.saturating_sub(1)) } else { None };
        if let Some(full) = quoted {
            let width = line.to_string().len();
            let pad = " ".repeat(width);
            // A very long line is shown as a window around the column, marked with `…`.
            let (text, column) = window(full, column);
            let before: String = text.chars().take(column.saturating_sub(1)).collect();
            let marked = text.chars().skip(column.saturating_sub(1));
            let len = marked.take_while(|c| !c.is_whitespace() && *c != ':').count().clamp(1, WINDOW);
            // Tabs keep their width under the marker line so the carets stay aligned.
            let indent: String = before.chars().map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{line} | {text}");
            let _ = writeln!(out, "{pad} | {indent}{}", "^".repeat(len));
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "  help: {help}");
        }
        out
    }
}

/// Characters of a source line shown on each side of the column.
const WINDOW: usize = 60;

fn window(text: &str, column: usize) -> (String, usize) {
    let count = text.chars().count();
    if count <= 2 * WINDOW + 20 {
        return (text.to_string(), column);
    }
    let start = column.saturating_sub(WINDOW + 1);
    let end = (column + WINDOW).min(count);
    let mut shown: String = if start > 0 { "…".into() } else { String::new() };
    shown.extend(text.chars().skip(start).take(end - start));
    if end < count {
        shown.push('…');
    }
    (shown, column - start + usize::from(start > 0))
}

/// The closest candidate to `word` by edit distance, if any is close enough to be a
/// plausible typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_severity_matches_prefix() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            let want = if code.as_str().starts_with('E') { Severity::Error } else { Severity::Warning };
            assert_eq!(code.severity(), want, "{code}");
        }
    }

    #[test]
    fn render_points_at_the_token() {
        let src = "a: 1\n    model: gpt-5\n";
        let mut d = Diagnostic::new(Code::UnknownModel, "/x", "no such model").help("define it");
        d.position = Position { line: 2, column: 12 };
        let text = d.render("psf.yaml", src);
        assert_eq!(
            text,
            "psf.yaml:2:12: error[E202]: no such model\n  |\n2 |     model: gpt-5\n  |            ^^^^^\n  help: define it\n"
        );
    }

    #[test]
    fn long_lines_are_windowed() {
        let src = format!("k: {}X{}", "a".repeat(300), "b".repeat(300));
        let mut d = Diagnostic::new(Code::Syntax, "", "here");
        d.position = Position { line: 1, column: 304 };
        let text = d.render("f", &src);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[2].contains('…') && lines[2].chars().count() < 140, "{}", lines[2]);
        let quoted: Vec<char> = lines[2].chars().collect();
        let caret_col = lines[3].chars().position(|c| c == '^').unwrap();
        assert_eq!(quoted[caret_col], 'X');
    }

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("modle", ["model", "models", "id"]), Some("model"));
        assert_eq!(did_you_mean("xyz", ["model", "id"]), None);
    }
}
