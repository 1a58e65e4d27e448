//! The worker role: trust, tags and exactly two attached policies.

use common::iam_policy::document::diff;
use common::iam_policy::remote::{self, IamResultExt};
use common::iam_policy::{EC2_SERVICE, IAM_PATH, Scope, trust_policy};
use common::sdk::iam;
use common::{Mark, Report};

/// Creates the role, or repairs its trust policy and tags.
pub async fn ensure_role(
    iam: &iam::Client,
    scope: &Scope,
    tags: &[(String, String)],
    report: &mut Report,
) -> anyhow::Result<()> {
    let name = scope.role_name();
    let trust = trust_policy();
    let Some(role) = remote::find_role(iam, &name).await? else {
        iam.create_role()
            .role_name(&name)
            .path(IAM_PATH)
            .description("Transcription workers of this deployment")
            .assume_role_policy_document(trust.to_string())
            .set_tags(Some(remote::iam_tags(tags)?))
            .send()
            .await
            .iam_context(|| format!("failed to create role `{name}`"))?;
        report.item(Mark::Created, "role", format!("`{name}` (trusted by {EC2_SERVICE})"));
        return Ok(());
    };

    let differences = diff(&trust, &remote::trust_document(&role)?);
    if differences.is_empty() {
        report.item(Mark::Unchanged, "role", format!("`{name}`"));
    } else {
        iam.update_assume_role_policy()
            .role_name(&name)
            .policy_document(trust.to_string())
            .send()
            .await
            .iam_context(|| format!("failed to replace the trust policy of role `{name}`"))?;
        report.item(Mark::Updated, "role trust", format!("`{name}` trusts only {EC2_SERVICE}"));
        for difference in &differences {
            report.item(Mark::Info, "  drift", difference.to_string());
        }
    }

    let missing = remote::missing_tags(tags, role.tags());
    if !missing.is_empty() {
        iam.tag_role()
            .role_name(&name)
            .set_tags(Some(remote::iam_tags(&missing)?))
            .send()
            .await
            .iam_context(|| format!("failed to tag role `{name}`"))?;
        report.item(Mark::Updated, "role tags", remote::describe_tags(&missing));
    }
    Ok(())
}

/// Attaches the worker policy and Session Manager; removes every other policy of the role.
pub async fn ensure_attachments(
    iam: &iam::Client,
    scope: &Scope,
    report: &mut Report,
) -> anyhow::Result<()> {
    let role = scope.role_name();
    let attachments = remote::worker_attachments(iam, scope).await?;
    for (arn, attached) in &attachments.wanted {
        if *attached {
            report.item(Mark::Unchanged, "attached", format!("`{}`", short(arn)));
            continue;
        }
        iam.attach_role_policy()
            .role_name(&role)
            .policy_arn(arn)
            .send()
            .await
            .iam_context(|| format!("failed to attach policy `{arn}` to role `{role}`"))?;
        report.item(Mark::Created, "attached", format!("`{}`", short(arn)));
    }

    // Anything else attached widens the least privilege this step promises.
    for arn in &attachments.foreign {
        iam.detach_role_policy()
            .role_name(&role)
            .policy_arn(arn)
            .send()
            .await
            .iam_context(|| format!("failed to detach policy `{arn}` from role `{role}`"))?;
        report.item(
            Mark::Deleted,
            "attached",
            format!("`{}` (not part of the worker's rights)", short(arn)),
        );
    }
    for policy in remote::inline_policies(iam, &role).await? {
        iam.delete_role_policy().role_name(&role).policy_name(&policy).send().await.iam_context(
            || format!("failed to delete inline policy `{policy}` of role `{role}`"),
        )?;
        report.item(
            Mark::Deleted,
            "inline policy",
            format!("`{policy}` (not part of the worker's rights)"),
        );
    }
    Ok(())
}

/// The policy name of an ARN.
fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}
