//! Step 111: check the worker bundle `bundles/current` points at.
//!
//! Every file of the manifest is downloaded and its sha256 compared; `SHA256SUMS` must list the
//! same sums; the worker binary must answer `--version`; `install.sh` must parse; the systemd
//! unit must have the sections and keys the service needs.

use std::process::Command;

use anyhow::Context as _;
use common::{Context, HintExt, Mark, Report};
use fleet::bundle;

/// The step's name.
pub const STEP: &str = "step-111-validate-worker-code";

/// Flags of step 111 (none besides the global ones).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {}

/// Runs step 111.
pub async fn run(ctx: Context, _args: Args) -> anyhow::Result<Report> {
    ctx.ui.header(STEP, "checking the worker bundle");
    let settings = ctx.load_settings()?.settings;
    let config = common::aws::sdk_config(&settings, &ctx.env, &Default::default()).await;
    let s3 = common::aws::s3_client(&config, &settings);
    let bucket = &settings.bucket;
    let version = bundle::read_current(&s3, bucket)
        .await?
        .context("`bundles/current` does not exist")
        .hint("run ./scripts/step-110-deploy-worker-code.sh")?;
    let mut report = Report::new(STEP);
    report.item(Mark::Info, "current", &version);
    let dir = ctx.project.local_dir().join("bundle-check").join(&version);
    let manifest = match bundle::fetch(&s3, bucket, &version, &dir).await {
        Ok(manifest) => manifest,
        Err(e) => {
            report.item(Mark::Problem, "bundle", format!("{e:#}"));
            report.summary = format!("bundle {version} is broken");
            return Ok(report);
        }
    };
    report.item(Mark::Passed, "sums", format!("{} files match the manifest", manifest.files.len()));
    let sums = bundle::get_bytes(&s3, bucket, &manifest.key("SHA256SUMS")).await?;
    match sums {
        Some(s) if String::from_utf8_lossy(&s) == manifest.sums() => {
            report.item(Mark::Passed, "SHA256SUMS", "matches the manifest")
        }
        _ => report.item(
            Mark::Problem,
            "SHA256SUMS",
            "missing or different from the manifest; run step-110",
        ),
    };
    check_binary(&mut report, &dir.join(bundle::WORKER_BINARY));
    check_script(&mut report, &dir.join("install.sh"));
    let unit =
        std::fs::read_to_string(dir.join("transcription-worker.service")).unwrap_or_default();
    match unit_problems(&unit) {
        problems if problems.is_empty() => report.item(Mark::Passed, "systemd unit", "valid"),
        problems => report.item(Mark::Problem, "systemd unit", problems.join("; ")),
    };
    if let Some(glibc) = &manifest.worker_glibc {
        report.item(
            Mark::Info,
            "glibc",
            format!("{glibc} needed, built with the {} profile", manifest.profile),
        );
    }
    report.summary = match report.count(Mark::Problem) {
        0 => format!("bundle {version} is valid"),
        n => format!("{n} problem(s) in bundle {version}"),
    };
    report.next.push("./scripts/step-120-launch-spot-worker.sh".to_string());
    Ok(report)
}

fn check_binary(report: &mut Report, path: &std::path::Path) {
    match Command::new(path).arg("--version").output() {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            report.item(Mark::Passed, "worker binary", text)
        }
        Ok(out) => report.item(
            Mark::Problem,
            "worker binary",
            format!(
                "--version exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ),
        Err(e) => report.item(
            Mark::Problem,
            "worker binary",
            format!("cannot run {}: {e}", path.display()),
        ),
    };
}

fn check_script(report: &mut Report, path: &std::path::Path) {
    match Command::new("bash").arg("-n").arg(path).output() {
        Ok(out) if out.status.success() => report.item(Mark::Passed, "install.sh", "parses"),
        Ok(out) => report.item(
            Mark::Problem,
            "install.sh",
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ),
        Err(e) => report.item(Mark::Info, "install.sh", format!("not checked: {e}")),
    };
}

/// What is missing from a systemd unit for the worker service.
pub fn unit_problems(unit: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut section = String::new();
    let mut seen: Vec<(String, String)> = Vec::new();
    for line in unit.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if line.starts_with('[') && line.ends_with(']') {
            section = line.to_string();
        } else if let Some((key, _)) = line.split_once('=') {
            seen.push((section.clone(), key.trim().to_string()));
        } else {
            problems.push(format!("`{line}` is neither a section nor KEY=value"));
        }
    }
    for (section, key) in [
        ("[Unit]", "Description"),
        ("[Service]", "ExecStart"),
        ("[Service]", "EnvironmentFile"),
        ("[Service]", "Restart"),
        ("[Service]", "User"),
        ("[Install]", "WantedBy"),
    ] {
        if !seen.iter().any(|(s, k)| s == section && k == key) {
            problems.push(format!("{section} has no {key}="));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_unit_is_valid_and_a_broken_one_is_not() {
        let shipped = include_str!("../../../../deploy/traditional/transcription-worker.service");
        assert_eq!(unit_problems(shipped), Vec::<String>::new());
        let broken = "[Service]\nExecStart=/bin/true\nnonsense\n";
        let problems = unit_problems(broken);
        assert!(problems.iter().any(|p| p.contains("nonsense")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("[Install] has no WantedBy")), "{problems:?}");
    }
}
