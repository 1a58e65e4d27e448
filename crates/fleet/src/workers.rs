//! Finding workers by their tags, and waiting for them to run.
//!
//! Every worker carries the standard tags plus `Role=worker` and `DeploymentPath=<path>`, so
//! health checks, updates and teardown find them without a state file.

use std::time::Duration;

use common::Settings;
use common::aws::SdkResultExt;
use common::deployment_path::DeploymentPath;
use common::ui::Ui;

use crate::ec2;
use crate::ec2::client::Waiters as _;
use crate::ec2::types::Filter;

/// A worker instance as EC2 describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WorkerInstance {
    /// Instance id (also the worker id in its status object).
    pub instance_id: String,
    /// Its name tag.
    pub name: String,
    /// `pending`, `running`, `shutting-down`, ...
    pub state: String,
    /// Instance type.
    pub instance_type: String,
    /// Zone.
    pub zone: String,
    /// `spot` or `on-demand`.
    pub lifecycle: String,
    /// Launch time (RFC 3339), when known.
    pub launched_at: Option<String>,
    /// The status checks, when EC2 reports them: `ok`, `initializing`, `impaired`, ...
    pub status_checks: Option<String>,
}

impl WorkerInstance {
    /// Whether the instance is pending or running.
    pub fn is_live(&self) -> bool {
        matches!(self.state.as_str(), "pending" | "running")
    }
}

/// Live states, for filters.
pub const LIVE_STATES: &[&str] = &["pending", "running"];

fn filter(name: &str, values: &[&str]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
        .build()
}

/// Workers of `path` in `states` (all states when empty), ordered by name.
pub async fn find_workers(
    ec2: &ec2::Client,
    settings: &Settings,
    path: DeploymentPath,
    states: &[&str],
) -> anyhow::Result<Vec<WorkerInstance>> {
    let mut request = ec2
        .describe_instances()
        .filters(filter(&format!("tag:{}", common::tags::PROJECT), &[&settings.project]))
        .filters(filter(&format!("tag:{}", common::tags::ENVIRONMENT), &[&settings.environment]))
        .filters(filter(&format!("tag:{}", crate::ROLE_TAG), &[crate::ROLE_WORKER]))
        .filters(filter(&format!("tag:{}", crate::PATH_TAG), &[path.as_str()]));
    if !states.is_empty() {
        request = request.filters(filter("instance-state-name", states));
    }
    let mut workers = Vec::new();
    let mut pages = request.into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.aws_context(|| "failed to list the worker instances".to_string())?;
        for reservation in page.reservations() {
            workers.extend(reservation.instances().iter().map(worker_of));
        }
    }
    workers.sort_by(|a, b| {
        (natural(&a.name), &a.instance_id).cmp(&(natural(&b.name), &b.instance_id))
    });
    Ok(workers)
}

/// The workers `ids`, whatever their tags (for waiting on a launch).
pub async fn describe_workers(
    ec2: &ec2::Client,
    ids: &[String],
) -> anyhow::Result<Vec<WorkerInstance>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let out = ec2
        .describe_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .send()
        .await
        .aws_context(|| format!("failed to describe instances {}", ids.join(", ")))?;
    Ok(out.reservations().iter().flat_map(|r| r.instances().iter().map(worker_of)).collect())
}

fn natural(name: &str) -> (String, u64) {
    match name.rsplit_once('-') {
        Some((head, n)) => (head.to_string(), n.parse().unwrap_or(u64::MAX)),
        None => (name.to_string(), u64::MAX),
    }
}

fn worker_of(i: &ec2::types::Instance) -> WorkerInstance {
    let tag = |key: &str| {
        i.tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value()).map(str::to_string)
    };
    WorkerInstance {
        instance_id: i.instance_id().unwrap_or_default().to_string(),
        name: tag(crate::NAME_TAG).unwrap_or_default(),
        state: i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default(),
        instance_type: i.instance_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
        zone: i.placement().and_then(|p| p.availability_zone()).unwrap_or_default().to_string(),
        lifecycle: i
            .instance_lifecycle()
            .map_or("on-demand".to_string(), |l| l.as_str().to_string()),
        launched_at: i
            .launch_time()
            .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
        status_checks: None,
    }
}

/// Adds EC2's status checks (instance and system) to `workers`.
pub async fn add_status_checks(
    ec2: &ec2::Client,
    workers: &mut [WorkerInstance],
) -> anyhow::Result<()> {
    let ids: Vec<String> =
        workers.iter().filter(|w| w.state == "running").map(|w| w.instance_id.clone()).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let out = ec2
        .describe_instance_status()
        .set_instance_ids(Some(ids))
        .send()
        .await
        .aws_context(|| "failed to read the instances' status checks".to_string())?;
    for status in out.instance_statuses() {
        let word = |s: Option<&ec2::types::InstanceStatusSummary>| {
            s.and_then(|s| s.status()).map_or("unknown".to_string(), |s| s.as_str().to_string())
        };
        let (instance, system) = (word(status.instance_status()), word(status.system_status()));
        let checks = if instance == system { instance } else { format!("{instance}/{system}") };
        if let Some(w) =
            workers.iter_mut().find(|w| Some(w.instance_id.as_str()) == status.instance_id())
        {
            w.status_checks = Some(checks);
        }
    }
    Ok(())
}

/// The lowest free worker numbers: `count` names `<prefix>-worker-<n>` not used by `existing`.
pub fn next_names(settings: &Settings, existing: &[WorkerInstance], count: u32) -> Vec<String> {
    let taken: Vec<&str> = existing.iter().map(|w| w.name.as_str()).collect();
    (1..)
        .map(|n| crate::worker_name(settings, n))
        .filter(|n| !taken.contains(&n.as_str()))
        .take(count as usize)
        .collect()
}

/// Waits with a spinner until every instance in `ids` is running; fails if one ends instead.
pub async fn wait_for_running(
    ec2: &ec2::Client,
    ids: &[String],
    timeout: Duration,
    ui: &Ui,
) -> anyhow::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let spinner = ui.spinner(&format!("waiting for {} to run", ids.join(", ")));
    let result =
        ec2.wait_until_instance_running().set_instance_ids(Some(ids.to_vec())).wait(timeout).await;
    match result {
        Ok(_) => {
            spinner.finish(&format!("{} running", ids.join(", ")));
            Ok(())
        }
        Err(e) => {
            spinner.finish("stopped waiting");
            let states = describe_workers(ec2, ids).await.unwrap_or_default();
            let detail: Vec<String> =
                states.iter().map(|w| format!("{} is {}", w.instance_id, w.state)).collect();
            Err(anyhow::anyhow!("{e}")).map_err(|e| {
                e.context(format!("workers did not reach `running`: {}", detail.join(", ")))
            })
        }
    }
}
