//! What teardown changes or keeps in the project folder: the local registry, `.env`, and the
//! files it leaves on purpose.

use common::registry::LocalRegistry;
use common::{Context, Mark, Report, Settings};

/// Keys that steps discovered and that name resources teardown deletes.
pub const CLEARED_KEYS: &[&str] =
    &["QUEUE_URL", "QUEUE_ARN", "DLQ_URL", "DLQ_ARN", "SECURITY_GROUP_ID", "ECR_REPOSITORY_URI"];

/// LOCAL MODE ONLY: stops the local registry and deletes its stored images.
pub fn delete_registry(registry: &LocalRegistry, report: &mut Report) -> anyhow::Result<()> {
    if registry.stop()? {
        report.item(Mark::Deleted, "local registry", format!("stopped ({})", registry.address()));
    }
    let data = registry.dir.join("data");
    if data.exists() {
        std::fs::remove_dir_all(&data)
            .map_err(|e| anyhow::anyhow!("failed to delete `{}`: {e}", data.display()))?;
        report.item(Mark::Deleted, "local registry images", data.display().to_string());
    }
    Ok(())
}

/// Empties the `.env` keys that named deleted resources (and `KEY_NAME` when it named the key
/// pair step-100 made); the operator's own settings stay.
pub fn clear_env(
    ctx: &Context,
    settings: &Settings,
    key_deleted: bool,
    report: &mut Report,
) -> anyhow::Result<()> {
    let path = &ctx.project.env_file;
    let file = common::dotenv::read(path, &ctx.env)
        .map_err(|e| anyhow::anyhow!("failed to read `{}`: {e}", path.display()))?;
    let generated_key = crate::ec2::key_pair_name(settings);
    let mut keys: Vec<&str> = CLEARED_KEYS.to_vec();
    if key_deleted && settings.ec2.key_name.as_deref() == Some(generated_key.as_str()) {
        keys.push("KEY_NAME");
    }
    let set: Vec<(&str, &str)> = keys
        .into_iter()
        .filter(|k| file.get(k).is_some_and(|e| !e.value.is_empty()))
        .map(|k| (k, ""))
        .collect();
    if set.is_empty() {
        return Ok(());
    }
    common::dotenv::update(path, &set)
        .map_err(|e| anyhow::anyhow!("failed to write `{}`: {e}", path.display()))?;
    let names: Vec<&str> = set.iter().map(|(k, _)| *k).collect();
    report.item(
        Mark::Updated,
        ".env",
        format!("cleared {} (their resources are gone)", names.join(", ")),
    );
    Ok(())
}

/// Says that worker images may remain when step-210 built here but no Docker engine answered.
pub fn report_unlisted_images(
    ctx: &Context,
    settings: &Settings,
    images: &crate::images::Found,
    report: &mut Report,
) {
    let context = ctx.project.local_dir().join("docker");
    if let (true, Some(why)) = (context.exists(), &images.unlisted) {
        report.item(
            Mark::Skipped,
            "local images",
            format!(
                "Docker images `{repo}:*` built on this machine may remain: the Docker engine \
                 did not answer ({why}); remove them with `docker image rm`",
                repo = settings.ecr_repository
            ),
        );
    }
}

/// Reports the project files teardown leaves on purpose, and why.
pub fn report_kept_files(ctx: &Context, report: &mut Report) {
    let context = ctx.project.local_dir().join("docker");
    if context.exists() {
        report.item(
            Mark::Skipped,
            "build folder",
            format!("{} kept (build context and logs); remove it with `rm -r`", context.display()),
        );
    }
    let operator = ctx.project.local_dir().join(common::iam_policy::OPERATOR_POLICY_FILE);
    if operator.exists() {
        report.item(
            Mark::Skipped,
            "operator policy",
            format!(
                "{} kept: it lists the rights an administrator granted you; revoking them is theirs to do",
                operator.display()
            ),
        );
    }
    let path_file = common::deployment_path::file(&ctx.project);
    if path_file.exists() {
        report.item(
            Mark::Skipped,
            "deployment path",
            format!("{} kept: it is your choice of path, not a resource", path_file.display()),
        );
    }
}
