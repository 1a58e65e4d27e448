//! The worker loop: start the engine, poll, run jobs one at a time, stop cleanly.
//!
//! Jobs overlap only where the engine is not involved: while the engine transcribes job k,
//! job k+1 is received and its input made ready, and job k-1's outputs go up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use common::RequireSetting;
use common::job::{JobMessage, WorkerState, WorkerStatus};
use common::sdk::sqs::types::Message;
use tokio::task::JoinHandle;

use crate::aws::{self, Clients};
use crate::config::WorkerConfig;
use crate::engine::{Engine, Request};
use crate::imds::NoticePoller;
use crate::ledger::{Ledger, TaskGuard};
use crate::process::{self, Failure, Prepared};
use crate::shutdown::{Shutdown, StopReason};
use crate::status::StatusBoard;

/// How a worker ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Asked to stop; the in-flight job, if any, was released.
    Stopped(StopReason),
    /// No work for the idle timeout.
    Idle,
}

/// The engine could not start or failed its self-test: the worker takes no jobs (C29).
#[derive(Debug, thiserror::Error)]
#[error("the engine is not usable: {0}")]
pub struct EngineUnusable(pub String);

/// Runs a worker until `shutdown` is pulled, a spot notice arrives, or the idle timeout passes.
pub async fn run_worker(config: WorkerConfig, shutdown: Shutdown) -> anyhow::Result<Outcome> {
    let queue_url = config.settings.queue.url.clone().require("QUEUE_URL")?;
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
    let ledger = Ledger {
        config: Arc::new(config),
        clients,
        board: board.clone(),
        queue_url: queue_url.into(),
    };
    let mut worker = Worker {
        ledger,
        engine: Some(engine),
        shutdown,
        hf_token: None,
        next: None,
        finishing: None,
    };
    let polled = worker.poll().await;
    worker.release_prefetched().await;
    if let Some(engine) = worker.engine.take() {
        engine.shutdown().await;
    }
    let settled = worker.settle().await;
    let result = settled.and(polled);
    let (state, reason) = match &result {
        Ok(Outcome::Idle) => (WorkerState::Stopped, "idle timeout".to_string()),
        Ok(Outcome::Stopped(reason)) => (WorkerState::Stopped, reason.to_string()),
        Err(e) => (WorkerState::Failed, format!("{e:#}")),
    };
    board.update(|s| (s.state, s.current_job, s.reason) = (state, None, Some(reason))).await;
    result
}

