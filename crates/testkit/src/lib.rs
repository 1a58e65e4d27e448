//! Test support: a private local AWS emulator per test, a project folder with its `.env`,
//! and generated audio.
//!
//! Every [`Emulator`] is its own moto server process on a free loopback port, so test
//! binaries run in parallel without sharing state. The server comes from the project's
//! virtualenv (`.venv/bin/moto_server`, made by `scripts/common/bootstrap.sh`) or from the
//! `MOTO_SERVER` variable; a missing server fails the test with the command that installs it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::settings::Env;

pub mod iam;

/// The workspace folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// The project's virtualenv `bin` folder.
pub fn venv_bin() -> PathBuf {
    std::env::var_os("FLEET_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv"))
        .join("bin")
}

/// The AMI catalogue the emulator loads (`MOTO_AMIS_PATH`): Deep Learning AMI look-alikes, so
/// the AMI look-up by owner and name finds an image as it would in a real region.
pub fn amis_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/amis.json")
}

/// A moto server owned by one test; stopped when dropped.
#[derive(Debug)]
pub struct Emulator {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Emulator {
    /// Starts a private emulator and waits until it answers.
    pub fn start() -> Self {
        let server = std::env::var_os("MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| venv_bin().join("moto_server"));
        assert!(
            server.exists(),
            "{} is missing; run `scripts/common/bootstrap.sh` (or `make test`) to install the local AWS emulator",
            server.display()
        );
        let dir = tempfile::tempdir().expect("temporary folder for the emulator");
        let log = dir.path().join("moto.log");
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            let log_file = std::fs::File::create(&log).expect("emulator log file");
            let child = Command::new(&server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
                .env("MOTO_AMIS_PATH", amis_fixture())
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file)
                .spawn()
                .expect("start moto_server");
            let mut emulator =
                Self { child, port, log: log.clone(), _dir: tempfile::tempdir().expect("dir") };
            if emulator.wait_ready(Duration::from_secs(20)) {
                emulator._dir = dir;
                return emulator;
            }
            last_error = std::fs::read_to_string(&log).unwrap_or_default();
        }
        panic!("moto_server did not start; its log:\n{last_error}");
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if self.request("GET", "/moto-api/").is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// The endpoint URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Clears all state of this emulator.
    /// The emulator's process id, e.g. to read its CPU time in a benchmark.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn reset(&self) {
        self.request("POST", "/moto-api/reset").expect("reset the emulator");
    }

    /// The emulator's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn request(&self, method: &str, path: &str) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        if response.starts_with("HTTP/1.") {
            Ok(response)
        } else {
            Err(std::io::Error::other("not an HTTP response"))
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A temporary project folder with a `.env` aimed at an emulator.
#[derive(Debug)]
pub struct TestProject {
    dir: tempfile::TempDir,
}

impl TestProject {
    /// A project whose `.env` holds `text`.
    pub fn with_env(text: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary project folder");
        common::dotenv::write_atomically(&dir.path().join(".env"), text).expect("write .env");
        Self { dir }
    }

    /// A project with a valid local `.env` for `emulator`; `name` keeps resource names apart.
    pub fn local(emulator: &Emulator, name: &str) -> Self {
        Self::with_env(&local_env(emulator, name))
    }

    /// The project folder.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The project handle the steps take.
    pub fn project(&self) -> common::Project {
        common::Project::at(self.dir.path())
    }

    /// The `.env` file as it is now.
    pub fn env_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(".env")).unwrap_or_default()
    }

    /// Loads the settings as a step would.
    pub fn settings(&self) -> common::Settings {
        match common::settings::load(&self.dir.path().join(".env"), &Env::new()) {
            Ok(loaded) => loaded.settings,
            Err(e) => panic!("{e}"),
        }
    }
}

/// A valid `.env` text for a local deployment on `emulator`.
pub fn local_env(emulator: &Emulator, name: &str) -> String {
    format!(
        "AWS_REGION=us-east-2\n\
         AWS_ACCOUNT_ID=123456789012\n\
         AWS_ENDPOINT_URL={}\n\
         PROJECT_NAME={name}\n\
         ENVIRONMENT=test\n\
         AUDIO_BUCKET={name}-test-audio\n\
         WHISPER_ENGINE=faster-whisper\n\
         WHISPER_MODEL=bundled:tiny.en\n\
         COMPUTE_TYPE=int8\n\
         INSTANCE_TYPES=g5.xlarge,g4dn.xlarge\n",
        emulator.endpoint()
    )
}

/// A step context for `project` that answers prompts from `prompter` and sees no environment.
pub fn context(
    step: &'static str,
    project: &TestProject,
    prompter: common::ui::Scripted,
) -> common::Context {
    common::Context::for_test(step, project.project(), build_env(), Box::new(prompter))
}

/// The variables tests pass on to steps: where cargo puts binaries and where the Python
/// virtualenv is, so steps that package or run the worker (110, 120, 210) find them when both
/// live outside the clone (as in CI).
pub fn build_env() -> Env {
    ["CARGO_TARGET_DIR", "FLEET_VENV"]
        .into_iter()
        .filter_map(|key| {
            let value = std::env::var(key).ok().filter(|v| !v.is_empty())?;
            Some((key.to_string(), value))
        })
        .collect()
}

/// The cargo build folder: `CARGO_TARGET_DIR`, else `target/` in the workspace.
pub fn target_dir() -> PathBuf {
    match build_env().remove("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target"),
    }
}

/// SDK configuration for `settings`, as the steps build it.
pub async fn sdk_config(settings: &common::Settings) -> common::aws::SdkConfig {
    common::aws::sdk_config(settings, &Env::new(), &common::aws::ClientOptions::default()).await
}
