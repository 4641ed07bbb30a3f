//! `psf drill` (IR-5): a kill-switch rehearsal against live gateways. It declares a drill
//! incident through the first gateway's admin API, measures how long each gateway takes
//! to refuse calls, resolves it, measures how long each takes to serve again, and records
//! the timings as evidence (`IR-5.drill`). Probes are real calls to a decision point;
//! choose one that is not supervised, or each probe is held for review.

use std::io::{self, Write as _};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Value, json};

/// Arguments of `psf drill`.
#[derive(Debug, Args)]
pub struct DrillArgs {
    /// A gateway's base URL (`http://HOST:PORT`); repeat for every instance.
    #[arg(long = "gateway", required = true)]
    gateways: Vec<String>,
    /// The route (`model`) the probes call.
    #[arg(long)]
    model: String,
    /// What the drill disables.
    #[arg(long, default_value = "all")]
    scope: String,
    /// Who runs the drill.
    #[arg(long)]
    by: String,
    /// The environment variable holding an admin key (`gateway.admin_keys`).
    #[arg(long, default_value = "PSF_ADMIN_KEY")]
    admin_key_env: String,
    /// The environment variable holding a client key for the probes.
    #[arg(long, default_value = "PSF_API_KEY")]
    key_env: String,
    /// The drill fails when a gateway takes longer than this to refuse calls.
    #[arg(long, default_value_t = 1000)]
    max_ms: u64,
    /// How long to wait for each gateway before giving up.
    #[arg(long, default_value_t = 30)]
    timeout_s: u64,
}

fn fail(message: &str) -> io::Result<ExitCode> {
    eprintln!("psf drill: {message}");
    Ok(ExitCode::from(2))
}

struct Client {
    http: reqwest::Client,
    admin_key: String,
    key: String,
    model: String,
}

fn base(url: &str) -> String {
    url.trim_end_matches('/').trim_end_matches("/v1").to_string()
}

