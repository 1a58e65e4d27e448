//! Typed deployment settings read from `.env`.
//!
//! [`load`] reads the file with [`crate::dotenv`], lets real environment variables override
//! known keys (each override is reported), fills defaults, and validates everything at once:
//! a [`ConfigError`] lists every problem with its key, line and fix.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::dotenv;
use crate::keys::{self, KEYS};
use crate::naming;

/// Environment variables as a map; [`load`] never reads the process environment itself.
pub type Env = HashMap<String, String>;

/// Snapshot of the process environment, taken once in `main`.
pub fn process_env() -> Env {
    std::env::vars().collect()
}

/// A secret value (token or password) that never prints in full.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The real value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask(&self.0))
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask(&self.0))
    }
}

/// A masked preview that shows the length, so truncation is visible: `hf_…(37 chars)`.
pub fn mask(value: &str) -> String {
    let count = value.chars().count();
    if count == 0 {
        return "(empty)".to_string();
    }
    let shown: String = value.chars().take(if count >= 12 { 3 } else { 0 }).collect();
    format!("{shown}…({count} chars)")
}

/// Whether `key` holds a secret that must be masked wherever it is shown.
pub fn is_secret_key(key: &str) -> bool {
    KEYS.iter().any(|k| k.name == key && k.secret)
        || ["TOKEN", "SECRET", "PASSWORD"].iter().any(|w| key.contains(w))
}

/// Which speech engine the workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// WhisperX on GPU: batched inference, word alignment, optional diarization.
    Whisperx,
    /// faster-whisper on CPU or GPU.
    FasterWhisper,
}

impl Engine {
    /// The name used in `.env` and on the engine's command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Whisperx => "whisperx",
            Self::FasterWhisper => "faster-whisper",
        }
    }
}

/// Queue settings.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// Job queue name.
    pub name: String,
    /// Dead-letter queue name.
    pub dlq_name: String,
    /// Seconds a received job stays hidden before another worker may take it.
    pub visibility_timeout: u32,
    /// Seconds a message is kept.
    pub retention_seconds: u32,
    /// Long-poll wait in seconds (0–20).
    pub wait_seconds: u32,
    /// Receives before SQS moves a message to the dead-letter queue.
    pub max_receive_count: u32,
    /// Job queue URL, once step-020 has run.
    pub url: Option<String>,
    /// Job queue ARN, once step-020 has run.
    pub arn: Option<String>,
    /// Dead-letter queue URL, once step-020 has run.
    pub dlq_url: Option<String>,
    /// Dead-letter queue ARN, once step-020 has run.
    pub dlq_arn: Option<String>,
}

/// Settings of the transcription worker.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Speech engine.
    pub engine: Engine,
    /// Model name or local model path; `bundled:tiny.en` is the model shipped for local runs.
    pub model: String,
    /// Compute type passed to CTranslate2 (`float16`, `int8`, ...).
    pub compute_type: String,
    /// Batch size for WhisperX.
    pub batch_size: u32,
    /// Fixed language code, or `None` to detect it.
    pub language: Option<String>,
    /// Whether to label speakers (WhisperX with a Hugging Face token).
    pub diarize: bool,
    /// Hugging Face token for diarization, when given directly.
    pub hf_token: Secret,
    /// SSM parameter holding the Hugging Face token.
    pub hf_token_parameter: Option<String>,
    /// Minutes without work after which a worker exits.
    pub idle_timeout_minutes: u32,
}

/// EC2 settings used by the launch steps of both paths.
#[derive(Debug, Clone)]
pub struct Ec2Settings {
    /// Instance types to try, the primary first.
    pub instance_types: Vec<String>,
    /// The GPU AMI, once step-100 has found it.
    pub ami_id: Option<String>,
    /// VPC; `None` means the default VPC.
    pub vpc_id: Option<String>,
    /// Subnets to launch into, one per availability zone.
    pub subnet_ids: Vec<String>,
    /// The workers' security group.
    pub security_group_id: Option<String>,
    /// Optional key pair name (Session Manager needs none).
    pub key_name: Option<String>,
    /// CIDR allowed to reach port 22; `None` opens no inbound port.
    pub ssh_cidr: Option<String>,
    /// Root volume size in GiB.
    pub root_volume_gb: u32,
    /// Whether to fall back to on-demand when no spot capacity is found.
    pub allow_on_demand: bool,
    /// Upper bound on running workers.
    pub max_workers: u32,
}

