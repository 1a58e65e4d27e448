//! Throughput of the worker against the engine called directly, in one run.
//!
//! ```sh
//! cargo run -p transcription-worker --example throughput -- 10
//! ```
//!
//! Runs N copies of `samples/hello-fleet.wav` (default 10) first straight through the engine
//! (one process, model loaded once, requests back to back), then through the queue: upload,
//! job message, worker (download, probe, decode, engine, four outputs, job record, delete) on
//! a private local emulator. Prints both rates and their ratio. Not a test: the figures depend
//! on the machine; record them in BENCHMARKS.md.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use transcription_worker::engine::{Engine, Request};
use transcription_worker::{Shutdown, StopReason, run_worker};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let copies: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(10);
    let deployment = support::Deployment::start("bench", 60).await;
    let mut config = deployment.worker_config("w-bench");
    config.status_interval = Duration::from_secs(30);

    let direct = direct(&config, copies).await?;
    eprintln!("direct: {copies} in {direct:.2} s");

    let (shutdown, worker) = {
        let shutdown = Shutdown::new();
        (shutdown.clone(), tokio::spawn(run_worker(config, shutdown)))
    };
    support::wait_for("the worker to be ready", Duration::from_secs(120), || async {
        let status = deployment.worker_status("w-bench").await?;
        (status.state == common::job::WorkerState::Idle).then_some(())
    })
    .await;
    let started = Instant::now();
    for i in 0..copies {
        let id = format!("bench-{i:03}");
        deployment.submit(&id, &support::sample(), &format!("input/{id}/hello-fleet.wav")).await;
    }
    support::wait_for("every job", Duration::from_secs(60 + 30 * copies as u64), || async {
        let status = deployment.worker_status("w-bench").await?;
        (status.jobs_done + status.jobs_failed >= copies as u64).then_some(())
    })
    .await;
    let through_worker = started.elapsed().as_secs_f64();
    shutdown.request(StopReason::Signal);
    worker.await??;

    let audio = 7.95 * copies as f64;
    println!("copies of samples/hello-fleet.wav: {copies} ({audio:.0} s of audio)");
    println!(
        "engine directly : {direct:7.2} s  {:6.2} jobs/min  {:5.1}x real time",
        rate(copies, direct),
        audio / direct
    );
    println!(
        "through worker  : {through_worker:7.2} s  {:6.2} jobs/min  {:5.1}x real time",
        rate(copies, through_worker),
        audio / through_worker
    );
    println!("worker / direct throughput: {:.2}", direct / through_worker);
    Ok(())
}

/// Seconds for `copies` requests straight to a warm engine.
async fn direct(config: &transcription_worker::WorkerConfig, copies: usize) -> anyhow::Result<f64> {
    let mut engine = Engine::start(&config.engine).await?;
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
    let started = Instant::now();
    for i in 0..copies {
        let id = format!("direct-{i}");
        let request = Request { id: &id, ..warm_up.clone() };
        engine.transcribe(&request).await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    engine.shutdown().await;
    Ok(seconds)
}

fn rate(jobs: usize, seconds: f64) -> f64 {
    jobs as f64 * 60.0 / seconds
}
