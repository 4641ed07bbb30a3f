//! The end of every request: its audit record, its metrics, its log line, and the
//! headers every answer carries. [`Gateway::refuse`] is the one way a refusal is
//! answered: the status and outcome are the code's.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use psf_core::code::{Code, Outcome};
use psf_store::AuditRecord;
use serde_json::Value;

use crate::config::Point;
use crate::ctx::Ctx;
use crate::error::ApiError;
use crate::metrics;
use crate::pipeline::{self, Decision};
use crate::state::Gateway;

impl Gateway {
    /// Writes the audit record and the metrics for a finished request.
    pub(crate) async fn record(
        &self,
        ctx: &Ctx,
        status: StatusCode,
        outcome: Outcome,
        code: Option<Code>,
        output: Option<String>,
    ) {
        let record = self.audit_record(ctx, status, outcome, code, output);
        // A request without a valid key is counted and logged, not stored: nobody it
        // concerns is known, and a flood of them must not become a flood of rows.
        if outcome != Outcome::Unauthorized {
            self.audit.send(record).await;
        }
    }

    pub(crate) fn audit_record(
        &self,
        ctx: &Ctx,
        status: StatusCode,
        outcome: Outcome,
        code: Option<Code>,
        output: Option<String>,
    ) -> AuditRecord {
        let point = ctx.point_id();
        let overhead = ctx.overhead();
        let total = ctx.t0.elapsed();
        if ctx.trail.traced {
            // For the exported trace; the log line below says the same.
            let span = tracing::Span::current();
            span.record("decision_point", point.as_str());
            span.record("status", status.as_u16());
            span.record("outcome", outcome.as_str());
        }
        // The access log: one line per request, ids, codes and timings only — never
        // request text, keys or PII.
        let flagged: Vec<&str> =
            ctx.trail.stages.iter().filter(|s| s.decision != Decision::Pass).map(|s| s.code.as_str()).collect();
        tracing::info!(
            request_id = %ctx.request_id,
            app = ctx.app.as_deref().unwrap_or("-"),
            key_id = ctx.key_id.as_deref().unwrap_or("-"),
            decision_point = %point,
            route = ctx.point.as_ref().map_or("-", |p| p.route.as_str()),
            model = ctx.model.as_deref().unwrap_or("-"),
            stream = ctx.stream,
            status = status.as_u16(),
            outcome = outcome.as_str(),
            code = code.map_or("-", Code::as_str),
            stages = %flagged.join(","),
            latency_ms = format_args!("{:.1}", total.as_secs_f64() * 1000.0),
            overhead_ms = format_args!("{:.2}", overhead.as_secs_f64() * 1000.0),
            "request"
        );
        let decided = |code: Code, decisions: &[Decision]| {
            ctx.trail.stages.iter().any(|s| s.code == code && decisions.contains(&s.decision))
        };
        let quality = self
            .compiled
            .manifest
            .quality_sampling
            .as_ref()
            .filter(|q| self.alerts.sampled(q.rate, &ctx.request_id))
            .and_then(|_| quality_score(&ctx.trail.stages));
        self.alerts.observe(&crate::alerts::Observation {
            decision_point: &point,
            latency_ms: total.as_secs_f64() * 1000.0,
            error: status.is_server_error(),
            blocked: outcome == Outcome::Blocked,
            rate_limited: outcome == Outcome::RateLimited,
            fallback: ctx.attempts.len() > 1,
            quality,
        });
        let injection = decided(Code::Ig1Injection, &[Decision::Block, Decision::Flag]);
        let pii = decided(Code::Dg1Pii, &[Decision::Transform, Decision::Block, Decision::Flag]);
        let out_of_scope = decided(Code::Ov3Scope, &[Decision::Block, Decision::Flag]);
        self.monitor.observe_traffic(
            &point,
            crate::monitor::Traffic {
                script: last_user_text(&ctx.input).and_then(crate::monitor::script_bin),
                out_of_scope,
                prompt_tokens: ctx.prompt_tokens,
                answer_tokens: ctx.completion_tokens,
                injection,
                pii,
            },
        );
        if let (Some(app), Some(key_id)) = (&ctx.app, &ctx.key_id) {
            self.monitor.observe(app, key_id, crate::monitor::KeyUse { injection, pii, out_of_scope }, ctx.ts_ms);
        }
        let m = &self.metrics;
        m.requests
            .get_or_create(&metrics::Outcome { decision_point: point.clone(), outcome: outcome.as_str().to_string() })
            .inc();
        m.overhead.get_or_create(&metrics::Point { decision_point: point.clone() }).observe(overhead.as_secs_f64());
        m.duration.get_or_create(&metrics::Point { decision_point: point.clone() }).observe(total.as_secs_f64());
        for s in &ctx.trail.stages {
            m.stages
                .get_or_create(&metrics::Stage { code: s.code.to_string(), decision: s.decision.as_str().to_string() })
                .inc();
        }
        // Token budgets (IG-4) are spent here, where every finished call passes.
        let used =
            [ctx.prompt_tokens, ctx.completion_tokens].iter().flatten().filter_map(|n| u64::try_from(*n).ok()).sum();
        if let (Some(app), Some(key_id), true) = (&ctx.app, &ctx.key_id, used > 0) {
            self.limits.spend(app, key_id, used);
        }
        for (direction, n) in [("in", ctx.prompt_tokens), ("out", ctx.completion_tokens)] {
            if let Some(n) = n.and_then(|n| u64::try_from(n).ok()) {
                m.tokens
                    .get_or_create(&metrics::Tokens { decision_point: point.clone(), direction: direction.into() })
                    .inc_by(n);
            }
        }
        AuditRecord {
            request_id: ctx.request_id.clone(),
            ts_ms: ctx.ts_ms,
            app: ctx.app.clone(),
            key_id: ctx.key_id.clone(),
            decision_point: ctx.point.as_ref().map(|p| p.spec.id.clone()),
            status: status.as_u16(),
            outcome: outcome.as_str().to_string(),
            code: code.map(|c| c.as_str().to_string()),
            model: ctx.model.clone(),
            provider: ctx.provider.clone(),
            stream: ctx.stream,
            latency_ms: total.as_secs_f64() * 1000.0,
            overhead_ms: overhead.as_secs_f64() * 1000.0,
            prompt_tokens: ctx.prompt_tokens,
            completion_tokens: ctx.completion_tokens,
            attempts: serde_json::to_value(&ctx.attempts).unwrap_or(Value::Null),
            stages: ctx.trail.to_json(),
            input_redacted: ctx.input.clone(),
            output_redacted: output,
            subject: ctx.subject.clone(),
        }
    }

