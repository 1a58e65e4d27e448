//! `scripts/launch-worker.sh` and `scripts/check-health.sh`: relative links to the chosen
//! path's scripts, replaced atomically.

use std::path::{Path, PathBuf};

use common::deployment_path::DeploymentPath;
use common::{Mark, Report};

/// The link names in `scripts/` and the script each points to for `path`.
pub fn links_for(path: DeploymentPath) -> [(&'static str, &'static str); 2] {
    [("launch-worker.sh", path.launch_script()), ("check-health.sh", path.health_script())]
}

/// Points both links at `path`'s scripts and reports each one.
pub fn ensure_links(
    scripts: &Path,
    path: DeploymentPath,
    report: &mut Report,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(scripts).map_err(|e| {
        anyhow::Error::new(e).context(format!("failed to create `{}`", scripts.display()))
    })?;
    for (name, target) in links_for(path) {
        let link = scripts.join(name);
        let current = std::fs::read_link(&link).ok();
        let label = format!("scripts/{name}");
        match current {
            Some(old) if old == Path::new(target) => {
                report.item(Mark::Unchanged, label.clone(), format!("→ {target}"));
            }
            Some(old) => {
                replace_link(&link, target)?;
                report.item(Mark::Updated, label.clone(), format!("{} → {target}", old.display()));
            }
            None => {
                replace_link(&link, target)?;
                report.item(Mark::Created, label.clone(), format!("→ {target}"));
            }
        }
        if !common::deployment_path::resolves(&link) {
            report.item(
                Mark::Info,
                label,
                format!("{target} is not built yet; the link resolves once it exists"),
            );
        }
    }
    Ok(())
}

/// Makes `link` a symbolic link to `target` (a file name beside it): a link under a temporary
/// name first, then a rename over the old one, so the link is never missing.
pub fn replace_link(link: &Path, target: &str) -> anyhow::Result<()> {
    let name = link.file_name().and_then(|n| n.to_str()).unwrap_or("link");
    let temporary: PathBuf = link.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let result = symlink(target, &temporary).and_then(|()| std::fs::rename(&temporary, link));
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result.map_err(|e| {
        anyhow::Error::new(e).context(format!("failed to link `{}` to `{target}`", link.display()))
    })
}

#[cfg(unix)]
fn symlink(target: &str, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_target: &str, _link: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other("symbolic links are only made on Unix"))
}
