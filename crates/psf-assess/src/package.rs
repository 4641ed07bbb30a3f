//! The workflow package (`psf export --package`, and the console's download): what an
//! assessor reviews and an integrator builds against, made from the manifest alone —
//!
//! - the manifest as written, and the JSON Schema it validates against;
//! - the executive flow view: the workflow as SVG, and one HTML page a board member can
//!   read (what the system does, where a person decides, who owns it, what happens when
//!   it fails);
//! - integration documentation per decision point: endpoint, authentication, request
//!   and response, the errors it can return (derived from its policies), disclosure and
//!   review behaviour, and working examples for the official OpenAI Python and
//!   JavaScript SDKs and curl, which read the gateway's URL and key from the environment.
//!
//! Every file's bytes depend only on the manifest, so a package can be snapshot-tested
//! and diffed.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use psf_core::Manifest;
use psf_core::manifest::{Action, Autonomy, ClientSystemMessages, DecisionPoint, PiiAction, PiiPolicy};

use crate::html::{STATUS_STYLE, workflow_svg};
use crate::report::xml_escape as esc;

/// The package's files by path. `file` is the manifest's file name, `text` its bytes.
pub fn files(file: &str, text: &str, m: &Manifest) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    out.insert(file.to_string(), text.as_bytes().to_vec());
    let schema = serde_json::to_string_pretty(&Manifest::json_schema()).unwrap_or_default() + "\n";
    out.insert("psf.schema.json".into(), schema.into_bytes());
    out.insert(
        "flow.svg".into(),
        format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n{}\n", workflow_svg(m)).into_bytes(),
    );
    out.insert("flow.html".into(), flow_html(m).into_bytes());
    out.insert("integration/README.md".into(), integration_readme(m).into_bytes());
    for dp in &m.decision_points {
        out.insert(format!("integration/{}.md", dp.id), integration(m, dp).into_bytes());
        out.insert(format!("integration/examples/{}.py", dp.id), python(m, dp).into_bytes());
        out.insert(format!("integration/examples/{}.mjs", dp.id), javascript(m, dp).into_bytes());
        out.insert(format!("integration/examples/{}.sh", dp.id), curl(m, dp).into_bytes());
    }
    out.insert("README.md".into(), readme(file, m).into_bytes());
    out
}

fn route(dp: &DecisionPoint) -> &str {
    dp.route.as_deref().unwrap_or(&dp.id)
}

fn autonomy(a: Autonomy) -> &'static str {
    match a {
        Autonomy::Advisory => "advisory: the answer goes to a person who acts on it",
        Autonomy::Supervised => {
            "supervised: a named reviewer approves, edits or rejects every answer before it is delivered"
        }
        Autonomy::Autonomous => "autonomous: answers are delivered without a person in between",
    }
}

/// Each data class of a PII policy, by the manifest's name, with its action.
fn classes(p: &PiiPolicy) -> [(&'static str, PiiAction); 6] {
    psf_detect::DataClass::ALL.map(|c| (c.as_str(), p.action(c)))
}

fn pii_word(a: PiiAction) -> &'static str {
    match a {
        PiiAction::Allow => "passed through",
        PiiAction::Redact => "redacted",
        PiiAction::Tokenize => "tokenized (the model sees placeholders; your values are restored in the answer)",
        PiiAction::Block => "refused",
    }
}

/// One sentence on what happens when the decision point cannot answer.
fn on_failure(m: &Manifest, dp: &DecisionPoint) -> String {
    let names: Vec<String> = m.chain(&dp.model).iter().map(|x| format!("{} ({})", x.id, x.provider)).collect();
    let mut s = format!("It asks {}", names.join(", then "));
    match &dp.degraded_response {
        Some(text) => {
            let _ = write!(s, "; when none answers, the caller gets the prepared reply \"{}\"", text.trim());
        }
        None => s.push_str("; when none answers, the caller gets an error (503) and must handle it"),
    }
    s.push('.');
    s
}

