//! Step 001: check every setting, and that the credentials belong to the configured account.
//!
//! Format and range problems are all reported at once and exit 2 (bad configuration);
//! problems found by looking around (credentials, file permissions, git) exit 1.

use std::path::Path;

use common::settings::{Loaded, Settings, mask};
use common::{Context, Mark, Report};

/// The step's name.
pub const STEP: &str = "step-001-validate-configuration";

/// Flags of step 001.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Skip the credentials check (format checks only; works offline).
    #[arg(long)]
    pub offline: bool,
}

/// Runs step 001.
pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Report> {
    ctx.ui.header(STEP, "checking the settings");
    let loaded = ctx.load_settings()?;
    let settings = &loaded.settings;
    let mut report = Report::new(STEP);
    describe_settings(&mut report, &loaded);
    check_file(&mut report, &ctx.project.env_file, &ctx.project.root);
    if !args.offline {
        check_credentials(&mut report, &ctx, settings).await;
    }
    report.summary = match report.count(Mark::Problem) {
        0 => format!("{} settings are valid", loaded.path.display()),
        n => format!("{n} problem(s) in {}", loaded.path.display()),
    };
    if report.count(Mark::Problem) == 0 {
        report.next.push("./scripts/step-010-setup-iam-permissions.sh".to_string());
    }
    Ok(report)
}

fn describe_settings(report: &mut Report, loaded: &Loaded) {
    let s = &loaded.settings;
    let target = match &s.endpoint_url {
        Some(url) if s.is_local() => format!("{} (local emulator at {url})", s.region),
        Some(url) => format!("{} (endpoint {url})", s.region),
        None => s.region.clone(),
    };
    report.item(Mark::Passed, "region", target);
    report.item(
        Mark::Passed,
        "names",
        format!("{}-* (project {}, environment {})", s.prefix(), s.project, s.environment),
    );
    report.item(Mark::Passed, "bucket", &s.bucket);
    let q = &s.queue;
    report.item(
        Mark::Passed,
        "queues",
        format!(
            "{} → {} after {} receives; visibility {} s, wait {} s, retention {} s",
            q.name,
            q.dlq_name,
            q.max_receive_count,
            q.visibility_timeout,
            q.wait_seconds,
            q.retention_seconds
        ),
    );
    let w = &s.worker;
    report.item(
        Mark::Passed,
        "worker",
        format!(
            "{} {} ({}), idle exit after {} min",
            w.engine.as_str(),
            w.model,
            w.compute_type,
            w.idle_timeout_minutes
        ),
    );
    if !w.hf_token.is_empty() {
        report.item(
            Mark::Info,
            "HF_TOKEN",
            format!("{} (prefer HF_TOKEN_PARAMETER)", mask(w.hf_token.expose())),
        );
    }
    report.item(Mark::Passed, "instance types", s.ec2.instance_types.join(", "));
    for o in &loaded.overrides {
        report.item(Mark::Info, &o.key, o.to_string());
    }
}

/// The settings file must not be readable by others, nor tracked by git.
fn check_file(report: &mut Report, env_file: &Path, root: &Path) {
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(env_file) {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            report.item(
                Mark::Problem,
                ".env permissions",
                format!("mode {mode:o} lets others read it; fix: chmod 600 {}", env_file.display()),
            );
        }
    }
    let tracked = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "--error-unmatch"])
        .arg(env_file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if tracked {
        report.item(
            Mark::Problem,
            ".env in git",
            format!(
                "{} is tracked by git; fix: git rm --cached {}",
                env_file.display(),
                env_file.display()
            ),
        );
    }
}

async fn check_credentials(report: &mut Report, ctx: &Context, settings: &Settings) {
    let config = common::aws::sdk_config(settings, &ctx.env, &Default::default()).await;
    let spinner = ctx.ui.spinner("checking the credentials with STS");
    let identity = common::aws::caller_identity(&config).await;
    spinner.finish("credentials checked");
    match (identity, &settings.account_id) {
        (Err(e), _) => {
            let fix = if settings.is_local() {
                "start the local emulator with `make local-up`"
            } else {
                "configure credentials (aws configure, aws sso login, or AWS_PROFILE)"
            };
            report.item(
                Mark::Problem,
                "credentials",
                format!("{}; fix: {fix}", common::cli::render_error(&e).trim()),
            );
        }
        (Ok((account, _)), None) => {
            report.item(
                Mark::Problem,
                "AWS_ACCOUNT_ID",
                format!(
                    "is missing (credentials belong to {account}); \
                     fix: run step-000 or set AWS_ACCOUNT_ID={account}"
                ),
            );
        }
        (Ok((account, arn)), Some(expected)) if &account != expected => {
            report.item(
                Mark::Problem,
                "credentials",
                format!(
                    "belong to account {account} ({arn}) but AWS_ACCOUNT_ID is {expected}; \
                     fix: switch AWS_PROFILE, or re-run step-000 for this account"
                ),
            );
        }
        (Ok((account, arn)), Some(_)) => {
            report.item(Mark::Passed, "credentials", format!("account {account} ({arn})"));
        }
    }
}
