//! What the worker tells the queue, the bucket and its status about each job: heartbeats,
//! job records, releases, dead letters, and the tail of a finished job (outputs, delete),
//! which runs in the background while the engine starts on the next job.

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::job::{JobMessage, JobRecord, JobState, Transcript, WorkerState, job_record_key};
use common::sdk::sqs::types::Message;
use tokio::task::JoinHandle;

use crate::aws::{self, Clients};
use crate::config::WorkerConfig;
use crate::process;
use crate::status::StatusBoard;

/// SQS counts a message's visibility from when it was received, up to 12 hours.
const MAX_VISIBILITY_SECONDS: u64 = 43_200;

/// Aborts a background task when dropped.
#[derive(Debug)]
pub(crate) struct TaskGuard(pub(crate) JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Everything needed to settle a job, cheap to clone into a background task.
#[derive(Debug, Clone)]
pub(crate) struct Ledger {
    pub(crate) config: Arc<WorkerConfig>,
    pub(crate) clients: Clients,
    pub(crate) board: StatusBoard,
    pub(crate) queue_url: Arc<str>,
}

impl Ledger {
    /// Keeps the message with `receipt` hidden until the returned guard is dropped.
    pub(crate) fn hold(&self, receipt: &str) -> TaskGuard {
        let beat = heartbeat(
            self.clients.sqs.clone(),
            self.queue_url.clone(),
            receipt.to_string(),
            self.config.visibility_timeout(),
        );
        TaskGuard(tokio::spawn(beat))
    }

    /// Uploads the outputs of a transcribed job, then deletes its message and records it done;
    /// the heartbeat holds the message until then. A failed upload releases the job for a
    /// retry. An error means the message could not be deleted: the job would run again.
    pub(crate) async fn finish(
        self,
        job: JobMessage,
        receipt: String,
        heartbeat: TaskGuard,
        transcript: Transcript,
    ) -> anyhow::Result<()> {
        let no_speech = transcript.no_speech;
        let outputs = match process::write_outputs(&self.clients, &job, transcript).await {
            Ok(outputs) => outputs,
            Err(e) => {
                drop(heartbeat);
                let why = format!("{e:#}");
                self.release(&job, &receipt, self.config.retry_delay, &why).await;
                return Ok(());
            }
        };
        drop(heartbeat);
        tracing::info!(job = %job.job_id, no_speech, "job done");
        let (deleted, (), ()) = tokio::join!(
            aws::delete(&self.clients.sqs, &self.queue_url, &receipt),
            self.record(&job, JobState::Done, |r| r.outputs = outputs),
            self.board.end_job(&job.job_id, |s| s.jobs_done += 1),
        );
        deleted
    }

    /// Sends a job that can never succeed to the dead-letter queue with `reason`.
    pub(crate) async fn fail(&self, message: &Message, job: Option<&JobMessage>, reason: &str) {
        self.dead_letter(message, reason).await;
        match job {
            Some(job) => {
                let failed = |r: &mut JobRecord| r.error = Some(reason.to_string());
                self.record(job, JobState::Failed, failed).await;
                self.board.end_job(&job.job_id, |s| s.jobs_failed += 1).await;
            }
            None => self.board.update(|s| s.jobs_failed += 1).await,
        }
    }

    /// Puts the message back on the queue after `delay` seconds.
    pub(crate) async fn release(
        &self,
        job: &JobMessage,
        receipt: &str,
        delay: impl IntoSeconds,
        why: &str,
    ) {
        let delay = delay.seconds();
        tracing::warn!(job = %job.job_id, "job released for a retry in {delay} s: {why}");
        if let Err(e) =
            aws::set_visibility(&self.clients.sqs, &self.queue_url, receipt, delay).await
        {
            tracing::warn!("{e:#}");
        }
        self.record(job, JobState::Queued, |r| r.error = Some(why.to_string())).await;
        self.board.end_job(&job.job_id, |_| {}).await;
    }

    /// Puts a message that never started back on the queue at once.
    pub(crate) async fn release_now(&self, receipt: &str) {
        tracing::info!("prefetched job released to the queue");
        if let Err(e) = aws::set_visibility(&self.clients.sqs, &self.queue_url, receipt, 0).await {
            tracing::warn!("{e:#}");
        }
    }

    /// Writes the job's record in `state`.
    pub(crate) async fn record(
        &self,
        job: &JobMessage,
        state: JobState,
        change: impl FnOnce(&mut JobRecord),
    ) {
        let mut record = JobRecord::new(job, state, Some(&self.config.worker_id));
        change(&mut record);
        let key = job_record_key(&job.job_id);
        let bucket = &self.config.settings.bucket;
        if let Err(e) = aws::put_json(&self.clients.s3, bucket, &key, &record).await {
            tracing::warn!("{e:#}");
        }
    }

    /// Shows the job as started, on the status board and in its record.
    pub(crate) async fn announce(&self, job: &JobMessage) {
        tokio::join!(
            self.board.set(WorkerState::Busy, Some(&job.job_id)),
            self.record(job, JobState::Running, |_| {}),
        );
    }

    async fn dead_letter(&self, message: &Message, reason: &str) {
        if let Err(e) = aws::dead_letter(&self.config, &self.clients.sqs, message, reason).await {
            tracing::error!("{e:#}");
        }
    }
}

/// A delay in whole seconds, as SQS takes it.
pub(crate) trait IntoSeconds {
    fn seconds(self) -> u32;
}

impl IntoSeconds for u32 {
    fn seconds(self) -> u32 {
        self
    }
}

impl IntoSeconds for Duration {
    fn seconds(self) -> u32 {
        self.as_secs().min(u64::from(u32::MAX)) as u32
    }
}

/// Keeps the message hidden while its job runs: every half visibility timeout, within the
/// 12-hour cap (C11).
async fn heartbeat(
    sqs: common::sdk::sqs::Client,
    queue_url: Arc<str>,
    receipt: String,
    visibility: u32,
) {
    let received = Instant::now();
    let interval = Duration::from_secs_f64((f64::from(visibility) / 2.0).max(1.0));
    loop {
        tokio::time::sleep(interval).await;
        let left = MAX_VISIBILITY_SECONDS.saturating_sub(received.elapsed().as_secs() + 60);
        let next = u64::from(visibility).min(left) as u32;
        if next == 0 {
            tracing::warn!(
                "the job reached SQS's 12-hour visibility cap; it may be delivered again"
            );
            return;
        }
        match aws::set_visibility(&sqs, &queue_url, &receipt, next).await {
            Ok(()) => tracing::debug!("visibility extended by {next} s"),
            Err(e) => tracing::warn!("{e:#}"),
        }
    }
}