/// The errors a decision point can return, from its policies: HTTP status, code, when.
fn errors(dp: &DecisionPoint) -> Vec<(u16, &'static str, String)> {
    let mut out = vec![
        (401, "auth.missing_key / auth.invalid_key", "no key, or a key that is not this app's".to_string()),
        (
            400,
            "IG-2.schema",
            format!(
                "the body is not a chat completion request psf accepts, or has more than {} messages, a message over {} characters, or arrays and objects nested more than {} levels deep",
                dp.input.max_messages, dp.input.max_chars_per_message, dp.input.max_depth
            ),
        ),
        (413, "IG-2.size", format!("the body is over {} bytes", dp.input.max_body_bytes)),
        (429, "IG-4.rate_limit", "a rate limit or token budget is spent; wait for `Retry-After` seconds".to_string()),
    ];
    if dp.input.injection.action == Action::Block {
        out.push((400, "IG-1.injection", "the prompt reads as a prompt-injection attempt".into()));
    }
    let blocked: Vec<&str> =
        classes(&dp.input.pii).into_iter().filter(|(_, a)| *a == PiiAction::Block).map(|(c, _)| c).collect();
    if !blocked.is_empty() {
        out.push((
            400,
            "DG-1.pii",
            format!("the prompt holds personal data of a refused class ({})", blocked.join(", ")),
        ));
    }
    if dp.output.json_schema.is_some() {
        out.push((422, "OV-2.schema", "the model's answer does not match the output schema".into()));
    }
    if let Some(max) = dp.output.max_chars {
        out.push((422, "OV-2.length", format!("the model's answer is over {max} characters")));
    }
    if dp.output.content.action == Action::Block && !dp.output.content.categories.is_empty() {
        out.push((422, "OV-3.content", "the model's answer falls in a refused content category".into()));
    }
    if dp.output.topics.is_some() {
        out.push((422, "OV-3.scope", "the model's answer is outside the allowed topics".into()));
    }
    if dp.output.system_prompt_leak == Action::Block {
        out.push((422, "IG-5.leak", "the model's answer repeats the system prompt".into()));
    }
    if classes(&dp.output.pii).iter().any(|(_, a)| *a == PiiAction::Block) {
        out.push((422, "DG-1.pii_output", "the model's answer holds personal data of a refused class".into()));
    }
    out.push((502, "MS-4.upstream_rejected", "the model provider refused the request itself".into()));
    if dp.degraded_response.is_none() {
        out.push((503, "MS-4.unavailable", "no model in the chain answered in time".into()));
    }
    out.push((503, "IR-2.disabled", "an operator switched this off during an incident (`Retry-After` given)".into()));
    out.push((503, "DG-5.residency", "the prompt's personal data may not go to any provider of the chain".into()));
    if dp.autonomy == Autonomy::Supervised || dp.output.confidence.is_some() {
        out.push((
            503,
            "HO-1.queue_unavailable",
            "the answer must be reviewed and the review queue cannot be written".into(),
        ));
    }
    out
}

fn integration_readme(m: &Manifest) -> String {
    let mut s = format!(
        "# Integrating with {}\n\n\
         psf is an OpenAI-compatible gateway: use any OpenAI SDK, with the base URL set to the gateway's `/v1` \
         and the API key psf gave your app. The `model` you send names the decision point (its route), not a model: \
         psf chooses the model, its fallbacks and the controls.\n\n\
         | Decision point | `model` to send | Autonomy | Apps |\n|---|---|---|---|\n",
        m.system.name
    );
    for dp in &m.decision_points {
        let apps: Vec<&str> = m.apps.iter().filter(|a| a.decision_point == dp.id).map(|a| a.id.as_str()).collect();
        let _ = writeln!(
            s,
            "| [{}]({}.md) | `{}` | {} | {} |",
            dp.id,
            dp.id,
            route(dp),
            psf_core_name(dp.autonomy),
            apps.join(", ")
        );
    }
    s.push_str(
        "\n## Every call\n\n\
         - `POST {PSF_BASE_URL}/chat/completions` with `Authorization: Bearer {PSF_API_KEY}`; streaming (`\"stream\": true`) \
           is supported and goes through the same controls. The same points answer OpenAI's Responses API at \
           `POST {PSF_BASE_URL}/responses` and Anthropic's Messages API at `POST {PSF_BASE_URL}/messages` (the \
           `anthropic` SDK with its base URL set to the gateway without `/v1`); a point of `kind: embeddings` \
           answers `POST {PSF_BASE_URL}/embeddings`.\n\
         - Each answer carries `x-request-id`: quote it to the operators; it finds the call's audit record.\n\
         - `x-psf-subject: <an id of the person the call is about>` lets the operators erase that person's data on request.\n\
         - A refusal is an OpenAI-style error: `{\"error\": {\"type\": …, \"code\": …, \"message\": …}}`; the `code` names \
           the PSF competency that refused (`IG-1.injection`, …) and is stable.\n\n\
         ## Examples\n\n\
         `examples/` holds, for each decision point, a Python program (`pip install openai`), a JavaScript module \
         (`npm install openai`) and a curl script. Each reads `PSF_BASE_URL` (e.g. `http://127.0.0.1:8080/v1`) and \
         `PSF_API_KEY` from the environment.\n",
    );
    s
}

