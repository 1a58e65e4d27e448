//! Worker benchmarks against their references, in one run (called by `make bench`).
//!
//! ```sh
//! cargo run -p transcription-worker --example throughput -- 10 8
//! ```
//!
//! Jobs: N copies of `samples/hello-fleet.wav` (default 10) plus one longer file, the sample
//! repeated M times (default 8). Figures, each next to its reference:
//!
//! 1. throughput: the same engine on the same local files in one process (model loaded once,
//!    requests back to back) against the worker through the full path (queue, S3 download,
//!    probe, decode, engine, outputs, job record, delete) on a private local emulator; the
//!    inputs are uploaded before the clock starts, which runs from the first job message until
//!    the worker's status counts every job done. Per-stage timings come from the transcripts,
//!    AWS calls per job from an SDK interceptor on the worker's clients;
//! 2. footprint: resident memory of this process, which hosts the worker loop (the engine is a
//!    child process and not counted), idle and while working; start to ready against the
//!    engine's own model load time;
//! 3. cost: dollars per audio hour from the measured speed and the spot prices the emulator
//!    returns (labelled as such), next to AWS Transcribe's list price.
//!
//! Figures are recorded in `.local/measurements.json` for step-025. Not a test.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::job::{JobMessage, OutputFormat, S3Uri, Transcript, WorkerState};
use transcription_worker::engine::{Engine, Request};
use transcription_worker::{Shutdown, StopReason, api_calls, run_worker};

