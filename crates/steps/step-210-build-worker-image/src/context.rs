//! The build context: only what the Dockerfile copies, assembled in `.local/docker/`.
//!
//! Sending the project folder would send `target/` (gigabytes) to the engine; instead the
//! files are hard-linked (or copied) into a fresh folder laid out as the Dockerfile's header
//! describes.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::plan::{CONTEXT_BINARY, Plan};

/// Files of the engine the image needs.
const ENGINE_FILES: &[&str] = &[
    "whisper_engine.py",
    "requirements-cpu.txt",
    "requirements-gpu.txt",
    "requirements-gpu-nodeps.txt",
];

/// Workspace files the builder stage needs to compile the worker.
const WORKSPACE_FILES: &[&str] = &["Cargo.toml", "Cargo.lock", "rustfmt.toml", ".env.example"];

/// Assembles the context for `plan` from the `source` tree in `dir` and returns its size.
pub fn assemble(
    source: &Path,
    dir: &Path,
    plan: &Plan,
    binary: Option<&Path>,
    wheels: Option<&Path>,
) -> anyhow::Result<u64> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("failed to clear `{}`", dir.display()))?;
    }
    let docker = source.join("docker/worker");
    link(&docker.join("Dockerfile"), &dir.join("Dockerfile"))?;
    link(&docker.join("healthcheck.sh"), &dir.join("healthcheck.sh"))?;
    for file in ENGINE_FILES {
        link(&source.join("engine").join(file), &dir.join("engine").join(file))?;
    }
    let wheel_dir = dir.join("wheels");
    std::fs::create_dir_all(&wheel_dir)?;
    std::fs::write(wheel_dir.join(".keep"), "wheels downloaded on the host, if any\n")?;
    if let Some(wheels) = wheels {
        for entry in read_dir(wheels)? {
            if entry.extension().is_some_and(|e| e == "whl") {
                link(&entry, &wheel_dir.join(entry.file_name().unwrap_or_default()))?;
            }
        }
    }
    let src = dir.join("src");
    match binary {
        Some(binary) => link(binary, &src.join(CONTEXT_BINARY))?,
        None if plan.copies_binary() => {
            anyhow::bail!("the plan copies a worker binary but none was given")
        }
        None => {
            for file in WORKSPACE_FILES {
                link(&source.join(file), &src.join(file))?;
            }
            copy_tree(&source.join("crates"), &src.join("crates"))?;
        }
    }
    size_of(dir)
}

fn read_dir(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("failed to read `{}`", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    Ok(paths)
}

/// Hard-links `from` to `to` (copying across file systems), creating folders on the way.
fn link(from: &Path, to: &Path) -> anyhow::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create `{}`", parent.display()))?;
    }
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).with_context(|| {
            format!("failed to copy `{}` into the build context", from.display())
        })?;
    }
    Ok(())
}

/// Copies a source tree, skipping build output and editor clutter.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    for path in read_dir(from)? {
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        if name == "target" || name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            copy_tree(&path, &to.join(&name))?;
        } else {
            link(&path, &to.join(&name))?;
        }
    }
    Ok(())
}

fn size_of(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for path in read_dir(dir)? {
        let meta = std::fs::symlink_metadata(&path)?;
        total += if meta.is_dir() { size_of(&path)? } else { meta.len() };
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source_tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("dir");
        let root = dir.path();
        for file in
            ["docker/worker/Dockerfile", "docker/worker/healthcheck.sh", "Cargo.toml", "Cargo.lock"]
                .iter()
                .chain(&[
                    "rustfmt.toml",
                    ".env.example",
                    "crates/a/src/lib.rs",
                    "crates/a/target/big",
                ])
                .map(|f| f.to_string())
                .chain(ENGINE_FILES.iter().map(|f| format!("engine/{f}")))
        {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, "x").expect("write");
        }
        dir
    }

    fn plan(copies: bool) -> Plan {
        Plan {
            local: copies,
            base_image: "b".into(),
            builder_image: "b".into(),
            engine: "faster-whisper".into(),
            model: "bundled:tiny.en".into(),
            worker_binary: None,
            build_on_host: copies,
            host_wheels: copies,
        }
    }

    #[test]
    fn a_host_binary_context_holds_the_binary_and_no_sources() {
        let source = source_tree();
        let out = tempfile::tempdir().expect("out");
        let binary = source.path().join("worker-bin");
        std::fs::write(&binary, "elf").expect("binary");
        let dir = out.path().join("ctx");
        assemble(source.path(), &dir, &plan(true), Some(&binary), None).expect("assemble");
        assert!(dir.join("src").join(CONTEXT_BINARY).exists());
        assert!(dir.join("engine/whisper_engine.py").exists());
        assert!(dir.join("wheels/.keep").exists());
        assert!(!dir.join("src/Cargo.toml").exists());
    }

    #[test]
    fn a_compiling_context_holds_the_workspace_without_target() {
        let source = source_tree();
        let out = tempfile::tempdir().expect("out");
        let dir = out.path().join("ctx");
        assemble(source.path(), &dir, &plan(false), None, None).expect("assemble");
        assert!(dir.join("src/Cargo.lock").exists());
        assert!(dir.join("src/crates/a/src/lib.rs").exists());
        assert!(!dir.join("src/crates/a/target").exists());
    }
}
