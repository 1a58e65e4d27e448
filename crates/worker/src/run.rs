//! The worker loop: start the engine, poll, run jobs one at a time, stop cleanly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use common::HintExt;
use common::job::{JobMessage, JobRecord, JobState, WorkerState, WorkerStatus, job_record_key};
use common::sdk::sqs::types::Message;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::aws::{self, Clients};
use crate::config::WorkerConfig;
use crate::engine::{Engine, Request};
use crate::imds::NoticePoller;
use crate::process::{self, Failure, Prepared};
use crate::status::StatusBoard;

/// SQS counts a message's visibility from when it was received, up to 12 hours.
const MAX_VISIBILITY_SECONDS: u64 = 43_200;

/// Why a worker was asked to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// SIGTERM or SIGINT (or a test asking).
    Signal,
    /// The metadata service announced a spot interruption; the notice body.
    SpotInterruption(String),
    /// SIGUSR1 (a rolling update): finish the job in hand, take no new one, then stop.
    Drain,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Signal => f.write_str("stop signal"),
            Self::SpotInterruption(notice) => write!(f, "spot interruption notice {notice}"),
            Self::Drain => f.write_str("drain request"),
        }
    }
}

/// How a worker ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Asked to stop; the in-flight job, if any, was released.
    Stopped(StopReason),
    /// No work for the idle timeout.
    Idle,
}

/// A handle that asks a running worker to stop; clones share the request.
#[derive(Debug, Clone)]
pub struct Shutdown(Arc<watch::Sender<Option<StopReason>>>);

impl Default for Shutdown {
    fn default() -> Self {
        Self(Arc::new(watch::channel(None).0))
    }
}

impl Shutdown {
    /// A handle nobody has pulled yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the worker to stop; the first reason given wins, except that a real stop replaces
    /// a drain request.
    pub fn request(&self, reason: StopReason) {
        self.0.send_if_modified(|current| {
            let replace = match current {
                None => true,
                Some(StopReason::Drain) => reason != StopReason::Drain,
                Some(_) => false,
            };
            if replace {
                *current = Some(reason);
            }
            replace
        });
    }

    /// The reason, once a stop was asked for.
    pub fn reason(&self) -> Option<StopReason> {
        self.0.borrow().clone()
    }

    async fn requested(&self) -> StopReason {
        self.requested_where(|_| true).await
    }

    /// A stop that should interrupt the job in hand: anything but a drain.
    async fn stop_requested(&self) -> StopReason {
        self.requested_where(|r| *r != StopReason::Drain).await
    }

