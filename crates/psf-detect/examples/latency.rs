//! Latency of the detectors on a 1 kB prompt: mean and percentiles (divan reports
//! medians; the PII goal is stated as a p99). `cargo run --release -p psf-detect
//! --example latency [NAME]`, where NAME picks the scans whose name contains it (for a
//! profiler). Beside each scan, fixed arithmetic as long as the scan's median measures
//! the machine's own spread.

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
    let cases: [(&str, &Scan); 5] = [
        ("pii scan", &pii_only),
        ("pii scan, no names or addresses", &pii_no_tagger),
        ("injection scan", &injection_only),
        ("pii + injection", &both),
        ("content scan", &content_only),
    ];
    let only = std::env::args().nth(1).unwrap_or_default();
    // The machine's speed at the fixed arithmetic: µs per 1,000 rounds.
    let per_thousand_rounds = Percentiles::of(1_000, || fixed_work(1_000)).p50;
    // What goes through the cache between cold runs, as when another process ran on
    // the core in between.
    let mut other = vec![0u8; 8 << 20];
    for (name, f) in cases.into_iter().filter(|(name, _)| name.contains(&only)) {
        let scan = Percentiles::of(runs, || f(&prompt));
        // Fixed arithmetic as long as the scan's median, measured the same way.
        let rounds = (scan.p50 / per_thousand_rounds * 1_000.0) as u64;
        let machine = Percentiles::of(runs, || fixed_work(rounds));
        // Each run after 8 MiB of other data: what the detector's tables cost when they
        // are not in cache.
        let cold = Percentiles::of_prepared(runs / 10, || evict(&mut other), || f(&prompt));
        // Ignore a closed pipe (`| head`): there is nobody left to tell.
        let _ = writeln!(
            std::io::stdout(),
            "{name:<31} {} bytes, {runs} runs: mean {:.1} µs  p50 {:.1} µs  p99 {:.1} µs  p99.9 {:.1} µs  \
             | fixed arithmetic, same p50: p99 {:.1} µs | cache evicted: p50 {:.1} µs",
            prompt.len(),
            scan.mean,
            scan.p50,
            scan.p99,
            scan.p999,
            machine.p99,
            cold.p50,
        );
    }
}

/// Wall-clock times of many runs, in µs.
struct Percentiles {
    mean: f64,
    p50: f64,
    p99: f64,
    p999: f64,
}

impl Percentiles {
    fn of<T>(runs: usize, f: impl FnMut() -> T) -> Percentiles {
        Percentiles::of_prepared(runs, || (), f)
    }

    /// Times `f` alone, after `prepare` before each run.
    fn of_prepared<T>(runs: usize, mut prepare: impl FnMut(), mut f: impl FnMut() -> T) -> Percentiles {
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            prepare();
            let start = Instant::now();
            std::hint::black_box(f());
            times.push(start.elapsed().as_secs_f64() * 1e6);
        }
        times.sort_by(f64::total_cmp);
        let p = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        Percentiles { mean, p50: p(0.5), p99: p(0.99), p999: p(0.999) }
    }
}

/// The same arithmetic every time, touching no memory: its spread is the machine's
/// (timer interrupts, other tenants), not a detector's, so beside a scan of the same
/// median it shows how much of the scan's tail the machine alone explains.
fn fixed_work(rounds: u64) -> u64 {
    let mut x = std::hint::black_box(rounds) | 1;
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

/// Writes every cache line of `other`, pushing whatever was cached before out.
fn evict(other: &mut [u8]) {
    for line in other.chunks_mut(64) {
        line[0] = line[0].wrapping_add(1);
    }
    std::hint::black_box(other);
}
