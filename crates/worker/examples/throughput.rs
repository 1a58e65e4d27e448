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

/// Worker runs, each between two runs of the bare engine, unless given.
const ROUNDS: usize = 3;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().ok());
    let copies = args.next().flatten().unwrap_or(10);
    let long_times = args.next().flatten().unwrap_or(8);
    let rounds = args.next().flatten().unwrap_or(ROUNDS).max(1);
    let dir = tempfile::tempdir()?;
    let mut files: Vec<PathBuf> = vec![support::sample(); copies];
    if long_times > 0 {
        files.push(support::long_sample(dir.path(), long_times));
    }
    let audio: f64 = files.iter().map(|f| wav_seconds(f)).sum();
    let deployment = support::Deployment::start("bench", 60).await;

    // Worker runs alternate with reference runs, and each worker run is compared with the
    // mean of the references either side of it: the engine's own speed drifts by several
    // per cent within minutes even on an idle machine.
    let mut reference_config = deployment.worker_config("w-reference");
    use_device_from_env(&mut reference_config);
    let mut references = vec![direct(&reference_config, &files).await?];
    let mut runs = Vec::new();
    for round in 1..=rounds {
        runs.push(through_worker(&deployment, &files, round).await?);
        references.push(direct(&reference_config, &files).await?);
    }

    let total = files.len();
    println!(
        "jobs: {copies} x samples/hello-fleet.wav + 1 x the sample repeated {long_times} times"
    );
    println!(
        "      ({total} jobs, {audio:.1} s of audio; {} failed), {rounds} rounds",
        runs.iter().map(|r| r.failed).sum::<u64>()
    );
    println!(
        "round  engine directly (before / after)   through the worker   worker / engine   engine busy"
    );
    let mut ratios = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let (before, after) = (references[i].seconds, references[i + 1].seconds);
        let reference = (before + after) / 2.0;
        let ratio = reference / run.seconds;
        ratios.push(ratio);
        println!(
            "{:>5}  {reference:7.2} s ({before:.2} / {after:.2})       {:7.2} s            {ratio:6.3}            {:.3}",
            i + 1,
            run.seconds,
            run.busy_share()
        );
    }
    let ratio = median(&ratios);
    let seconds = median(&runs.iter().map(|r| r.seconds).collect::<Vec<_>>());
    let speed = audio / seconds;
    println!(
        "worker / engine throughput  : {ratio:.3} median of {rounds} (target >= 0.97); \
         {:.1}x real time through the worker",
        speed
    );

    let last = runs.last().expect("at least one round");
    println!("per-stage means over the {total} jobs of the last round (s):");
    for (stage, mean) in &last.stages {
        println!("  {stage:<14} {mean:7.3}");
    }
    println!(
        "  (download, probe and decode of every job but the first overlap the engine's work on \
         the job before; its outputs go up while the engine works on the next)"
    );
    let busy = median(&runs.iter().map(WorkerRun::busy_share).collect::<Vec<_>>());
    let share = |cpu: fn(&WorkerRun) -> f64| {
        median(&runs.iter().map(|r| cpu(r) / r.seconds).collect::<Vec<_>>())
    };
    println!(
        "CPU beside the engine during the worker runs (median share of one core): worker \
         process {:.3}, local emulator {:.3}",
        share(|r| r.worker_cpu),
        share(|r| r.emulator_cpu)
    );
    println!(
        "engine busy share (sum of engine calls / wall time, median): {busy:.3} \
         (what the worker itself costs; the rest of a gap is the engine running slower than in \
         the reference, e.g. from CPU contention)"
    );
    let calls = last.calls_per_job();
    println!(
        "AWS calls per job (SDK interceptor, whole timed window incl. status refreshes and empty \
         polls): {:.1} SQS + {:.1} S3 = {:.1}",
        calls.0,
        calls.1,
        calls.0 + calls.1
    );

    let idle_mib = median(&runs.iter().map(|r| r.idle_rss_kib as f64 / 1024.0).collect::<Vec<_>>());
    let peak_mib = runs.iter().map(|r| r.peak_rss_kib).max().unwrap_or(0) as f64 / 1024.0;
    println!(
        "worker RSS (this process; the engine child excluded): idle {idle_mib:.1} MiB (median), \
         working peak {peak_mib:.1} MiB"
    );
    let ready = median(&runs.iter().map(|r| r.ready).collect::<Vec<_>>());
    let loads: Vec<f64> = references.iter().filter_map(|r| r.load_seconds).collect();
    let load = if loads.is_empty() { f64::NAN } else { median(&loads) };
    let warm = median(&references.iter().map(|r| r.start_seconds).collect::<Vec<_>>());
    println!(
        "start to ready (self-test passed, median): {ready:.2} s; engine model load \
         (reference, median): {load:.2} s; engine start + warm-up in the direct runs: {warm:.2} s"
    );

    let prices = spot_prices(&deployment).await;
    let transcribe_hour = common::measurements::TRANSCRIBE_USD_PER_MINUTE * 60.0;
    let break_even = transcribe_hour * speed;
    let device = if reference_config.engine.device == "cuda" { "gpu" } else { "cpu" };
    println!(
        "cost per audio hour, {} figures ({speed:.2}x real time on this machine) with spot \
         prices from the local EMULATOR (a constant, not a market price):",
        device.to_uppercase()
    );
    let project = common::Project::at(testkit::workspace_root());
    for (instance_type, price) in &prices {
        let per_audio_hour = price / speed;
        println!(
            "  {instance_type:<14} ${price:.6}/h (emulator) -> ${per_audio_hour:.6} per audio \
             hour; AWS Transcribe ${transcribe_hour:.2} per audio hour"
        );
        let key = format!("bench.emulator_{device}.cost_per_audio_hour_usd.{instance_type}");
        record(&project, &key, per_audio_hour);
    }
    println!(
        "  break-even: at this speed any instance under ${break_even:.2}/h costs less per audio \
         hour than AWS Transcribe (${transcribe_hour:.2})"
    );
    record(&project, &format!("bench.{device}.break_even_instance_usd_per_hour"), break_even);
    record(&project, "bench.transcribe_per_audio_hour_usd", transcribe_hour);
    record(&project, "bench.worker_over_engine_throughput", ratio);
    record(&project, "bench.worker_engine_busy_share", busy);
    record(&project, &format!("bench.{device}.realtime_factor"), speed);
    record(&project, "bench.aws_calls_per_job", calls.0 + calls.1);
    record(&project, "bench.worker_rss_idle_mib", idle_mib);
    record(&project, "bench.worker_rss_working_mib", peak_mib);
    record(&project, "bench.worker_start_to_ready_seconds", ready);
    if load.is_finite() {
        record(&project, "bench.engine_model_load_seconds", load);
    }
    println!("recorded in {}", common::measurements::file(&project).display());
    Ok(())
}

