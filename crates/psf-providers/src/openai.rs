//! OpenAI Chat Completions, and the servers that speak it (Azure OpenAI, vLLM, Ollama,
//! llama.cpp server). The request is already in this format; only the model name, the
//! URL and the auth header change.

use futures_util::StreamExt;
use serde_json::{Map, Value};

use crate::{ChunkStream, ErrorKind, Protocol, Provider, ProviderError, ReplyLimits, read_json, sse_events};

const AZURE_API_VERSION: &str = "2024-10-21";

fn url(p: &Provider, path: &str) -> String {
    match p.protocol {
        Protocol::AzureOpenAi => format!("{}/{path}?api-version={AZURE_API_VERSION}", p.base_url),
        _ => format!("{}/{path}", p.base_url),
    }
}

fn body(p: &Provider, request: &Map<String, Value>, model: &str, stream: bool) -> Result<Vec<u8>, ProviderError> {
    let mut body = request.clone();
    body.insert("model".into(), Value::String(model.to_string()));
    body.insert("stream".into(), Value::Bool(stream));
    if stream {
        // Token counts for the audit log arrive in a last chunk only when asked for, so psf
        // always asks, whatever the client said; the gateway passes usage on only to a
        // client that asked for it.
        let options = body.entry("stream_options").or_insert_with(|| Value::Object(Map::new()));
        if let Some(o) = options.as_object_mut() {
            o.insert("include_usage".into(), Value::Bool(true));
        } else {
            *options = serde_json::json!({"include_usage": true});
        }
    } else {
        body.remove("stream_options");
    }
    serde_json::to_vec(&body).map_err(|e| ProviderError::new(&p.id, ErrorKind::Config, e.to_string()))
}

async fn send(p: &Provider, path: &str, body: Vec<u8>) -> Result<reqwest::Response, ProviderError> {
    let bearer;
    let headers: Vec<(&str, &str)> = match (&p.api_key, p.protocol) {
        (Some(key), Protocol::AzureOpenAi) => vec![("api-key", key.as_str())],
        (Some(key), _) => {
            bearer = format!("Bearer {key}");
            vec![("authorization", bearer.as_str())]
        }
        (None, _) => vec![],
    };
    p.post(&url(p, path), body, &headers).await
}

pub(crate) async fn complete(
    p: &Provider,
    request: &Map<String, Value>,
    model: &str,
    limits: ReplyLimits,
) -> Result<Value, ProviderError> {
    let response = send(p, "chat/completions", body(p, request, model, false)?).await?;
    let value = read_json(&p.id, response, limits.max_body_bytes).await?;
    crate::shape::completion(&p.id, &value)?;
    Ok(value)
}

pub(crate) async fn stream(
    p: &Provider,
    request: &Map<String, Value>,
    model: &str,
    limits: ReplyLimits,
) -> Result<ChunkStream, ProviderError> {
    let response = send(p, "chat/completions", body(p, request, model, true)?).await?;
    let id = p.id.clone();
    let events = sse_events(p.id.clone(), response, limits);
    let chunks = events
        .take_while(|e| std::future::ready(!matches!(e, Ok(event) if event.data.trim() == "[DONE]")))
        .map(move |event| {
            let event = event?;
            let chunk: Value = serde_json::from_str(&event.data).map_err(|e| {
                ProviderError::new(&id, ErrorKind::Malformed, format!("a stream event is not JSON: {e}"))
            })?;
            if chunk.get("error").is_some() {
                // Summarised like an error status: the event's type and code, never its text.
                let summary = ProviderError::status(&id, 500, None, &chunk.to_string());
                return Err(ProviderError { message: format!("an error event: {}", summary.message), ..summary });
            }
            crate::shape::chunk(&id, &chunk)?;
            Ok(chunk)
        });
    Ok(Box::pin(chunks))
}

pub(crate) async fn embed(
    p: &Provider,
    request: &Map<String, Value>,
    model: &str,
    limits: ReplyLimits,
) -> Result<Value, ProviderError> {
    let mut body = request.clone();
    body.insert("model".into(), Value::String(model.to_string()));
    let bytes = serde_json::to_vec(&body).map_err(|e| ProviderError::new(&p.id, ErrorKind::Config, e.to_string()))?;
    let response = send(p, "embeddings", bytes).await?;
    let value = read_json(&p.id, response, limits.max_body_bytes).await?;
    crate::shape::embeddings(&p.id, &value)?;
    Ok(value)
}
