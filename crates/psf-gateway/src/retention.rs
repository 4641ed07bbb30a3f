//! The retention sweeper (DG-2, OB-5): deletes what the manifest says is kept long enough,
//! anonymises what holds personal data sooner, and records each run as a `DG-2.retention`
//! event. The clock is an argument, so tests (and `psf retention sweep --now`) choose it.

use psf_core::Manifest;
use psf_core::code::Code;
use psf_detect::{PiiDetector, RedactStyle, redact};
use psf_store::{Event, Store, StoreError, Swept};
use serde_json::json;

/// The audit log is never kept less than this (PSF 6.5), whatever the manifest says.
pub const MIN_AUDIT_DAYS: u32 = 30;

const DAY_MS: i64 = 86_400_000;

/// The shortest retention the manifest sets for any class of personal data, if any.
fn shortest_pii_days(m: &Manifest) -> Option<u32> {
    let c = &m.retention.pii_days;
    [c.contact, c.financial, c.government_id, c.credential, c.personal, c.location].into_iter().flatten().min()
}

/// One sweep at `now_ms`.
pub async fn sweep(store: &Store, manifest: &Manifest, pii: &PiiDetector, now_ms: i64) -> Result<Swept, StoreError> {
    let audit_days = manifest.retention.audit_log_days.max(MIN_AUDIT_DAYS);
    let audit_cutoff = now_ms - i64::from(audit_days) * DAY_MS;
    // Held answers can carry personal data the policy lets through (a name, say): past
    // the shortest class retention their texts keep labels only. Audit records and
    // events are redacted when written and need no second pass.
    let pii_days = shortest_pii_days(manifest).filter(|d| *d < audit_days);
    // Delete first: what is deleted needs no anonymising.
    let mut swept = store.delete_before(audit_cutoff).await?;
    let mut anonymised = 0;
    if let Some(days) = pii_days {
        let cutoff = now_ms - i64::from(days) * DAY_MS;
        for (id, output, final_output) in store.reviews_to_anonymise(cutoff).await? {
            let clean = |t: &str| redact(t, &pii.scan(t), RedactStyle::Label);
            store.anonymise_review(&id, &clean(&output), final_output.as_deref().map(clean).as_deref(), now_ms).await?;
            anonymised += 1;
        }
    }
    swept.reviews_anonymised = anonymised;
    store
        .insert_event(&Event {
            ts_ms: now_ms,
            kind: Code::Dg2Retention.as_str().into(),
            severity: "info".into(),
            app: None,
            key_id: None,
            summary: format!(
                "retention sweep: {} audit records, {} events, {} reviews deleted; {} reviews anonymised",
                swept.audit_records, swept.events, swept.reviews, swept.reviews_anonymised
            ),
            detail: json!({"swept": swept, "audit_log_days": audit_days, "pii_days": pii_days,
                           "audit_cutoff_ms": audit_cutoff}),
        })
        .await?;
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use psf_store::{AuditRecord, Review, ReviewDecision};
    use serde_json::Value;

    const NOW: i64 = 1_800_000_000_000;

    fn manifest() -> Manifest {
        let yaml = r#"
version: 1
system: {name: Retention test, owner: {name: Tess Ownby, email: tess.ownby@example.com}}
apps: [{id: a, decision_point: p}]
decision_points: [{id: p, autonomy: supervised, model: m, reviewers: [{name: Rita Reviewer, email: rita@example.com}]}]
models: [{id: m, provider: x, model: x-1}]
providers: [{id: x, kind: openai_compatible, base_url: "http://127.0.0.1:9", self_hosted: true}]
retention: {audit_log_days: 40, pii_days: {personal: 7, contact: 14}}
"#;
        let options = psf_core::CheckOptions { today: jiff::civil::date(2026, 11, 23) };
        psf_core::load(yaml, &options, &|_| None).unwrap()
    }

    fn record(id: &str, days_ago: i64) -> AuditRecord {
        serde_json::from_value(json!({
            "request_id": id, "ts_ms": NOW - days_ago * DAY_MS, "app": "a", "key_id": "k", "decision_point": "p",
            "status": 200, "outcome": "delivered", "code": null, "model": "m", "provider": "x", "stream": false,
            "latency_ms": 1.0, "overhead_ms": 0.1, "prompt_tokens": 1, "completion_tokens": 1, "attempts": [],
            "stages": [], "input_redacted": [], "output_redacted": "ok",
        }))
        .unwrap()
    }

    fn review(id: &str, days_ago: i64) -> Review {
        let output = "Write to jo.bloggs@example.org about the loan.";
        Review {
            app: Some("a".into()),
            ..Review::pending(id, &format!("req_{id}"), NOW - days_ago * DAY_MS, "p", output)
        }
    }

    #[tokio::test]
    async fn a_sweep_deletes_exactly_what_has_expired_and_anonymises_what_holds_pii() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let pii = PiiDetector::new().unwrap();
        let ids = [("old", 41), ("edge", 40), ("young", 39), ("new", 0)];
        store.insert_audit(&ids.map(|(id, days)| record(id, days))).await.unwrap();
        for (id, days) in [("rev_old", 50), ("rev_week", 8), ("rev_fresh", 1), ("rev_waiting", 60)] {
            store.insert_review(&review(id, days)).await.unwrap();
            if id != "rev_waiting" {
                store.decide_review(id, &ReviewDecision::Approve, "rita@example.com", None, NOW).await.unwrap();
            }
        }
        // 40 days to the millisecond is not yet expired; a millisecond more is.
        let swept = sweep(&store, &manifest(), &pii, NOW + 1).await.unwrap();
        assert_eq!(swept, Swept { audit_records: 2, events: 0, reviews: 1, reviews_anonymised: 1 });
        let left: Vec<String> =
            store.audit_records(&Default::default()).await.unwrap().into_iter().map(|r| r.request_id).collect();
        assert_eq!(left.len(), 2);
        assert!(left.contains(&"young".to_string()) && left.contains(&"new".to_string()));
        // The week-old review is past the 7-day class retention: its texts keep labels only.
        let week = store.review("rev_week").await.unwrap().unwrap();
        assert!(!week.output.contains("jo.bloggs") && week.output.contains("[EMAIL]"), "{}", week.output);
        assert!(!week.final_output.unwrap_or_default().contains("jo.bloggs"));
        let fresh = store.review("rev_fresh").await.unwrap().unwrap();
        assert!(fresh.output.contains("jo.bloggs"), "within retention, untouched");
        assert!(store.review("rev_waiting").await.unwrap().is_some(), "a pending review is never swept");
        // The run is recorded; a second run finds nothing more.
        let runs = store.events(Some("DG-2.retention"), 0, 10).await.unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].detail["swept"]["audit_records"], Value::from(2));
        let again = sweep(&store, &manifest(), &pii, NOW + 2).await.unwrap();
        assert_eq!(again, Swept::default());
    }

    #[tokio::test]
    async fn the_audit_log_is_kept_thirty_days_whatever_the_manifest_says() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let pii = PiiDetector::new().unwrap();
        let mut m = manifest();
        m.retention.audit_log_days = 3;
        store.insert_audit(&[record("a", 29), record("b", 31)]).await.unwrap();
        let swept = sweep(&store, &m, &pii, NOW).await.unwrap();
        assert_eq!(swept.audit_records, 1);
    }
}