    /// Counts a delivered answer in a defined state (OV-5), when it is in one.
    pub(crate) fn answer_state(&self, point: &Point, state: Option<&'static str>) {
        if let Some(state) = state {
            let label = metrics::AnswerState { decision_point: point.spec.id.clone(), state: state.to_string() };
            self.metrics.answer_states.get_or_create(&label).inc();
        }
    }

    /// Audits a refusal and turns it into the response: the one place a refusal is
    /// answered, with the status and outcome its code carries.
    pub(crate) async fn refuse(&self, ctx: &Ctx, error: ApiError) -> Response {
        let error = error.with_request_id(&ctx.request_id);
        self.record(ctx, error.status(), error.outcome(), Some(error.code()), None).await;
        let mut response = error.into_response();
        overhead_header(response.headers_mut(), ctx.overhead());
        response
    }
}

pub(crate) fn overhead_header(headers: &mut HeaderMap, overhead: Duration) {
    if let Ok(v) = HeaderValue::from_str(&format!("{:.3}", overhead.as_secs_f64() * 1000.0)) {
        headers.insert("x-psf-overhead-ms", v);
    }
}

pub(crate) fn disclosure_headers(headers: &mut HeaderMap, point: &Point, ctx: &Ctx) {
    if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
        headers.insert("x-request-id", v);
    }
    if point.spec.disclosure.as_ref().is_some_and(|d| d.header) {
        headers.insert("x-psf-ai-generated", HeaderValue::from_static("true"));
    }
    if let Some(v) = ctx.model.as_deref().and_then(|m| HeaderValue::from_str(m).ok()) {
        headers.insert("x-psf-model", v);
    }
}

/// The text of the last user message in the (redacted) messages the audit keeps.
fn last_user_text(messages: &Value) -> Option<&str> {
    let last = messages.as_array()?.iter().rev().find(|m| m["role"] == "user")?;
    match &last["content"] {
        Value::String(s) => Some(s),
        Value::Array(parts) => parts.iter().find_map(|p| p["text"].as_str()),
        _ => None,
    }
}

/// The quality of one answer (OB-2), from the output checks it went through: the share
/// of schema, length, content, scope, state and confidence checks it passed; `None`
/// when no output check ran (the request never reached a model).
fn quality_score(stages: &[pipeline::StageRecord]) -> Option<f64> {
    const CHECKS: [Code; 6] =
        [Code::Ov2Schema, Code::Ov2Length, Code::Ov3Content, Code::Ov3Scope, Code::Ov5State, Code::Ov4Confidence];
    let judged: Vec<bool> = stages
        .iter()
        .filter(|s| CHECKS.contains(&s.code))
        .filter_map(|s| match s.decision {
            Decision::Pass => Some(true),
            Decision::Flag | Decision::Block => Some(false),
            _ => None,
        })
        .collect();
    (!judged.is_empty()).then(|| judged.iter().filter(|ok| **ok).count() as f64 / judged.len() as f64)
}

pub(crate) fn add_disclosure_field(body: &mut Value, point: &Point) {
    if let Some(d) = point.spec.disclosure.as_ref().filter(|d| d.body_field)
        && let Some(obj) = body.as_object_mut()
    {
        obj.insert("psf_disclosure".into(), Value::String(d.text.clone()));
    }
}