fn psf_core_name(a: Autonomy) -> &'static str {
    match a {
        Autonomy::Advisory => "advisory",
        Autonomy::Supervised => "supervised",
        Autonomy::Autonomous => "autonomous",
    }
}

fn integration(m: &Manifest, dp: &DecisionPoint) -> String {
    let mut s = format!("# Decision point `{}`\n\n", dp.id);
    if let Some(d) = &dp.description {
        let _ = writeln!(s, "{}\n", d.trim());
    }
    let apps: Vec<&str> = m.apps.iter().filter(|a| a.decision_point == dp.id).map(|a| a.id.as_str()).collect();
    let endpoint = if embeds(dp) {
        "`POST {PSF_BASE_URL}/embeddings`"
    } else {
        "`POST {PSF_BASE_URL}/chat/completions` (or `/responses`, or Anthropic's `/messages`)"
    };
    let _ = write!(
        s,
        "- **Endpoint:** {endpoint} with `\"model\": \"{}\"`.\n\
         - **Authentication:** `Authorization: Bearer {{PSF_API_KEY}}`, a key of {} (`psf keys create --app ID`).\n\
         - **Autonomy:** {}.\n\
         - **Stakes:** {}.\n\
         - **When it fails:** {}\n\n",
        route(dp),
        if apps.is_empty() {
            "an app that routes here".to_string()
        } else {
            apps.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(" or ")
        },
        autonomy(dp.autonomy),
        serde_json::to_value(dp.stakes).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
        on_failure(m, dp),
    );
    let request =
        if embeds(dp) { "\"input\": [\"…\"]" } else { "\"messages\": [{\"role\": \"user\", \"content\": \"…\"}]" };
    let _ = write!(
        s,
        "## Request\n\n```json\n{{\"model\": \"{}\", {request}}}\n```\n\n\
         Limits: {} messages, {} characters each, {} bytes in all, arrays and objects nested {} levels deep at most. ",
        route(dp),
        dp.input.max_messages,
        dp.input.max_chars_per_message,
        dp.input.max_body_bytes,
        dp.input.max_depth
    );
    if dp.system_prompt.is_some() {
        s.push_str("psf sets the system prompt; a system message from the client is ");
        s.push_str(match dp.input.client_system_messages {
            ClientSystemMessages::Refuse => "refused (`IG-5.system_prompt`, 400).",
            ClientSystemMessages::Demote => "sent on as a user message.",
        });
    }
    s.push_str("\n\nPersonal data in the prompt, by class:\n\n");
    for (class, action) in classes(&dp.input.pii) {
        let _ = writeln!(s, "- {class}: {}", pii_word(action));
    }
    s.push_str("\n## Response\n\n");
    if embeds(dp) {
        s.push_str(
            "A list of vectors in OpenAI's embeddings shape, one per input, `dimensions` and `encoding_format` as \
             asked. A text carrying a class the policy blocks is refused; a class it redacts is redacted before the \
             text is embedded (nothing is tokenized: a vector cannot be restored).\n\n",
        );
    } else if dp.autonomy == Autonomy::Supervised {
        s.push_str(
            "Every answer is held for review. The call returns `202 Accepted` with \
             `{\"id\": \"rev_…\", \"status\": \"pending\", \"status_url\": \"/v1/psf/reviews/rev_…\", \"deadline_ms\": …}` \
             and a `Location` header. Poll `GET {PSF_BASE_URL without /v1}{status_url}` with the same key: `pending` until \
             a reviewer decides, then `approved` or `edited` with the `completion` (a normal chat completion), or \
             `rejected` with the reviewer's `reason`.\n\n",
        );
        let reviewers: Vec<String> = dp.reviewers.iter().map(|p| format!("{} <{}>", p.name, p.email)).collect();
        if !reviewers.is_empty() {
            let _ = writeln!(s, "Reviewers: {}.\n", reviewers.join(", "));
        }
    } else {
        s.push_str("A chat completion in OpenAI's shape (or its stream of chunks). ");
        if dp.output.confidence.is_some() {
            s.push_str("An answer the model is not confident of may instead be held for review (`202`, as for a supervised point). ");
        }
        s.push('\n');
        s.push('\n');
    }
    match &dp.disclosure {
        Some(d) => {
            let _ = write!(s, "Disclosure: show your users \"{}\"", d.text.trim());
            if d.header {
                s.push_str("; every answer carries `x-psf-ai-generated: true`");
            }
            if d.body_field {
                s.push_str("; the completion carries it as `psf_disclosure`");
            }
            s.push_str(".\n\n");
        }
        None => s.push_str("Disclosure: the manifest sets none for this decision point.\n\n"),
    }
    s.push_str("## Errors it can return\n\n| HTTP | `error.code` | When |\n|---|---|---|\n");
    for (status, code, when) in errors(dp) {
        let _ = writeln!(s, "| {status} | `{code}` | {when} |");
    }
    let _ = write!(
        s,
        "\n## Examples\n\nPython: [`examples/{id}.py`](examples/{id}.py) · JavaScript: [`examples/{id}.mjs`](examples/{id}.mjs) · curl: [`examples/{id}.sh`](examples/{id}.sh)\n",
        id = dp.id
    );
    s
}

