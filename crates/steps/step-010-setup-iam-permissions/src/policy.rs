//! The worker's managed policy: created once, then a new default version per change.

use common::iam_policy::document::diff;
use common::iam_policy::remote::{self, IamResultExt};
use common::iam_policy::{IAM_PATH, Scope, worker_policy};
use common::sdk::iam;
use common::{Mark, Report};

/// Managed policies keep at most this many versions.
pub const MAX_VERSIONS: usize = 5;

/// Creates the worker policy, or makes the wanted document its default version.
pub async fn ensure_policy(
    iam: &iam::Client,
    scope: &Scope,
    tags: &[(String, String)],
    report: &mut Report,
) -> anyhow::Result<()> {
    let (name, arn) = (scope.policy_name(), scope.policy_arn());
    let wanted = worker_policy(scope);
    let Some(policy) = remote::find_policy(iam, &arn).await? else {
        iam.create_policy()
            .policy_name(&name)
            .path(IAM_PATH)
            .description("Least privilege of the transcription workers of this deployment")
            .policy_document(wanted.to_string())
            .set_tags(Some(remote::iam_tags(tags)?))
            .send()
            .await
            .iam_context(|| format!("failed to create policy `{name}`"))?;
        report.item(Mark::Created, "policy", format!("`{name}`"));
        return Ok(());
    };

    let current = remote::default_document(iam, &arn, &policy).await?;
    let differences = diff(&wanted, &current);
    if differences.is_empty() {
        let version = policy.default_version_id().unwrap_or("?");
        report.item(Mark::Unchanged, "policy", format!("`{name}` (version {version})"));
    } else {
        if let Some(deleted) = make_room(iam, &arn).await? {
            let why = format!("`{deleted}` of `{name}` (a policy keeps at most {MAX_VERSIONS})");
            report.item(Mark::Deleted, "policy version", why);
        }
        let version = new_default_version(iam, &arn, &wanted.to_string()).await?;
        report.item(Mark::Updated, "policy", format!("`{name}`: new default version {version}"));
        for difference in &differences {
            report.item(Mark::Info, "  drift", difference.to_string());
        }
    }

    let missing = remote::missing_tags(tags, policy.tags());
    if !missing.is_empty() {
        iam.tag_policy()
            .policy_arn(&arn)
            .set_tags(Some(remote::iam_tags(&missing)?))
            .send()
            .await
            .iam_context(|| format!("failed to tag policy `{name}`"))?;
        report.item(Mark::Updated, "policy tags", remote::describe_tags(&missing));
    }
    Ok(())
}

/// Deletes the oldest non-default version when the policy has no room for another one.
async fn make_room(iam: &iam::Client, arn: &str) -> anyhow::Result<Option<String>> {
    let out = iam
        .list_policy_versions()
        .policy_arn(arn)
        .send()
        .await
        .iam_context(|| format!("failed to list the versions of policy `{arn}`"))?;
    let versions = out.versions();
    if versions.len() < MAX_VERSIONS {
        return Ok(None);
    }
    let oldest = versions
        .iter()
        .filter(|v| !v.is_default_version())
        .min_by_key(|v| (v.create_date().map(|d| (d.secs(), d.subsec_nanos())), version_number(v)))
        .and_then(|v| v.version_id());
    let Some(oldest) = oldest else { return Ok(None) };
    iam.delete_policy_version()
        .policy_arn(arn)
        .version_id(oldest)
        .send()
        .await
        .iam_context(|| format!("failed to delete version {oldest} of policy `{arn}`"))?;
    Ok(Some(oldest.to_string()))
}

fn version_number(version: &iam::types::PolicyVersion) -> u64 {
    let id = version.version_id().unwrap_or_default();
    id.trim_start_matches('v').parse().unwrap_or(u64::MAX)
}

async fn new_default_version(
    iam: &iam::Client,
    arn: &str,
    document: &str,
) -> anyhow::Result<String> {
    let out = iam
        .create_policy_version()
        .policy_arn(arn)
        .policy_document(document)
        .set_as_default(true)
        .send()
        .await
        .iam_context(|| format!("failed to create a new version of policy `{arn}`"))?;
    Ok(out.policy_version().and_then(|v| v.version_id()).unwrap_or("?").to_string())
}
