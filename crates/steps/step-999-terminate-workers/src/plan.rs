//! Finding this deployment's workers, their spot requests, runners and containers, and ending
//! them in the order that keeps nothing coming back.

use std::time::Duration;

use common::aws::SdkResultExt;
use common::containers::{self, Container};
use common::deployment_path::DeploymentPath;
use common::ui::Ui;
use common::{Context, Mark, Report, Settings, tags};
use fleet::ec2;
use fleet::ec2::client::Waiters as _;
use fleet::ec2::types::Filter;
use fleet::local::Runner;

use crate::PathFilter;

/// Instance states that still cost money or may come back.
const NOT_TERMINATED: &[&str] = &["pending", "running", "shutting-down", "stopping", "stopped"];
/// Spot request states that can still launch an instance.
const OPEN_REQUESTS: &[&str] = &["open", "active", "disabled"];
/// Time a local runner gets to exit after SIGTERM.
const RUNNER_GRACE: Duration = Duration::from_secs(10);

/// An instance tagged as this deployment's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    /// Instance id.
    pub instance_id: String,
    /// Name tag.
    pub name: String,
    /// EC2 state.
    pub state: String,
    /// `DeploymentPath` tag, `-` when missing.
    pub path: String,
    /// The spot request that launched it, when EC2 names one.
    pub spot_request: Option<String>,
}

/// Everything the step would end.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Workers to terminate.
    pub workers: Vec<Worker>,
    /// Spot requests to cancel.
    pub spot_requests: Vec<String>,
    /// Live local runners to stop (local mode).
    pub runners: Vec<Runner>,
    /// Labelled containers to remove (local mode).
    pub containers: Vec<Container>,
    /// `--instance-id` values that are not workers of this deployment; left alone.
    pub refused: Vec<String>,
    /// Things worth saying (e.g. Docker not available to list containers).
    pub notes: Vec<String>,
}

/// What [`execute`] ended.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Instance ids terminated.
    pub terminated: Vec<String>,
    /// Spot requests cancelled.
    pub cancelled: Vec<String>,
    /// Instance ids whose local runner was stopped.
    pub runners: Vec<String>,
    /// Containers removed.
    pub containers: Vec<String>,
}

impl Plan {
    /// Whether there is nothing to end.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
            && self.spot_requests.is_empty()
            && self.runners.is_empty()
            && self.containers.is_empty()
    }

    /// The ids of the workers.
    pub fn instance_ids(&self) -> Vec<String> {
        self.workers.iter().map(|w| w.instance_id.clone()).collect()
    }

    /// E.g. `2 worker(s), 1 local runner(s)`.
    pub fn count_text(&self) -> String {
        let parts = [
            (self.workers.len(), "worker(s)"),
            (self.spot_requests.len(), "spot request(s)"),
            (self.runners.len(), "local runner(s)"),
            (self.containers.len(), "container(s)"),
        ];
        let text: Vec<String> =
            parts.iter().filter(|(n, _)| *n > 0).map(|(n, what)| format!("{n} {what}")).collect();
        if text.is_empty() { "nothing".to_string() } else { text.join(", ") }
    }

    /// One `(label, detail, verb)` per thing to end.
    pub fn lines(&self) -> Vec<(&'static str, String, &'static str)> {
        let mut lines = Vec::new();
        for w in &self.workers {
            let detail = format!("{} {} ({}, path {})", w.name, w.instance_id, w.state, w.path);
            lines.push(("worker", detail, "terminated"));
        }
        lines.extend(self.spot_requests.iter().map(|id| ("spot request", id.clone(), "cancelled")));
        for r in &self.runners {
            lines.push(("local runner", format!("{} (pid {})", r.instance_id, r.pid), "stopped"));
        }
        for c in &self.containers {
            lines.push(("container", format!("{} ({})", c.name, c.state), "removed"));
        }
        lines
    }
}

fn filter(name: &str, values: &[&str]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
        .build()
}

fn ours(settings: &Settings) -> [Filter; 2] {
    [
        filter(&format!("tag:{}", tags::PROJECT), &[&settings.project]),
        filter(&format!("tag:{}", tags::ENVIRONMENT), &[&settings.environment]),
    ]
}

