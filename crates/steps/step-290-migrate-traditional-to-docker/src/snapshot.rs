//! The snapshot taken before a migration: `.env`, `.deployment-path`, the Path A bundle
//! version `bundles/current` points at, and the script links, under
//! `.local/migrations/<timestamp>/`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use common::Project;
use common::deployment_path::{self, DeploymentPath};

/// File names inside a snapshot folder.
pub const ENV_COPY: &str = "env";
/// Copy of `.deployment-path`.
pub const PATH_COPY: &str = "deployment-path";
/// What the snapshot holds, as JSON.
pub const MANIFEST: &str = "snapshot.json";

/// What a snapshot recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// When it was taken (RFC 3339).
    pub taken_at: String,
    /// The path chosen then.
    pub path: String,
    /// The bundle version `bundles/current` pointed at.
    pub bundle_version: String,
    /// `scripts/<link>` → target, as they were.
    pub links: Vec<(String, String)>,
}

/// Where snapshots are kept.
pub fn migrations_dir(project: &Project) -> PathBuf {
    project.local_dir().join("migrations")
}

/// Copies the configuration into a new folder named after the time; returns the folder.
pub fn take(project: &Project, bundle_version: &str) -> anyhow::Result<(PathBuf, Manifest)> {
    let now = chrono::Utc::now();
    let mut dir = migrations_dir(project).join(now.format("%Y%m%dT%H%M%SZ").to_string());
    if dir.exists() {
        dir = dir.with_extension(now.format("%3f").to_string());
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    copy(&project.env_file, &dir.join(ENV_COPY))?;
    copy(&deployment_path::file(project), &dir.join(PATH_COPY))?;
    let manifest = Manifest {
        taken_at: now.to_rfc3339(),
        path: DeploymentPath::Traditional.as_str().to_string(),
        bundle_version: bundle_version.to_string(),
        links: read_links(&project.root.join("scripts")),
    };
    let text = serde_json::to_string_pretty(&manifest)?;
    std::fs::write(dir.join(MANIFEST), text)
        .with_context(|| format!("failed to write `{}`", dir.join(MANIFEST).display()))?;
    Ok((dir, manifest))
}

/// The newest snapshot folder, if any.
pub fn latest(project: &Project) -> Option<PathBuf> {
    let entries = std::fs::read_dir(migrations_dir(project)).ok()?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join(MANIFEST).is_file())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// Reads a snapshot's manifest.
pub fn read(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("`{}` is not a snapshot", path.display()))
}

/// Puts the snapshot's `.env` back over the project's.
pub fn restore_env(project: &Project, dir: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(dir.join(ENV_COPY))
        .with_context(|| format!("failed to read `{}`", dir.join(ENV_COPY).display()))?;
    common::dotenv::write_atomically(&project.env_file, &text)
        .with_context(|| format!("failed to write `{}`", project.env_file.display()))
}

fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::copy(from, to)
        .map(drop)
        .with_context(|| format!("failed to copy `{}` to `{}`", from.display(), to.display()))
}

fn read_links(scripts: &Path) -> Vec<(String, String)> {
    step_025_choose_deployment_path::links::links_for(DeploymentPath::Traditional)
        .iter()
        .filter_map(|(name, _)| {
            let target = std::fs::read_link(scripts.join(name)).ok()?;
            Some((name.to_string(), target.display().to_string()))
        })
        .collect()
}
