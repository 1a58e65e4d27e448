//! Step 125: the health of every Path A worker.
//!
//! For each worker found by its tags: the instance state and EC2 status checks, and the
//! worker's own status object (`status/workers/<instance id>.json`: age, state, jobs done and
//! failed, version). `--wait` polls until no worker is still starting and one is healthy, or
//! the timeout passes. Exit 1 when no worker is healthy, naming the next thing to look at.

use std::time::{Duration, Instant};

use common::deployment_path::DeploymentPath;
use common::{Context, Mark, Report, Settings};
use fleet::health::{self, Verdict, WorkerHealth};
use fleet::health_check;

/// The step's name.
pub const STEP: &str = "step-125-check-worker-health";

/// Flags of step 125.
pub use fleet::health_check::HealthArgs as Args;

/// The path whose workers this step checks.
const PATH: DeploymentPath = DeploymentPath::Traditional;

/// Runs step 125.
pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Report> {
    ctx.ui.header(STEP, "checking the Path A workers");
    let settings = ctx.load_settings()?.settings;
    let config = common::aws::sdk_config(&settings, &ctx.env, &Default::default()).await;
    let clients = fleet::Clients::new(&config, &settings);
    let started = Instant::now();
    let deadline = Duration::from_secs(args.timeout);
    let poll = health_check::poll_interval(&settings);
    let spinner = args.wait.then(|| ctx.ui.spinner("waiting for a healthy Path A worker"));
    let mut seen_unhealthy = false;
    let workers = loop {
        let workers = health_check::check_path(&clients, &settings, PATH).await?;
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
            health_check::record_launch_to_healthy(&ctx, &workers, PATH);
        }
    }
    report.summary = format!("{healthy} of {} Path A worker(s) healthy", workers.len());
    report.data = serde_json::json!({ "workers": workers });
    Ok(report)
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