/// Finds the workers of `path` (all of them with [`PathFilter::All`]), narrowed to `only`
/// when ids are given, with their spot requests and, in local mode, runners and containers.
pub async fn find(
    ctx: &Context,
    settings: &Settings,
    ec2: &ec2::Client,
    path: PathFilter,
    only: &[String],
) -> anyhow::Result<Plan> {
    let mut plan =
        Plan { workers: tagged_instances(ec2, settings, path.path()).await?, ..Default::default() };
    if !only.is_empty() {
        plan.refused = only
            .iter()
            .filter(|id| !plan.workers.iter().any(|w| &&w.instance_id == id))
            .cloned()
            .collect();
        plan.workers.retain(|w| only.contains(&w.instance_id));
    }
    let by_tags = only.is_empty();
    plan.spot_requests = spot_requests(ec2, settings, path.path(), &plan.workers, by_tags).await?;
    if settings.is_local() {
        let ids = plan.instance_ids();
        let everything = by_tags && path == PathFilter::All;
        plan.runners = fleet::local::list(&ctx.project)
            .into_iter()
            .filter(|(r, alive)| *alive && (everything || ids.contains(&r.instance_id)))
            .map(|(r, _)| r)
            .collect();
        match containers::list(&ctx.env, settings, path.path()).await {
            Ok(mut found) => {
                if !by_tags {
                    found.retain(|c| c.worker_id.as_ref().is_some_and(|w| only.contains(w)));
                }
                plan.containers = found;
            }
            Err(e) => plan.notes.push(format!("containers not checked: {e:#}")),
        }
    }
    Ok(plan)
}

/// Instances with the deployment's tags (and path tag) that are not terminated.
pub async fn tagged_instances(
    ec2: &ec2::Client,
    settings: &Settings,
    path: Option<DeploymentPath>,
) -> anyhow::Result<Vec<Worker>> {
    let mut request =
        ec2.describe_instances().filters(filter("instance-state-name", NOT_TERMINATED));
    for f in ours(settings) {
        request = request.filters(f);
    }
    if let Some(path) = path {
        request = request.filters(filter(&format!("tag:{}", fleet::PATH_TAG), &[path.as_str()]));
    }
    let mut workers = Vec::new();
    let mut pages = request.into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.aws_context(|| "failed to list the worker instances".to_string())?;
        for instance in page.reservations().iter().flat_map(|r| r.instances()) {
            workers.push(worker_of(instance));
        }
    }
    workers.sort_by(|a, b| (&a.name, &a.instance_id).cmp(&(&b.name, &b.instance_id)));
    Ok(workers)
}

fn worker_of(i: &ec2::types::Instance) -> Worker {
    let tag = |key: &str| {
        i.tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value()).map(str::to_string)
    };
    Worker {
        instance_id: i.instance_id().unwrap_or_default().to_string(),
        name: tag(fleet::NAME_TAG).unwrap_or_else(|| "(no name)".to_string()),
        state: i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default(),
        path: tag(fleet::PATH_TAG).unwrap_or_else(|| "-".to_string()),
        spot_request: i.spot_instance_request_id().filter(|s| !s.is_empty()).map(str::to_string),
    }
}