/// Everything the steps need to know about one deployment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// AWS region of every resource.
    pub region: String,
    /// Account the deployment belongs to (discovered by step-000).
    pub account_id: Option<String>,
    /// Named credentials profile.
    pub profile: Option<String>,
    /// Endpoint override for a local AWS emulator.
    pub endpoint_url: Option<String>,
    /// Project name, the first part of every resource name.
    pub project: String,
    /// Environment name (`dev`, `prod`, ...).
    pub environment: String,
    /// Bucket for audio, transcripts, worker status and bundles.
    pub bucket: String,
    /// Queue settings.
    pub queue: QueueSettings,
    /// Worker settings.
    pub worker: WorkerSettings,
    /// EC2 settings.
    pub ec2: Ec2Settings,
    /// ECR repository name.
    pub ecr_repository: String,
    /// ECR repository URI, once step-200 has run.
    pub ecr_repository_uri: Option<String>,
}

impl Settings {
    /// Prefix shared by resource names: `<project>-<environment>`.
    pub fn prefix(&self) -> String {
        naming::prefix(&self.project, &self.environment)
    }

    /// Whether the settings aim at a local emulator on this machine.
    pub fn is_local(&self) -> bool {
        self.endpoint_url.as_deref().is_some_and(crate::aws::is_loopback_endpoint)
    }
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The `.env` file, at this line.
    File(usize),
    /// A real environment variable.
    Environment,
    /// The built-in default.
    Default,
}

/// A real environment variable that replaced the file's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// The key.
    pub key: String,
    /// Line of the file's value, if the file had one.
    pub line: Option<usize>,
}

impl fmt::Display for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => {
                write!(f, "{} comes from the environment, not from line {line}", self.key)
            }
            None => write!(f, "{} comes from the environment", self.key),
        }
    }
}

/// One thing wrong with the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key concerned.
    pub key: String,
    /// Line in `.env`, when the value came from there.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} (line {line}): {}", self.key, self.message)?,
            None => write!(f, "{}: {}", self.key, self.message)?,
        }
        write!(f, "\n    fix: {}", self.fix)
    }
}

/// The settings cannot be used; every problem found is listed.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// The file that was read.
    pub path: PathBuf,
    /// Every problem found.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        let noun = if count == 1 { "problem" } else { "problems" };
        write!(f, "{} has {count} {noun}:", self.path.display())?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

/// The result of [`load`].
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The typed settings.
    pub settings: Settings,
    /// The raw value of every known key and where it came from.
    pub values: BTreeMap<String, (String, Origin)>,
    /// Environment variables that replaced values from the file.
    pub overrides: Vec<Override>,
    /// Things worth saying that do not stop the step.
    pub warnings: Vec<String>,
    /// The file that was read.
    pub path: PathBuf,
}

/// Reads `path`, applies environment overrides from `env` and validates the result.
pub fn load(path: &Path, env: &Env) -> Result<Loaded, ConfigError> {
    let file = match dotenv::read(path, env) {
        Ok(file) => file,
        Err(e) => {
            let (message, fix) = if e.kind() == std::io::ErrorKind::NotFound {
                ("the settings file does not exist".to_string(), keys::RUN_STEP_000.to_string())
            } else {
                (format!("cannot read the settings file: {e}"), "check the file".to_string())
            };
            let problem = Problem { key: ".env".into(), line: None, message, fix };
            return Err(ConfigError { path: path.to_path_buf(), problems: vec![problem] });
        }
    };
    resolve(path, &file, env)
}

/// Like [`load`], but a missing file is fine: every value then comes from `env` and defaults.
///
/// Workers use this, since their settings arrive as environment variables.
pub fn load_or_env(path: &Path, env: &Env) -> Result<Loaded, ConfigError> {
    if path.exists() { load(path, env) } else { resolve(path, &dotenv::EnvFile::default(), env) }
}

