//! The worker's status object at `status/workers/<worker id>.json`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use common::job::{WorkerState, WorkerStatus, worker_status_key};
use common::sdk::s3;

/// The shared status; written on every change of state and refreshed by a timer.
#[derive(Debug, Clone)]
pub struct StatusBoard {
    status: Arc<Mutex<WorkerStatus>>,
    s3: s3::Client,
    bucket: String,
    file: Option<PathBuf>,
}

impl StatusBoard {
    /// A board for `status`, written to `bucket` and, when given, to the local `file`.
    pub fn new(
        status: WorkerStatus,
        s3: s3::Client,
        bucket: String,
        file: Option<PathBuf>,
    ) -> Self {
        Self { status: Arc::new(Mutex::new(status)), s3, bucket, file }
    }

    /// Changes the status with `change`, then writes it.
    pub async fn update(&self, change: impl FnOnce(&mut WorkerStatus)) {
        if let Ok(mut status) = self.status.lock() {
            change(&mut status);
        }
        self.write().await;
    }

    /// Sets the state and current job, then writes.
    pub async fn set(&self, state: WorkerState, job: Option<&str>) {
        self.update(|s| {
            s.state = state;
            s.current_job = job.map(str::to_string);
        })
        .await;
    }

    /// Counts a job that ended with `count` and shows the worker idle, unless the next job
    /// has started meanwhile (a finished job's outputs go up while the engine works on the
    /// next one).
    pub async fn end_job(&self, job_id: &str, count: impl FnOnce(&mut WorkerStatus)) {
        self.update(|s| {
            count(s);
            if s.current_job.as_deref() == Some(job_id) {
                (s.state, s.current_job) = (WorkerState::Idle, None);
            }
        })
        .await;
    }

    /// Writes the status with a fresh `last_seen`. A failed write is logged, never fatal.
    pub async fn write(&self) {
        let Some(snapshot) = self.status.lock().ok().map(|mut s| {
            s.last_seen = Utc::now();
            s.clone()
        }) else {
            return;
        };
        if let Some(file) = &self.file {
            write_local(file, &snapshot);
        }
        let key = worker_status_key(&snapshot.worker_id);
        if let Err(e) = crate::aws::put_json(&self.s3, &self.bucket, &key, &snapshot).await {
            tracing::warn!("{e:#}");
        }
    }
}

/// Replaces `file` with `status` through a temporary file and a rename, so a reader never
/// sees half a document. A failure is logged: the S3 copy is the one that counts.
fn write_local(file: &std::path::Path, status: &WorkerStatus) {
    let text = match serde_json::to_string(status) {
        Ok(text) => text,
        Err(e) => return tracing::warn!("cannot encode the worker status: {e}"),
    };
    let tmp = file.with_extension("json.tmp");
    let result = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, file));
    if let Err(e) = result {
        tracing::warn!("failed to write the status file `{}`: {e}", file.display());
    }
}
