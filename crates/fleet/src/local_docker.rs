//! LOCAL MODE ONLY: runs the worker image on the local Docker engine for an instance the
//! emulator launched, as the Path B bootstrap would on a real instance.
//!
//! The container is named `<prefix>-worker-<instance id>` and carries the labels of
//! [`common::containers::labels`] (project, environment, path, instance id), so teardown finds
//! it. It uses the host's network (`--network host`, measured to work with Debian's 20.10
//! engine), so the worker reaches the emulator and the local registry on 127.0.0.1 exactly as
//! the steps do. Its settings go in an env file `<project>/.local/containers/<id>.env` (0600).
//!
//! Every entry point refuses settings that are not local.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use common::containers::{program, run as docker};
use common::deployment_path::DeploymentPath;
use common::settings::Env;
use common::{HintExt, Project, Settings};
use tokio::process::Command;

use crate::docker_path;

/// Time allowed for one quick `docker` call.
const QUICK: Duration = Duration::from_secs(60);

/// The state of a worker container, from `docker inspect`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContainerState {
    /// Container name.
    pub name: String,
    /// `created`, `running`, `exited`, ...
    pub status: String,
    /// The HEALTHCHECK's verdict: `starting`, `healthy`, `unhealthy`; `None` without one.
    pub health: Option<String>,
    /// Exit code once it stopped.
    pub exit_code: Option<i64>,
    /// The image reference it was started from.
    pub image: String,
}

/// What [`run`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// A new container.
    New,
    /// One was already running for the instance.
    AlreadyRunning,
}

