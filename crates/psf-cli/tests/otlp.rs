//! Traces over OTLP/HTTP: `psf serve` with `gateway.otlp` set sends its request spans to
//! a local collector, and never the request's text.

mod processes;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use processes::{Running, free_port, psf, wait_for};
use prost::Message as _;

/// What the collector received: path, content type, body.
type Received = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

/// A minimal HTTP/1.1 receiver that answers 200 to every POST and keeps what it got.
#[expect(clippy::unwrap_used, reason = "a test cannot go on without its collector")]
fn collector() -> (u16, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received: Received = Arc::default();
    let keep = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let keep = keep.clone();
            std::thread::spawn(move || serve(stream, &keep));
        }
    });
    (port, received)
}

fn serve(stream: TcpStream, keep: &Received) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_string();
        let (mut length, mut content_type) = (0usize, String::new());
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap_or_default();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "content-type" => content_type = value.trim().to_string(),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        keep.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((path, content_type, body));
        let _ = reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    }
}

#[test]
fn request_spans_reach_the_collector_without_the_request_text() {
    let (collector_port, received) = collector();
    let (mock_port, gw_port) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("psf-otlp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = format!(
        r#"
version: 1
system:
  name: Traced assistant
  owner: {{name: Tess Ownby, email: tess.ownby@example.com}}
apps:
  - {{id: app, decision_point: chat, keys: [{{id: app-key, env: APP_KEY}}]}}
decision_points:
  - {{id: chat, autonomy: advisory, model: m}}
models:
  - {{id: m, provider: mock, model: mock-model}}
providers:
  - {{id: mock, kind: openai_compatible, base_url: "http://127.0.0.1:{mock_port}/v1", self_hosted: true}}
gateway:
  otlp: {{endpoint: "http://127.0.0.1:{collector_port}/v1/traces"}}
"#
    );
    std::fs::write(dir.join("psf.yaml"), manifest).unwrap();
    let _mock = Running(psf().args(["mock-upstream", "--listen", &format!("127.0.0.1:{mock_port}")]).spawn().unwrap());
    let mut gateway = Running(
        psf()
            .env("APP_KEY", "otlp-test-key-0123456789")
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .args(["serve", "--manifest", &dir.join("psf.yaml").display().to_string()])
            .args(["--listen", &format!("127.0.0.1:{gw_port}")])
            .args(["--store", &format!("sqlite://{}", dir.join("psf.db").display())])
            .spawn()
            .unwrap(),
    );
    assert!(wait_for(mock_port) && wait_for(gw_port));
    let secret = "my card is 4111 1111 1111 1111 and my email jane@example.com";
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{gw_port}/v1/chat/completions"))
            .bearer_auth("otlp-test-key-0123456789")
            .header("content-type", "application/json")
            .body(serde_json::json!({"model": "chat", "messages": [{"role": "user", "content": secret}]}).to_string())
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    assert_eq!(status.ok(), Some(200));

    // The request span and its stage spans, from however many batches they came in.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut spans = Vec::new();
    while Instant::now() < deadline {
        spans = received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter_map(|(_, _, body)| ExportTraceServiceRequest::decode(body.as_slice()).ok())
            .flat_map(|r| r.resource_spans)
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .collect::<Vec<_>>();
        if spans.iter().any(|s| s.name == "request") && spans.iter().any(|s| s.name == "IG-1.injection") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = gateway.0.kill();
    let got = received.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let (path, content_type, _) = got.first().cloned().unwrap_or_default();
    assert_eq!(path, "/v1/traces");
    assert_eq!(content_type, "application/x-protobuf");
    let request = spans.iter().find(|s| s.name == "request").unwrap_or_else(|| panic!("no request span: {spans:?}"));
    let stage = spans.iter().find(|s| s.name == "IG-1.injection").unwrap_or_else(|| panic!("no stage span: {spans:?}"));
    assert_eq!(stage.parent_span_id, request.span_id, "a stage is a child of its request");
    assert_eq!(stage.trace_id, request.trace_id);
    assert!(
        stage.start_time_unix_nano >= request.start_time_unix_nano
            && stage.end_time_unix_nano <= request.end_time_unix_nano
    );
    let attributes = |s: &opentelemetry_proto::tonic::trace::v1::Span| format!("{:?}", s.attributes);
    assert!(attributes(request).contains("decision_point") && attributes(request).contains("chat"));
    assert!(attributes(stage).contains("psf.decision"));
    let all = got.iter().map(|(_, _, b)| String::from_utf8_lossy(b).into_owned()).collect::<String>();
    assert!(all.contains("Traced assistant"), "the service name is the system's");
    for secret_part in ["4111 1111", "jane@example.com", "my card is"] {
        assert!(!all.contains(secret_part), "the trace carries request text: {secret_part}");
    }
}