/// Builds settings from parsed `file` contents and `env`; see [`load`].
pub fn resolve(path: &Path, file: &dotenv::EnvFile, env: &Env) -> Result<Loaded, ConfigError> {
    let mut problems: Vec<Problem> = file
        .errors
        .iter()
        .map(|d| Problem {
            key: d.key.clone().unwrap_or_else(|| format!("line {}", d.line)),
            line: Some(d.line),
            message: d.message.clone(),
            fix: "edit the line as described".to_string(),
        })
        .collect();
    let mut warnings: Vec<String> = file.warnings.iter().map(ToString::to_string).collect();
    let mut values = BTreeMap::new();
    let mut overrides = Vec::new();
    for spec in KEYS {
        let from_file = file.get(spec.name);
        let from_env = env.get(spec.name).filter(|v| !v.is_empty());
        let chosen = match (from_file, from_env) {
            (Some(entry), Some(value)) if &entry.value != value => {
                overrides.push(Override { key: spec.name.into(), line: Some(entry.line) });
                Some((value.clone(), Origin::Environment))
            }
            (Some(entry), _) => Some((entry.value.clone(), Origin::File(entry.line))),
            (None, Some(value)) => {
                overrides.push(Override { key: spec.name.into(), line: None });
                Some((value.clone(), Origin::Environment))
            }
            (None, None) => None,
        };
        if let Some(chosen) = chosen {
            values.insert(spec.name.to_string(), chosen);
        }
    }
    let mut reader = Reader { values: &values, problems: &mut problems };
    let settings = reader.settings();
    if settings.worker.diarize
        && settings.worker.hf_token.is_empty()
        && settings.worker.hf_token_parameter.is_none()
    {
        problems.push(Problem {
            key: "HF_TOKEN".into(),
            line: values.get("HF_TOKEN").and_then(|(_, o)| line_of(o)),
            message: "is empty but DIARIZE=true needs a Hugging Face token".into(),
            fix: "set HF_TOKEN or HF_TOKEN_PARAMETER (an SSM parameter name), or DIARIZE=false"
                .into(),
        });
    }
    if settings.worker.engine == Engine::Whisperx && settings.is_local() {
        warnings
            .push("WHISPER_ENGINE=whisperx needs a GPU; local runs use faster-whisper".to_string());
    }
    if problems.is_empty() {
        Ok(Loaded { settings, values, overrides, warnings, path: path.to_path_buf() })
    } else {
        Err(ConfigError { path: path.to_path_buf(), problems })
    }
}

fn line_of(origin: &Origin) -> Option<usize> {
    match origin {
        Origin::File(line) => Some(*line),
        _ => None,
    }
}

/// Reads typed values out of the raw map, collecting problems instead of stopping.
struct Reader<'a> {
    values: &'a BTreeMap<String, (String, Origin)>,
    problems: &'a mut Vec<Problem>,
}