fn ensure_local(settings: &Settings) -> anyhow::Result<()> {
    if settings.is_local() {
        Ok(())
    } else {
        Err(anyhow::anyhow!("local containers only run against a local emulator"))
            .hint("real instances start their container from the bootstrap in their user data")
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// The env file of the container for `instance_id`.
pub fn env_file(project: &Project, instance_id: &str) -> PathBuf {
    project.local_dir().join("containers").join(format!("{instance_id}.env"))
}

/// The worker's environment inside the container: the shared worker settings, the emulator's
/// credentials from the step's environment, the instance id as worker id.
pub fn container_environment(
    settings: &Settings,
    env: &Env,
    instance_id: &str,
) -> Vec<(String, String)> {
    let mut vars = crate::userdata::worker_environment(settings, DeploymentPath::Docker);
    let keep = |k: &str| {
        matches!(k, "RUST_LOG" | "AWS_SESSION_TOKEN" | "FLEET_ENGINE_THREADS")
            || k.starts_with("AWS_ACCESS_KEY")
            || k.starts_with("AWS_SECRET")
    };
    let mut passed: Vec<(String, String)> =
        env.iter().filter(|(k, _)| keep(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    passed.sort();
    vars.extend(passed);
    vars.push(("FLEET_WORKER_ID".into(), instance_id.to_string()));
    vars
}

/// `KEY=value` lines for `docker run --env-file` (values are taken literally).
pub fn env_file_text(vars: &[(String, String)]) -> anyhow::Result<String> {
    let mut out = String::new();
    for (key, value) in vars {
        if value.contains(['\n', '\r']) {
            anyhow::bail!("the value of {key} holds a line break");
        }
        out.push_str(&format!("{key}={value}\n"));
    }
    Ok(out)
}

/// The `docker run` arguments for the worker container of `instance_id`.
pub fn run_args(
    settings: &Settings,
    image: &str,
    instance_id: &str,
    env_file: &str,
) -> Vec<String> {
    let mut args = strings(&["run", "--detach", "--restart", "no", "--network", "host"]);
    args.extend(["--name".into(), docker_path::container_name(settings, instance_id)]);
    for label in common::containers::labels(settings, DeploymentPath::Docker, instance_id) {
        args.extend(["--label".into(), label]);
    }
    args.extend(["--env-file".into(), env_file.to_string()]);
    // The health check runs every 30 s in the image; locally the model loads in seconds.
    args.extend(strings(&["--health-interval", "5s", "--health-start-period", "60s"]));
    args.push(image.to_string());
    args
}

/// State of container `name`, `None` when there is none.
pub async fn state(env: &Env, name: &str) -> anyhow::Result<Option<ContainerState>> {
    let args = strings(&["container", "inspect", "--format", "{{json .}}", name]);
    let text = match docker(env, &args, QUICK).await {
        Ok(text) => text,
        Err(e) if format!("{e:#}").contains("No such") => return Ok(None),
        Err(e) => return Err(e.context(format!("failed to inspect container `{name}`"))),
    };
    parse_state(name, &text).map(Some)
}

fn parse_state(name: &str, text: &str) -> anyhow::Result<ContainerState> {
    let value: serde_json::Value =
        serde_json::from_str(text).context("`docker inspect` did not print JSON")?;
    let s = &value["State"];
    Ok(ContainerState {
        name: name.to_string(),
        status: s["Status"].as_str().unwrap_or("unknown").to_string(),
        health: s["Health"]["Status"].as_str().map(str::to_string),
        exit_code: s["Status"].as_str().filter(|st| *st == "exited").and(s["ExitCode"].as_i64()),
        image: value["Config"]["Image"].as_str().unwrap_or_default().to_string(),
    })
}

/// Starts the worker container for `instance_id` from `image`, unless one is running.
/// A stopped container of the same name is removed first.
pub async fn run(
    project: &Project,
    settings: &Settings,
    env: &Env,
    image: &str,
    instance_id: &str,
) -> anyhow::Result<(ContainerState, Started)> {
    ensure_local(settings)?;
    let name = docker_path::container_name(settings, instance_id);
    if let Some(found) = state(env, &name).await? {
        if found.status == "running" {
            return Ok((found, Started::AlreadyRunning));
        }
        remove(env, &name).await?;
    }
    let file = env_file(project, instance_id);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create `{}`", dir.display()))?;
    }
    let text = env_file_text(&container_environment(settings, env, instance_id))?;
    common::dotenv::write_atomically(&file, &text)
        .with_context(|| format!("failed to write `{}`", file.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
    }
    let args = run_args(settings, image, instance_id, &file.display().to_string());
    docker(env, &args, Duration::from_secs(300))
        .await
        .with_context(|| format!("failed to start container `{name}` from `{image}`"))
        .hint("check the image with `docker image ls` and the local registry (step-211)")?;
    let started = state(env, &name).await?.context("the container vanished after starting")?;
    Ok((started, Started::New))
}

/// Asks the worker in `name` to finish its current job, take no new one and exit.
pub async fn drain(env: &Env, name: &str) -> anyhow::Result<()> {
    let signal = format!("--signal={}", docker_path::DRAIN_SIGNAL);
    docker(env, &["kill".into(), signal, name.to_string()], QUICK)
        .await
        .with_context(|| format!("failed to ask container `{name}` to drain"))?;
    Ok(())
}

/// Waits until container `name` stopped; its exit code, `None` on timeout.
pub async fn wait_exit(env: &Env, name: &str, limit: Duration) -> anyhow::Result<Option<i64>> {
    let started = Instant::now();
    loop {
        match state(env, name).await? {
            Some(s) if s.status == "exited" || s.status == "dead" => {
                return Ok(s.exit_code.or(Some(-1)));
            }
            None => return Ok(Some(-1)),
            Some(_) if started.elapsed() >= limit => return Ok(None),
            Some(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// Stops (SIGTERM: the job in hand is released) and removes container `name`.
pub async fn stop(env: &Env, name: &str, grace: Duration) -> anyhow::Result<()> {
    let time = grace.as_secs().to_string();
    let _ =
        docker(env, &["stop".into(), "--time".into(), time, name.to_string()], grace + QUICK).await;
    remove(env, name).await
}

/// Removes container `name` (forced); no error when it is gone.
pub async fn remove(env: &Env, name: &str) -> anyhow::Result<()> {
    match docker(env, &strings(&["rm", "--force", name]), QUICK).await {
        Ok(_) => Ok(()),
        Err(e) if format!("{e:#}").contains("No such") => Ok(()),
        Err(e) => Err(e.context(format!("failed to remove container `{name}`"))),
    }
}

/// The last `lines` lines of the container's log, for error messages.
pub async fn log_tail(env: &Env, name: &str, lines: usize) -> String {
    let args = vec!["logs".into(), "--tail".into(), lines.to_string(), name.to_string()];
    let program = program(env);
    let out = Command::new(program).args(&args).stdin(Stdio::null()).output().await;
    out.map(|o| {
        let mut text = String::from_utf8_lossy(&o.stdout).to_string();
        text.push_str(&String::from_utf8_lossy(&o.stderr));
        text
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_output_gives_status_health_and_exit_code() {
        let text = r#"{"State":{"Status":"exited","ExitCode":64,"Health":{"Status":"healthy"}},
            "Config":{"Image":"127.0.0.1:5050/w@sha256:ab"}}"#;
        let s = parse_state("c", text).expect("state");
        assert_eq!(s.status, "exited");
        assert_eq!(s.exit_code, Some(64));
        assert_eq!(s.health.as_deref(), Some("healthy"));
        let running =
            parse_state("c", r#"{"State":{"Status":"running","ExitCode":0}}"#).expect("state");
        assert_eq!((running.exit_code, running.health), (None, None));
    }

    #[test]
    fn env_file_lines_are_literal_and_refuse_line_breaks() {
        let vars = vec![("A".to_string(), "x 'y'".to_string())];
        assert_eq!(env_file_text(&vars).expect("text"), "A=x 'y'\n");
        assert!(env_file_text(&[("B".to_string(), "a\nb".to_string())]).is_err());
    }
}
