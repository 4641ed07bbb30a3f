//! What the mock does, per model.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// How the mock answers one model (or every model, as the default).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Behaviour {
    /// Wait this long before answering.
    pub latency_ms: u64,
    /// Wait this long between streamed tokens.
    pub token_delay_ms: u64,
    /// Answer with `error_status` this share of the time (0 to 1).
    pub error_rate: f64,
    /// The status for `error_rate` failures (default 500).
    pub error_status: Option<u16>,
    /// Answer 429 with `Retry-After: 1` this share of the time.
    pub rate_limit_rate: f64,
    /// Never answer.
    pub hang: bool,
    /// Stream this many tokens, then go silent without ending the stream.
    pub stall_after_tokens: Option<usize>,
    /// Answer 200 with a body that is not valid for the protocol.
    pub malformed: bool,
    /// Reply with exactly this text instead of the echo.
    pub reply: Option<String>,
    /// Report this mean log-probability per token (OpenAI `logprobs`).
    pub logprob: Option<f64>,
    /// In a stream with usage asked for, put the usage on the finishing chunk (as
    /// LiteLLM does) instead of a last chunk with no choices (as OpenAI does).
    pub usage_on_finish: bool,
    /// Report this model in replies instead of the one asked for, as a provider names
    /// the version that served (`gpt-4o` answered as `gpt-4o-2024-08-06`).
    pub report_model: Option<String>,
    /// When the request offers tools, call this one instead of answering in text; once
    /// the conversation ends in the tool's result, answer in text, quoting it.
    pub tool_call: Option<ToolCall>,
}

/// A tool call the mock makes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    /// The tool's name; empty for the first tool the request offers.
    #[serde(default)]
    pub name: String,
    /// The arguments, as the JSON text the model would write (streamed in pieces);
    /// empty for a sample value per property of the tool's schema.
    #[serde(default)]
    pub arguments: String,
}

/// The mock's whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MockConfig {
    /// For models not listed in `models`.
    #[serde(flatten)]
    pub default: Behaviour,
    /// Per model name, as the request's `model` says.
    pub models: HashMap<String, Behaviour>,
}

impl MockConfig {
    /// A mock that answers after `latency_ms`.
    pub fn with_latency(latency_ms: u64) -> MockConfig {
        MockConfig { default: Behaviour { latency_ms, ..Behaviour::default() }, ..MockConfig::default() }
    }

    /// The behaviour for `model`.
    pub fn for_model(&self, model: &str) -> &Behaviour {
        self.models.get(model).unwrap_or(&self.default)
    }
}
