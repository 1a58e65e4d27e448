//! The Docker engine through its command line: version, build with progress, tag, push, login.
//!
//! Every call runs the `docker` program (or `FLEET_DOCKER` from the environment snapshot) with
//! a bounded wait where the call should be quick. A missing program, a refused socket and a
//! stopped daemon are told apart, each with its fix ([`Docker::server_version`]). Passwords
//! reach `docker login` on stdin only, never on a command line or in a log.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use crate::cli::HintExt;
use crate::settings::{Env, Secret};

/// The oldest engine the steps support (`--add-host host-gateway`, cgroup v2 support).
pub const MIN_ENGINE_VERSION: (u32, u32) = (20, 10);

/// Time allowed for quick engine calls (version, inspect, tag, login).
const QUICK: Duration = Duration::from_secs(30);

/// The `docker` command line.
#[derive(Debug, Clone)]
pub struct Docker {
    program: PathBuf,
}

/// What `docker image inspect` says about an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// Image id (`sha256:...`).
    pub id: String,
    /// Uncompressed size in bytes.
    pub size: u64,
    /// Its labels.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// One `docker build`: where, what and how.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The build context folder.
    pub context: PathBuf,
    /// The Dockerfile.
    pub dockerfile: PathBuf,
    /// Tags to give the image.
    pub tags: Vec<String>,
    /// `--build-arg` pairs.
    pub build_args: Vec<(String, String)>,
    /// Build without the layer cache.
    pub no_cache: bool,
    /// File that receives the whole build output.
    pub log: PathBuf,
}

impl Docker {
    /// The engine named by `FLEET_DOCKER` in `env`, else `docker` on the `PATH`.
    pub fn from_env(env: &Env) -> Self {
        let program = env.get("FLEET_DOCKER").filter(|p| !p.is_empty()).map_or("docker", |p| p);
        Self { program: PathBuf::from(program) }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.stdin(Stdio::null()).kill_on_drop(true);
        command
    }