/// AWS Transcribe's list price, USD per audio minute.
const TRANSCRIBE_PER_MINUTE: f64 = 0.024;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().ok());
    let copies = args.next().flatten().unwrap_or(10);
    let long_times = args.next().flatten().unwrap_or(8);
    let dir = tempfile::tempdir()?;
    let mut files: Vec<PathBuf> = vec![support::sample(); copies];
    if long_times > 0 {
        files.push(support::long_sample(dir.path(), long_times));
    }
    let audio: f64 = files.iter().map(|f| wav_seconds(f)).sum();

    let deployment = support::Deployment::start("bench", 60).await;
    let mut config = deployment.worker_config("w-bench");
    config.status_interval = Duration::from_secs(30);

    // The reference runs before and after the worker and the mean is used: other builds on a
    // shared machine change the load within minutes.
    let direct_before = direct(&config, &files).await?;
    let inputs = upload_all(&deployment, &files).await;

    let started = Instant::now();
    let shutdown = Shutdown::new();
    let worker = tokio::spawn(run_worker(config, shutdown.clone()));
    support::wait_for("the worker to be ready", Duration::from_secs(180), || async {
        let status = deployment.worker_status("w-bench").await?;
        (status.state == WorkerState::Idle).then_some(())
    })
    .await;
    let ready = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = rss_kib();

    let peak = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn({
        let peak = peak.clone();
        async move {
            loop {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let calls_before = api_calls();
    let started = Instant::now();
    for job in &inputs {
        deployment.send(&job.to_body()).await;
    }
    let total = inputs.len() as u64;
    support::wait_for("every job", Duration::from_secs(120 + 60 * total), || async {
        let status = deployment.worker_status("w-bench").await?;
        (status.jobs_done + status.jobs_failed >= total).then_some(())
    })
    .await;
    let through_worker = started.elapsed().as_secs_f64();
    let calls_after = api_calls();
    sampler.abort();
    shutdown.request(StopReason::Signal);
    worker.await??;
    let status = deployment.worker_status("w-bench").await;
    let failed = status.map_or(0, |s| s.jobs_failed);
    let direct_after = direct(&deployment.worker_config("w-bench"), &files).await?;
    let direct =
        Direct { seconds: (direct_before.seconds + direct_after.seconds) / 2.0, ..direct_before };

    let ratio = direct.seconds / through_worker;
    println!(
        "jobs: {copies} x samples/hello-fleet.wav + 1 x the sample repeated {long_times} times"
    );
    println!("      ({total} jobs, {audio:.1} s of audio; {failed} failed)");
    println!(
        "engine directly (reference) : {:7.2} s  {:5.1}x real time  (mean of {:.2} s before \
         and {:.2} s after the worker run)",
        direct.seconds,
        audio / direct.seconds,
        direct_before.seconds,
        direct_after.seconds
    );
    println!(
        "through the worker          : {through_worker:7.2} s  {:5.1}x real time",
        audio / through_worker
    );
    println!("worker / engine throughput  : {ratio:.3}  (target >= 0.97)");

    let stages = stage_means(&deployment, &inputs).await;
    println!("per-stage means over {} jobs (s):", inputs.len());
    for (stage, mean) in &stages {
        println!("  {stage:<14} {mean:7.3}");
    }
    println!(
        "  (download, probe and decode of every job but the first overlap the engine's work on \
         the job before)"
    );
    let engine_mean = stages.iter().find(|(stage, _)| stage == "engine_call").map(|(_, m)| *m);
    let busy = engine_mean.unwrap_or(f64::NAN) * total as f64 / through_worker;
    println!(
        "engine busy share of the worker run (sum of engine calls / wall time): {busy:.3} \
         (the worker's own part of the gap; the rest is the engine running slower than in the \
         reference, e.g. from CPU contention)"
    );
    record(&common::Project::at(testkit::workspace_root()), "bench.worker_engine_busy_share", busy);
    let (sqs, s3) = (calls_after.0 - calls_before.0, calls_after.1 - calls_before.1);
    let per_job = |n: u64| n as f64 / total as f64;
    println!(
        "AWS calls per job (SDK interceptor, whole timed window incl. status refreshes and empty \
         polls): {:.1} SQS + {:.1} S3 = {:.1}",
        per_job(sqs),
        per_job(s3),
        per_job(sqs + s3)
    );

    let (idle_mib, peak_mib) =
        (idle_rss as f64 / 1024.0, peak.load(Ordering::Relaxed) as f64 / 1024.0);
    println!(
        "worker RSS (this process; the engine child excluded): idle {idle_mib:.1} MiB, working \
         peak {peak_mib:.1} MiB"
    );
    let load = direct.load_seconds.unwrap_or(f64::NAN);
    println!(
        "start to ready (self-test passed): {ready:.2} s; engine model load (reference): \
         {load:.2} s; engine start + warm-up in the direct run: {:.2} s",
        direct.start_seconds
    );

    let speed = audio / through_worker;
    let prices = spot_prices(&deployment).await;
    let transcribe_hour = TRANSCRIBE_PER_MINUTE * 60.0;
    let break_even = transcribe_hour * speed;
    println!(
        "cost per audio hour, CPU figures ({speed:.2}x real time on this machine) with spot \
         prices from the local EMULATOR (a constant, not a market price):"
    );
    let project = common::Project::at(testkit::workspace_root());
    for (instance_type, price) in &prices {
        let per_audio_hour = price / speed;
        println!(
            "  {instance_type:<14} ${price:.6}/h (emulator) -> ${per_audio_hour:.6} per audio \
             hour; AWS Transcribe ${transcribe_hour:.2} per audio hour"
        );
        let key = format!("bench.emulator_cpu.cost_per_audio_hour_usd.{instance_type}");
        record(&project, &key, per_audio_hour);
    }
    println!(
        "  break-even: at this speed any instance under ${break_even:.2}/h costs less per audio \
         hour than AWS Transcribe (${transcribe_hour:.2})"
    );
    record(&project, "bench.cpu.break_even_instance_usd_per_hour", break_even);
    record(&project, "bench.transcribe_per_audio_hour_usd", transcribe_hour);
    record(&project, "bench.worker_over_engine_throughput", ratio);
    record(&project, "bench.cpu.realtime_factor", speed);
    record(&project, "bench.aws_calls_per_job", per_job(sqs + s3));
    record(&project, "bench.worker_rss_idle_mib", idle_mib);
    record(&project, "bench.worker_rss_working_mib", peak_mib);
    record(&project, "bench.worker_start_to_ready_seconds", ready);
    if let Some(load) = direct.load_seconds {
        record(&project, "bench.engine_model_load_seconds", load);
    }
    println!("recorded in {}", common::measurements::file(&project).display());
    Ok(())
}

struct Direct {
    seconds: f64,
    load_seconds: Option<f64>,
    start_seconds: f64,
}

/// One warm engine, every file back to back.
async fn direct(
    config: &transcription_worker::WorkerConfig,
    files: &[PathBuf],
) -> anyhow::Result<Direct> {
    let started = Instant::now();
    let mut engine = Engine::start(&config.engine).await?;
    let load_seconds = engine.ready.load_seconds;
    let sample = support::sample();
    let warm_up = Request {
        id: "warm-up",
        audio: &sample,
        language: Some("en"),
        word_timestamps: true,
        diarize: false,
        hf_token: None,
    };
    engine.transcribe(&warm_up).await?;
    let start_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for (i, file) in files.iter().enumerate() {
        let id = format!("direct-{i}");
        let request = Request { id: &id, audio: file, ..warm_up.clone() };
        engine.transcribe(&request).await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    engine.shutdown().await;
    Ok(Direct { seconds, load_seconds, start_seconds })
}

/// Uploads every file under its own key; the jobs, not yet sent.
async fn upload_all(deployment: &support::Deployment, files: &[PathBuf]) -> Vec<JobMessage> {
    let mut jobs = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let id = format!("bench-{i:03}");
        let input = deployment.upload(file, &format!("input/{id}/audio.wav")).await;
        let output = S3Uri::new(&deployment.settings.bucket, format!("output/{id}/"));
        jobs.push(JobMessage::new(&id, input, output));
    }
    jobs
}

/// Mean seconds per stage, from the timings each transcript carries.
async fn stage_means(deployment: &support::Deployment, jobs: &[JobMessage]) -> Vec<(String, f64)> {
    let mut sums: BTreeMap<String, (f64, u32)> = BTreeMap::new();
    for job in jobs {
        let Some(text) = deployment.read(&job.output(OutputFormat::Json)).await else { continue };
        let Ok(transcript) = serde_json::from_str::<Transcript>(&text) else { continue };
        for (stage, value) in transcript.timings {
            if let Some(value) = value {
                let entry = sums.entry(stage).or_default();
                (entry.0, entry.1) = (entry.0 + value, entry.1 + 1);
            }
        }
    }
    sums.into_iter().map(|(k, (sum, n))| (k, sum / f64::from(n))).collect()
}

/// The median current spot price per configured instance type, from the emulator.
async fn spot_prices(deployment: &support::Deployment) -> Vec<(String, f64)> {
    let settings = &deployment.settings;
    let ec2 = common::sdk::ec2::Client::new(&testkit::sdk_config(settings).await);
    let mut prices = Vec::new();
    for instance_type in &settings.ec2.instance_types {
        let out = ec2
            .describe_spot_price_history()
            .product_descriptions("Linux/UNIX")
            .instance_types(instance_type.as_str().into())
            .start_time(std::time::SystemTime::now().into())
            .send()
            .await;
        let mut values: Vec<f64> = match out {
            Ok(out) => out
                .spot_price_history()
                .iter()
                .filter_map(|p| p.spot_price()?.parse().ok())
                .collect(),
            Err(e) => {
                println!("  {instance_type}: no spot price ({})", common::aws::describe(&e));
                continue;
            }
        };
        values.sort_by(f64::total_cmp);
        if let Some(median) = values.get(values.len() / 2) {
            prices.push((instance_type.clone(), *median));
        }
    }
    prices
}

fn record(project: &common::Project, key: &str, value: f64) {
    if let Err(e) = common::measurements::record(project, key, value) {
        eprintln!("warning: {e:#}");
    }
}

/// Resident memory of this process in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Duration of a PCM WAV file from its header.
fn wav_seconds(path: &std::path::Path) -> f64 {
    let output = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"])
        .arg(path)
        .output();
    output.ok().and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok()).unwrap_or(0.0)
}
