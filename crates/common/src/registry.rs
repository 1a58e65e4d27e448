//! The local image registry that stands in for ECR's registry endpoint in local mode.
//!
//! It is Debian's `docker-registry` (the CNCF distribution registry) listening on
//! `127.0.0.1:<port>` only (`FLEET_REGISTRY_PORT`, default [`DEFAULT_PORT`]). Its config,
//! storage, pid and log live in `<project>/.local/registry/`. The Docker engine treats
//! registries on 127.0.0.0/8 as insecure by default, so plain HTTP pushes work without
//! changing the engine's settings.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cli::{HintExt, Project};
use crate::settings::Env;

/// Port of the local registry unless `FLEET_REGISTRY_PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 5050;

/// Media types asked for when reading a manifest, so the digest is the one `docker push` printed.
const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.index.v1+json";

/// The local registry of one project.
#[derive(Debug, Clone)]
pub struct LocalRegistry {
    /// Folder of its config, storage, pid and log.
    pub dir: PathBuf,
    /// Loopback port it listens on.
    pub port: u16,
    program: PathBuf,
}

/// How [`LocalRegistry::ensure_running`] found the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// It was already answering.
    AlreadyRunning,
    /// It was started now, with this pid.
    Now(u32),
}

impl LocalRegistry {
    /// The registry of `project`; `FLEET_REGISTRY_PORT` and `FLEET_REGISTRY_PROGRAM` in `env`
    /// override the port and the `docker-registry` program.
    pub fn for_project(project: &Project, env: &Env) -> anyhow::Result<Self> {
        let port = match env.get("FLEET_REGISTRY_PORT").filter(|p| !p.is_empty()) {
            Some(p) => p
                .parse()
                .map_err(|_| anyhow::anyhow!("FLEET_REGISTRY_PORT `{p}` is not a port number"))?,
            None => DEFAULT_PORT,
        };
        let program = env
            .get("FLEET_REGISTRY_PROGRAM")
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from("docker-registry"), PathBuf::from);
        Ok(Self { dir: project.local_dir().join("registry"), port, program })
    }

    /// `127.0.0.1:<port>`, the registry part of image names.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The pid file.
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("registry.pid")
    }

    /// The log file.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("registry.log")
    }

    /// The registry's config, listening on the loopback address only.
    pub fn config_text(&self) -> String {
        format!(
            "# Written by transcribe-fleet: the local stand-in for ECR's registry endpoint.\n\
             version: 0.1\n\
             log:\n  level: info\n  formatter: text\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {}\n  headers:\n    X-Content-Type-Options: [nosniff]\n",
            self.dir.join("data").display(),
            self.address()
        )
    }

    /// Starts the registry unless it already answers, and waits until it does.
    pub async fn ensure_running(&self) -> anyhow::Result<Started> {
        if self.answers().await {
            return Ok(Started::AlreadyRunning);
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
            return Err(anyhow::anyhow!("127.0.0.1:{} is taken by another program", self.port))
                .hint("set FLEET_REGISTRY_PORT to a free port for the local registry");
        }
        std::fs::create_dir_all(self.dir.join("data"))
            .with_context(|| format!("failed to create `{}`", self.dir.display()))?;
        let config = self.dir.join("config.yml");
        crate::dotenv::write_atomically(&config, &self.config_text())
            .with_context(|| format!("failed to write `{}`", config.display()))?;
        let log = std::fs::File::create(self.log_file())
            .with_context(|| format!("failed to create `{}`", self.log_file().display()))?;
        let mut command = std::process::Command::new(&self.program);
        command.arg("serve").arg(&config).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        // Its own process group: a Ctrl-C of the step does not stop the registry.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .with_context(|| format!("failed to start `{}`", self.program.display()))
            .hint("install the local registry: sudo apt-get install docker-registry")?;
        let pid = child.id();
        std::fs::write(self.pid_file(), format!("{pid}\n"))
            .with_context(|| format!("failed to write `{}`", self.pid_file().display()))?;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(15) {
            if self.answers().await {
                return Ok(Started::Now(pid));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
        let tail: Vec<&str> =
            log.lines().rev().take(10).collect::<Vec<_>>().into_iter().rev().collect();
        Err(anyhow::anyhow!("{}", tail.join("\n")))
            .context(format!("the local registry did not answer on {}", self.address()))
    }

    /// Stops the registry started from this folder, if its pid file names a live process.
    pub fn stop(&self) -> anyhow::Result<bool> {
        let Ok(text) = std::fs::read_to_string(self.pid_file()) else { return Ok(false) };
        let _ = std::fs::remove_file(self.pid_file());
        let pid = text.trim();
        if pid.parse::<u32>().is_err() {
            return Ok(false);
        }
        let status = std::process::Command::new("kill")
            .arg(pid)
            .stderr(Stdio::null())
            .status()
            .context("failed to run `kill`")?;
        Ok(status.success())
    }

    /// Whether the registry answers its API version check (`GET /v2/`).
    pub async fn answers(&self) -> bool {
        matches!(self.request("GET", "/v2/", &[]).await, Ok((200, _)))
    }

    /// The digest of `repository:tag`, or `None` when the registry does not have it.
    pub async fn manifest_digest(
        &self,
        repository: &str,
        tag: &str,
    ) -> anyhow::Result<Option<String>> {
        let path = format!("/v2/{repository}/manifests/{tag}");
        let (status, headers) =
            self.request("HEAD", &path, &[("Accept", MANIFEST_TYPES)]).await.with_context(
                || format!("failed to ask the local registry for `{repository}:{tag}`"),
            )?;
        match status {
            200 => header(&headers, "docker-content-digest")
                .map(Some)
                .context("the local registry sent no Docker-Content-Digest"),
            404 => Ok(None),
            other => Err(anyhow::anyhow!("the local registry answered HTTP {other} for {path}")),
        }
    }

    /// A minimal HTTP/1.1 request on the loopback port: status and raw headers.
    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(u16, String)> {
        let io = async {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
            let mut head = format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
                self.address()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            stream.write_all(head.as_bytes()).await?;
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await?;
            Ok::<_, std::io::Error>(String::from_utf8_lossy(&response).into_owned())
        };
        let response = tokio::time::timeout(Duration::from_secs(5), io)
            .await
            .map_err(|_| anyhow::anyhow!("no answer in 5 s"))??;
        let head = response.split("\r\n\r\n").next().unwrap_or_default().to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("not an HTTP response")?;
        Ok((status, head))
    }
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_listens_on_loopback_and_stores_under_the_project() {
        let project = Project::at("/p");
        let env = Env::from([("FLEET_REGISTRY_PORT".to_string(), "5999".to_string())]);
        let registry = LocalRegistry::for_project(&project, &env).expect("registry");
        assert_eq!(registry.address(), "127.0.0.1:5999");
        let config = registry.config_text();
        assert!(config.contains("addr: 127.0.0.1:5999"), "{config}");
        assert!(config.contains("rootdirectory: /p/.local/registry/data"), "{config}");
    }

    #[test]
    fn a_bad_port_is_an_error_naming_the_variable() {
        let env = Env::from([("FLEET_REGISTRY_PORT".to_string(), "many".to_string())]);
        let error = LocalRegistry::for_project(&Project::at("/p"), &env).expect_err("bad port");
        assert!(error.to_string().contains("FLEET_REGISTRY_PORT"), "{error}");
    }

    #[test]
    fn headers_are_found_whatever_their_case() {
        let head = "HTTP/1.1 200 OK\r\nDocker-Content-Digest: sha256:abc\r\n";
        assert_eq!(header(head, "docker-content-digest"), Some("sha256:abc".to_string()));
        assert_eq!(header(head, "etag"), None);
    }
}
