//! Step 225: the health of every Path B worker, as step-125 judges it, plus its container.
//!
//! Each worker found by its tags is judged by [`fleet::health`] (instance state, status checks,
//! the worker's status object). Locally the container's state and HEALTHCHECK verdict come from
//! `docker inspect`: a container that is not running, or that its health check calls
//! unhealthy, makes the worker unhealthy. In the cloud the container's state is what the
//! worker writes in its status object. `--wait` polls until a worker is healthy and none is
//! starting. Exit 1 when no worker is healthy.

use std::time::Instant;

use common::deployment_path::DeploymentPath;
use common::{Context, Mark, Report, Settings};
use fleet::health::{Verdict, WorkerHealth};
use fleet::health_check;
use fleet::local_docker::ContainerState;

/// The step's name.
pub const STEP: &str = "step-225-check-docker-health";

/// Flags of step 225.
pub use fleet::health_check::HealthArgs as Args;

/// One worker and its container.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DockerWorker {
    /// The judgement of [`fleet::health`], sharpened by the container's state.
    pub health: WorkerHealth,
    /// The local container, when in local mode and one exists.
    pub container: Option<ContainerState>,
}

/// Runs step 225.
pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Report> {
    ctx.ui.header(STEP, "checking the Path B workers");
    let settings = ctx.load_settings()?.settings;
    let config = common::aws::sdk_config(&settings, &ctx.env, &Default::default()).await;
    let clients = fleet::Clients::new(&config, &settings);
    let started = Instant::now();
    let poll = health_check::poll_interval(&settings);
    let spinner = args.wait.then(|| ctx.ui.spinner("waiting for a healthy Path B worker"));
    let mut seen_unhealthy = false;
    let workers = loop {
        let workers = check(&ctx, &clients, &settings).await?;
        let healthy = workers.iter().any(|w| w.health.verdict == Verdict::Healthy);
        let starting = workers.iter().any(|w| matches!(w.health.verdict, Verdict::Starting(_)));
        seen_unhealthy |= !healthy;
        if !args.wait || (healthy && !starting) || started.elapsed().as_secs() >= args.timeout {
            break workers;
        }
        tokio::time::sleep(poll).await;
    };
    if let Some(spinner) = spinner {
        spinner.finish("done");
    }
    let mut report = Report::new(STEP);
    for w in &workers {
        let mark = if w.health.verdict == Verdict::Healthy { Mark::Passed } else { Mark::Info };
        report.item(mark, "worker", describe(w));
    }
    let healthy = workers.iter().filter(|w| w.health.verdict == Verdict::Healthy).count();
    if healthy == 0 {
        report.item(Mark::Problem, "fleet", "no healthy Path B worker");
        report.next = next_steps(&settings, &workers);
    } else {
        report.next.push("./scripts/step-235-test-docker-workflow.sh".to_string());
        if args.wait && seen_unhealthy && !settings.is_local() {
            let judged = workers.iter().map(|w| &w.health);
            health_check::record_launch_to_healthy(&ctx, judged, DeploymentPath::Docker);
        }
    }
    report.summary = format!("{healthy} of {} Path B worker(s) healthy", workers.len());
    report.data = serde_json::json!({ "workers": workers });
    Ok(report)
}

/// Every Path B worker with its verdict and, locally, its container.
pub async fn check(
    ctx: &Context,
    clients: &fleet::Clients,
    settings: &Settings,
) -> anyhow::Result<Vec<DockerWorker>> {
    let judged = health_check::check_path(clients, settings, DeploymentPath::Docker).await?;
    let mut out = Vec::new();
    for mut health in judged {
        let container = if settings.is_local() {
            let name = fleet::docker_path::container_name(settings, &health.instance.instance_id);
            fleet::local_docker::state(&ctx.env, &name).await?
        } else {
            None
        };
        health.verdict = with_container(health.verdict, settings.is_local(), container.as_ref());
        out.push(DockerWorker { health, container });
    }
    Ok(out)
}

/// The verdict once the container is known: locally a worker needs a running container that
/// its HEALTHCHECK does not call unhealthy.
pub fn with_container(
    verdict: Verdict,
    local: bool,
    container: Option<&ContainerState>,
) -> Verdict {
    if !local || !matches!(verdict, Verdict::Healthy | Verdict::Starting(_)) {
        return verdict;
    }
    match container {
        None => Verdict::Unhealthy("no worker container".into()),
        Some(c) if c.status != "running" => Verdict::Unhealthy(format!(
            "container {}{}",
            c.status,
            c.exit_code.map(|code| format!(" (exit {code})")).unwrap_or_default()
        )),
        Some(c) if c.health.as_deref() == Some("unhealthy") => {
            Verdict::Unhealthy("container health check failing".into())
        }
        Some(_) => verdict,
    }
}

fn describe(w: &DockerWorker) -> String {
    let i = &w.health.instance;
    let status = w.health.status.as_ref().map_or("no status".to_string(), |s| {
        format!("worker {}, {} done, {} failed", s.state.as_str(), s.jobs_done, s.jobs_failed)
    });
    let container = w.container.as_ref().map_or(String::new(), |c| {
        format!(", container {} {}", c.status, c.health.as_deref().unwrap_or("-"))
    });
    let reason = match &w.health.verdict {
        Verdict::Healthy => String::new(),
        Verdict::Starting(r) | Verdict::Unhealthy(r) => format!(": {r}"),
    };
    format!(
        "{} {} {} ({status}{container}) {}{reason}",
        i.name,
        i.instance_id,
        i.state,
        w.health.verdict.word()
    )
}

fn next_steps(settings: &Settings, workers: &[DockerWorker]) -> Vec<String> {
    if workers.is_empty() {
        return vec!["./scripts/step-220-launch-docker-worker.sh".to_string()];
    }
    workers
        .iter()
        .map(|w| {
            let id = &w.health.instance.instance_id;
            if settings.is_local() {
                let name = fleet::docker_path::container_name(settings, id);
                format!("docker logs --tail 50 {name}   # the worker container's log")
            } else {
                format!(
                    "aws ec2 get-console-output --region {} --instance-id {id} --latest \
                     --output text   # bootstrap and container log",
                    settings.region
                )
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(status: &str, health: Option<&str>, exit: Option<i64>) -> ContainerState {
        ContainerState {
            name: "c".into(),
            status: status.into(),
            health: health.map(str::to_string),
            exit_code: exit,
            image: "i".into(),
        }
    }

    #[test]
    fn locally_a_healthy_status_needs_a_running_container() {
        let ok = container("running", Some("healthy"), None);
        assert_eq!(with_container(Verdict::Healthy, true, Some(&ok)), Verdict::Healthy);
        let gone = with_container(Verdict::Healthy, true, None);
        assert_eq!(gone, Verdict::Unhealthy("no worker container".into()));
        let exited =
            with_container(Verdict::Healthy, true, Some(&container("exited", None, Some(64))));
        assert_eq!(exited, Verdict::Unhealthy("container exited (exit 64)".into()));
        let sick = container("running", Some("unhealthy"), None);
        assert!(matches!(
            with_container(Verdict::Healthy, true, Some(&sick)),
            Verdict::Unhealthy(_)
        ));
        assert_eq!(with_container(Verdict::Healthy, false, None), Verdict::Healthy);
    }
}
