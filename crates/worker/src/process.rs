//! One job: input, decode ([`prepare`]), then engine and outputs ([`transcribe`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::Utc;
use common::job::{JobMessage, OutputFormat, Transcript};

use crate::audio;
use crate::aws::{self, Clients, InputError};
use crate::config::WorkerConfig;
use crate::engine::{Engine, EngineError, Request};

/// How a job ended, when it did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// Will never succeed: to the dead-letter queue with this reason.
    Permanent(String),
    /// May succeed later: release the message after the retry delay.
    Transient(anyhow::Error),
    /// The engine process died: release at once and restart it.
    EngineCrashed(String),
}

/// A job's input downloaded, probed and decoded: all the engine needs, in a scratch folder
/// removed when this is dropped.
#[derive(Debug)]
pub struct Prepared {
    scratch: tempfile::TempDir,
    wav: PathBuf,
    decoded: f64,
    timings: BTreeMap<String, Option<f64>>,
    warnings: Vec<String>,
}

/// Everything before the engine: head, download, probe, decode (skipped when the input
/// already is 16 kHz mono PCM WAV). Needs no engine, so the worker runs it for the next job
/// while the engine works on the current one.
pub async fn prepare(
    config: &WorkerConfig,
    clients: &Clients,
    job: &JobMessage,
) -> Result<Prepared, Failure> {
    let mut timings = BTreeMap::new();
    let mut warnings = Vec::new();
    let input = &job.s3_input_path;

    let size = aws::head_input(&clients.s3, input).await.map_err(|e| match e {
        InputError::Permanent(reason) => Failure::Permanent(reason),
        InputError::Transient(error) => Failure::Transient(error),
    })?;
    let scratch = tempfile::Builder::new()
        .prefix("transcription-job-")
        .tempdir_in(&config.work_dir)
        .map_err(|e| Failure::Transient(anyhow::anyhow!("failed to make a scratch folder: {e}")))?;
    ensure_space(scratch.path(), size).await?;

    let started = Instant::now();
    let local = scratch.path().join("input");
    aws::download(&clients.s3, input, &local).await.map_err(Failure::Transient)?;
    timings.insert("download".to_string(), Some(secs(started)));

    let started = Instant::now();
    if let Some(seconds) = audio::engine_ready_seconds(&local).await {
        // Already what the engine reads: no probe, no second copy.
        timings.insert("probe".to_string(), Some(secs(started)));
        timings.insert("decode".to_string(), Some(0.0));
        tracing::debug!(job = %job.job_id, "input is 16 kHz mono PCM WAV; decode skipped");
        return Ok(Prepared { scratch, wav: local, decoded: seconds, timings, warnings });
    }
    let probe = audio::probe(&local).await.map_err(|why| cannot_decode(&why))?;
    timings.insert("probe".to_string(), Some(secs(started)));
    let started = Instant::now();
    let wav = scratch.path().join("audio-16k-mono.wav");
    let decoded = audio::decode(&local, &wav)
        .await
        .map_err(|why| cannot_decode(&format!("{why}; {}", probe.summary())))?;
    timings.insert("decode".to_string(), Some(secs(started)));
    if decoded <= 0.0 {
        return Err(cannot_decode(&format!("decoded audio is empty; {}", probe.summary())));
    }
    if let Some(claimed) = probe.duration.filter(|c| *c > decoded + 1.0 && decoded < c * 0.95) {
        let warning = format!(
            "input looks truncated: decoded {decoded:.1} s of the {claimed:.1} s the container claims"
        );
        tracing::warn!(job = %job.job_id, "{warning}");
        warnings.push(warning);
    }
    // The original is no longer needed; only the decoded copy waits for the engine.
    let _ = tokio::fs::remove_file(&local).await;
    Ok(Prepared { scratch, wav, decoded, timings, warnings })
}

