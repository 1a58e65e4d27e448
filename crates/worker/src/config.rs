//! What a worker needs to know: settings, engine command, intervals, and where to work.

use std::path::PathBuf;
use std::time::Duration;

use common::Settings;
use common::settings::Env;

/// The real instance metadata address, used only when the settings are not local.
pub const REAL_IMDS_ENDPOINT: &str = "http://169.254.169.254";

/// How the engine process is started.
#[derive(Debug, Clone)]
pub struct EngineCommand {
    /// Python interpreter.
    pub python: PathBuf,
    /// `whisper_engine.py`.
    pub script: PathBuf,
    /// `faster-whisper` or `whisperx`.
    pub backend: String,
    /// Model name, folder or `bundled:tiny.en`.
    pub model: String,
    /// `cpu` or `cuda`.
    pub device: String,
    /// CTranslate2 compute type.
    pub compute_type: String,
    /// WhisperX batch size.
    pub batch_size: u32,
    /// CPU threads, 0 for the library default.
    pub threads: u32,
}

impl EngineCommand {
    /// The engine for `settings`: the project's virtualenv Python (`FLEET_VENV`, else `.venv`
    /// in `FLEET_ROOT`) and engine script unless `FLEET_PYTHON` / `FLEET_ENGINE_SCRIPT` say
    /// otherwise. Local settings run on the CPU.
    pub fn from_settings(settings: &Settings, env: &Env) -> Self {
        let root = env.get("FLEET_ROOT").filter(|r| !r.is_empty()).map(PathBuf::from);
        let venv = env
            .get("FLEET_VENV")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| root.as_deref().map(|r| r.join(".venv")));
        let python = match env.get("FLEET_PYTHON").filter(|p| !p.is_empty()) {
            Some(python) => PathBuf::from(python),
            None => venv
                .map(|v| v.join("bin/python"))
                .filter(|p| p.exists())
                .unwrap_or_else(|| PathBuf::from("python3")),
        };
        let script = match env.get("FLEET_ENGINE_SCRIPT").filter(|s| !s.is_empty()) {
            Some(script) => PathBuf::from(script),
            None => root.unwrap_or_else(|| PathBuf::from(".")).join("engine/whisper_engine.py"),
        };
        let local = settings.is_local();
        let default_device = if local { "cpu" } else { "cuda" };
        let device = env.get("FLEET_ENGINE_DEVICE").map_or(default_device, String::as_str);
        let backend =
            if local { common::settings::Engine::FasterWhisper } else { settings.worker.engine };
        Self {
            python,
            script,
            backend: backend.as_str().to_string(),
            model: settings.worker.model.clone(),
            device: device.to_string(),
            compute_type: settings.worker.compute_type.clone(),
            batch_size: settings.worker.batch_size,
            threads: env.get("FLEET_ENGINE_THREADS").and_then(|t| t.parse().ok()).unwrap_or(0),
        }
    }
}

/// Everything [`crate::run_worker`] needs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The deployment's settings (queue URLs, bucket, worker settings).
    pub settings: Settings,
    /// The environment snapshot (credentials for a local emulator, overrides).
    pub env: Env,
    /// This worker's id, used in status keys and transcripts.
    pub worker_id: String,
    /// The engine process.
    pub engine: EngineCommand,
    /// Instance metadata endpoint for spot notices; `None` turns the poller off.
    pub imds_endpoint: Option<String>,
    /// How often the metadata service is asked for a notice.
    pub imds_interval: Duration,
    /// How often the status object is refreshed.
    pub status_interval: Duration,
    /// Exit after this long without work; `None` never.
    pub idle_timeout: Option<Duration>,
    /// How long a job that failed for a passing reason stays hidden before a retry.
    pub retry_delay: Duration,
    /// Folder for downloads and decoded audio (a temporary folder per job is made inside).
    pub work_dir: PathBuf,
    /// A local copy of the status object, rewritten on every status write
    /// (`FLEET_STATUS_FILE`); the container's health check reads it.
    pub status_file: Option<PathBuf>,
    /// The version reported in the status object: the package version, plus the deployed
    /// bundle or image version from `FLEET_BUNDLE_VERSION` as `0.1.0+<bundle>`.
    pub version: String,
}

impl WorkerConfig {
    /// The configuration for `settings` with the documented defaults and `env` overrides.
    ///
    /// The metadata poller talks to `FLEET_IMDS_ENDPOINT` when set; otherwise to the real
    /// address, but only when the settings are not local, so a local run never contacts it.
    pub fn new(settings: Settings, env: Env) -> Self {
        let imds_endpoint = match env.get("FLEET_IMDS_ENDPOINT").filter(|e| !e.is_empty()) {
            Some(endpoint) => Some(endpoint.clone()),
            None if !settings.is_local() => Some(REAL_IMDS_ENDPOINT.to_string()),
            None => None,
        };
        let idle_minutes = u64::from(settings.worker.idle_timeout_minutes);
        Self {
            worker_id: env.get("FLEET_WORKER_ID").cloned().unwrap_or_else(default_worker_id),
            engine: EngineCommand::from_settings(&settings, &env),
            imds_endpoint,
            imds_interval: Duration::from_secs(5),
            status_interval: Duration::from_secs(30),
            idle_timeout: (idle_minutes > 0).then(|| Duration::from_secs(idle_minutes * 60)),
            retry_delay: Duration::from_secs(10),
            work_dir: std::env::temp_dir(),
            status_file: env.get("FLEET_STATUS_FILE").filter(|f| !f.is_empty()).map(PathBuf::from),
            version: match env.get("FLEET_BUNDLE_VERSION").filter(|v| !v.is_empty()) {
                Some(bundle) => format!("{}+{bundle}", crate::VERSION),
                None => crate::VERSION.to_string(),
            },
            settings,
            env,
        }
    }

    /// Seconds a received message stays hidden; at least 2 so a heartbeat can keep up.
    pub fn visibility_timeout(&self) -> u32 {
        self.settings.queue.visibility_timeout.max(2)
    }
}

/// `<host>-<8 hex>`: readable in the status table, unique per run.
fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| {
            !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || "-.".contains(c))
        })
        .unwrap_or_else(|| "worker".to_string());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}", &suffix[..8])
}
