//! LOCAL MODE ONLY: the local runner, which stands in for what the bootstrap does on a real
//! instance. Nothing here runs against AWS.
//!
//! Against the local emulator, instances are launched as in the cloud but never boot. The
//! runner then does for each instance id what the bootstrap would: fetch the bundle `current`
//! points at, verify its sums, and start the real `transcription-worker` with the same
//! settings and that instance id as its worker id (faster-whisper on the CPU, the model from
//! the settings). Its pid and log live in `<project>/.local/runners/<instance id>.json|.log`;
//! the bundles it ran in `.local/runners/bundles/<version>/`.
//!
//! Every entry point refuses settings that are not local, so this can never start a process
//! for a real instance.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use common::settings::Env;
use common::{HintExt, Project, Settings};

use crate::bundle;
use crate::s3;

/// A runner as recorded in its pid file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Runner {
    /// The emulator's instance id, also the worker id.
    pub instance_id: String,
    /// Process id of the worker.
    pub pid: u32,
    /// Bundle version it runs.
    pub bundle_version: String,
    /// Its log file.
    pub log: PathBuf,
    /// When it was started (RFC 3339).
    pub started_at: String,
}

/// What [`start`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// A new process.
    New,
    /// One was already running for the instance.
    AlreadyRunning,
}

/// The folder of runner pid and log files.
pub fn runners_dir(project: &Project) -> PathBuf {
    project.local_dir().join("runners")
}

fn pid_file(project: &Project, instance_id: &str) -> PathBuf {
    runners_dir(project).join(format!("{instance_id}.json"))
}

/// The log file of the runner for `instance_id`.
pub fn log_file(project: &Project, instance_id: &str) -> PathBuf {
    runners_dir(project).join(format!("{instance_id}.log"))
}

fn ensure_local(settings: &Settings) -> anyhow::Result<()> {
    if settings.is_local() {
        Ok(())
    } else {
        Err(anyhow::anyhow!("the local runner only runs against a local emulator"))
            .hint("real instances start their worker from the bootstrap in their user data")
    }
}

/// The runner recorded for `instance_id`, if its process is still alive.
pub fn running(project: &Project, instance_id: &str) -> Option<Runner> {
    let text = std::fs::read_to_string(pid_file(project, instance_id)).ok()?;
    let runner: Runner = serde_json::from_str(&text).ok()?;
    is_alive(runner.pid).then_some(runner)
}

/// Every recorded runner and whether it is alive.
pub fn list(project: &Project) -> Vec<(Runner, bool)> {
    let Ok(entries) = std::fs::read_dir(runners_dir(project)) else { return Vec::new() };
    let mut out: Vec<(Runner, bool)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|t| serde_json::from_str::<Runner>(&t).ok())
        .map(|r| {
            let alive = is_alive(r.pid);
            (r, alive)
        })
        .collect();
    out.sort_by(|a, b| a.0.instance_id.cmp(&b.0.instance_id));
    out
}

