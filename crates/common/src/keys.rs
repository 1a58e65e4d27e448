//! The one list of settings keys: defaults, which are secret, who writes them.
//!
//! `.env.example` documents every key listed here; a test keeps the two in step.

/// Fix shown when the settings file is missing.
pub const RUN_STEP_000: &str =
    "run ./scripts/step-000-setup-configuration.sh (add --local for the local emulator)";

/// The documented settings file; step-000 starts a new `.env` from it.
pub const ENV_TEMPLATE: &str = include_str!("../../../.env.example");

/// Who provides a key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The operator, through step-000 or by editing `.env`.
    Operator,
    /// A step discovers it and writes it back; the step's full name, as its script is named.
    Step(&'static str),
}

/// One settings key.
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    /// Name in `.env`.
    pub name: &'static str,
    /// Default when the key is absent (empty: no default).
    pub default: &'static str,
    /// Whether the value is masked wherever it is shown.
    pub secret: bool,
    /// Who provides the value.
    pub source: Source,
    /// One-line description.
    pub help: &'static str,
}

const fn op(name: &'static str, default: &'static str, help: &'static str) -> KeySpec {
    KeySpec { name, default, secret: false, source: Source::Operator, help }
}

const fn found(name: &'static str, step: &'static str, help: &'static str) -> KeySpec {
    KeySpec { name, default: "", secret: false, source: Source::Step(step), help }
}

const STEP_000: &str = "step-000-setup-configuration";
const STEP_020: &str = "step-020-create-sqs-resources";
const STEP_100: &str = "step-100-setup-ec2-configuration";
const STEP_200: &str = "step-200-setup-docker-prerequisites";

/// Every key the steps read, in the order `.env` lists them.
pub const KEYS: &[KeySpec] = &[
    op("AWS_REGION", "", "AWS region of every resource, e.g. us-east-2"),
    found("AWS_ACCOUNT_ID", STEP_000, "12-digit account id the deployment belongs to"),
    op("AWS_PROFILE", "", "named credentials profile (optional; the standard chain otherwise)"),
    op("AWS_ENDPOINT_URL", "", "endpoint of a local AWS emulator; empty for real AWS"),
    op("PROJECT_NAME", "transcribe-fleet", "first part of every resource name and the Project tag"),
    op("ENVIRONMENT", "dev", "second part of every resource name and the Environment tag"),
    op("AUDIO_BUCKET", "", "bucket for audio, transcripts, worker status and bundles"),
    op("QUEUE_NAME", "", "job queue name (default <project>-<environment>-jobs)"),
    op("DLQ_NAME", "", "dead-letter queue name (default <queue>-dlq)"),
    op("VISIBILITY_TIMEOUT", "900", "seconds a job stays hidden while a worker holds it (0-43200)"),
    op("MESSAGE_RETENTION_SECONDS", "1209600", "seconds a job message is kept (60-1209600)"),
    op("SQS_WAIT_SECONDS", "20", "long-poll wait of workers in seconds (0-20)"),
    op("MAX_RECEIVE_COUNT", "3", "receives before SQS moves a job to the dead-letter queue"),
    found("QUEUE_URL", STEP_020, "job queue URL"),
    found("QUEUE_ARN", STEP_020, "job queue ARN"),
    found("DLQ_URL", STEP_020, "dead-letter queue URL"),
    found("DLQ_ARN", STEP_020, "dead-letter queue ARN"),
    op("WHISPER_ENGINE", "whisperx", "whisperx (GPU) or faster-whisper (CPU or GPU)"),
    op("WHISPER_MODEL", "large-v3", "model name, a local model folder, or bundled:tiny.en"),
    op("COMPUTE_TYPE", "float16", "CTranslate2 compute type: float16 on GPU, int8 on CPU"),
    op("BATCH_SIZE", "16", "WhisperX batch size; lower it for 16 GB GPUs with large models"),
    op("LANGUAGE", "", "language code such as en; empty detects the language"),
    op("DIARIZE", "false", "label speakers (needs a Hugging Face token)"),
    KeySpec {
        name: "HF_TOKEN",
        default: "",
        secret: true,
        source: Source::Operator,
        help: "Hugging Face token for diarization models (prefer HF_TOKEN_PARAMETER)",
    },
    op("HF_TOKEN_PARAMETER", "", "SSM SecureString parameter holding the Hugging Face token"),
    op(
        "IDLE_TIMEOUT_MINUTES",
        "30",
        "a worker exits after this many minutes without work (0: never)",
    ),
    op(
        "INSTANCE_TYPES",
        "g5.xlarge,g4dn.xlarge,g6.xlarge",
        "GPU instance types to try, primary first",
    ),
    found("AMI_ID", STEP_100, "GPU AMI for the region"),
    found("VPC_ID", STEP_100, "VPC of the workers (the default VPC unless set)"),
    found("SUBNET_IDS", STEP_100, "comma-separated subnets, one per availability zone"),
    found("SECURITY_GROUP_ID", STEP_100, "workers' security group (no inbound rules by default)"),
    op("KEY_NAME", "", "EC2 key pair for SSH (optional; Session Manager needs none)"),
    op("SSH_CIDR", "", "CIDR allowed to reach port 22, e.g. 203.0.113.7/32; empty opens no port"),
    op("ROOT_VOLUME_GB", "100", "encrypted gp3 root volume size in GiB"),
    op(
        "ALLOW_ON_DEMAND",
        "false",
        "fall back to on-demand instances when spot capacity is missing",
    ),
    op("MAX_WORKERS", "4", "upper bound on running workers"),
    op("ECR_REPOSITORY", "", "ECR repository for the worker image (default <prefix>-worker)"),
    found("ECR_REPOSITORY_URI", STEP_200, "ECR repository URI"),
];

/// The spec of `key`, if it is one of ours.
pub fn spec(key: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.name == key)
}

/// The default value of `key`, if it has one.
pub fn default_of(key: &str) -> Option<&'static str> {
    spec(key).map(|k| k.default).filter(|d| !d.is_empty())
}

/// The fix to show when `key` is missing.
pub fn fix_for_missing(key: &str) -> String {
    match spec(key).map(|k| k.source) {
        Some(Source::Step(step)) => format!("run ./scripts/{step}.sh, which writes {key}"),
        _ => format!("set {key} in .env, or {RUN_STEP_000}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_that_writes_a_key_has_a_script_the_fix_names() {
        let scripts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts");
        for spec in KEYS {
            if let Source::Step(step) = spec.source {
                let script = scripts.join(format!("{step}.sh"));
                assert!(script.is_file(), "{}: no script {}", spec.name, script.display());
                let fix = fix_for_missing(spec.name);
                assert!(fix.starts_with(&format!("run ./scripts/{step}.sh")), "{fix}");
            }
        }
    }
}