impl Reader<'_> {
    fn settings(&mut self) -> Settings {
        let project = self.checked("PROJECT_NAME", naming::check_project);
        let environment = self.checked("ENVIRONMENT", naming::check_environment);
        let prefix = naming::prefix(&project, &environment);
        let queue_name =
            self.checked_or("QUEUE_NAME", &format!("{prefix}-jobs"), naming::check_queue_name);
        let dlq_name =
            self.checked_or("DLQ_NAME", &format!("{queue_name}-dlq"), naming::check_queue_name);
        Settings {
            region: self.checked("AWS_REGION", naming::check_region),
            account_id: self.optional("AWS_ACCOUNT_ID", naming::check_account_id),
            profile: self.optional("AWS_PROFILE", |_| Ok(())),
            endpoint_url: self.optional("AWS_ENDPOINT_URL", naming::check_endpoint),
            bucket: self.checked("AUDIO_BUCKET", naming::check_bucket_name),
            queue: QueueSettings {
                name: queue_name,
                dlq_name,
                visibility_timeout: self.number("VISIBILITY_TIMEOUT", 0, 43_200),
                retention_seconds: self.number("MESSAGE_RETENTION_SECONDS", 60, 1_209_600),
                wait_seconds: self.number("SQS_WAIT_SECONDS", 0, 20),
                max_receive_count: self.number("MAX_RECEIVE_COUNT", 1, 1000),
                url: self.optional("QUEUE_URL", naming::check_url),
                arn: self.optional("QUEUE_ARN", naming::check_arn),
                dlq_url: self.optional("DLQ_URL", naming::check_url),
                dlq_arn: self.optional("DLQ_ARN", naming::check_arn),
            },
            worker: WorkerSettings {
                engine: self.engine(),
                model: self.checked("WHISPER_MODEL", |v| naming::non_empty(v, "a model name")),
                compute_type: self.checked("COMPUTE_TYPE", naming::check_compute_type),
                batch_size: self.number("BATCH_SIZE", 1, 256),
                language: self.optional("LANGUAGE", naming::check_language),
                diarize: self.flag("DIARIZE"),
                hf_token: Secret::new(self.raw("HF_TOKEN").unwrap_or_default()),
                hf_token_parameter: self.optional("HF_TOKEN_PARAMETER", |_| Ok(())),
                idle_timeout_minutes: self.number("IDLE_TIMEOUT_MINUTES", 0, 10_080),
            },
            ec2: Ec2Settings {
                instance_types: self.list("INSTANCE_TYPES", naming::check_instance_type),
                ami_id: self.optional("AMI_ID", |v| naming::check_id(v, "ami-")),
                vpc_id: self.optional("VPC_ID", |v| naming::check_id(v, "vpc-")),
                subnet_ids: self.list("SUBNET_IDS", |v| naming::check_id(v, "subnet-")),
                security_group_id: self
                    .optional("SECURITY_GROUP_ID", |v| naming::check_id(v, "sg-")),
                key_name: self.optional("KEY_NAME", |_| Ok(())),
                ssh_cidr: self.optional("SSH_CIDR", naming::check_cidr),
                root_volume_gb: self.number("ROOT_VOLUME_GB", 30, 16_384),
                allow_on_demand: self.flag("ALLOW_ON_DEMAND"),
                max_workers: self.number("MAX_WORKERS", 1, 1000),
            },
            ecr_repository: self.checked_or(
                "ECR_REPOSITORY",
                &format!("{prefix}-worker"),
                naming::check_repository,
            ),
            ecr_repository_uri: self.optional("ECR_REPOSITORY_URI", |_| Ok(())),
            project,
            environment,
        }
    }

    /// The value of `key` from the file or environment, else its default; `None` when empty.
    fn raw(&self, key: &str) -> Option<String> {
        match self.values.get(key) {
            Some((value, _)) => Some(value.clone()),
            None => keys::default_of(key).map(str::to_string),
        }
        .filter(|v| !v.is_empty())
    }

    fn problem(&mut self, key: &str, message: String, fix: String) {
        let line = self.values.get(key).and_then(|(_, o)| line_of(o));
        self.problems.push(Problem { key: key.to_string(), line, message, fix });
    }

    fn control_characters(&mut self, key: &str, value: &str) -> bool {
        if let Some(c) = value.chars().find(|c| c.is_control()) {
            self.problem(
                key,
                format!("contains the control character U+{:04X}", c as u32),
                "remove it (a Windows line ending or a pasted newline?)".to_string(),
            );
            return true;
        }
        false
    }

    fn checked(&mut self, key: &str, check: impl Fn(&str) -> Result<(), String>) -> String {
        match self.raw(key) {
            None => {
                self.problem(key, "is missing".to_string(), keys::fix_for_missing(key));
                String::new()
            }
            Some(value) => self.validate(key, value, check),
        }
    }

    fn checked_or(
        &mut self,
        key: &str,
        fallback: &str,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> String {
        let value = self.raw(key).unwrap_or_else(|| fallback.to_string());
        self.validate(key, value, check)
    }

    fn optional(
        &mut self,
        key: &str,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Option<String> {
        let value = self.raw(key)?;
        Some(self.validate(key, value, check))
    }

    fn validate(
        &mut self,
        key: &str,
        value: String,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> String {
        if self.control_characters(key, &value) {
            return value;
        }
        if let Err(fix) = check(&value) {
            self.problem(key, format!("`{}` is not valid", value.escape_debug()), fix);
        }
        value
    }

    fn number(&mut self, key: &str, min: u32, max: u32) -> u32 {
        let Some(value) = self.raw(key) else {
            self.problem(
                key,
                "is missing".into(),
                format!("set {key} to a whole number from {min} to {max}"),
            );
            return min;
        };
        match value.trim().parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => n,
            Ok(n) => {
                self.problem(
                    key,
                    format!("{n} is out of range"),
                    format!("use a whole number from {min} to {max}"),
                );
                min
            }
            Err(_) => {
                self.problem(
                    key,
                    format!("`{}` is not a whole number", value.escape_debug()),
                    format!("use a whole number from {min} to {max}"),
                );
                min
            }
        }
    }

    fn flag(&mut self, key: &str) -> bool {
        match self.raw(key).as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("false" | "no" | "0" | "off") => false,
            Some("true" | "yes" | "1" | "on") => true,
            Some(other) => {
                self.problem(
                    key,
                    format!("`{other}` is not true or false"),
                    format!("write {key}=true or {key}=false"),
                );
                false
            }
        }
    }

    fn list(&mut self, key: &str, check: impl Fn(&str) -> Result<(), String>) -> Vec<String> {
        let Some(value) = self.raw(key) else { return Vec::new() };
        if self.control_characters(key, &value) {
            return Vec::new();
        }
        let items: Vec<String> =
            value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect();
        for item in &items {
            if let Err(fix) = check(item) {
                self.problem(key, format!("`{}` is not valid", item.escape_debug()), fix);
            }
        }
        items
    }

    fn engine(&mut self) -> Engine {
        match self.raw("WHISPER_ENGINE").as_deref() {
            Some("whisperx") | None => Engine::Whisperx,
            Some("faster-whisper") => Engine::FasterWhisper,
            Some(other) => {
                self.problem(
                    "WHISPER_ENGINE",
                    format!("`{other}` is not a known engine"),
                    "use whisperx (GPU) or faster-whisper (CPU or GPU)".into(),
                );
                Engine::Whisperx
            }
        }
    }
}

#[cfg(test)]
mod tests;