    /// Runs `docker <args>` and returns its stdout; the error carries stderr.
    async fn output(&self, args: &[&str]) -> anyhow::Result<String> {
        let run = self.command().args(args).output();
        let out = tokio::time::timeout(QUICK, run)
            .await
            .map_err(|_| anyhow::anyhow!("`docker {}` did not answer in {QUICK:?}", args[0]))?
            .map_err(|e| self.spawn_error(e))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            Err(anyhow::anyhow!("{stderr}").context(format!("`docker {}` failed", args[0])))
        }
    }

    fn spawn_error(&self, error: std::io::Error) -> anyhow::Error {
        let result: anyhow::Result<()> = Err(anyhow::Error::new(error))
            .context(format!("cannot run `{}`", self.program.display()));
        let result = result.hint(
            "install Docker (Debian: sudo apt-get install docker.io), or set FLEET_DOCKER to the \
             docker program",
        );
        result.err().unwrap_or_else(|| anyhow::anyhow!("cannot run docker"))
    }

    /// The engine's version, or an error that says why the engine cannot be reached and how
    /// to fix it (program missing, no permission on the socket, daemon not running).
    pub async fn server_version(&self) -> anyhow::Result<String> {
        match self.output(&["version", "--format", "{{.Server.Version}}"]).await {
            Ok(version) if !version.is_empty() => Ok(version),
            Ok(_) => Err(anyhow::anyhow!("the Docker engine did not report a version")),
            Err(e) => {
                let text = format!("{e:#}");
                let hint = unreachable_hint(&text);
                let error = e.context("cannot reach the Docker engine");
                match hint {
                    Some(hint) => Err(error).hint(hint),
                    None => Err(error),
                }
            }
        }
    }

    /// Whether `reference` names a local image.
    pub async fn image_exists(&self, reference: &str) -> anyhow::Result<bool> {
        let out = self.command().args(["image", "inspect", reference]).output();
        let out = tokio::time::timeout(QUICK, out)
            .await
            .map_err(|_| anyhow::anyhow!("`docker image inspect` did not answer"))?
            .map_err(|e| self.spawn_error(e))?;
        Ok(out.status.success())
    }

    /// Id, size and labels of the local image `reference`.
    pub async fn inspect_image(&self, reference: &str) -> anyhow::Result<ImageInfo> {
        let text = self
            .output(&["image", "inspect", "--format", "{{json .}}", reference])
            .await
            .with_context(|| format!("failed to inspect image `{reference}`"))?;
        parse_inspect(&text)
            .with_context(|| format!("failed to read the inspection of `{reference}`"))
    }

    /// Gives the image `source` the extra name `target`.
    pub async fn tag(&self, source: &str, target: &str) -> anyhow::Result<()> {
        self.output(&["tag", source, target])
            .await
            .map(drop)
            .with_context(|| format!("failed to tag `{source}` as `{target}`"))
    }

    /// Removes the local image name `reference` (the image stays if other names point at it).
    pub async fn remove_image(&self, reference: &str) -> anyhow::Result<()> {
        self.output(&["image", "rm", reference])
            .await
            .map(drop)
            .with_context(|| format!("failed to remove image `{reference}`"))
    }

    /// Logs in to `registry` as `user`, the password on stdin.
    pub async fn login(&self, registry: &str, user: &str, password: &Secret) -> anyhow::Result<()> {
        let mut child = self
            .command()
            .args(["login", "--username", user, "--password-stdin", registry])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(password.expose().as_bytes()).await?;
        }
        let out = tokio::time::timeout(QUICK, child.wait_with_output())
            .await
            .map_err(|_| anyhow::anyhow!("`docker login` did not answer in {QUICK:?}"))??;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(anyhow::anyhow!("{stderr}"))
            .with_context(|| format!("failed to log in to `{registry}`"))
    }

    /// Builds an image, calling `on_step` with each build step as it starts; the whole output
    /// goes to `request.log`. On failure the error holds the last lines of the output.
    pub async fn build(
        &self,
        request: &BuildRequest,
        on_step: impl FnMut(&str),
    ) -> anyhow::Result<()> {
        let mut args: Vec<String> = vec!["build".into(), "--pull=false".into()];
        args.push("--file".into());
        args.push(request.dockerfile.display().to_string());
        for tag in &request.tags {
            args.extend(["--tag".into(), tag.clone()]);
        }
        for (key, value) in &request.build_args {
            args.extend(["--build-arg".into(), format!("{key}={value}")]);
        }
        if request.no_cache {
            args.push("--no-cache".into());
        }
        args.push(request.context.display().to_string());
        self.streamed(&args, &request.log, on_step, parse_build_step)
            .await
            .context("docker build failed")
    }

    /// Pushes `reference`, its output going to `log`; returns the pushed digest.
    pub async fn push(&self, reference: &str, log: &Path) -> anyhow::Result<String> {
        let args = vec!["push".to_string(), reference.to_string()];
        let mut digest = None;
        self.streamed(&args, log, |d| digest = Some(d.to_string()), parse_push_digest)
            .await
            .with_context(|| format!("failed to push `{reference}`"))?;
        digest.with_context(|| format!("`docker push {reference}` reported no digest"))
    }

    /// Runs `docker <args>`, writing both streams to `log` and passing what `pick` finds in a
    /// line to `on_match`.
    async fn streamed(
        &self,
        args: &[String],
        log: &Path,
        mut on_match: impl FnMut(&str),
        pick: fn(&str) -> Option<String>,
    ) -> anyhow::Result<()> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("failed to create `{}`", dir.display()))?;
        }
        let mut file = tokio::fs::File::create(log)
            .await
            .with_context(|| format!("failed to create `{}`", log.display()))?;
        let mut child = self
            .command()
            .args(args)
            .env("DOCKER_CLI_HINTS", "false")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let stderr = child.stderr.take().context("no stderr")?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        for stream in
            [Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Unpin + Send>, Box::new(stderr)]
        {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut tail = std::collections::VecDeque::with_capacity(20);
        while let Some(line) = rx.recv().await {
            file.write_all(line.as_bytes()).await?;
            file.write_all(b"\n").await?;
            if let Some(found) = pick(&line) {
                on_match(&found);
            }
            if tail.len() == 20 {
                tail.pop_front();
            }
            tail.push_back(line);
        }
        let status = child.wait().await?;
        if status.success() {
            return Ok(());
        }
        let last: Vec<String> = tail.into_iter().collect();
        Err(anyhow::anyhow!("{}", last.join("\n"))).with_context(|| {
            format!("`docker {}` exited with {status}; log: {}", args[0], log.display())
        })
    }
}

/// Adds the report line for an engine at `version`: passed, or a problem below 20.10.
pub fn report_engine(version: &str, report: &mut crate::report::Report) {
    use crate::report::Mark;
    if version_supported(version) {
        report.item(Mark::Passed, "Docker engine", version);
    } else {
        let (major, minor) = MIN_ENGINE_VERSION;
        let detail = format!("{version} is older than {major}.{minor}; upgrade the engine");
        report.item(Mark::Problem, "Docker engine", detail);
    }
}

/// The fix for an unreachable engine, judged from the error text.
pub fn unreachable_hint(text: &str) -> Option<&'static str> {
    if text.contains("permission denied") {
        Some(
            "your user may not use the Docker socket: add it to the docker group \
             (sudo usermod -aG docker $USER, then log in again) or run the step as root",
        )
    } else if text.contains("Cannot connect to the Docker daemon")
        || text.contains("Is the docker daemon running")
        || text.contains("connection refused")
        || text.contains("no such file or directory")
    {
        Some(
            "start the Docker engine (sudo systemctl start docker, or sudo service docker \
             start) and check with `docker info`",
        )
    } else {
        None
    }
}

