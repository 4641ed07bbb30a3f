//! Usage anomalies per key (OB-3) and changes of the model a provider reports (HO-5,
//! MS-2), judged alongside the alert rules each alert minute.
//!
//! Each API key is held to its own history: requests per minute, and the shares of its
//! requests that carried a blocked or flagged injection, personal data, or an
//! out-of-scope answer, each an exponentially weighted mean and variance over
//! [`HISTORY_MINUTES`]. A minute far outside a key's own history (at least
//! [`SIGMAS`] standard deviations and a floor that keeps a quiet key's first odd request
//! from counting) is an anomaly: one event when it starts, with the evidence, and none
//! again until that signal has been normal for a minute. A key with a week or more of
//! history that is used in an hour of the day (UTC) it has never been used in is an
//! anomaly too: a stolen key is often used while its owner sleeps.
//!
//! A provider that starts answering with another model version than it did (the
//! `model` field of its replies) has changed what the oversight design was reviewed
//! against: that raises "oversight review due" for every decision point using it.
//!
//! Drift (HO-5, MS-2): per decision point, the distributions of prompt length, answer
//! length, the prompt's script (Latin, Cyrillic, Arabic or Hebrew, CJK, Indic, other: the
//! language, roughly), and the shares of requests with an injection or personal data
//! found or an answer out of the decision point's topics, over
//! the last `drift_window_minutes`, are compared with the first such window the gateway
//! saw (the reference) by the population stability index. A PSI above
//! [`PSI_DRIFT`] is drift: "oversight review due", once, until it falls below
//! [`PSI_SETTLED`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use serde_json::{Value, json};

use crate::alerts::Ewma;
use psf_core::code::Code;

/// Minutes of history a key's baseline weighs.
pub(crate) const HISTORY_MINUTES: f64 = 30.0;
/// Minutes of a key's history before it can be judged.
const WARM_UP: u32 = 5;
/// How far outside its history a minute must be.
const SIGMAS: f64 = 4.0;
/// Keys followed at most; beyond it the longest idle are forgotten.
const MAX_KEYS: usize = 10_000;
/// History a key needs before a new hour of use is news.
const HOURS_HISTORY_MS: i64 = 7 * 24 * 3600 * 1000;
/// Requests a key needs in its history before a new hour of use is news.
const HOURS_MIN_REQUESTS: u32 = 50;

/// What one request says about its key.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct KeyUse {
    pub injection: bool,
    pub pii: bool,
    pub out_of_scope: bool,
}

/// The signals followed per key, in order.
const SIGNALS: [&str; 4] =
    ["requests per minute", "share of injections", "share with personal data", "share out of scope"];

#[derive(Debug, Default, Clone)]
struct KeyState {
    app: String,
    /// This minute: requests, injections, with PII, out of scope.
    now: [u32; 4],
    history: [Ewma; 4],
    /// Signals in an anomaly now (reported once).
    active: [bool; 4],
    idle_minutes: u32,
    /// Requests by hour of the day (UTC) before this minute.
    hours: [u32; 24],
    /// Hours of the day with requests this minute.
    hours_now: [u32; 24],
    /// When the key was first seen (ms).
    first_ms: Option<i64>,
    /// The last hour reported as new, so it is reported once.
    new_hour_reported: Option<usize>,
}

/// The hour of the day (UTC) of a time in ms.
fn hour_of(ts_ms: i64) -> usize {
    (ts_ms.rem_euclid(24 * 3600 * 1000) / (3600 * 1000)) as usize
}

/// An anomaly or a change worth an event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finding {
    /// `OB-3.anomaly` or `HO-5.review_due`.
    pub kind: Code,
    pub app: Option<String>,
    pub key_id: Option<String>,
    pub summary: String,
    pub detail: Value,
}

/// A population stability index above this is drift.
pub(crate) const PSI_DRIFT: f64 = 0.25;
/// Below this, drift has settled and may be reported again later.
const PSI_SETTLED: f64 = 0.1;
/// Requests a window needs before it is compared.
const DRIFT_MIN_REQUESTS: u32 = 50;
/// Bins per feature.
const BINS: usize = 6;
/// The features drift is judged on.
const FEATURES: [&str; 6] =
    ["prompt length", "answer length", "injection found", "personal data found", "script", "out of scope"];

