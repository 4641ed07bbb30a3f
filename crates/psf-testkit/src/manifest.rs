//! The smallest manifest the checker accepts, for a test to grow: one app `chat` whose
//! key comes from `CHAT_KEY`, one autonomous decision point `chat` on model `good` of
//! the mock (`${MOCK}`), and whatever sections the test adds as YAML.
//!
//! ```
//! let yaml = psf_testkit::manifest::Minimal::new()
//!     .point("output: {max_chars: 40}")
//!     .section("gateway: {retries: 0}")
//!     .yaml();
//! assert!(yaml.contains("max_chars: 40"));
//! ```

/// A minimal manifest under construction.
#[derive(Debug, Clone, Default)]
pub struct Minimal {
    point: Vec<String>,
    sections: Vec<String>,
}

impl Minimal {
    /// The minimal manifest as it is.
    pub fn new() -> Minimal {
        Minimal::default()
    }

    /// Adds keys to the decision point `chat` (YAML, indented as the point's own keys).
    pub fn point(mut self, yaml: &str) -> Minimal {
        self.point.push(yaml.to_string());
        self
    }

    /// Adds a top-level section (YAML starting at column 0).
    pub fn section(mut self, yaml: &str) -> Minimal {
        self.sections.push(yaml.to_string());
        self
    }

    /// The manifest's text.
    pub fn yaml(&self) -> String {
        let mut out = String::from(
            "version: 1\n\
             system:\n  name: Test\n  owner: {name: Tess Ownby, email: tess.ownby@example.com}\n\
             apps:\n  - {id: chat, decision_point: chat, keys: [{id: chat-key, env: CHAT_KEY}]}\n\
             decision_points:\n  - id: chat\n    autonomy: autonomous\n    model: good\n",
        );
        for p in &self.point {
            for line in p.lines() {
                out.push_str("    ");
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push_str(
            "models:\n  - {id: good, provider: mock, model: good-model}\n\
             providers:\n  - {id: mock, kind: openai_compatible, base_url: \"${MOCK}\", self_hosted: true}\n",
        );
        for s in &self.sections {
            out.push_str(s);
            if !s.ends_with('\n') {
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimal_manifest_passes_the_checker_and_grows() {
        let env =
            |name: &str| (name == "MOCK").then(|| "http://127.0.0.1:9/v1".to_string()).or_else(|| Some("k".into()));
        let options = psf_core::CheckOptions { today: jiff::civil::date(2026, 11, 23) };
        for m in [Minimal::new(), Minimal::new().point("output: {max_chars: 40}").section("gateway: {retries: 0}")] {
            let yaml = m.yaml();
            assert!(psf_core::load(&yaml, &options, &env).is_ok(), "{yaml}");
        }
    }
}