    async fn requested_where(&self, wanted: impl Fn(&StopReason) -> bool) -> StopReason {
        let mut receiver = self.0.subscribe();
        loop {
            if let Some(reason) = receiver.borrow_and_update().clone().filter(|r| wanted(r)) {
                return reason;
            }
            if receiver.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// The engine could not start or failed its self-test: the worker takes no jobs (C29).
#[derive(Debug, thiserror::Error)]
#[error("the engine is not usable: {0}")]
pub struct EngineUnusable(pub String);

/// Aborts a background task when dropped.
struct TaskGuard(JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs a worker until `shutdown` is pulled, a spot notice arrives, or the idle timeout passes.
pub async fn run_worker(config: WorkerConfig, shutdown: Shutdown) -> anyhow::Result<Outcome> {
    let queue_url = config
        .settings
        .queue
        .url
        .clone()
        .context("QUEUE_URL is not set")
        .hint("run step-020-create-sqs-resources, which writes it")?;
    let clients = Clients::new(&config).await;
    let board = StatusBoard::new(
        initial_status(&config),
        clients.s3.clone(),
        config.settings.bucket.clone(),
        config.status_file.clone(),
    );
    board.write().await;

    let engine = match start_engine(&config).await {
        Ok(engine) => engine,
        Err(e) => {
            board
                .update(|s| (s.state, s.reason) = (WorkerState::Failed, Some(format!("{e:#}"))))
                .await;
            return Err(e);
        }
    };
    let gpu = gpu_name(&config.engine.device).await;
    board
        .update(|s| {
            (s.state, s.device, s.gpu) = (WorkerState::Idle, engine.ready.device.clone(), gpu)
        })
        .await;

    let _refresh = TaskGuard(tokio::spawn(refresh_status(board.clone(), config.status_interval)));
    let _notices = config.imds_endpoint.clone().map(|endpoint| {
        TaskGuard(tokio::spawn(watch_notices(endpoint, config.imds_interval, shutdown.clone())))
    });
    let mut worker = Worker {
        config,
        clients,
        board: board.clone(),
        engine: Some(engine),
        shutdown,
        queue_url,
        hf_token: None,
        next: None,
    };
    let result = worker.poll().await;
    worker.release_prefetched().await;
    if let Some(engine) = worker.engine.take() {
        engine.shutdown().await;
    }
    let (state, reason) = match &result {
        Ok(Outcome::Idle) => (WorkerState::Stopped, "idle timeout".to_string()),
        Ok(Outcome::Stopped(reason)) => (WorkerState::Stopped, reason.to_string()),
        Err(e) => (WorkerState::Failed, format!("{e:#}")),
    };
    board.update(|s| (s.state, s.current_job, s.reason) = (state, None, Some(reason))).await;
    result
}

struct Worker {
    config: WorkerConfig,
    clients: Clients,
    board: StatusBoard,
    engine: Option<Engine>,
    shutdown: Shutdown,
    queue_url: String,
    hf_token: Option<String>,
    /// The next job, received and made ready while the engine worked on the one before.
    next: Option<Prefetched>,
}

/// A job received while the engine works on the one before it, its input already downloaded
/// and decoded, so the engine never waits on the network while jobs are queued.
struct Prefetched {
    message: Message,
    /// Keeps the message hidden until its turn comes (C11).
    heartbeat: TaskGuard,
    /// `None` when the body is not a job: `handle` sends it to the DLQ in its turn.
    prepared: Option<Result<Prepared, Failure>>,
}

impl Worker {
    async fn poll(&mut self) -> anyhow::Result<Outcome> {
        let mut last_work = Instant::now();
        let mut failures = 0u32;
        loop {
            if let Some(reason) = self.shutdown.reason() {
                return Ok(Outcome::Stopped(reason));
            }
            if let Some(next) = self.next.take() {
                let message = next.message.clone();
                self.handle(message, Some(next)).await?;
                last_work = Instant::now();
                continue;
            }
            if self.config.idle_timeout.is_some_and(|limit| last_work.elapsed() >= limit) {
                tracing::info!(
                    "no work for {:?}; exiting",
                    self.config.idle_timeout.unwrap_or_default()
                );
                return Ok(Outcome::Idle);
            }
            let received = tokio::select! {
                received = aws::receive(&self.config, &self.clients.sqs, &self.queue_url) => {
                    received
                }
                reason = self.shutdown.requested() => return Ok(Outcome::Stopped(reason)),
            };
            match received {
                Ok(Some(message)) => {
                    failures = 0;
                    self.handle(message, None).await?;
                    last_work = Instant::now();
                }
                Ok(None) => failures = 0,
                Err(e) => {
                    failures += 1;
                    let pause = backoff(failures);
                    tracing::warn!("{e:#}; polling again in {pause:?}");
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        reason = self.shutdown.requested() => return Ok(Outcome::Stopped(reason)),
                    }
                }
            }
        }
    }

    async fn handle(&mut self, message: Message, ready: Option<Prefetched>) -> anyhow::Result<()> {
        let body = message.body().unwrap_or_default();
        let job = match JobMessage::parse(body) {
            Ok(job) => job,
            Err(invalid) => {
                let id = message.message_id().unwrap_or("?");
                let preview: String = body.chars().take(200).collect();
                tracing::warn!(message_id = id, body = %preview, "not a job: {invalid}");
                self.dead_letter(&message, &format!("not a job: {invalid}")).await;
                self.board.update(|s| s.jobs_failed += 1).await;
                return Ok(());
            }
        };
        let receipt = message.receipt_handle().unwrap_or_default().to_string();
        let prefetched = ready.is_some();
        tracing::info!(job = %job.job_id, input = %job.s3_input_path, prefetched, "job started");
        let (_heartbeat, prepared) = match ready {
            Some(Prefetched { heartbeat, prepared, .. }) => (heartbeat, prepared),
            None => {
                let beat = heartbeat(
                    self.clients.sqs.clone(),
                    self.queue_url.clone(),
                    receipt.clone(),
                    self.config.visibility_timeout(),
                );
                (TaskGuard(tokio::spawn(beat)), None)
            }
        };
        let token = match self.hf_token_for(&job).await {
            Ok(token) => token,
            Err(e) => {
                return self
                    .release(&job, &receipt, self.config.retry_delay, &format!("{e:#}"))
                    .await;
            }
        };
        let Some(engine) = self.engine.as_mut() else { anyhow::bail!("the engine is not running") };
        let (config, clients, board, shutdown) =
            (&self.config, &self.clients, &self.board, &self.shutdown);
        let announce = async {
            tokio::join!(
                board.set(WorkerState::Busy, Some(&job.job_id)),
                record(config, clients, &job, JobState::Running, |_| {}),
            );
        };
        // Once this job's input is ready, the next one is received and made ready while the
        // engine works on this one.
        let (input_ready, next_may_start) = tokio::sync::oneshot::channel::<()>();
        let work = async {
            let prepared = match prepared {
                Some(prepared) => prepared,
                None => process::prepare(config, clients, &job).await,
            };
            let _ = input_ready.send(());
            match prepared {
                Ok(prepared) => {
                    process::transcribe(config, clients, engine, &job, prepared, token.as_deref())
                        .await
                }
                Err(failure) => Err(failure),
            }
        };
        let in_hand = std::sync::Mutex::new(None);
        let next = async {
            if next_may_start.await.is_err() || shutdown.reason().is_some() {
                return None;
            }
            prefetch(config, clients, &self.queue_url, &in_hand).await
        };
        let result = tokio::select! {
            (result, next, ()) = async { tokio::join!(work, next, announce) } => {
                self.next = next;
                result
            }
            reason = self.shutdown.stop_requested() => {
                // The engine is mid-request: stop it rather than wait; the job goes back at once,
                // and so does a next job already received.
                self.engine = None;
                let prefetched = in_hand.lock().ok().and_then(|mut receipt| receipt.take());
                if let Some(prefetched) = prefetched {
                    self.release_now(&prefetched).await;
                }
                return self.release(&job, &receipt, 0, &format!("released on {reason}")).await;
            }
        };
        drop(_heartbeat);
        match result {
            Ok(done) => {
                tracing::info!(job = %job.job_id, no_speech = done.no_speech, "job done");
                let (deleted, (), ()) = tokio::join!(
                    aws::delete(&self.clients.sqs, &self.queue_url, &receipt),
                    self.record(&job, JobState::Done, |r| r.outputs = done.outputs),
                    self.board.update(|s| {
                        (s.jobs_done, s.state, s.current_job) =
                            (s.jobs_done + 1, WorkerState::Idle, None)
                    }),
                );
                deleted?;
            }
            Err(Failure::Permanent(reason)) => {
                tracing::warn!(job = %job.job_id, "job failed permanently: {reason}");
                self.dead_letter(&message, &reason).await;
                self.record(&job, JobState::Failed, |r| r.error = Some(reason)).await;
                self.board
                    .update(|s| {
                        (s.jobs_failed, s.state, s.current_job) =
                            (s.jobs_failed + 1, WorkerState::Idle, None)
                    })
                    .await;
            }
            Err(Failure::Transient(e)) => {
                self.release(&job, &receipt, self.config.retry_delay, &format!("{e:#}")).await?;
            }
            Err(Failure::EngineCrashed(how)) => {
                tracing::error!(job = %job.job_id, "worker runtime crashed ({how}); job released");
                self.engine = None;
                self.release(&job, &receipt, 0, &format!("the engine crashed ({how})")).await?;
                let engine = start_engine(&self.config).await?;
                tracing::info!("engine restarted");
                self.engine = Some(engine);
            }
        }
        Ok(())
    }

    /// Puts the message back on the queue after `delay` seconds.
    async fn release(
        &self,
        job: &JobMessage,
        receipt: &str,
        delay: impl IntoSeconds,
        why: &str,
    ) -> anyhow::Result<()> {
        let delay = delay.seconds();
        tracing::warn!(job = %job.job_id, "job released for a retry in {delay} s: {why}");
        if let Err(e) =
            aws::set_visibility(&self.clients.sqs, &self.queue_url, receipt, delay).await
        {
            tracing::warn!("{e:#}");
        }
        self.record(job, JobState::Queued, |r| r.error = Some(why.to_string())).await;
        self.board.set(WorkerState::Idle, None).await;
        Ok(())
    }

    async fn dead_letter(&self, message: &Message, reason: &str) {
        if let Err(e) = aws::dead_letter(&self.config, &self.clients.sqs, message, reason).await {
            tracing::error!("{e:#}");
        }
    }

    async fn record(&self, job: &JobMessage, state: JobState, change: impl FnOnce(&mut JobRecord)) {
        record(&self.config, &self.clients, job, state, change).await;
    }

    /// Puts a prefetched job back on the queue at once: it never started.
    async fn release_prefetched(&mut self) {
        if let Some(next) = self.next.take() {
            drop(next.heartbeat);
            self.release_now(next.message.receipt_handle().unwrap_or_default()).await;
        }
    }

    async fn release_now(&self, receipt: &str) {
        tracing::info!("prefetched job released to the queue");
        if let Err(e) = aws::set_visibility(&self.clients.sqs, &self.queue_url, receipt, 0).await {
            tracing::warn!("{e:#}");
        }
    }

    /// The Hugging Face token when the job diarizes: from the settings, else from SSM (cached).
    async fn hf_token_for(&mut self, job: &JobMessage) -> anyhow::Result<Option<String>> {
        let worker = &self.config.settings.worker;
        if !(job.diarize || worker.diarize) {
            return Ok(None);
        }
        if !worker.hf_token.is_empty() {
            return Ok(Some(worker.hf_token.expose().to_string()));
        }
        if self.hf_token.is_none()
            && let Some(parameter) = &worker.hf_token_parameter
        {
            self.hf_token = Some(aws::hf_token_from_ssm(&self.clients.ssm, parameter).await?);
        }
        Ok(self.hf_token.clone())
    }
}

/// Writes the job's record in `state`.
async fn record(
    config: &WorkerConfig,
    clients: &Clients,
    job: &JobMessage,
    state: JobState,
    change: impl FnOnce(&mut JobRecord),
) {
    let mut record = JobRecord::new(job, state, Some(&config.worker_id));
    change(&mut record);
    let key = job_record_key(&job.job_id);
    if let Err(e) = aws::put_json(&clients.s3, &config.settings.bucket, &key, &record).await {
        tracing::warn!("{e:#}");
    }
}

/// Receives the next job only if one is waiting now (no long poll), keeps it hidden with its
/// own heartbeat, and downloads, probes and decodes it. Its receipt goes into `in_hand` as
/// soon as it is received, so a stop mid-way can release it.
async fn prefetch(
    config: &WorkerConfig,
    clients: &Clients,
    queue_url: &str,
    in_hand: &std::sync::Mutex<Option<String>>,
) -> Option<Prefetched> {
    let message = match aws::receive_within(config, &clients.sqs, queue_url, 0).await {
        Ok(message) => message?,
        Err(e) => {
            tracing::debug!("no prefetch: {e:#}");
            return None;
        }
    };
    let receipt = message.receipt_handle().unwrap_or_default().to_string();
    if let Ok(mut slot) = in_hand.lock() {
        *slot = Some(receipt.clone());
    }
    let beat =
        heartbeat(clients.sqs.clone(), queue_url.to_string(), receipt, config.visibility_timeout());
    let heartbeat = TaskGuard(tokio::spawn(beat));
    let prepared = match JobMessage::parse(message.body().unwrap_or_default()) {
        Ok(job) => Some(process::prepare(config, clients, &job).await),
        Err(_) => None,
    };
    Some(Prefetched { message, heartbeat, prepared })
}

trait IntoSeconds {
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

/// Starts the engine and transcribes a generated clip; either failing is [`EngineUnusable`].
async fn start_engine(config: &WorkerConfig) -> anyhow::Result<Engine> {
    let command = &config.engine;
    let (backend, model, device) = (&command.backend, &command.model, &command.device);
    tracing::info!(%backend, %model, %device, "starting the engine");
    let mut engine = Engine::start(command).await.map_err(|e| EngineUnusable(e.to_string()))?;
    let clip = tempfile::Builder::new()
        .prefix("self-test-")
        .suffix(".wav")
        .tempfile_in(&config.work_dir)
        .context("failed to make the self-test clip")?;
    crate::audio::write_self_test_clip(clip.path())
        .context("failed to write the self-test clip")?;
    let request = Request {
        id: "self-test",
        audio: clip.path(),
        language: Some("en"),
        word_timestamps: false,
        diarize: false,
        hf_token: None,
    };
    let started = Instant::now();
    match tokio::time::timeout(Duration::from_secs(600), engine.transcribe(&request)).await {
        Ok(Ok(_)) => {
            tracing::info!("engine self-test passed in {:.1} s", started.elapsed().as_secs_f64());
            Ok(engine)
        }
        Ok(Err(e)) => Err(EngineUnusable(format!("self-test failed: {e}")).into()),
        Err(_) => Err(EngineUnusable("self-test took longer than 10 minutes".to_string()).into()),
    }
}

fn initial_status(config: &WorkerConfig) -> WorkerStatus {
    let now = Utc::now();
    WorkerStatus {
        worker_id: config.worker_id.clone(),
        state: WorkerState::Starting,
        current_job: None,
        jobs_done: 0,
        jobs_failed: 0,
        started_at: now,
        last_seen: now,
        engine: config.engine.backend.clone(),
        model: config.engine.model.clone(),
        device: config.engine.device.clone(),
        gpu: None,
        version: config.version.clone(),
        host: std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()),
        reason: None,
    }
}

async fn gpu_name(device: &str) -> Option<String> {
    if device != "cuda" {
        return None;
    }
    let output = tokio::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name", "--format=csv,noheader"])
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines().next().map(|l| l.trim().to_string()).filter(|l| !l.is_empty())
}

/// Keeps the message hidden while its job runs: every half visibility timeout, within the
/// 12-hour cap (C11).
async fn heartbeat(
    sqs: common::sdk::sqs::Client,
    queue_url: String,
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

async fn refresh_status(board: StatusBoard, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        board.write().await;
    }
}

async fn watch_notices(endpoint: String, every: Duration, shutdown: Shutdown) {
    let mut poller = NoticePoller::new(&endpoint);
    loop {
        match poller.check().await {
            Ok(Some(notice)) => {
                tracing::warn!("spot interruption notice: {notice}");
                shutdown.request(StopReason::SpotInterruption(notice.trim().to_string()));
                return;
            }
            Ok(None) => {}
            Err(e) => tracing::debug!("instance metadata: {e}"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = shutdown.requested() => return,
        }
    }
}

/// 1, 2, 4 … 30 s, with up to a quarter of jitter so workers do not poll in step.
fn backoff(failures: u32) -> Duration {
    let base = 2f64.powi(failures.saturating_sub(1).min(5) as i32).min(30.0);
    let jitter = f64::from(uuid::Uuid::new_v4().as_bytes()[0]) / 255.0 * base / 4.0;
    Duration::from_secs_f64(base + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_drain_does_not_interrupt_the_job_in_hand_but_a_later_stop_does() {
        let shutdown = Shutdown::new();
        shutdown.request(StopReason::Drain);
        assert_eq!(shutdown.requested().await, StopReason::Drain);
        let in_hand = tokio::time::timeout(Duration::from_millis(50), shutdown.stop_requested());
        assert!(in_hand.await.is_err(), "a drain must let the job in hand finish");
        shutdown.request(StopReason::Signal);
        assert_eq!(shutdown.stop_requested().await, StopReason::Signal);
        shutdown.request(StopReason::Drain);
        assert_eq!(shutdown.reason(), Some(StopReason::Signal));
    }
}
