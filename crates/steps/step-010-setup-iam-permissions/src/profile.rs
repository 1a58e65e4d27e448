//! The worker instance profile: holds the worker role and nothing else.

use std::time::{Duration, Instant};

use common::iam_policy::remote::{self, IamResultExt};
use common::iam_policy::{IAM_PATH, Scope};
use common::sdk::iam;
use common::ui::Ui;
use common::{HintExt, Mark, Report};

/// Creates the profile, puts the role in it (and any other role out), and tags it.
pub async fn ensure_profile(
    iam: &iam::Client,
    scope: &Scope,
    tags: &[(String, String)],
    report: &mut Report,
) -> anyhow::Result<()> {
    let (name, role) = (scope.profile_name(), scope.role_name());
    let (roles, current_tags) = match remote::find_profile(iam, &name).await? {
        Some(profile) => {
            let roles: Vec<String> =
                profile.roles().iter().map(|r| r.role_name().to_string()).collect();
            (roles, profile.tags().to_vec())
        }
        None => {
            iam.create_instance_profile()
                .instance_profile_name(&name)
                .path(IAM_PATH)
                .set_tags(Some(remote::iam_tags(tags)?))
                .send()
                .await
                .iam_context(|| format!("failed to create instance profile `{name}`"))?;
            report.item(Mark::Created, "instance profile", format!("`{name}`"));
            (Vec::new(), remote::iam_tags(tags)?)
        }
    };

    // A profile holds one role; a foreign one would hand its rights to every worker.
    for other in roles.iter().filter(|r| **r != role) {
        iam.remove_role_from_instance_profile()
            .instance_profile_name(&name)
            .role_name(other)
            .send()
            .await
            .iam_context(|| {
                format!("failed to remove role `{other}` from instance profile `{name}`")
            })?;
        report.item(Mark::Deleted, "profile role", format!("`{other}` removed from `{name}`"));
    }
    if roles.contains(&role) {
        report.item(Mark::Unchanged, "profile role", format!("`{name}` holds `{role}`"));
    } else {
        iam.add_role_to_instance_profile()
            .instance_profile_name(&name)
            .role_name(&role)
            .send()
            .await
            .iam_context(|| format!("failed to add role `{role}` to instance profile `{name}`"))?;
        report.item(Mark::Created, "profile role", format!("`{name}` holds `{role}`"));
    }

    let missing = remote::missing_tags(tags, &current_tags);
    if !missing.is_empty() {
        iam.tag_instance_profile()
            .instance_profile_name(&name)
            .set_tags(Some(remote::iam_tags(&missing)?))
            .send()
            .await
            .iam_context(|| format!("failed to tag instance profile `{name}`"))?;
        report.item(Mark::Updated, "profile tags", remote::describe_tags(&missing));
    }
    Ok(())
}

/// Waits, with backoff up to `timeout`, until instance profile `profile` lists `role`.
pub async fn wait_for_role(
    ui: &Ui,
    iam: &iam::Client,
    profile: &str,
    role: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let spinner = ui.spinner(&format!("waiting until instance profile `{profile}` lists `{role}`"));
    let started = Instant::now();
    let mut delay = Duration::from_millis(200);
    loop {
        let found = remote::find_profile(iam, profile).await?;
        if found.is_some_and(|p| p.roles().iter().any(|r| r.role_name() == role)) {
            spinner.finish(&format!("instance profile `{profile}` lists `{role}`"));
            return Ok(());
        }
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            spinner.finish("IAM did not show the role in time");
            return Err(anyhow::anyhow!(
                "instance profile `{profile}` does not list role `{role}` after {} s",
                timeout.as_secs()
            ))
            .hint("IAM is eventually consistent; run the step again in a minute");
        }
        spinner.set_message(&format!("waiting for IAM to list `{role}` in `{profile}`"));
        tokio::time::sleep(delay.min(left)).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}
