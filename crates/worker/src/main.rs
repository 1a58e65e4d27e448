//! `transcription-worker`: pulls transcription jobs from the queue; see the crate docs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use common::settings::{self, Env};
use transcription_worker::{
    EXIT_ENGINE_FAILED, EXIT_IDLE, EngineUnusable, Outcome, Shutdown, StopReason,
};
use transcription_worker::{WorkerConfig, run_worker};

const EXIT_CODES: &str = "Exit codes:
  0   stopped by SIGTERM/SIGINT or a spot interruption notice (the job in hand was released),
      or by SIGUSR1 after finishing the job in hand (drain, for rolling updates)
  1   failed (see the log)
  2   bad settings
  3   the engine failed to start or its self-test failed; no job was taken
  64  exited after IDLE_TIMEOUT_MINUTES without work: the host may shut down

Settings come from environment variables, or from the .env file when there is one.
FLEET_PYTHON, FLEET_ENGINE_SCRIPT, FLEET_WORKER_ID and FLEET_IMDS_ENDPOINT override defaults;
FLEET_STATUS_FILE also writes the status object to a local file (container health checks).";

/// Pulls transcription jobs from the queue and runs them through the speech engine.
#[derive(Debug, Parser)]
#[command(name = "transcription-worker", version, after_help = EXIT_CODES)]
struct Args {
    /// Settings file (default: .env in FLEET_ROOT or the current folder; optional).
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
    /// Python interpreter of the engine [env: FLEET_PYTHON].
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
    /// The engine script, whisper_engine.py [env: FLEET_ENGINE_SCRIPT].
    #[arg(long, value_name = "PATH")]
    engine_script: Option<PathBuf>,
    /// This worker's id in status objects [env: FLEET_WORKER_ID].
    #[arg(long)]
    worker_id: Option<String>,
    /// More log output (-v debug); RUST_LOG takes precedence.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    common::logging::init(args.verbose + 1, args.quiet);
    let env = settings::process_env();
    let Some(config) = config(&args, env) else { return ExitCode::from(2) };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let shutdown = Shutdown::new();
    let result = runtime.block_on(async {
        tokio::spawn(stop_on_signals(shutdown.clone()));
        run_worker(config, shutdown).await
    });
    match result {
        Ok(Outcome::Idle) => ExitCode::from(EXIT_IDLE),
        Ok(Outcome::Stopped(reason)) => {
            tracing::info!("stopped: {reason}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprint!("{}", common::cli::render_error(&error));
            let unusable = error.chain().any(|e| e.is::<EngineUnusable>());
            let code =
                if unusable { EXIT_ENGINE_FAILED } else { common::cli::exit_code_for(&error) };
            ExitCode::from(code)
        }
    }
}

fn config(args: &Args, env: Env) -> Option<WorkerConfig> {
    let root = env.get("FLEET_ROOT").filter(|r| !r.is_empty()).map(PathBuf::from);
    let env_file = args.env_file.clone().unwrap_or_else(|| root.unwrap_or_default().join(".env"));
    let loaded = match settings::load_or_env(&env_file, &env) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return None;
        }
    };
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let mut config = WorkerConfig::new(loaded.settings, env);
    if let Some(python) = &args.python {
        config.engine.python = python.clone();
    }
    if let Some(script) = &args.engine_script {
        config.engine.script = script.clone();
    }
    if let Some(id) = &args.worker_id {
        config.worker_id = id.clone();
    }
    Some(config)
}

async fn stop_on_signals(shutdown: Shutdown) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut usr1)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::user_defined1()),
    ) else {
        tracing::error!("cannot listen for SIGTERM; stop the worker with SIGKILL");
        return;
    };
    loop {
        tokio::select! {
            _ = usr1.recv() => {
                tracing::warn!("SIGUSR1: finishing the job in hand, then stopping");
                shutdown.request(StopReason::Drain);
                continue;
            }
            _ = term.recv() => tracing::warn!("SIGTERM: releasing the job in hand and stopping"),
            _ = int.recv() => tracing::warn!("SIGINT: releasing the job in hand and stopping"),
        }
        shutdown.request(StopReason::Signal);
        return;
    }
}
