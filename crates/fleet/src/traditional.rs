//! Path A specifics: the bootstrap user data and the files that go into its bundle.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::Settings;
use common::deployment_path::DeploymentPath;

use crate::{bundle, userdata};

/// The Path A bootstrap template (`deploy/traditional/bootstrap.sh`).
pub const BOOTSTRAP_TEMPLATE: &str = include_str!("../../../deploy/traditional/bootstrap.sh");

/// Path A user data for `settings`, rendered and size-checked (C26).
pub fn user_data(settings: &Settings) -> anyhow::Result<String> {
    let env = userdata::worker_environment(settings, DeploymentPath::Traditional);
    let values: BTreeMap<String, String> = [
        ("REGION", settings.region.clone()),
        ("BUCKET", settings.bucket.clone()),
        ("CURRENT_KEY", bundle::CURRENT_KEY.to_string()),
        ("BUNDLE_PREFIX", bundle::BUNDLE_PREFIX.to_string()),
        ("WORKER_ENV", userdata::env_file_lines(&env)?),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    userdata::render(BOOTSTRAP_TEMPLATE, &values)
}

/// The files of a Path A bundle besides the worker binary: `(name in bundle, source path)`.
pub fn bundle_sources(root: &Path) -> Vec<(&'static str, PathBuf)> {
    vec![
        (bundle::ENGINE_SCRIPT, root.join("engine/whisper_engine.py")),
        ("requirements-gpu.txt", root.join("engine/requirements-gpu.txt")),
        ("requirements-gpu-nodeps.txt", root.join("engine/requirements-gpu-nodeps.txt")),
        ("install.sh", root.join("deploy/traditional/install.sh")),
        (
            "transcription-worker.service",
            root.join("deploy/traditional/transcription-worker.service"),
        ),
    ]
}
