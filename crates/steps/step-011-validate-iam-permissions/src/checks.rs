//! One check per resource; each adds `Passed` or `Problem` lines to the report.

use common::iam_policy::document::diff;
use common::iam_policy::remote;
use common::iam_policy::{SETUP_COMMAND, Scope, trust_policy, worker_policy};
use common::sdk::iam;
use common::sdk::iam::types::Tag;
use common::{Mark, Report};

fn problem(report: &mut Report, label: &str, what: impl std::fmt::Display) {
    report.item(Mark::Problem, label, format!("{what}; fix: run {SETUP_COMMAND}"));
}

fn tags(report: &mut Report, label: &str, expected: &[(String, String)], actual: &[Tag]) {
    let missing = remote::missing_tags(expected, actual);
    if missing.is_empty() {
        report.item(Mark::Passed, label, remote::describe_tags(expected));
    } else {
        problem(
            report,
            label,
            format!("missing or different: {}", remote::describe_tags(&missing)),
        );
    }
}

/// The worker policy: exists, its default version grants what step-010 writes, tags.
pub async fn policy(
    iam: &iam::Client,
    scope: &Scope,
    expected_tags: &[(String, String)],
    report: &mut Report,
) -> anyhow::Result<()> {
    let (name, arn) = (scope.policy_name(), scope.policy_arn());
    let Some(policy) = remote::find_policy(iam, &arn).await? else {
        problem(report, "policy", format!("`{name}` does not exist"));
        return Ok(());
    };
    let current = remote::default_document(iam, &arn, &policy).await?;
    let differences = diff(&worker_policy(scope), &current);
    let version = policy.default_version_id().unwrap_or("?");
    if differences.is_empty() {
        report.item(Mark::Passed, "policy", format!("`{name}` version {version} matches"));
    }
    for difference in differences {
        problem(report, "policy", format!("`{name}` version {version}: {difference}"));
    }
    tags(report, "policy tags", expected_tags, policy.tags());
    Ok(())
}

/// The role: exists, trusts EC2 only, tags. Returns whether it exists.
pub async fn role(
    iam: &iam::Client,
    scope: &Scope,
    expected_tags: &[(String, String)],
    report: &mut Report,
) -> anyhow::Result<bool> {
    let name = scope.role_name();
    let Some(role) = remote::find_role(iam, &name).await? else {
        problem(report, "role", format!("`{name}` does not exist"));
        return Ok(false);
    };
    let differences = diff(&trust_policy(), &remote::trust_document(&role)?);
    if differences.is_empty() {
        report.item(Mark::Passed, "role trust", format!("`{name}` trusts only EC2"));
    }
    for difference in differences {
        problem(report, "role trust", format!("`{name}`: {difference}"));
    }
    tags(report, "role tags", expected_tags, role.tags());
    Ok(true)
}

/// The role's policies: the worker policy and Session Manager, nothing else.
pub async fn attachments(
    iam: &iam::Client,
    scope: &Scope,
    report: &mut Report,
) -> anyhow::Result<()> {
    let role = scope.role_name();
    let attachments = remote::worker_attachments(iam, scope).await?;
    for (arn, attached) in &attachments.wanted {
        if *attached {
            report.item(Mark::Passed, "attached", format!("`{arn}`"));
        } else {
            problem(report, "attached", format!("`{arn}` is not attached to `{role}`"));
        }
    }
    for arn in &attachments.foreign {
        problem(
            report,
            "attached",
            format!("`{arn}` is attached to `{role}` but is not the worker's"),
        );
    }
    for policy in remote::inline_policies(iam, &role).await? {
        problem(report, "inline policy", format!("`{policy}` on `{role}` is not the worker's"));
    }
    Ok(())
}

/// The instance profile: exists, holds exactly the worker role, tags.
pub async fn profile(
    iam: &iam::Client,
    scope: &Scope,
    expected_tags: &[(String, String)],
    report: &mut Report,
) -> anyhow::Result<()> {
    let (name, role) = (scope.profile_name(), scope.role_name());
    let Some(profile) = remote::find_profile(iam, &name).await? else {
        problem(report, "instance profile", format!("`{name}` does not exist"));
        return Ok(());
    };
    let roles: Vec<&str> = profile.roles().iter().map(|r| r.role_name()).collect();
    match roles.as_slice() {
        [only] if *only == role => {
            report.item(Mark::Passed, "profile role", format!("`{name}` holds `{role}`"));
        }
        [] => problem(report, "profile role", format!("`{name}` holds no role; expected `{role}`")),
        others => {
            let list = others.join("`, `");
            problem(
                report,
                "profile role",
                format!("`{name}` holds `{list}`; expected only `{role}`"),
            );
        }
    }
    tags(report, "profile tags", expected_tags, profile.tags());
    Ok(())
}