/// Whether a point serves embeddings rather than answers.
fn embeds(dp: &DecisionPoint) -> bool {
    dp.kind == psf_core::manifest::PointKind::Embeddings
}

fn python(_m: &Manifest, dp: &DecisionPoint) -> String {
    let held = dp.autonomy == Autonomy::Supervised;
    let mut s = format!(
        "\"\"\"Calls decision point `{id}` through psf with the official OpenAI Python SDK.\n\n\
         PSF_BASE_URL=http://127.0.0.1:8080/v1 PSF_API_KEY=... python3 {id}.py\n\"\"\"\n\n\
         import os\n\nimport openai\n\n\
         client = openai.OpenAI(base_url=os.environ[\"PSF_BASE_URL\"], api_key=os.environ[\"PSF_API_KEY\"])\n\n",
        id = dp.id
    );
    if embeds(dp) {
        let _ = write!(
            s,
            "out = client.embeddings.create(model=\"{}\", input=[\"Hello from the integration example.\"])\n\
             print(len(out.data), \"vector of\", len(out.data[0].embedding), \"dimensions\")\n",
            route(dp)
        );
    } else if held {
        let _ = write!(
            s,
            "# A supervised point answers 202 with a review ticket: read the raw response.\n\
             raw = client.chat.completions.with_raw_response.create(\n    model=\"{}\",\n    messages=[{{\"role\": \"user\", \"content\": \"Hello from the integration example.\"}}],\n)\n\
             ticket = raw.http_response.json()\n\
             print(raw.http_response.status_code, ticket[\"status\"], ticket[\"status_url\"])\n\
             assert ticket[\"status\"] == \"pending\"\n",
            route(dp)
        );
    } else {
        let _ = write!(
            s,
            "try:\n    reply = client.chat.completions.create(\n        model=\"{}\",\n        messages=[{{\"role\": \"user\", \"content\": \"Hello from the integration example.\"}}],\n    )\n    print(reply.choices[0].message.content)\n\
             except openai.APIStatusError as e:\n    # psf's refusals carry a stable code naming the competency that refused.\n    print(\"refused:\", e.status_code, e.body.get(\"code\") if isinstance(e.body, dict) else e.body)\n    raise\n\n\
             stream = client.chat.completions.create(\n    model=\"{}\",\n    messages=[{{\"role\": \"user\", \"content\": \"And once more, streamed.\"}}],\n    stream=True,\n)\n\
             print(\"\".join(chunk.choices[0].delta.content or \"\" for chunk in stream if chunk.choices))\n",
            route(dp),
            route(dp)
        );
    }
    s
}

