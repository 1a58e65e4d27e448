//! Whether workers are healthy: the instance's state and checks plus the worker's own status.
//!
//! A worker writes `status/workers/<instance id>.json` about every 30 s. It is healthy when its
//! instance runs and its status is fresh and `idle` or `busy`. A worker still booting (no
//! status yet within the grace time, or `starting`) is starting, not unhealthy.

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::aws::{SdkResultExt, error_code};
use common::job::{WorkerState, WorkerStatus, worker_status_key};

use crate::s3;
use crate::workers::WorkerInstance;

/// A status older than this is stale: the worker stopped writing it.
pub const STALE_AFTER: Duration = Duration::from_secs(120);

/// The verdict on one worker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict", content = "reason")]
pub enum Verdict {
    /// Taking jobs.
    Healthy,
    /// Still coming up.
    Starting(String),
    /// Broken or gone.
    Unhealthy(String),
}

impl Verdict {
    /// The word shown in tables.
    pub fn word(&self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Starting(_) => "starting",
            Self::Unhealthy(_) => "unhealthy",
        }
    }
}

/// One worker: its instance, its status object and the verdict.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkerHealth {
    /// The instance.
    pub instance: WorkerInstance,
    /// Its status object, if it wrote one.
    pub status: Option<WorkerStatus>,
    /// Seconds since the status was written.
    pub status_age_seconds: Option<i64>,
    /// The verdict.
    pub verdict: Verdict,
}

/// How long a new instance may go without a status object before it counts as unhealthy.
#[derive(Debug, Clone, Copy)]
pub struct Grace(pub Duration);

impl Grace {
    /// Boot time allowed: the bootstrap installs the engine on a real instance; locally the
    /// runner starts in seconds.
    pub fn for_local(local: bool) -> Self {
        Self(if local { Duration::from_secs(120) } else { Duration::from_secs(20 * 60) })
    }
}

/// The status object of worker `id`, if it wrote one.
pub async fn read_status(
    s3: &s3::Client,
    bucket: &str,
    id: &str,
) -> anyhow::Result<Option<WorkerStatus>> {
    let key = worker_status_key(id);
    let out = match s3.get_object().bucket(bucket).key(&key).send().await {
        Ok(out) => out,
        Err(e) if error_code(&e).is_some_and(|c| c == "NoSuchKey" || c == "NotFound") => {
            return Ok(None);
        }
        Err(e) => return Err(e).aws_context(|| format!("failed to read `s3://{bucket}/{key}`")),
    };
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("failed to read `s3://{bucket}/{key}`: {e}"))?
        .into_bytes();
    match serde_json::from_slice(&bytes) {
        Ok(status) => Ok(Some(status)),
        Err(e) => {
            tracing::warn!("`s3://{bucket}/{key}` is not a worker status: {e}");
            Ok(None)
        }
    }
}

/// Judges one worker at `now`.
pub fn evaluate(
    instance: &WorkerInstance,
    status: Option<&WorkerStatus>,
    now: DateTime<Utc>,
    grace: Grace,
) -> Verdict {
    match instance.state.as_str() {
        "running" => {}
        "pending" => return Verdict::Starting("instance pending".into()),
        other => return Verdict::Unhealthy(format!("instance {other}")),
    }
    if instance.status_checks.as_deref().is_some_and(|c| c.contains("impaired")) {
        return Verdict::Unhealthy("EC2 status checks impaired".into());
    }
    let Some(status) = status else {
        let age = instance.launched_at.as_deref().and_then(|t| t.parse::<DateTime<Utc>>().ok());
        let booted = age.map_or(Duration::ZERO, |t| (now - t).to_std().unwrap_or_default());
        return if booted <= grace.0 {
            Verdict::Starting("no worker status yet".into())
        } else {
            Verdict::Unhealthy(format!(
                "no worker status {} min after launch",
                booted.as_secs() / 60
            ))
        };
    };
    let age = (now - status.last_seen).to_std().unwrap_or_default();
    let reason = status.reason.clone().unwrap_or_default();
    match status.state {
        WorkerState::Idle | WorkerState::Busy if age <= STALE_AFTER => Verdict::Healthy,
        WorkerState::Starting if age <= STALE_AFTER => {
            Verdict::Starting("loading the model".into())
        }
        WorkerState::Idle | WorkerState::Busy | WorkerState::Starting => {
            Verdict::Unhealthy(format!("status not written for {} s", age.as_secs()))
        }
        WorkerState::Failed => Verdict::Unhealthy(format!("worker failed: {reason}")),
        state => {
            Verdict::Unhealthy(format!("worker {} {reason}", state.as_str()).trim().to_string())
        }
    }
}

/// Reads every worker's status and judges it.
pub async fn check_workers(
    s3: &s3::Client,
    bucket: &str,
    instances: Vec<WorkerInstance>,
    grace: Grace,
) -> anyhow::Result<Vec<WorkerHealth>> {
    let now = Utc::now();
    let mut out = Vec::new();
    for instance in instances {
        let status = read_status(s3, bucket, &instance.instance_id).await?;
        let verdict = evaluate(&instance, status.as_ref(), now, grace);
        let status_age_seconds = status.as_ref().map(|s| (now - s.last_seen).num_seconds());
        out.push(WorkerHealth { instance, status, status_age_seconds, verdict });
    }
    Ok(out)
}

