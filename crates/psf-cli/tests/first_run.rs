//! A new user's first run, as the README tells it: `psf init`, `psf keys create`,
//! `psf serve`, one call with the key — in an empty directory, with the listen address
//! and the store from the environment (`PSF_LISTEN`, `PSF_STORE`), against the mock
//! upstream standing in for OpenAI (`OPENAI_BASE_URL`). The call succeeds, and the
//! access log has one line for it that names ids and codes, never the text or the key.

mod processes;

use std::path::PathBuf;
use std::process::Stdio;

use processes::{Running, free_port, psf, wait_for};

#[test]
fn init_then_keys_then_serve_then_a_call_succeeds() {
    let dir: PathBuf = std::env::temp_dir().join(format!("psf-first-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| psf().current_dir(&dir).args(args).output().unwrap();

    let o = run(&["init"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&["check"]);
    assert!(o.status.success(), "the starter passes psf check: {}", String::from_utf8_lossy(&o.stdout));
    let o = run(&["keys", "create", "--app", "assistant"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    let key = out.lines().find_map(|l| l.strip_prefix("API key: ")).expect("the key is printed once").to_string();

    let (mock_port, gw_port) = (free_port(), free_port());
    let _mock = Running(psf().args(["mock-upstream", "--listen", &format!("127.0.0.1:{mock_port}")]).spawn().unwrap());
    let log = dir.join("serve.log");
    let _gateway = Running(
        psf()
            .current_dir(&dir)
            .env("PSF_LISTEN", format!("127.0.0.1:{gw_port}"))
            .env("PSF_STORE", "sqlite://psf.db")
            .env("OPENAI_API_KEY", "sk-first-run")
            .env("OPENAI_BASE_URL", format!("http://127.0.0.1:{mock_port}/v1"))
            .env_remove("PSF_LOG")
            .arg("serve")
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap(),
    );
    assert!(wait_for(mock_port) && wait_for(gw_port), "{}", std::fs::read_to_string(&log).unwrap_or_default());

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (status, body, request_id) = rt.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{gw_port}/v1/chat/completions"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(r#"{"model": "answer", "messages": [{"role": "user", "content": "How many days of leave do I have? zebra-quartz"}]}"#)
            .send()
            .await
            .unwrap();
        let id = r.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        (r.status().as_u16(), r.text().await.unwrap(), id)
    });
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(body["choices"][0]["message"]["content"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
    assert_eq!(body["model"], "answer");

    // The access log line, at the default level: found by the request id, with the
    // status and outcome; the request's text and the key never appear in the log.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let line = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains(&request_id) && l.contains("\"status\":200")) {
            break (l.to_string(), text);
        }
        assert!(std::time::Instant::now() < deadline, "no access log line for {request_id}:\n{text}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(line.0.contains("\"outcome\":\"delivered\""), "{}", line.0);
    assert!(line.0.contains("\"decision_point\":\"answer\""), "{}", line.0);
    assert!(!line.1.contains("zebra-quartz"), "request text reached the log");
    assert!(!line.1.contains(&key), "the key reached the log");
}

/// Every file the README's commands name exists in the repository, or is made by a
/// command the README shows before (`psf init`, `--out DIR`, `> FILE`, `--certificate
/// FILE`, `tar -C DIR`). Paths outside the repository (`../shared/…`) are the reader's.
#[test]
fn every_file_the_readme_names_exists_or_is_made_first() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut made: Vec<String> = Vec::new();
    let mut missing = Vec::new();
    let mut in_code = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        let command = line.split(" # ").next().unwrap_or_default();
        let words: Vec<&str> = command.split_whitespace().map(|w| w.trim_matches(['`', '"', '\'', ';'])).collect();
        for (i, word) in words.iter().enumerate() {
            let file_like =
                [".yaml", ".json", ".jsonl", ".txt", ".key", ".pub", ".csv", ".db"].iter().any(|e| word.ends_with(e));
            let outside = word.starts_with("../") || word.contains("://") || word.contains('*') || word.contains('$');
            let made_before = made.iter().any(|m| word == m || word.starts_with(&format!("{m}/")));
            let makes = i > 0 && matches!(words[i - 1], "--out" | ">" | "init" | "--certificate" | "-C");
            if file_like && !outside && !made_before && !makes && !word.starts_with('-') && !root.join(word).exists() {
                missing.push(format!("`{word}` in: {}", line.trim()));
            }
            if makes {
                made.push(word.trim_end_matches('/').to_string());
            }
        }
        if words.first() == Some(&"psf") && words.get(1) == Some(&"init") && words.len() == 2 {
            made.push("psf.yaml".into());
        }
        if line.contains("psf serve") || line.contains("psf keys") || line.contains("psf users") {
            made.push("psf.db".into());
        }
    }
    assert!(missing.is_empty(), "the README names files that do not exist:\n{}", missing.join("\n"));
}