/// Counts per feature and bin.
type Histogram = [[u32; BINS]; FEATURES.len()];

/// What one request says about its decision point's traffic.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Traffic {
    /// The script most of the prompt's letters are in ([`script_bin`]).
    pub script: Option<usize>,
    pub out_of_scope: bool,
    pub prompt_tokens: Option<i64>,
    pub answer_tokens: Option<i64>,
    pub injection: bool,
    pub pii: bool,
}

/// Token counts in bins that double: under 16, 16–63, 64–255, 256–1023, 1024–4095,
/// 4096 and over.
/// The script most of `text`'s letters are in, looking at its first 2,000 characters:
/// 0 Latin, 1 Cyrillic, 2 Arabic or Hebrew, 3 Chinese, Japanese or Korean, 4 Indic,
/// 5 any other; `None` without letters.
pub(crate) fn script_bin(text: &str) -> Option<usize> {
    let mut counts = [0u32; BINS];
    for c in text.chars().take(2000).filter(|c| c.is_alphabetic()) {
        let bin = match u32::from(c) {
            0..=0x024F | 0x1E00..=0x1EFF => 0,
            0x0400..=0x052F => 1,
            0x0590..=0x06FF | 0x0750..=0x077F => 2,
            0x2E80..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF => 3,
            0x0900..=0x0DFF => 4,
            _ => 5,
        };
        counts[bin] += 1;
    }
    let (bin, n) = counts.iter().enumerate().max_by_key(|(_, n)| **n)?;
    (*n > 0).then_some(bin)
}

fn length_bin(tokens: i64) -> usize {
    match tokens {
        ..16 => 0,
        16..64 => 1,
        64..256 => 2,
        256..1024 => 3,
        1024..4096 => 4,
        _ => 5,
    }
}

#[derive(Debug, Default, Clone)]
struct DriftState {
    now: Histogram,
    /// The last minutes, newest last.
    recent: VecDeque<Histogram>,
    reference: Option<Histogram>,
    drifting: bool,
}

fn sum(window: &VecDeque<Histogram>) -> Histogram {
    let mut total = [[0u32; BINS]; FEATURES.len()];
    for h in window {
        for (t, row) in total.iter_mut().zip(h) {
            for (a, b) in t.iter_mut().zip(row) {
                *a += b;
            }
        }
    }
    total
}

/// The population stability index of `current` against `reference`, over one
/// feature's bins, with half a count added to every bin so an empty bin is finite.
pub(crate) fn psi(reference: &[u32], current: &[u32]) -> f64 {
    let n_ref = reference.iter().sum::<u32>() as f64 + 0.5 * reference.len() as f64;
    let n_cur = current.iter().sum::<u32>() as f64 + 0.5 * current.len() as f64;
    reference
        .iter()
        .zip(current)
        .map(|(r, c)| {
            let p = (f64::from(*r) + 0.5) / n_ref;
            let q = (f64::from(*c) + 0.5) / n_cur;
            (q - p) * (q / p).ln()
        })
        .sum()
}

/// Per-key histories, the model versions seen, and each decision point's drift.
#[derive(Debug, Default)]
pub(crate) struct Monitor {
    /// The manifest's decision points: the only ones followed for drift.
    points: Vec<String>,
    keys: Mutex<HashMap<String, KeyState>>,
    /// Per configured model (ids are unique, and each has one provider): the model
    /// version its provider last reported.
    versions: Mutex<HashMap<String, String>>,
    drift: Mutex<HashMap<String, DriftState>>,
}

impl Monitor {
    /// A monitor for the manifest's decision points.
    pub fn new(points: Vec<String>) -> Monitor {
        Monitor { points, ..Monitor::default() }
    }