/// The table of workers for reports.
pub fn table(workers: &[WorkerHealth]) -> String {
    let mut rows = vec![
        [
            "instance",
            "name",
            "instance state",
            "status age",
            "worker",
            "done/failed",
            "version",
            "verdict",
        ]
        .map(str::to_string),
    ];
    for w in workers {
        let s = w.status.as_ref();
        rows.push([
            w.instance.instance_id.clone(),
            w.instance.name.clone(),
            match &w.instance.status_checks {
                Some(checks) => format!("{} ({checks})", w.instance.state),
                None => w.instance.state.clone(),
            },
            w.status_age_seconds.map_or("-".into(), |a| format!("{a} s")),
            s.map_or("-".into(), |s| s.state.as_str().to_string()),
            s.map_or("-".into(), |s| format!("{}/{}", s.jobs_done, s.jobs_failed)),
            s.map_or("-".into(), |s| s.version.clone()),
            match &w.verdict {
                Verdict::Healthy => "healthy".to_string(),
                Verdict::Starting(r) | Verdict::Unhealthy(r) => {
                    format!("{}: {r}", w.verdict.word())
                }
            },
        ]);
    }
    let widths: Vec<usize> =
        (0..8).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> =
                r.iter().zip(&widths).map(|(cell, w)| format!("{cell:w$}")).collect();
            format!("  {}\n", cells.join("  ").trim_end())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(state: &str) -> WorkerInstance {
        WorkerInstance {
            instance_id: "i-1".into(),
            name: "p-worker-1".into(),
            state: state.into(),
            instance_type: "g5.xlarge".into(),
            zone: "us-east-2a".into(),
            lifecycle: "spot".into(),
            launched_at: Some("2026-01-01T00:00:00Z".into()),
            status_checks: None,
        }
    }

    fn status(state: WorkerState, last_seen: DateTime<Utc>) -> WorkerStatus {
        WorkerStatus {
            worker_id: "i-1".into(),
            state,
            current_job: None,
            jobs_done: 3,
            jobs_failed: 1,
            started_at: last_seen,
            last_seen,
            engine: "faster-whisper".into(),
            model: "tiny.en".into(),
            device: "cpu".into(),
            gpu: None,
            version: "0.1.0".into(),
            host: None,
            reason: None,
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("time")
    }

    #[test]
    fn fresh_idle_status_on_a_running_instance_is_healthy() {
        let now = at("2026-01-01T00:10:00Z");
        let s = status(WorkerState::Idle, at("2026-01-01T00:09:40Z"));
        assert_eq!(
            evaluate(&instance("running"), Some(&s), now, Grace::for_local(true)),
            Verdict::Healthy
        );
    }

    #[test]
    fn stale_status_is_unhealthy_with_its_age() {
        let now = at("2026-01-01T00:10:00Z");
        let s = status(WorkerState::Busy, at("2026-01-01T00:05:00Z"));
        let verdict = evaluate(&instance("running"), Some(&s), now, Grace::for_local(true));
        assert_eq!(verdict, Verdict::Unhealthy("status not written for 300 s".into()));
    }

    #[test]
    fn missing_status_is_starting_within_grace_then_unhealthy() {
        let grace = Grace(Duration::from_secs(600));
        let early = evaluate(&instance("running"), None, at("2026-01-01T00:05:00Z"), grace);
        assert!(matches!(early, Verdict::Starting(_)), "{early:?}");
        let late = evaluate(&instance("running"), None, at("2026-01-01T00:30:00Z"), grace);
        assert!(matches!(late, Verdict::Unhealthy(ref r) if r.contains("30 min")), "{late:?}");
    }

    #[test]
    fn terminated_instance_and_failed_worker_are_unhealthy() {
        let now = at("2026-01-01T00:10:00Z");
        let gone = evaluate(&instance("terminated"), None, now, Grace::for_local(true));
        assert_eq!(gone, Verdict::Unhealthy("instance terminated".into()));
        let mut s = status(WorkerState::Failed, now);
        s.reason = Some("self-test failed".into());
        let failed = evaluate(&instance("running"), Some(&s), now, Grace::for_local(true));
        assert_eq!(failed, Verdict::Unhealthy("worker failed: self-test failed".into()));
    }

    #[test]
    fn table_lists_jobs_and_version() {
        let now = at("2026-01-01T00:10:00Z");
        let s = status(WorkerState::Idle, now);
        let w = WorkerHealth {
            instance: instance("running"),
            status: Some(s),
            status_age_seconds: Some(4),
            verdict: Verdict::Healthy,
        };
        let text = table(&[w]);
        assert!(text.contains("i-1") && text.contains("3/1") && text.contains("0.1.0"), "{text}");
    }
}
