//! What people do to a running gateway, for the admin API and the console alike: each
//! operation checks and records through [`crate::oversight`], then brings this gateway
//! (and, in a cluster, the others) up to date at once.

use psf_core::Manifest;
use psf_store::{Erasure, Incident, NewIncident, Remaining, Review, ReviewDecision, Store};
use serde_json::Value;

use crate::oversight::{self, OversightError};
use crate::state::Gateway;

impl Gateway {
    /// The manifest served.
    pub fn manifest(&self) -> &Manifest {
        &self.compiled.manifest
    }

    /// The store the gateway writes.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The PII detector the gateway redacts with, for text shown to people.
    pub fn pii(&self) -> &psf_detect::PiiDetector {
        &self.compiled.pii
    }

    /// The alerts firing now (rule, decision point, metric, severity, value, baseline).
    pub fn alerts_firing(&self) -> Vec<Value> {
        self.alerts.firing()
    }

    /// Decides a pending review as `reviewer` (HO-2); the client collects the answer on
    /// its next poll.
    pub async fn decide_review(
        &self,
        id: &str,
        decision: &ReviewDecision,
        reviewer: &str,
        note: Option<&str>,
    ) -> Result<Review, OversightError> {
        oversight::decide(&self.store, self.manifest(), &self.compiled.pii, id, decision, reviewer, note).await
    }

    /// Declares an incident (IR-2): in force here at once, on every instance sharing the
    /// store within a second, and pushed through Redis in a cluster.
    pub async fn declare_incident(&self, new: &NewIncident) -> Result<Incident, OversightError> {
        let incident = oversight::declare(&self.store, self.manifest(), &self.compiled.pii, new).await?;
        self.incidents_changed(&incident.id).await;
        Ok(incident)
    }

    /// Resolves an incident in force, lifting it everywhere.
    pub async fn resolve_incident(&self, id: &str, by: &str, resolution: &str) -> Result<Incident, OversightError> {
        let incident = oversight::resolve(&self.store, &self.compiled.pii, id, by, resolution).await?;
        self.incidents_changed(&incident.id).await;
        Ok(incident)
    }

    /// Erases a subject (DG-3) and verifies that nothing of it remains.
    pub async fn erase_subject(&self, subject: &str, by: &str) -> Result<(Erasure, Remaining), OversightError> {
        oversight::erase(&self.store, subject, by).await
    }

    async fn incidents_changed(&self, id: &str) {
        if let Err(e) = self.reload_incidents().await {
            tracing::error!(error = %e, "could not reload incidents after a change");
        }
        if let Some(c) = &self.cluster {
            c.announce_incidents(id).await;
        }
    }
}