/// One timed pass of every file through a fresh worker.
struct WorkerRun {
    seconds: f64,
    ready: f64,
    idle_rss_kib: u64,
    peak_rss_kib: u64,
    calls: (u64, u64),
    failed: u64,
    jobs: usize,
    /// CPU seconds of this process (the worker loop and its clients) in the timed window.
    worker_cpu: f64,
    /// CPU seconds of the local emulator in the timed window: a cost AWS does not put on the
    /// worker's cores, but here it competes with a CPU engine.
    emulator_cpu: f64,
    stages: Vec<(String, f64)>,
}

impl WorkerRun {
    /// The share of the wall time the engine spent on requests.
    fn busy_share(&self) -> f64 {
        let mean = self.stages.iter().find(|(stage, _)| stage == "engine_call").map(|(_, m)| *m);
        mean.unwrap_or(f64::NAN) * self.jobs as f64 / self.seconds
    }

    /// SQS and S3 calls per job.
    fn calls_per_job(&self) -> (f64, f64) {
        let per_job = |n: u64| n as f64 / self.jobs as f64;
        (per_job(self.calls.0), per_job(self.calls.1))
    }
}

/// Uploads the inputs, starts a worker, and times it from the first job message until its
/// status counts every job.
async fn through_worker(
    deployment: &support::Deployment,
    files: &[PathBuf],
    round: usize,
) -> anyhow::Result<WorkerRun> {
    let worker_id = format!("w-bench-{round}");
    let mut config = deployment.worker_config(&worker_id);
    config.status_interval = Duration::from_secs(30);
    use_device_from_env(&mut config);
    let inputs = upload_all(deployment, files, round).await;

    let started = Instant::now();
    let shutdown = Shutdown::new();
    let worker = tokio::spawn(run_worker(config, shutdown.clone()));
    support::wait_for("the worker to be ready", Duration::from_secs(180), || async {
        let status = deployment.worker_status(&worker_id).await?;
        (status.state == WorkerState::Idle).then_some(())
    })
    .await;
    let ready = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_kib = rss_kib();

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
    let emulator_pid = deployment.emulator.pid();
    let cpu_before = (cpu_seconds("self"), cpu_seconds(&emulator_pid.to_string()));
    let started = Instant::now();
    for job in &inputs {
        deployment.send(&job.to_body()).await;
    }
    let total = inputs.len() as u64;
    support::wait_for("every job", Duration::from_secs(120 + 60 * total), || async {
        let status = deployment.worker_status(&worker_id).await?;
        (status.jobs_done + status.jobs_failed >= total).then_some(())
    })
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let calls_after = api_calls();
    let cpu_after = (cpu_seconds("self"), cpu_seconds(&emulator_pid.to_string()));
    sampler.abort();
    shutdown.request(StopReason::Signal);
    worker.await??;
    let failed = deployment.worker_status(&worker_id).await.map_or(0, |s| s.jobs_failed);
    Ok(WorkerRun {
        seconds,
        ready,
        idle_rss_kib,
        peak_rss_kib: peak.load(Ordering::Relaxed),
        calls: (calls_after.0 - calls_before.0, calls_after.1 - calls_before.1),
        failed,
        jobs: inputs.len(),
        worker_cpu: cpu_after.0 - cpu_before.0,
        emulator_cpu: cpu_after.1 - cpu_before.1,
        stages: stage_means(deployment, &inputs).await,
    })
}

/// `FLEET_ENGINE_DEVICE=cuda` runs the benchmark on a GPU worker's GPU; the figures are then
/// recorded under `bench.gpu.*` instead of `bench.cpu.*`.
fn use_device_from_env(config: &mut transcription_worker::WorkerConfig) {
    if let Ok(device) = std::env::var("FLEET_ENGINE_DEVICE") {
        config.engine.device = device;
    }
}

/// User plus system CPU seconds of the process `pid` (`self` for this one), from `/proc`.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    (ticks(11) + ticks(12)) / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    let output = std::process::Command::new("getconf").arg("CLK_TCK").output();
    output
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
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
async fn upload_all(
    deployment: &support::Deployment,
    files: &[PathBuf],
    round: usize,
) -> Vec<JobMessage> {
    let mut jobs = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let id = format!("bench-{round}-{i:03}");
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
