//! Path B specifics: the user data that runs the worker image on a GPU instance.
//!
//! The bootstrap (`deploy/docker/bootstrap.sh`) checks the NVIDIA container runtime, logs in to
//! ECR with a fresh token right before pulling the image by digest, compares the free disk with
//! the image size (C27), runs a GPU smoke test inside the container (C28) and then supervises
//! the worker container: a crash restarts it, an idle exit (64) shuts the host down. The worker
//! gets its settings from an env file and keeps `FLEET_STATUS_FILE` fresh for the image's
//! HEALTHCHECK.

use std::collections::BTreeMap;

use common::Settings;
use common::deployment_path::DeploymentPath;

use anyhow::Context as _;

use crate::userdata;

/// The Path B bootstrap template (`deploy/docker/bootstrap.sh`).
pub const BOOTSTRAP_TEMPLATE: &str = include_str!("../../../deploy/docker/bootstrap.sh");

/// `.env` key of the image the workers run: `<registry>/<repo>@sha256:...` (step-211).
pub const IMAGE_KEY: &str = "WORKER_IMAGE";
/// `.env` key of the image the workers ran before the last update (step-230 `--rollback`).
pub const PREVIOUS_IMAGE_KEY: &str = "WORKER_IMAGE_PREVIOUS";

/// `.env` key of the image the Path B workers were last launched or updated with.
pub const DEPLOYED_IMAGE_KEY: &str = "WORKER_IMAGE_DEPLOYED";

/// A value of `.env` that the settings table does not hold (the image keys), if set.
pub fn env_value(
    project: &common::Project,
    env: &common::settings::Env,
    key: &str,
) -> Option<String> {
    let file = common::dotenv::read(&project.env_file, env).ok()?;
    file.get(key).map(|e| e.value.clone()).filter(|v| !v.is_empty())
}

/// The pinned image `.env` names under `key`, with the step to run when it is missing.
pub fn configured_image(
    project: &common::Project,
    env: &common::settings::Env,
    key: &str,
) -> anyhow::Result<PinnedImage> {
    use common::HintExt as _;
    let Some(reference) = env_value(project, env, key) else {
        return Err(anyhow::anyhow!("{key} is not in .env: no worker image to run")).hint(
            "run ./scripts/step-210-build-worker-image.sh and ./scripts/step-211-push-to-ecr.sh",
        );
    };
    PinnedImage::parse(&reference).with_context(|| format!("{key} in .env is not usable"))
}

/// Signal that asks a worker to finish its current job, take no new one and exit 0.
pub const DRAIN_SIGNAL: &str = "USR1";

/// Name of the worker container on an instance or for an emulated instance.
pub fn container_name(settings: &Settings, instance_id: &str) -> String {
    format!("{}-worker-{instance_id}", settings.prefix())
}

/// The image to run: a reference pinned by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedImage {
    /// `<registry>/<repository>`.
    pub repository: String,
    /// `sha256:...`.
    pub digest: String,
}

impl PinnedImage {
    /// Reads `<registry>/<repository>@sha256:<64 hex>`.
    pub fn parse(reference: &str) -> anyhow::Result<Self> {
        let (repository, digest) = reference
            .split_once('@')
            .ok_or_else(|| anyhow::anyhow!("image `{reference}` is not pinned by a digest"))?;
        let hex = digest.strip_prefix("sha256:").unwrap_or_default();
        if repository.is_empty() || hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            anyhow::bail!("image `{reference}` is not `<registry>/<repository>@sha256:<digest>`");
        }
        Ok(Self { repository: repository.to_string(), digest: digest.to_string() })
    }

    /// The registry host.
    pub fn registry(&self) -> &str {
        self.repository.split('/').next().unwrap_or(&self.repository)
    }

    /// `<repository>@<digest>`.
    pub fn reference(&self) -> String {
        format!("{}@{}", self.repository, self.digest)
    }
}

/// Path B user data for `settings` running `image` (size-checked, C26). `image_size` is the
/// uncompressed image size in bytes; the bootstrap wants twice that free before pulling.
pub fn user_data(
    settings: &Settings,
    image: &PinnedImage,
    image_size: u64,
) -> anyhow::Result<String> {
    let env = userdata::worker_environment(settings, DeploymentPath::Docker);
    let labels = common::containers::labels(settings, DeploymentPath::Docker, "")
        .into_iter()
        .filter(|l| !l.starts_with(common::containers::WORKER_LABEL))
        .map(|l| format!("--label {l}"))
        .collect::<Vec<_>>()
        .join(" ");
    let values: BTreeMap<String, String> = [
        ("REGION", settings.region.clone()),
        ("REGISTRY", image.registry().to_string()),
        ("IMAGE", image.reference()),
        ("CONTAINER_NAME", format!("{}-worker", settings.prefix())),
        ("IMAGE_SIZE_BYTES", image_size.max(1).to_string()),
        ("LABELS", labels),
        ("WORKER_ENV", userdata::env_file_lines(&env)?),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    userdata::render(BOOTSTRAP_TEMPLATE, &values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> String {
        format!("sha256:{}", "ab".repeat(32))
    }

    #[test]
    fn a_pinned_reference_is_split_into_repository_and_digest() {
        let image = PinnedImage::parse(&format!("127.0.0.1:5050/fleet-dev-worker@{}", digest()))
            .expect("pinned");
        assert_eq!(image.registry(), "127.0.0.1:5050");
        assert_eq!(image.digest, digest());
        assert!(PinnedImage::parse("127.0.0.1:5050/fleet-dev-worker:latest").is_err());
        assert!(PinnedImage::parse("repo@sha256:abc").is_err());
    }

    #[test]
    fn the_template_checks_runtime_login_disk_and_gpu_before_running_the_worker() {
        let order = [
            "NVIDIA container runtime",
            "aws ecr get-login-password",
            "df -Pk",
            "docker pull",
            "--gpus all --entrypoint",
            "--env-file /etc/transcribe-fleet/worker.env",
        ];
        let positions: Vec<usize> = order
            .iter()
            .map(|needle| BOOTSTRAP_TEMPLATE.find(needle).unwrap_or_else(|| panic!("{needle}")))
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    }

    #[test]
    fn the_supervisor_shuts_down_on_idle_and_never_restarts_exit_64() {
        assert!(BOOTSTRAP_TEMPLATE.contains("64) shutdown -h now"));
        assert!(BOOTSTRAP_TEMPLATE.contains("--restart no"));
        assert!(!BOOTSTRAP_TEMPLATE.contains("--restart on-failure"));
        assert!(!BOOTSTRAP_TEMPLATE.contains("--restart always"));
    }
}