/// Whether `pid` is a live (not zombie) worker process.
fn is_alive(pid: u32) -> bool {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let stat = std::fs::read_to_string(proc.join("stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
    let cmdline = std::fs::read(proc.join("cmdline")).unwrap_or_default();
    let is_worker = String::from_utf8_lossy(&cmdline).contains(bundle::WORKER_BINARY);
    is_worker && state.is_some_and(|s| s != 'Z' && s != 'X')
}

/// Starts the worker for `instance_id` from the bundle `current` points at, unless one runs.
pub async fn start(
    project: &Project,
    settings: &Settings,
    env: &Env,
    s3: &s3::Client,
    instance_id: &str,
) -> anyhow::Result<(Runner, Started)> {
    ensure_local(settings)?;
    if let Some(runner) = running(project, instance_id) {
        return Ok((runner, Started::AlreadyRunning));
    }
    let version = bundle::read_current(s3, &settings.bucket)
        .await?
        .context("no worker bundle in the bucket (`bundles/current` is missing)")
        .hint("run ./scripts/step-110-deploy-worker-code.sh first")?;
    let dir = runners_dir(project).join("bundles").join(&version);
    bundle::fetch(s3, &settings.bucket, &version, &dir).await?;
    let runner = spawn(project, settings, env, instance_id, &version, &dir)?;
    let text = serde_json::to_string_pretty(&runner)?;
    common::dotenv::write_atomically(&pid_file(project, instance_id), &text)
        .context("failed to write the runner's pid file")?;
    Ok((runner, Started::New))
}

fn spawn(
    project: &Project,
    settings: &Settings,
    env: &Env,
    instance_id: &str,
    version: &str,
    dir: &Path,
) -> anyhow::Result<Runner> {
    std::fs::create_dir_all(runners_dir(project))?;
    let log = log_file(project, instance_id);
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("failed to open `{}`", log.display()))?;
    let err = out.try_clone()?;
    let binary = dir.join(bundle::WORKER_BINARY);
    let mut command = Command::new(&binary);
    command
        .current_dir(&project.root)
        .env_clear()
        .envs(passthrough(env))
        .envs(crate::userdata::worker_environment(settings, deployment_path(env)))
        .env("FLEET_ROOT", &project.root)
        .env("FLEET_WORKER_ID", instance_id)
        .env("FLEET_BUNDLE_VERSION", version)
        .env("FLEET_ENGINE_SCRIPT", dir.join(bundle::ENGINE_SCRIPT))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let venv_python = project.root.join(".venv/bin/python");
    if !env.contains_key("FLEET_PYTHON") && venv_python.exists() {
        command.env("FLEET_PYTHON", venv_python);
    }
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child =
        command.spawn().with_context(|| format!("failed to start `{}`", binary.display()))?;
    Ok(Runner {
        instance_id: instance_id.to_string(),
        pid: child.id(),
        bundle_version: version.to_string(),
        log,
        started_at: chrono::Utc::now().to_rfc3339(),
    })
}

/// Variables the worker process keeps from the step's environment.
fn passthrough(env: &Env) -> Vec<(String, String)> {
    let keep = |k: &str| {
        matches!(k, "PATH" | "HOME" | "LANG" | "RUST_LOG" | "TMPDIR")
            || k.starts_with("FLEET_")
            || k.starts_with("AWS_ACCESS_KEY")
            || k.starts_with("AWS_SECRET")
            || k.starts_with("HF_")
    };
    let mut vars: Vec<(String, String)> =
        env.iter().filter(|(k, _)| keep(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    if !env.contains_key("PATH") {
        vars.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
    }
    vars
}

fn deployment_path(env: &Env) -> common::deployment_path::DeploymentPath {
    match env.get("FLEET_DEPLOYMENT_PATH").map(String::as_str) {
        Some("docker") => common::deployment_path::DeploymentPath::Docker,
        _ => common::deployment_path::DeploymentPath::Traditional,
    }
}

/// Stops the runner of `instance_id` (SIGTERM, then SIGKILL after `grace`); `false` if none ran.
pub fn stop(project: &Project, instance_id: &str, grace: Duration) -> anyhow::Result<bool> {
    let path = pid_file(project, instance_id);
    let Some(runner) = running(project, instance_id) else {
        let _ = std::fs::remove_file(&path);
        return Ok(false);
    };
    signal(runner.pid, "TERM")?;
    let started = Instant::now();
    while is_alive(runner.pid) && started.elapsed() < grace {
        std::thread::sleep(Duration::from_millis(50));
    }
    if is_alive(runner.pid) {
        signal(runner.pid, "KILL")?;
    }
    let _ = std::fs::remove_file(&path);
    Ok(true)
}

/// Stops every runner of the project; returns the instance ids stopped.
pub fn stop_all(project: &Project, grace: Duration) -> Vec<String> {
    list(project)
        .into_iter()
        .filter_map(|(r, _)| {
            stop(project, &r.instance_id, grace).ok().filter(|s| *s).map(|_| r.instance_id)
        })
        .collect()
}

/// Restarts the runner of `instance_id` on the bundle `current` points at now.
pub async fn restart(
    project: &Project,
    settings: &Settings,
    env: &Env,
    s3: &s3::Client,
    instance_id: &str,
) -> anyhow::Result<Runner> {
    ensure_local(settings)?;
    stop(project, instance_id, Duration::from_secs(20))?;
    Ok(start(project, settings, env, s3, instance_id).await?.0)
}

fn signal(pid: u32, name: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("failed to run `kill`")?;
    if status.success() || !is_alive(pid) {
        Ok(())
    } else {
        anyhow::bail!("failed to send SIG{name} to worker process {pid}")
    }
}

/// The last `lines` lines of a runner's log, for error messages.
pub fn log_tail(project: &Project, instance_id: &str, lines: usize) -> String {
    let text = std::fs::read_to_string(log_file(project, instance_id)).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
