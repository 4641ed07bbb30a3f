//! The audit writer (IG-3, OB-5): records leave the request path through a bounded
//! queue and are written in batches, one transaction each. A full queue makes the
//! request wait (back pressure) rather than drop a record; shutdown drains the queue.

use std::time::Duration;

use psf_store::{AuditRecord, Store};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const BATCH: usize = 256;

/// Where requests send their records. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditSender {
    tx: mpsc::Sender<AuditRecord>,
}

/// The writer task; `finish` waits until every queued record is written.
#[derive(Debug)]
pub struct AuditWriter {
    task: JoinHandle<u64>,
    close: tokio::sync::oneshot::Sender<()>,
}

impl AuditSender {
    /// Queues a record, waiting while the queue is full.
    pub async fn send(&self, record: AuditRecord) {
        if self.tx.send(record).await.is_err() {
            tracing::error!("the audit writer has stopped; a record could not be queued");
        }
    }

    /// Queues a record from a place that cannot wait (a stream dropped by its client):
    /// at once if there is room, else from a task of its own.
    pub fn send_detached(&self, record: AuditRecord) {
        if let Err(mpsc::error::TrySendError::Full(record)) = self.tx.try_send(record) {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(record).await;
            });
        }
    }

    /// Records waiting to be written.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// Starts the writer.
pub fn start(store: Store, capacity: usize) -> (AuditSender, AuditWriter) {
    let (tx, mut rx) = mpsc::channel::<AuditRecord>(capacity.max(1));
    let (close, mut closed) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut written = 0u64;
        let mut batch = Vec::with_capacity(BATCH);
        let mut closing = false;
        loop {
            let n = if closing {
                rx.recv_many(&mut batch, BATCH).await
            } else {
                tokio::select! {
                    n = rx.recv_many(&mut batch, BATCH) => n,
                    _ = &mut closed => {
                        // No new records from here; what is queued is still written.
                        rx.close();
                        closing = true;
                        continue;
                    }
                }
            };
            if n == 0 {
                break;
            }
            write(&store, &batch).await;
            written += batch.len() as u64;
            batch.clear();
        }
        written
    });
    (AuditSender { tx }, AuditWriter { task, close })
}

/// Writes a batch, retrying a failing store with back-off: records are never dropped
/// while the gateway runs, and a failure is logged every time.
async fn write(store: &Store, batch: &[psf_store::AuditRecord]) {
    let mut delay = Duration::from_millis(50);
    for attempt in 1.. {
        match store.insert_audit(batch).await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, attempt, records = batch.len(), "audit write failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

impl AuditWriter {
    /// Stops taking records, writes every queued one, and returns how many it wrote in
    /// all. Call after the server has drained its requests.
    pub async fn finish(self) -> u64 {
        let _ = self.close.send(());
        self.task.await.unwrap_or(0)
    }
}
