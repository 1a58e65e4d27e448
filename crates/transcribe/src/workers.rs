//! `transcribe workers`: the status objects under `status/workers/`.

use anyhow::Context as _;
use chrono::Utc;
use common::aws::SdkResultExt;
use common::job::{WORKER_STATUS_PREFIX, WorkerState, WorkerStatus};
use common::{Mark, Report};

use crate::Fleet;

/// A worker not heard from for this long is reported as silent (it refreshes every 30 s).
const SILENT_AFTER_SECONDS: i64 = 120;

/// Reports one line per worker.
pub async fn list(fleet: &Fleet, report: &mut Report) -> anyhow::Result<()> {
    let bucket = &fleet.settings.bucket;
    let mut statuses = Vec::new();
    let mut pages = fleet
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(WORKER_STATUS_PREFIX)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.aws_context(|| format!("failed to list `s3://{bucket}/{WORKER_STATUS_PREFIX}`"))?;
        for key in page.contents().iter().filter_map(|o| o.key()) {
            let out = fleet
                .s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .aws_context(|| format!("failed to read `{key}`"))?;
            let bytes = out
                .body
                .collect()
                .await
                .with_context(|| format!("failed to read `{key}`"))?
                .into_bytes();
            match serde_json::from_slice::<WorkerStatus>(&bytes) {
                Ok(status) => statuses.push(status),
                Err(e) => tracing::warn!("`{key}` is not a worker status: {e}"),
            }
        }
    }
    statuses.sort_by_key(|s| std::cmp::Reverse(s.last_seen));
    for status in &statuses {
        let (mark, detail) = describe(status);
        report.item(mark, status.worker_id.clone(), detail);
    }
    let live = statuses.iter().filter(|s| is_live(s)).count();
    report.summary = format!("{live} live worker(s), {} known", statuses.len());
    report.data = serde_json::json!({ "workers": statuses });
    Ok(())
}

fn is_live(status: &WorkerStatus) -> bool {
    !matches!(status.state, WorkerState::Stopped | WorkerState::Failed)
        && (Utc::now() - status.last_seen).num_seconds() < SILENT_AFTER_SECONDS
}

fn describe(status: &WorkerStatus) -> (Mark, String) {
    let age = (Utc::now() - status.last_seen).num_seconds().max(0);
    let job = status.current_job.as_deref().map(|j| format!(" {j}")).unwrap_or_default();
    let gpu = status.gpu.as_deref().unwrap_or(&status.device);
    let text = format!(
        "{}{job}  done {} failed {}  {} {} on {gpu}  v{}  seen {age} s ago",
        status.state.as_str(),
        status.jobs_done,
        status.jobs_failed,
        status.engine,
        status.model,
        status.version
    );
    let mark = match status.state {
        WorkerState::Failed => Mark::Problem,
        WorkerState::Stopped => Mark::Info,
        _ if !is_live(status) => Mark::Problem,
        _ => Mark::Passed,
    };
    let text = match (&status.reason, mark) {
        (Some(reason), Mark::Problem | Mark::Info) => format!("{text}  ({reason})"),
        _ if mark == Mark::Problem => format!("{text}  (silent: no update for {age} s)"),
        _ => text,
    };
    (mark, text)
}