/// The engine's transcript of a [`prepare`]d job; [`write_outputs`] stores it.
pub async fn transcribe(
    config: &WorkerConfig,
    engine: &mut Engine,
    job: &JobMessage,
    prepared: Prepared,
    hf_token: Option<&str>,
) -> Result<Transcript, Failure> {
    let Prepared { scratch, wav, decoded, mut timings, warnings } = prepared;
    let input = &job.s3_input_path;
    let language = job.language.as_deref().or(config.settings.worker.language.as_deref());
    let diarize = job.diarize || config.settings.worker.diarize;
    let request = Request {
        id: &job.job_id,
        audio: &wav,
        language,
        word_timestamps: true,
        diarize,
        hf_token: if diarize { hf_token } else { None },
    };
    let started = Instant::now();
    let reply = engine.transcribe(&request).await.map_err(engine_failure)?;
    timings.insert("engine_call".to_string(), Some(secs(started)));
    timings.extend(reply.timings.iter().map(|(k, v)| (k.clone(), *v)));
    drop(scratch);

    let segments: Vec<_> =
        reply.segments.into_iter().filter(|s| !s.text.trim().is_empty()).collect();
    Ok(Transcript {
        job_id: job.job_id.clone(),
        input: input.to_string(),
        language: reply.language,
        duration_seconds: reply.duration.unwrap_or(decoded),
        no_speech: reply.no_speech || segments.is_empty(),
        segments,
        timings,
        model: config.engine.model.clone(),
        engine: if reply.backend.is_empty() {
            config.engine.backend.clone()
        } else {
            reply.backend
        },
        worker_id: config.worker_id.clone(),
        worker_version: crate::VERSION.to_string(),
        created_at: Utc::now(),
        warnings,
    })
}

/// Writes every requested format; JSON last, with the upload time, so its presence means done.
pub async fn write_outputs(
    clients: &Clients,
    job: &JobMessage,
    mut transcript: Transcript,
) -> anyhow::Result<Vec<String>> {
    let started = Instant::now();
    let mut uploads = tokio::task::JoinSet::new();
    let formats = job.formats().into_iter().filter(|f| *f != OutputFormat::Json);
    for (index, format) in formats.enumerate() {
        let (s3, target) = (clients.s3.clone(), job.output(format));
        let body = transcript.render(format).into_bytes();
        uploads.spawn(async move {
            let put = aws::put(&s3, &target, body, format.content_type()).await;
            put.map(|()| (index, target.to_string()))
        });
    }
    // The other formats go up together; JSON waits for all of them.
    let mut outputs = Vec::new();
    while let Some(done) = uploads.join_next().await {
        outputs.push(done.map_err(|e| anyhow::anyhow!("an output upload stopped: {e}"))??);
    }
    outputs.sort();
    let mut outputs: Vec<String> = outputs.into_iter().map(|(_, target)| target).collect();
    transcript.timings.insert("upload".to_string(), Some(secs(started)));
    let target = job.output(OutputFormat::Json);
    let json = transcript.render(OutputFormat::Json).into_bytes();
    aws::put(&clients.s3, &target, json, OutputFormat::Json.content_type()).await?;
    outputs.insert(0, target.to_string());
    Ok(outputs)
}

async fn ensure_space(dir: &Path, size: u64) -> Result<(), Failure> {
    // The download plus its decoded copy (16 kHz 16-bit mono is ~1.9 MB per minute).
    let needed = size.saturating_mul(2).saturating_add(256 * 1024 * 1024);
    match audio::free_bytes(dir).await {
        Some(free) if free < needed => Err(Failure::Transient(anyhow::anyhow!(
            "not enough disk space in `{}`: {} MiB free, {} MiB needed",
            dir.display(),
            free / 1_048_576,
            needed / 1_048_576
        ))),
        _ => Ok(()),
    }
}

fn cannot_decode(why: &str) -> Failure {
    Failure::Permanent(format!("cannot decode input: {why}"))
}

fn engine_failure(error: EngineError) -> Failure {
    match error {
        EngineError::Crashed(how) => Failure::EngineCrashed(how),
        EngineError::Failed { kind, message } if kind == "bad_input" => {
            Failure::Permanent(format!("the engine cannot read the audio: {message}"))
        }
        EngineError::Failed { kind, message } if kind == "oom" => {
            Failure::Permanent(format!("gpu_oom: {message}"))
        }
        EngineError::Io(what) => Failure::EngineCrashed(what),
        other => Failure::Transient(other.into()),
    }
}

fn secs(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}