struct Worker {
    ledger: Ledger,
    engine: Option<Engine>,
    shutdown: Shutdown,
    hf_token: Option<String>,
    /// The next job, received and made ready while the engine worked on the one before.
    next: Option<Prefetched>,
    /// The last transcribed job's outputs and message delete, running in the background.
    finishing: Option<JoinHandle<anyhow::Result<()>>>,
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
            let config = &self.ledger.config;
            if config.idle_timeout.is_some_and(|limit| last_work.elapsed() >= limit) {
                tracing::info!(
                    "no work for {:?}; exiting",
                    config.idle_timeout.unwrap_or_default()
                );
                return Ok(Outcome::Idle);
            }
            let (sqs, queue_url) = (&self.ledger.clients.sqs, &self.ledger.queue_url);
            let received = tokio::select! {
                received = aws::receive(config, sqs, queue_url) => received,
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
                self.ledger.fail(&message, None, &format!("not a job: {invalid}")).await;
                return Ok(());
            }
        };
        let receipt = message.receipt_handle().unwrap_or_default().to_string();
        let prefetched = ready.is_some();
        tracing::info!(job = %job.job_id, input = %job.s3_input_path, prefetched, "job started");
        let (heartbeat, prepared) = match ready {
            Some(Prefetched { heartbeat, prepared, .. }) => (heartbeat, prepared),
            None => (self.ledger.hold(&receipt), None),
        };
        let token = match self.hf_token_for(&job).await {
            Ok(token) => token,
            Err(e) => {
                drop(heartbeat);
                let why = format!("{e:#}");
                self.ledger.release(&job, &receipt, self.ledger.config.retry_delay, &why).await;
                return Ok(());
            }
        };
        let Some(engine) = self.engine.as_mut() else { anyhow::bail!("the engine is not running") };
        let (ledger, shutdown) = (&self.ledger, &self.shutdown);
        let (config, clients) = (&*ledger.config, &ledger.clients);
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
                    process::transcribe(config, engine, &job, prepared, token.as_deref()).await
                }
                Err(failure) => Err(failure),
            }
        };
        let in_hand = std::sync::Mutex::new(None);
        let next = async {
            if next_may_start.await.is_err() || shutdown.reason().is_some() {
                return None;
            }
            prefetch(ledger, &in_hand).await
        };
        let result = tokio::select! {
            (result, next, ()) = async { tokio::join!(work, next, ledger.announce(&job)) } => {
                self.next = next;
                result
            }
            reason = self.shutdown.stop_requested() => {
                // The engine is mid-request: stop it rather than wait; the job goes back at once,
                // and so does a next job already received.
                self.engine = None;
                let prefetched = in_hand.lock().ok().and_then(|mut receipt| receipt.take());
                if let Some(prefetched) = prefetched {
                    self.ledger.release_now(&prefetched).await;
                }
                drop(heartbeat);
                self.ledger.release(&job, &receipt, 0, &format!("released on {reason}")).await;
                return Ok(());
            }
        };
        let failure = match result {
            Ok(transcript) => {
                // The engine is free: the outputs go up while it starts on the next job.
                self.settle().await?;
                let tail = self.ledger.clone().finish(job, receipt, heartbeat, transcript);
                self.finishing = Some(tokio::spawn(tail));
                return Ok(());
            }
            Err(failure) => failure,
        };
        drop(heartbeat);
        match failure {
            Failure::Permanent(reason) => {
                tracing::warn!(job = %job.job_id, "job failed permanently: {reason}");
                self.ledger.fail(&message, Some(&job), &reason).await;
            }
            Failure::Transient(e) => {
                let delay = self.ledger.config.retry_delay;
                self.ledger.release(&job, &receipt, delay, &format!("{e:#}")).await;
            }
            Failure::EngineCrashed(how) => {
                tracing::error!(job = %job.job_id, "worker runtime crashed ({how}); job released");
                self.engine = None;
                let why = format!("the engine crashed ({how})");
                self.ledger.release(&job, &receipt, 0, &why).await;
                let engine = start_engine(&self.ledger.config).await?;
                tracing::info!("engine restarted");
                self.engine = Some(engine);
            }
        }
        Ok(())
    }

    /// Waits for the last transcribed job's outputs and message delete, normally long done.
    async fn settle(&mut self) -> anyhow::Result<()> {
        match self.finishing.take() {
            Some(finishing) => {
                finishing.await.map_err(|e| anyhow::anyhow!("finishing a job stopped: {e}"))?
            }
            None => Ok(()),
        }
    }

    /// Puts a prefetched job back on the queue at once: it never started.
    async fn release_prefetched(&mut self) {
        if let Some(next) = self.next.take() {
            drop(next.heartbeat);
            self.ledger.release_now(next.message.receipt_handle().unwrap_or_default()).await;
        }
    }

    /// The Hugging Face token when the job diarizes: from the settings, else from SSM (cached).
    async fn hf_token_for(&mut self, job: &JobMessage) -> anyhow::Result<Option<String>> {
        let worker = &self.ledger.config.settings.worker;
        if !(job.diarize || worker.diarize) {
            return Ok(None);
        }
        if !worker.hf_token.is_empty() {
            return Ok(Some(worker.hf_token.expose().to_string()));
        }
        if self.hf_token.is_none()
            && let Some(parameter) = &worker.hf_token_parameter
        {
            let ssm = &self.ledger.clients.ssm;
            self.hf_token = Some(aws::hf_token_from_ssm(ssm, parameter).await?);
        }
        Ok(self.hf_token.clone())
    }
}

/// Receives the next job only if one is waiting now (no long poll), keeps it hidden with its
/// own heartbeat, and downloads, probes and decodes it. Its receipt goes into `in_hand` as
/// soon as it is received, so a stop mid-way can release it.
async fn prefetch(
    ledger: &Ledger,
    in_hand: &std::sync::Mutex<Option<String>>,
) -> Option<Prefetched> {
    let (config, clients) = (&*ledger.config, &ledger.clients);
    let message = match aws::receive_within(config, &clients.sqs, &ledger.queue_url, 0).await {
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
    let heartbeat = ledger.hold(&receipt);
    let prepared = match JobMessage::parse(message.body().unwrap_or_default()) {
        Ok(job) => Some(process::prepare(config, clients, &job).await),
        Err(_) => None,
    };
    Some(Prefetched { message, heartbeat, prepared })
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
