//! Latency of the detectors on a 1 kB prompt: mean and percentiles (divan reports
//! medians; the PII goal is stated as a p99). `cargo run --release -p psf-detect
//! --example latency [NAME]`, where NAME picks the scans whose name contains it (for a
//! profiler). The last row, fixed arithmetic of about a scan's length, measures the
//! machine's own spread.

use std::io::Write as _;
use std::time::Instant;

use psf_detect::{ContentDetector, EntityType, InjectionDetector, PiiDetector, PiiDetectorBuilder, Source};

#[path = "../benches/haystacks.rs"]
mod haystacks;

/// One way of scanning the prompt.
type Scan<'a> = dyn Fn(&str) -> bool + 'a;

fn main() {
    let prompt = haystacks::prompt_1k();
    let patterns_only: Vec<EntityType> =
        EntityType::ALL.into_iter().filter(|e| !matches!(e, EntityType::Person | EntityType::Address)).collect();
    let (Ok(pii), Ok(pii_patterns), Ok(injection), Ok(content)) = (
        PiiDetector::new(),
        PiiDetectorBuilder::new().entities(&patterns_only).build(),
        InjectionDetector::new(),
        ContentDetector::new(),
    ) else {
        eprintln!("cannot build the detectors");
        return;
    };
    let runs = 20_000;
    let pii_only = |t: &str| !pii.scan(t).is_empty();
    let pii_no_tagger = |t: &str| !pii_patterns.scan(t).is_empty();
    let injection_only = |t: &str| injection.scan(t, Source::User).flagged;
    let both = |t: &str| !pii.scan(t).is_empty() && !injection.scan(t, Source::User).flagged;
    let content_only = |t: &str| !content.scan(t).flagged.is_empty();
    let cases: [(&str, &Scan); 6] = [
        ("pii scan", &pii_only),
        ("pii scan, no names or addresses", &pii_no_tagger),
        ("injection scan", &injection_only),
        ("pii + injection", &both),
        ("content scan", &content_only),
        ("machine noise", &fixed_work),
    ];
    let only = std::env::args().nth(1).unwrap_or_default();
    for (name, f) in cases.into_iter().filter(|(name, _)| name.contains(&only)) {
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let start = Instant::now();
            std::hint::black_box(f(std::hint::black_box(&prompt)));
            times.push(start.elapsed().as_secs_f64() * 1e6);
        }
        times.sort_by(f64::total_cmp);
        let p = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        // Ignore a closed pipe (`| head`): there is nobody left to tell.
        let _ = writeln!(
            std::io::stdout(),
            "{name:<31} {} bytes, {runs} runs: mean {mean:.1} µs  p50 {:.1} µs  p99 {:.1} µs  p99.9 {:.1} µs",
            prompt.len(),
            p(0.5),
            p(0.99),
            p(0.999)
        );
    }
}

/// The same arithmetic every time, about as long as a scan, touching no memory: its
/// spread is the machine's (interrupts, other tenants, frequency), not a detector's,
/// so it says how much of a scan's p99 the machine alone explains.
fn fixed_work(text: &str) -> bool {
    let mut x = text.len() as u64 | 1;
    for _ in 0..12_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x == 0
}