impl Client {
    /// Whether a call to `gateway` is refused by an incident right now.
    async fn disabled(&self, gateway: &str) -> Result<bool, String> {
        let body =
            json!({"model": self.model, "messages": [{"role": "user", "content": "psf drill probe"}], "max_tokens": 1});
        let r = self
            .http
            .post(format!("{}/v1/chat/completions", base(gateway)))
            .bearer_auth(&self.key)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("{gateway}: {e}"))?;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        let code =
            serde_json::from_str::<Value>(&text).ok().and_then(|v| v["error"]["code"].as_str().map(str::to_string));
        match (status, code.as_deref()) {
            (503, Some("IR-2.disabled" | "IR-2.degraded")) => Ok(true),
            (200..=299, _) => Ok(false),
            (401, _) => Err(format!(
                "{gateway}: the probe key is refused; give a client key of an app that routes to `{}`",
                self.model
            )),
            (_, code) => Err(format!("{gateway}: the probe got {status} {}", code.unwrap_or("(no code)"))),
        }
    }

    /// Polls until `gateway` is disabled (or enabled again); the time from `since`.
    async fn until(
        &self,
        gateway: &str,
        disabled: bool,
        since: Instant,
        timeout: Duration,
    ) -> Result<Duration, String> {
        loop {
            if self.disabled(gateway).await? == disabled {
                return Ok(since.elapsed());
            }
            if since.elapsed() > timeout {
                let what = if disabled { "refuse calls" } else { "serve again" };
                return Err(format!("{gateway} did not {what} within {} s", timeout.as_secs()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn admin(&self, gateway: &str, path: &str, body: &Value) -> Result<Value, String> {
        let r = self
            .http
            .post(format!("{}{path}", base(gateway)))
            .bearer_auth(&self.admin_key)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("{gateway}: {e}"))?;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let message = value["error"]["message"].as_str().unwrap_or(&text).to_string();
            return Err(format!("{gateway}{path}: {status}: {message}"));
        }
        Ok(value)
    }
}

/// Every gateway's time to reach the state, measured concurrently.
async fn all_until(
    c: &Client,
    gateways: &[String],
    disabled: bool,
    since: Instant,
    timeout: Duration,
) -> Result<Vec<Duration>, String> {
    // Concurrently: each gateway's time is its own, not the sum of the ones before it.
    let waits = gateways.iter().map(|g| c.until(g, disabled, since, timeout));
    futures_util::future::join_all(waits).await.into_iter().collect()
}

/// `psf drill`.
pub fn run(args: &DrillArgs) -> io::Result<ExitCode> {
    let (Ok(admin_key), Ok(key)) = (std::env::var(&args.admin_key_env), std::env::var(&args.key_env)) else {
        return fail(&format!(
            "set {} to an admin key (gateway.admin_keys) and {} to a client key for the probes",
            args.admin_key_env, args.key_env
        ));
    };
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(io::Error::other)?;
    let c = Client { http, admin_key, key, model: args.model.clone() };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let timeout = Duration::from_secs(args.timeout_s);
        for g in &args.gateways {
            match c.disabled(g).await {
                Ok(false) => {}
                Ok(true) => return fail(&format!("{g} already refuses calls: resolve the incident in force first")),
                Err(e) => return fail(&e),
            }
        }
        let first = &args.gateways[0];
        let declare = json!({"action": "disable", "scope": args.scope, "severity": "sev4", "drill": true,
                             "reason": "kill-switch drill (psf drill)", "declared_by": args.by});
        let declared = Instant::now();
        let incident = match c.admin(first, "/v1/psf/admin/incidents", &declare).await {
            Ok(i) => i,
            Err(e) => return fail(&e),
        };
        let id = incident["id"].as_str().unwrap_or_default().to_string();
        let disable = all_until(&c, &args.gateways, true, declared, timeout).await;
        let resolve = json!({"resolved_by": args.by, "resolution": "drill over"});
        let resolved = Instant::now();
        // Resolve whatever happened: a drill must never leave the service off.
        if let Err(e) = c.admin(first, &format!("/v1/psf/admin/incidents/{id}/resolve"), &resolve).await {
            return fail(&format!("{e}; RESOLVE INCIDENT {id} BY HAND (`psf incident resolve {id}`)"));
        }
        let disable = match disable {
            Ok(d) => d,
            Err(e) => return fail(&e),
        };
        let recover = match all_until(&c, &args.gateways, false, resolved, timeout).await {
            Ok(r) => r,
            Err(e) => return fail(&e),
        };
        let ms = |d: &Duration| (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0;
        let rows: Vec<Value> = args
            .gateways
            .iter()
            .zip(disable.iter().zip(&recover))
            .map(|(g, (d, r))| json!({"url": base(g), "time_to_disable_ms": ms(d), "time_to_recover_ms": ms(r)}))
            .collect();
        let record = json!({"incident_id": id, "by": args.by, "gateways": rows});
        if let Err(e) = c.admin(first, "/v1/psf/admin/drills", &record).await {
            return fail(&e);
        }
        let mut out = io::stdout().lock();
        writeln!(out, "drill {id} (scope {})", args.scope)?;
        writeln!(out, "{:<32} {:>18} {:>18}", "GATEWAY", "TIME TO DISABLE", "TIME TO RECOVER")?;
        for r in &rows {
            writeln!(
                out,
                "{:<32} {:>15.1} ms {:>15.1} ms",
                r["url"].as_str().unwrap_or(""),
                r["time_to_disable_ms"].as_f64().unwrap_or(0.0),
                r["time_to_recover_ms"].as_f64().unwrap_or(0.0)
            )?;
        }
        let worst = disable.iter().max().copied().unwrap_or_default();
        writeln!(out, "recorded as evidence (IR-5.drill); slowest gateway disabled in {} ms", ms(&worst))?;
        if worst > Duration::from_millis(args.max_ms) {
            writeln!(out, "FAIL: slower than --max-ms {}", args.max_ms)?;
            return Ok(ExitCode::from(1));
        }
        Ok(ExitCode::SUCCESS)
    })
}