/// Whether the version text `version` (`20.10.24+dfsg1`, `27.3.1`) is at least [`MIN_ENGINE_VERSION`].
pub fn version_supported(version: &str) -> bool {
    let mut parts = version.split(|c: char| !c.is_ascii_digit()).filter(|p| !p.is_empty());
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u32>().ok()).unwrap_or(0);
    major.is_some_and(|major| (major, minor) >= MIN_ENGINE_VERSION)
}

/// The build step a line of `docker build` output starts, if it starts one.
///
/// Reads the classic builder (`Step 3/17 : RUN apt-get ...`) and BuildKit's plain output
/// (`#7 [runtime 3/9] RUN apt-get ...`).
pub fn parse_build_step(line: &str) -> Option<String> {
    let short = |text: &str| -> String {
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.chars().count() > 70 {
            format!("{}…", text.chars().take(69).collect::<String>())
        } else {
            text
        }
    };
    if let Some(rest) = line.strip_prefix("Step ") {
        let (count, what) = rest.split_once(" : ")?;
        return Some(format!("step {count}: {}", short(what)));
    }
    let rest = line.strip_prefix('#')?;
    let (_, rest) = rest.split_once(' ')?;
    let inner = rest.strip_prefix('[')?;
    let (stage, what) = inner.split_once("] ")?;
    Some(format!("[{stage}] {}", short(what)))
}

/// The digest in a `docker push` summary line: `v1: digest: sha256:... size: 1234`.
pub fn parse_push_digest(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("digest: ")?;
    let digest = rest.split_whitespace().next()?;
    (digest.starts_with("sha256:") && digest.len() == 71).then(|| digest.to_string())
}

fn parse_inspect(text: &str) -> anyhow::Result<ImageInfo> {
    let value: serde_json::Value = serde_json::from_str(text)?;
    let labels = value["Config"]["Labels"]
        .as_object()
        .map(|m| {
            m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect()
        })
        .unwrap_or_default();
    Ok(ImageInfo {
        id: value["Id"].as_str().context("no `Id` in the inspection")?.to_string(),
        size: value["Size"].as_u64().unwrap_or(0),
        labels,
    })
}

/// The image version from git: the short revision, plus `-dirty` when the work tree has
/// uncommitted changes (untracked files included). `None` outside a git repository.
pub async fn git_version(root: &Path) -> Option<(String, bool)> {
    let git = |args: &'static [&'static str]| {
        let mut command = Command::new("git");
        command.arg("-C").arg(root).args(args).stdin(Stdio::null());
        command
    };
    let out = git(&["rev-parse", "--short=12", "HEAD"]).output().await.ok()?;
    if !out.status.success() {
        return None;
    }
    let revision = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let status = git(&["status", "--porcelain"]).output().await.ok()?;
    let dirty = !status.status.success() || !status.stdout.is_empty();
    Some((revision, dirty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_steps_are_read_from_both_builders() {
        assert_eq!(
            parse_build_step("Step 3/17 : RUN apt-get update &&     apt-get install -y ffmpeg"),
            Some("step 3/17: RUN apt-get update && apt-get install -y ffmpeg".to_string())
        );
        assert_eq!(
            parse_build_step("#7 [runtime 3/9] COPY engine/ /opt/engine/"),
            Some("[runtime 3/9] COPY engine/ /opt/engine/".to_string())
        );
        assert_eq!(parse_build_step(" ---> Running in 1234"), None);
        assert_eq!(parse_build_step("#7 DONE 0.1s"), None);
    }

    #[test]
    fn push_digest_is_read_from_the_summary_line() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(parse_push_digest(&format!("v1: digest: {digest} size: 2413")), Some(digest));
        assert_eq!(parse_push_digest("v1: digest: sha256:short size: 1"), None);
        assert_eq!(parse_push_digest("The push refers to repository [x]"), None);
    }

    #[test]
    fn engine_versions_are_compared_numerically() {
        assert!(version_supported("20.10.24+dfsg1"));
        assert!(version_supported("27.3.1"));
        assert!(!version_supported("19.03.15"));
        assert!(!version_supported("20.9.0"));
        assert!(!version_supported("unknown"));
    }

    #[test]
    fn unreachable_engine_errors_get_the_matching_fix() {
        let socket = "permission denied while trying to connect to the Docker daemon socket";
        assert!(unreachable_hint(socket).is_some_and(|h| h.contains("docker group")));
        let down = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock.";
        assert!(unreachable_hint(down).is_some_and(|h| h.contains("start the Docker engine")));
        assert_eq!(unreachable_hint("something else"), None);
    }

    #[tokio::test]
    async fn a_missing_docker_program_is_an_error_with_the_install_fix() {
        let env = Env::from([("FLEET_DOCKER".to_string(), "/nonexistent/docker".to_string())]);
        let error = Docker::from_env(&env).server_version().await.expect_err("no program");
        let text = crate::cli::render_error(&error);
        assert!(text.contains("cannot run `/nonexistent/docker`"), "{text}");
        assert!(text.contains("hint: install Docker"), "{text}");
    }
}