/// Spot requests named by `workers`, plus (with `by_tags`) open requests tagged as ours.
async fn spot_requests(
    ec2: &ec2::Client,
    settings: &Settings,
    path: Option<DeploymentPath>,
    workers: &[Worker],
    by_tags: bool,
) -> anyhow::Result<Vec<String>> {
    let mut ids: Vec<String> = workers.iter().filter_map(|w| w.spot_request.clone()).collect();
    if by_tags {
        let mut request =
            ec2.describe_spot_instance_requests().filters(filter("state", OPEN_REQUESTS));
        for f in ours(settings) {
            request = request.filters(f);
        }
        if let Some(path) = path {
            request =
                request.filters(filter(&format!("tag:{}", fleet::PATH_TAG), &[path.as_str()]));
        }
        let out =
            request.send().await.aws_context(|| "failed to list the spot requests".to_string())?;
        ids.extend(
            out.spot_instance_requests()
                .iter()
                .filter_map(|r| r.spot_instance_request_id())
                .map(str::to_string),
        );
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Puts the plan in the report (dry run) or on stderr, and the refused ids in the report.
pub fn show(ui: &Ui, plan: &Plan, dry_run: bool, report: &mut Report) {
    for (label, detail, verb) in plan.lines() {
        if dry_run {
            report.item(Mark::Skipped, label, format!("{detail}: would be {verb} (dry run)"));
        } else {
            ui.note(&format!("{label} {detail}: to be {verb}"));
        }
    }
    for id in &plan.refused {
        report.item(
            Mark::Problem,
            "worker",
            format!("{id} is not a live worker of this deployment (Project/Environment tags); left alone"),
        );
    }
    for note in &plan.notes {
        report.item(Mark::Info, "containers", note);
    }
}

/// Cancels the spot requests, terminates the workers and waits, then stops runners and
/// containers, reporting each as deleted.
pub async fn execute(
    ctx: &Context,
    settings: &Settings,
    ec2: &ec2::Client,
    plan: &Plan,
    timeout: Duration,
    report: &mut Report,
) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::default();

    // A persistent spot request would replace a terminated worker, so requests end first.
    if !plan.spot_requests.is_empty() {
        ec2.cancel_spot_instance_requests()
            .set_spot_instance_request_ids(Some(plan.spot_requests.clone()))
            .send()
            .await
            .aws_context(|| {
                format!("failed to cancel spot requests `{}`", plan.spot_requests.join("`, `"))
            })?;
        for id in &plan.spot_requests {
            report.item(Mark::Deleted, "spot request", format!("{id} cancelled"));
        }
        outcome.cancelled = plan.spot_requests.clone();
    }

    let ids = plan.instance_ids();
    if !ids.is_empty() {
        ec2.terminate_instances()
            .set_instance_ids(Some(ids.clone()))
            .send()
            .await
            .aws_context(|| format!("failed to terminate `{}`", ids.join("`, `")))?;
        wait_for_terminated(ec2, &ids, timeout, &ctx.ui).await?;
        for w in &plan.workers {
            let detail = format!("{} {} (path {}) terminated", w.name, w.instance_id, w.path);
            report.item(Mark::Deleted, "worker", detail);
        }
        outcome.terminated = ids;
    }

    stop_local(ctx, settings, plan, report, &mut outcome).await;
    Ok(outcome)
}

/// Waits with a spinner until every instance in `ids` is terminated.
pub async fn wait_for_terminated(
    ec2: &ec2::Client,
    ids: &[String],
    timeout: Duration,
    ui: &Ui,
) -> anyhow::Result<()> {
    let spinner = ui.spinner(&format!("waiting for {} to terminate", ids.join(", ")));
    let waited = ec2
        .wait_until_instance_terminated()
        .set_instance_ids(Some(ids.to_vec()))
        .wait(timeout)
        .await;
    match waited {
        Ok(_) => {
            spinner.finish(&format!("{} terminated", ids.join(", ")));
            Ok(())
        }
        Err(e) => {
            spinner.finish("stopped waiting");
            Err(anyhow::anyhow!("{e}")).map_err(|e| {
                e.context(format!(
                    "workers `{}` did not reach `terminated` in {} s",
                    ids.join("`, `"),
                    timeout.as_secs()
                ))
            })
        }
    }
}

/// LOCAL MODE ONLY: stops the runners and removes the containers of the plan.
async fn stop_local(
    ctx: &Context,
    settings: &Settings,
    plan: &Plan,
    report: &mut Report,
    outcome: &mut Outcome,
) {
    if !settings.is_local() {
        return;
    }
    for runner in &plan.runners {
        let detail = format!("{} (pid {})", runner.instance_id, runner.pid);
        match fleet::local::stop(&ctx.project, &runner.instance_id, RUNNER_GRACE) {
            Ok(_) => {
                report.item(Mark::Deleted, "local runner", format!("{detail} stopped"));
                outcome.runners.push(runner.instance_id.clone());
            }
            Err(e) => {
                report.item(Mark::Problem, "local runner", format!("{detail}: {e:#}"));
            }
        }
    }
    for container in &plan.containers {
        match containers::remove(&ctx.env, &container.id).await {
            Ok(()) => {
                report.item(Mark::Deleted, "container", format!("{} removed", container.name));
                outcome.containers.push(container.name.clone());
            }
            Err(e) => {
                report.item(Mark::Problem, "container", format!("{}: {e:#}", container.name));
            }
        }
    }
}