fn javascript(_m: &Manifest, dp: &DecisionPoint) -> String {
    let held = dp.autonomy == Autonomy::Supervised;
    let mut s = format!(
        "// Calls decision point `{id}` through psf with the official OpenAI JavaScript SDK.\n\
         //\n//   PSF_BASE_URL=http://127.0.0.1:8080/v1 PSF_API_KEY=... node {id}.mjs\n\
         import OpenAI from \"openai\";\n\n\
         const client = new OpenAI({{ baseURL: process.env.PSF_BASE_URL, apiKey: process.env.PSF_API_KEY }});\n\n",
        id = dp.id
    );
    if embeds(dp) {
        let _ = write!(
            s,
            "const out = await client.embeddings.create({{ model: \"{}\", input: [\"Hello from the integration example.\"] }});\n\
             console.log(out.data.length, \"vector of\", out.data[0].embedding.length, \"dimensions\");\n",
            route(dp)
        );
    } else if held {
        let _ = write!(
            s,
            "// A supervised point answers 202 with a review ticket: read the raw response.\n\
             const raw = await client.chat.completions\n  .create({{ model: \"{}\", messages: [{{ role: \"user\", content: \"Hello from the integration example.\" }}] }})\n  .asResponse();\n\
             const ticket = await raw.json();\n\
             console.log(raw.status, ticket.status, ticket.status_url);\n\
             if (ticket.status !== \"pending\") process.exit(1);\n",
            route(dp)
        );
    } else {
        let _ = write!(
            s,
            "const reply = await client.chat.completions.create({{\n  model: \"{}\",\n  messages: [{{ role: \"user\", content: \"Hello from the integration example.\" }}],\n}});\n\
             console.log(reply.choices[0].message.content);\n\n\
             const stream = await client.chat.completions.create({{\n  model: \"{}\",\n  messages: [{{ role: \"user\", content: \"And once more, streamed.\" }}],\n  stream: true,\n}});\n\
             let text = \"\";\nfor await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? \"\";\nconsole.log(text);\n",
            route(dp),
            route(dp)
        );
    }
    s
}

fn curl(_m: &Manifest, dp: &DecisionPoint) -> String {
    if embeds(dp) {
        return format!(
            "#!/bin/sh\n# Embeds a text at decision point `{id}` through psf with curl; expects 200.\n#\n#   PSF_BASE_URL=http://127.0.0.1:8080/v1 PSF_API_KEY=... sh {id}.sh\n\
             set -eu\n\
             curl --fail-with-body -sS \"$PSF_BASE_URL/embeddings\" \\\n  -H \"Authorization: Bearer $PSF_API_KEY\" \\\n  -H 'Content-Type: application/json' \\\n  -d '{{\"model\": \"{route}\", \"input\": [\"Hello from the integration example.\"]}}'\necho\n",
            id = dp.id,
            route = route(dp),
        );
    }
    let expect = if dp.autonomy == Autonomy::Supervised { "202 (held for review)" } else { "200" };
    format!(
        "#!/bin/sh\n# Calls decision point `{id}` through psf with curl; expects {expect}.\n#\n#   PSF_BASE_URL=http://127.0.0.1:8080/v1 PSF_API_KEY=... sh {id}.sh\n\
         set -eu\n\
         curl --fail-with-body -sS \"$PSF_BASE_URL/chat/completions\" \\\n  -H \"Authorization: Bearer $PSF_API_KEY\" \\\n  -H 'Content-Type: application/json' \\\n  -d '{{\"model\": \"{route}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello from the integration example.\"}}]}}'\necho\n",
        id = dp.id,
        route = route(dp),
    )
}

