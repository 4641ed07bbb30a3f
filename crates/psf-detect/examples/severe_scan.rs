//! Prints the severe-tier finding for each line of a JSONL file's `text` that is flagged:
//! `cargo run -p psf-detect --example severe_scan -- FILE.jsonl`.

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: severe_scan FILE.jsonl");
        return;
    };
    let Ok(d) = psf_detect::SevereDetector::new() else { return };
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    for line in text.lines() {
        let Ok(row) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let t = row["text"].as_str().unwrap_or_default();
        if let Some(f) = d.scan(t) {
            let head: String = t.chars().take(240).collect();
            println!("{:?} {:?}: {}", f.category, f.evidence, head.replace('\n', " "));
        }
    }
}
