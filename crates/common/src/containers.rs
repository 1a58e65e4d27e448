//! Local worker containers (Path B in local mode), found by the labels the project gives them.
//!
//! A container the project starts carries [`labels`]: the deployment's project and
//! environment, its path and its worker id. Teardown lists and removes only containers that
//! carry both the project and the environment label of the deployment, through the `docker`
//! command line (or `FLEET_DOCKER` from the environment snapshot).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use tokio::process::Command;

use crate::deployment_path::DeploymentPath;
use crate::settings::{Env, Settings};

/// Label naming the project.
pub const PROJECT_LABEL: &str = "fleet.project";
/// Label naming the environment.
pub const ENVIRONMENT_LABEL: &str = "fleet.environment";
/// Label naming the deployment path.
pub const PATH_LABEL: &str = "fleet.deployment-path";
/// Label naming the worker id (the instance id the container stands in for).
pub const WORKER_LABEL: &str = "fleet.worker-id";

/// Time allowed for one `docker` call.
const QUICK: Duration = Duration::from_secs(30);

/// A labelled container as `docker ps` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// Container id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `running`, `exited`, ...
    pub state: String,
    /// The worker id label, if set.
    pub worker_id: Option<String>,
}

/// The labels of a container for `worker_id` on `path`, as `key=value` pairs for `--label`.
pub fn labels(settings: &Settings, path: DeploymentPath, worker_id: &str) -> Vec<String> {
    vec![
        format!("{PROJECT_LABEL}={}", settings.project),
        format!("{ENVIRONMENT_LABEL}={}", settings.environment),
        format!("{PATH_LABEL}={}", path.as_str()),
        format!("{WORKER_LABEL}={worker_id}"),
    ]
}

/// The docker program: `FLEET_DOCKER`, else `docker` on the PATH.
pub fn program(env: &Env) -> PathBuf {
    env.get("FLEET_DOCKER").filter(|p| !p.is_empty()).map_or("docker".into(), PathBuf::from)
}

/// Runs `docker ARGS` within `limit` and returns its trimmed stdout; stderr becomes the error.
pub async fn run(env: &Env, args: &[String], limit: Duration) -> anyhow::Result<String> {
    let program = program(env);
    let run = Command::new(&program).args(args).stdin(Stdio::null()).kill_on_drop(true).output();
    let out = tokio::time::timeout(limit, run)
        .await
        .map_err(|_| anyhow::anyhow!("`docker {}` did not answer in {limit:?}", args[0]))?
        .with_context(|| format!("cannot run `{}`", program.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(anyhow::anyhow!("{stderr}").context(format!("`docker {}` failed", args[0])))
    }
}

/// The deployment's containers, running or not; `path` narrows them to one path.
pub async fn list(
    env: &Env,
    settings: &Settings,
    path: Option<DeploymentPath>,
) -> anyhow::Result<Vec<Container>> {
    let mut args: Vec<String> = vec!["ps".into(), "--all".into(), "--no-trunc".into()];
    let mut filters = vec![
        format!("{PROJECT_LABEL}={}", settings.project),
        format!("{ENVIRONMENT_LABEL}={}", settings.environment),
    ];
    filters.extend(path.map(|p| format!("{PATH_LABEL}={}", p.as_str())));
    for filter in filters {
        args.extend(["--filter".to_string(), format!("label={filter}")]);
    }
    let format =
        format!("{{{{.ID}}}}\t{{{{.Names}}}}\t{{{{.State}}}}\t{{{{.Label \"{WORKER_LABEL}\"}}}}");
    args.extend(["--format".to_string(), format]);
    let text = run(env, &args, QUICK).await.context("failed to list the worker containers")?;
    Ok(text.lines().filter_map(parse_line).collect())
}

fn parse_line(line: &str) -> Option<Container> {
    let mut parts = line.split('\t');
    let id = parts.next().filter(|id| !id.trim().is_empty())?.trim().to_string();
    let name = parts.next().unwrap_or_default().to_string();
    let state = parts.next().unwrap_or_default().to_string();
    let worker_id = parts.next().map(str::trim).filter(|w| !w.is_empty()).map(str::to_string);
    Some(Container { id, name, state, worker_id })
}

/// Stops and removes container `id`.
pub async fn remove(env: &Env, id: &str) -> anyhow::Result<()> {
    let args = ["rm".to_string(), "--force".to_string(), id.to_string()];
    run(env, &args, QUICK).await.with_context(|| format!("failed to remove container `{id}`"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_lines_become_containers() {
        let c = parse_line("abc\tworker-1\trunning\ti-0123").expect("container");
        assert_eq!(c.worker_id.as_deref(), Some("i-0123"));
        assert_eq!(c.state, "running");
        assert_eq!(parse_line("def\tw\texited\t").expect("c").worker_id, None);
        assert!(parse_line("").is_none());
    }
}