fn flow_html(m: &Manifest) -> String {
    let mut s = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{name}: how it works</title>\n<style>\nbody {{ font: 16px/1.55 system-ui, sans-serif; color: #1d1d1f; max-width: 960px; margin: 0 auto; padding: 24px; }}\n\
         h1 {{ font-size: 1.6rem; }} h2 {{ font-size: 1.2rem; margin-top: 1.8rem; border-bottom: 2px solid #d0d0d5; }}\n\
         table {{ border-collapse: collapse; width: 100%; }} th, td {{ border: 1px solid #d0d0d5; padding: 6px 8px; text-align: left; vertical-align: top; }}\n\
         svg {{ max-width: 100%; height: auto; }}\n{STATUS_STYLE}\n@media print {{ body {{ max-width: none; padding: 0; }} }}\n</style>\n</head>\n<body>\n\
         <h1>{name}</h1>\n<p>{desc}</p>\n",
        name = esc(&m.system.name),
        desc = esc(m.system.description.as_deref().unwrap_or("The manifest does not describe what the system does.")),
    );
    let owner = &m.system.owner;
    let _ = write!(
        s,
        "<h2>Who owns it</h2>\n<p>{} ({}), {}, answers for this system.</p>\n",
        esc(&owner.name),
        esc(&owner.email),
        esc(owner.role.as_deref().unwrap_or("the accountable owner"))
    );
    s.push_str("<h2>Where a person decides</h2>\n<table>\n<thead><tr><th scope=\"col\">Decision</th><th scope=\"col\">Who decides</th><th scope=\"col\">Stakes</th></tr></thead>\n<tbody>\n");
    for dp in &m.decision_points {
        let who = match dp.autonomy {
            Autonomy::Supervised => {
                let names: Vec<&str> = dp.reviewers.iter().map(|p| p.name.as_str()).collect();
                format!("A person approves every answer first ({})", esc(&names.join(", ")))
            }
            Autonomy::Advisory => "The AI advises; a person acts on it".to_string(),
            Autonomy::Autonomous => "The AI answers on its own".to_string(),
        };
        let _ = writeln!(
            s,
            "<tr><td><strong>{}</strong><br>{}</td><td>{who}</td><td>{}</td></tr>",
            esc(&dp.id),
            esc(dp.description.as_deref().unwrap_or("")),
            esc(&serde_json::to_value(dp.stakes).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default())
        );
    }
    s.push_str("</tbody>\n</table>\n<h2>What happens when it fails</h2>\n<ul>\n");
    for dp in &m.decision_points {
        let _ = writeln!(s, "<li><strong>{}</strong>: {}</li>", esc(&dp.id), esc(&on_failure(m, dp)));
    }
    s.push_str(
        "<li>Operators can switch any part off at once (the kill switch), on every gateway within a second.</li>\n",
    );
    if let Some(plan) = &m.incident_plan {
        let first = plan.escalation.first().map(|e| format!("{} within {} minutes", e.contact.name, e.within_minutes));
        let _ = writeln!(
            s,
            "<li>The incident plan covers {} failure modes{}.</li>",
            plan.failure_modes.len(),
            first.map(|f| format!("; the first call goes to {}", esc(&f))).unwrap_or_default()
        );
    }
    let _ = write!(s, "</ul>\n<h2>The flow</h2>\n<figure>{}</figure>\n</body>\n</html>\n", workflow_svg(m));
    s
}

fn readme(file: &str, m: &Manifest) -> String {
    format!(
        "# {} — the workflow package\n\n\
         Made by `psf export --package` from `{file}`; every file follows from the manifest alone.\n\n\
         - `{file}` — the deployment manifest, as written; `psf.schema.json` — the JSON Schema it validates against.\n\
         - `flow.html` — one page for a board member: what the system does, where a person decides, who owns it, \
           what happens when it fails; `flow.svg` — the workflow diagram.\n\
         - `integration/` — for developers: one page per decision point (endpoint, authentication, request and \
           response, errors, disclosure and review) and working examples in `integration/examples/`.\n",
        m.system.name
    )
}

/// Files as a gzipped tar whose bytes depend only on the files and `day`: sorted
/// entries, every time the day's midnight (UTC), owner root, mode 0644.
pub fn tar_gz(files: &BTreeMap<String, Vec<u8>>, day: jiff::civil::Date) -> std::io::Result<Vec<u8>> {
    let mtime = day
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp().as_second())
        .ok()
        .and_then(|s| u64::try_from(s).ok())
        .unwrap_or(0);
    let gz = flate2::GzBuilder::new()
        .mtime(u32::try_from(mtime).unwrap_or(0))
        .write(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        tar.append_data(&mut header, name, bytes.as_slice())?;
    }
    tar.into_inner()?.finish()
}
