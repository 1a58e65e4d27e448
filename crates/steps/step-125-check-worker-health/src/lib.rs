//! Step 125: the health of every Path A worker.
//!
//! For each worker found by its tags: the instance state and EC2 status checks, and the
//! worker's own status object (`status/workers/<instance id>.json`: age, state, jobs done and
//! failed, version). `--wait` polls until no worker is still starting and one is healthy, or
//! the timeout passes. Exit 1 when no worker is healthy, naming the next thing to look at.

use std::time::{Duration, Instant};

use common::deployment_path::DeploymentPath;
use common::{Context, Mark, Report, Settings};
use fleet::health::{self, Grace, Verdict, WorkerHealth};
use fleet::workers;

/// The step's name.
pub const STEP: &str = "step-125-check-worker-health";

/// Flags of step 125.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Wait until a worker is healthy and none is still starting.
    #[arg(long)]
    pub wait: bool,
    /// Seconds to wait with `--wait`.
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    pub timeout: u64,
}

impl Default for Args {
    fn default() -> Self {
        Self { wait: false, timeout: 900 }
    }
}

/// States a worker instance can be in and still be worth showing.
const SHOWN_STATES: &[&str] = &["pending", "running", "stopping", "stopped", "shutting-down"];

/// Runs step 125.
pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Report> {
    ctx.ui.header(STEP, "checking the Path A workers");
    let settings = ctx.load_settings()?.settings;
    let config = common::aws::sdk_config(&settings, &ctx.env, &Default::default()).await;
    let clients = fleet::Clients::new(&config, &settings);
    let started = Instant::now();
    let deadline = Duration::from_secs(args.timeout);
    let poll =
        if settings.is_local() { Duration::from_millis(500) } else { Duration::from_secs(10) };
    let spinner = args.wait.then(|| ctx.ui.spinner("waiting for a healthy Path A worker"));
    let mut seen_unhealthy = false;
    let workers = loop {
        let workers = check(&clients, &settings).await?;
        let healthy = workers.iter().any(|w| w.verdict == Verdict::Healthy);
        let starting = workers.iter().any(|w| matches!(w.verdict, Verdict::Starting(_)));
        seen_unhealthy |= !healthy;
        if !args.wait || (healthy && !starting) || started.elapsed() >= deadline {
            break workers;
        }
        if let Some(spinner) = &spinner {
            spinner.set_message(&progress(&workers));
        }
        tokio::time::sleep(poll).await;
    };
    if let Some(spinner) = spinner {
        spinner.finish(&progress(&workers));
    }
    let mut report = Report::new(STEP);
    describe(&mut report, &workers);
    let healthy = workers.iter().filter(|w| w.verdict == Verdict::Healthy).count();
    if healthy == 0 {
        report.item(Mark::Problem, "fleet", "no healthy Path A worker");
        report.next = next_steps(&ctx, &settings, &workers);
    } else {
        report.next.push("./scripts/step-135-test-complete-workflow.sh".to_string());
        // Local runners start in seconds; only a real launch says anything about Path A.
        if args.wait && seen_unhealthy && !settings.is_local() {
            record_launch_to_healthy(&ctx, &workers);
        }
    }
    report.summary = format!("{healthy} of {} Path A worker(s) healthy", workers.len());
    report.data = serde_json::json!({ "workers": workers });
    Ok(report)
}

async fn check(clients: &fleet::Clients, settings: &Settings) -> anyhow::Result<Vec<WorkerHealth>> {
    let path = DeploymentPath::Traditional;
    let mut found = workers::find_workers(&clients.ec2, settings, path, SHOWN_STATES).await?;
    workers::add_status_checks(&clients.ec2, &mut found).await?;
    let grace = Grace::for_local(settings.is_local());
    health::check_workers(&clients.s3, &settings.bucket, found, grace).await
}

fn progress(workers: &[WorkerHealth]) -> String {
    let words: Vec<String> = workers
        .iter()
        .map(|w| format!("{} {}", w.instance.instance_id, w.verdict.word()))
        .collect();
    if words.is_empty() { "no Path A workers".to_string() } else { words.join(", ") }
}

fn describe(report: &mut Report, workers: &[WorkerHealth]) {
    let table = health::table(workers);
    let mut lines = table.lines();
    if let Some(header) = lines.next() {
        report.item(Mark::Info, "workers", header.trim());
    }
    for (w, line) in workers.iter().zip(lines) {
        let mark = match w.verdict {
            Verdict::Healthy => Mark::Passed,
            _ => Mark::Info,
        };
        report.item(mark, "worker", line.trim());
    }
}

fn next_steps(ctx: &Context, settings: &Settings, workers: &[WorkerHealth]) -> Vec<String> {
    if workers.is_empty() {
        return vec!["./scripts/step-120-launch-spot-worker.sh".to_string()];
    }
    let mut next = Vec::new();
    for w in workers {
        let id = &w.instance.instance_id;
        if settings.is_local() {
            let log = fleet::local::log_file(&ctx.project, id);
            next.push(format!("tail -n 50 {}   # the local runner's log", log.display()));
        } else {
            next.push(format!(
                "aws ec2 get-console-output --region {} --instance-id {id} --latest \
                 --output text   # bootstrap log",
                settings.region
            ));
            next.push(format!(
                "aws ssm start-session --region {} --target {id}, then: journalctl -u \
                 transcription-worker -n 100",
                settings.region
            ));
        }
    }
    next
}

fn record_launch_to_healthy(ctx: &Context, workers: &[WorkerHealth]) {
    let now = chrono::Utc::now();
    let launched = workers
        .iter()
        .filter(|w| w.verdict == Verdict::Healthy)
        .filter_map(|w| {
            w.instance.launched_at.as_deref()?.parse::<chrono::DateTime<chrono::Utc>>().ok()
        })
        .max();
    if let Some(at) = launched {
        let seconds = (now - at).num_milliseconds() as f64 / 1000.0;
        let key = common::measurements::PATH_A_LAUNCH_TO_HEALTHY;
        if let Err(e) = common::measurements::record(&ctx.project, key, seconds) {
            ctx.ui.warn(&format!("could not record {key}: {e:#}"));
        }
    }
}