    /// Counts one request of a decision point for drift; only the manifest's decision
    /// points are followed, so request data never makes a key.
    pub fn observe_traffic(&self, point: &str, t: Traffic) {
        let mut drift = self.drift.lock().unwrap_or_else(PoisonError::into_inner);
        let state = match drift.get_mut(point) {
            Some(s) => s,
            None if self.points.iter().any(|p| p == point) => drift.entry(point.to_string()).or_default(),
            None => return,
        };
        let bins = [
            t.prompt_tokens.map(length_bin),
            t.answer_tokens.map(length_bin),
            Some(usize::from(t.injection)),
            Some(usize::from(t.pii)),
            t.script,
            Some(usize::from(t.out_of_scope)),
        ];
        for (row, bin) in state.now.iter_mut().zip(bins) {
            if let Some(slot) = bin.and_then(|b| row.get_mut(b)) {
                *slot += 1;
            }
        }
    }

    /// Closes the minute for drift: the decision points whose traffic drifted from
    /// their reference over the last `window` minutes.
    pub fn drift_tick(&self, window: usize) -> Vec<Finding> {
        let mut drift = self.drift.lock().unwrap_or_else(PoisonError::into_inner);
        let mut found = Vec::new();
        for (point, s) in drift.iter_mut() {
            let minute = std::mem::take(&mut s.now);
            s.recent.push_back(minute);
            if s.recent.len() < window {
                continue;
            }
            while s.recent.len() > window {
                s.recent.pop_front();
            }
            let current = sum(&s.recent);
            let requests: u32 = current[2].iter().sum();
            if requests < DRIFT_MIN_REQUESTS {
                continue;
            }
            let Some(reference) = s.reference else {
                // The first full window is the reference; the next is judged against it.
                s.reference = Some(current);
                s.recent.clear();
                continue;
            };
            let scores: Vec<f64> = reference.iter().zip(&current).map(|(r, c)| psi(r, c)).collect();
            let (worst, score) = scores
                .iter()
                .copied()
                .enumerate()
                .fold((0, 0.0), |best, (i, v)| if v > best.1 { (i, v) } else { best });
            if score > PSI_DRIFT && !s.drifting {
                s.drifting = true;
                found.push(Finding {
                    kind: Code::Ho5ReviewDue,
                    app: None,
                    key_id: None,
                    summary: format!(
                        "oversight review due for {point}: its traffic drifted from the reference window ({} PSI {score:.2}, above {PSI_DRIFT})",
                        FEATURES[worst]
                    ),
                    detail: json!({
                        "reason": "drift",
                        "decision_points": [point],
                        "feature": FEATURES[worst],
                        "psi": FEATURES.iter().zip(&scores).map(|(f, v)| (f.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                        "reference": reference.iter().map(|r| r.to_vec()).collect::<Vec<_>>(),
                        "current": current.iter().map(|r| r.to_vec()).collect::<Vec<_>>(),
                        "window_minutes": window,
                    }),
                });
            } else if score < PSI_SETTLED {
                s.drifting = false;
            }
        }
        found
    }

    /// Counts one request of a key, made at `ts_ms`.
    pub fn observe(&self, app: &str, key_id: &str, u: KeyUse, ts_ms: i64) {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if !keys.contains_key(key_id) && keys.len() >= MAX_KEYS {
            return;
        }
        let s =
            keys.entry(key_id.to_string()).or_insert_with(|| KeyState { app: app.to_string(), ..KeyState::default() });
        s.now[0] += 1;
        s.now[1] += u32::from(u.injection);
        s.now[2] += u32::from(u.pii);
        s.now[3] += u32::from(u.out_of_scope);
        s.first_ms = Some(s.first_ms.map_or(ts_ms, |f| f.min(ts_ms)));
        if let Some(h) = s.hours_now.get_mut(hour_of(ts_ms)) {
            *h += 1;
        }
    }

    /// Closes the minute for every key, at `now_ms`: the anomalies that started.
    pub fn tick(&self, now_ms: i64) -> Vec<Finding> {
        let alpha = 2.0 / (HISTORY_MINUTES + 1.0);
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let mut found = Vec::new();
        for (key_id, s) in keys.iter_mut() {
            if let Some(f) = new_hour(key_id, s, now_ms) {
                found.push(f);
            }
            let now = std::mem::take(&mut s.now);
            s.idle_minutes = if now[0] == 0 { s.idle_minutes.saturating_add(1) } else { 0 };
            let requests = f64::from(now[0]);
            // Requests per minute counts every minute, quiet ones too; the shares only
            // minutes with requests.
            let values: [Option<f64>; 4] = [
                Some(requests),
                (now[0] > 0).then(|| f64::from(now[1]) / requests),
                (now[0] > 0).then(|| f64::from(now[2]) / requests),
                (now[0] > 0).then(|| f64::from(now[3]) / requests),
            ];
            for (i, value) in values.into_iter().enumerate() {
                let Some(value) = value else { continue };
                let h = s.history[i];
                // Floors: a rate must at least triple and reach 10 a minute; a share
                // must rise by 0.25 and come from at least 3 requests.
                let (floor, enough) =
                    if i == 0 { ((h.mean * 3.0).max(10.0), true) } else { (h.mean + 0.25, now[i] >= 3) };
                let unusual = h.minutes >= WARM_UP
                    && enough
                    && value > floor
                    && value > h.mean + SIGMAS * h.variance.sqrt().max(if i == 0 { 1.0 } else { 0.05 });
                if unusual && !s.active[i] {
                    s.active[i] = true;
                    found.push(Finding {
                        kind: Code::Ob3Anomaly,
                        app: Some(s.app.clone()),
                        key_id: Some(key_id.clone()),
                        summary: format!(
                            "key {key_id} of app {}: {} is {} against its usual {:.2} ± {:.2}",
                            s.app,
                            SIGNALS[i],
                            if i == 0 { format!("{value:.0}") } else { format!("{value:.2}") },
                            h.mean,
                            h.variance.sqrt()
                        ),
                        detail: json!({
                            "signal": SIGNALS[i],
                            "value": value,
                            "baseline_mean": h.mean,
                            "baseline_sd": h.variance.sqrt(),
                            "baseline_minutes": h.minutes,
                            "minute": {"requests": now[0], "injections": now[1], "with_pii": now[2], "out_of_scope": now[3]},
                        }),
                    });
                }
                if !unusual {
                    s.active[i] = false;
                    // The history learns from normal minutes only, so an attack in
                    // progress does not become the key's normal.
                    s.history[i].learn(value, alpha);
                }
            }
        }
        if keys.len() > MAX_KEYS / 2 {
            keys.retain(|_, s| s.idle_minutes < 24 * 60);
        }
        found
    }

    /// Notes the model a provider reported for a configured model; a change from the
    /// one it reported before is a finding ("oversight review due") for the decision
    /// points `points` names. On every answer's path: no allocation unless something
    /// changed, and `points` is only asked then.
    pub fn model_reported(
        &self,
        provider: &str,
        model_id: &str,
        reported: &str,
        points: impl FnOnce() -> Vec<String>,
    ) -> Option<Finding> {
        if reported.is_empty() {
            return None;
        }
        let mut versions = self.versions.lock().unwrap_or_else(PoisonError::into_inner);
        let before = match versions.get_mut(model_id) {
            Some(before) if before == reported => return None,
            Some(before) => std::mem::replace(before, reported.to_string()),
            None => {
                versions.insert(model_id.to_string(), reported.to_string());
                return None;
            }
        };
        drop(versions);
        let points = points();
        Some(Finding {
            kind: Code::Ho5ReviewDue,
            app: None,
            key_id: None,
            summary: format!(
                "oversight review due: provider {provider} now answers model {model_id} as {reported} (was {before}), \
                 which changes what {} was reviewed against",
                points.join(", ")
            ),
            detail: json!({
                "reason": "model_version_changed",
                "provider": provider,
                "model": model_id,
                "before": before,
                "now": reported,
                "decision_points": points,
            }),
        })
    }
}

/// A key used in an hour of the day it has never been used in, with a week of history:
/// the finding, once per new hour. Folds this minute's hours into the history.
fn new_hour(key_id: &str, s: &mut KeyState, now_ms: i64) -> Option<Finding> {
    let now = std::mem::take(&mut s.hours_now);
    let history: u32 = s.hours.iter().sum();
    let seasoned = s.first_ms.is_some_and(|f| now_ms - f >= HOURS_HISTORY_MS) && history >= HOURS_MIN_REQUESTS;
    let fresh = (0..24).find(|h| now[*h] > 0 && s.hours[*h] == 0);
    let finding = match fresh {
        Some(hour) if seasoned && s.new_hour_reported != Some(hour) => {
            s.new_hour_reported = Some(hour);
            let usual: Vec<usize> = (0..24).filter(|h| s.hours[*h] > 0).collect();
            Some(Finding {
                kind: Code::Ob3Anomaly,
                app: Some(s.app.clone()),
                key_id: Some(key_id.to_string()),
                summary: format!(
                    "key {key_id} of app {}: used at {hour:02}:00 UTC, an hour it has never been used in ({history} requests on record)",
                    s.app
                ),
                detail: json!({"signal": "new usage hour", "hour_utc": hour, "usual_hours_utc": usual, "requests_on_record": history, "requests_this_minute": now[hour]}),
            })
        }
        _ => None,
    };
    for (h, n) in s.hours.iter_mut().zip(now) {
        *h = h.saturating_add(n);
    }
    finding
}

/// A finding about a decision point whose quality alert fired: it is due for review.
pub(crate) fn quality_review_due(decision_point: &str, summary: &str) -> Finding {
    Finding {
        kind: Code::Ho5ReviewDue,
        app: None,
        key_id: None,
        summary: format!("oversight review due for {decision_point}: its sampled output quality dropped ({summary})"),
        detail: json!({"reason": "quality_dropped", "decision_points": [decision_point]}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(m: &Monitor, requests: u32, injections: u32) -> Vec<Finding> {
        for k in 0..requests {
            m.observe("app", "key-1", KeyUse { injection: k < injections, ..KeyUse::default() }, 0);
        }
        m.tick(0)
    }

    #[test]
    fn a_seasoned_key_used_at_a_new_hour_is_an_anomaly_once() {
        const HOUR: i64 = 3600 * 1000;
        let m = Monitor::default();
        let at = |day: i64, hour: i64| day * 24 * HOUR + hour * HOUR;
        let mut found = Vec::new();
        // Eight days of office hours, 09:00 to 17:00.
        for day in 0..8 {
            for hour in 9..17 {
                m.observe("app", "key-1", KeyUse::default(), at(day, hour));
                found.extend(m.tick(at(day, hour)));
            }
        }
        assert!(found.is_empty(), "{found:?}");
        m.observe("app", "key-1", KeyUse::default(), at(8, 3));
        let found = m.tick(at(8, 3));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].detail["signal"], "new usage hour");
        assert_eq!(found[0].detail["hour_utc"], 3);
        assert!(found[0].summary.contains("used at 03:00 UTC"), "{}", found[0].summary);
        m.observe("app", "key-1", KeyUse::default(), at(8, 3) + 60_000);
        assert!(m.tick(at(8, 3) + 60_000).iter().all(|f| f.detail["signal"] != "new usage hour"), "once");
        // A young key has no usual hours yet.
        let young = Monitor::default();
        for hour in 0..24 {
            for _ in 0..5 {
                young.observe("app", "key-2", KeyUse::default(), at(0, hour));
            }
            assert!(young.tick(at(0, hour)).is_empty());
        }
    }

    #[test]
    fn a_key_that_starts_sending_injections_is_an_anomaly_once() {
        let m = Monitor::default();
        for _ in 0..10 {
            assert!(minute(&m, 6, 0).is_empty(), "its own normal");
        }
        let found = minute(&m, 6, 5);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, Code::Ob3Anomaly);
        assert_eq!(found[0].detail["signal"], "share of injections");
        assert_eq!(found[0].detail["minute"]["injections"], 5);
        assert!(
            found[0].summary.starts_with("key key-1 of app app: share of injections is 0.83"),
            "{}",
            found[0].summary
        );
        assert!(minute(&m, 6, 5).is_empty(), "reported when it starts, not every minute");
        assert!(minute(&m, 6, 0).is_empty());
        assert_eq!(minute(&m, 6, 6).len(), 1, "a new episode is reported again");
    }

    #[test]
    fn a_burst_is_judged_against_the_key_s_own_rate_and_a_new_key_is_not_judged() {
        let m = Monitor::default();
        assert!(minute(&m, 50, 0).is_empty(), "no history yet");
        let m = Monitor::default();
        for _ in 0..10 {
            minute(&m, 4, 0);
        }
        let found = minute(&m, 60, 0);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].detail["signal"], "requests per minute");
        // A busy key's ordinary wobble is not a burst.
        let busy = Monitor::default();
        for k in 0..10 {
            minute(&busy, 100 + k, 0);
        }
        assert!(minute(&busy, 115, 0).is_empty());
    }

    #[test]
    fn scripts_are_told_apart() {
        assert_eq!(script_bin("Where is my parcel?"), Some(0));
        assert_eq!(script_bin("Où est mon colis ? Ça arrive ?"), Some(0));
        assert_eq!(script_bin("Где моя посылка?"), Some(1));
        assert_eq!(script_bin("أين طردي؟"), Some(2));
        assert_eq!(script_bin("我的包裹在哪里？"), Some(3));
        assert_eq!(script_bin("मेरा पार्सल कहाँ है?"), Some(4));
        assert_eq!(script_bin("Πού είναι το δέμα μου;"), Some(5));
        assert_eq!(script_bin("12345 ?!"), None);
    }

    #[test]
    fn prompts_that_switch_language_are_drift() {
        let m = Monitor::new(vec!["chat".to_string()]);
        let minute = |text: &str| {
            for _ in 0..20 {
                let t = Traffic { script: script_bin(text), prompt_tokens: Some(10), ..Traffic::default() };
                m.observe_traffic("chat", t);
            }
            m.drift_tick(3)
        };
        for _ in 0..9 {
            assert!(minute("Where is my parcel?").is_empty());
        }
        let found: Vec<Finding> = (0..3).flat_map(|_| minute("Где моя посылка?")).collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].detail["feature"], "script");
    }

    #[test]
    fn psi_is_zero_for_the_same_distribution_and_large_for_a_shift() {
        assert!(psi(&[50, 30, 20, 0, 0, 0], &[50, 30, 20, 0, 0, 0]).abs() < 1e-9);
        assert!(psi(&[50, 30, 20, 0, 0, 0], &[48, 31, 21, 0, 0, 0]) < PSI_SETTLED);
        assert!(psi(&[100, 0, 0, 0, 0, 0], &[0, 0, 100, 0, 0, 0]) > PSI_DRIFT);
    }

    #[test]
    fn prompts_that_grow_long_are_drift_once() {
        let m = Monitor::new(vec!["chat".to_string()]);
        let minute = |tokens: i64| {
            for _ in 0..20 {
                let t = Traffic { prompt_tokens: Some(tokens), answer_tokens: Some(40), ..Traffic::default() };
                m.observe_traffic("chat", t);
            }
            m.observe_traffic("elsewhere", Traffic::default());
            m.drift_tick(3)
        };
        for _ in 0..9 {
            assert!(minute(10).is_empty(), "a reference window, then the same traffic");
        }
        let mut found = Vec::new();
        for _ in 0..3 {
            found.extend(minute(2000));
        }
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].detail["feature"], "prompt length");
        assert!(found[0].detail["psi"]["prompt length"].as_f64().unwrap() > PSI_DRIFT);
        assert!(minute(2000).is_empty(), "once per episode");
        assert_eq!(m.drift.lock().unwrap().len(), 1, "only the manifest's decision points are followed");
    }

    #[test]
    fn a_new_model_version_is_a_review_due_and_the_first_sight_is_not() {
        let m = Monitor::default();
        let points = vec!["chat".to_string()];
        assert_eq!(m.model_reported("p", "m", "gpt-x-2024-08-06", || points.clone()), None);
        assert_eq!(m.model_reported("p", "m", "gpt-x-2024-08-06", || points.clone()), None);
        let f = m.model_reported("p", "m", "gpt-x-2025-01-31", || points.clone()).unwrap();
        assert_eq!(f.kind, Code::Ho5ReviewDue);
        assert_eq!(f.detail["before"], "gpt-x-2024-08-06");
        assert!(f.summary.contains("which changes what chat was reviewed against"), "{}", f.summary);
        assert_eq!(m.model_reported("p", "m", "", || points.clone()), None, "a reply without a model says nothing");
    }
}
