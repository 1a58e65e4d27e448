//! The worker's role, instance profile and managed policy, found by their names.
//!
//! IAM refuses to delete what is still attached or versioned, so the order is fixed: detach
//! the role's policies, delete the policy's non-default versions and the policy, remove the
//! role from the profile, delete the profile, delete the role.

use common::iam_policy::Scope;
use common::iam_policy::remote::{self, IamResultExt};
use common::sdk::iam::Client;
use common::{Mark, Report};

/// The worker's IAM resources that exist.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// The managed policy's ARN and its non-default versions.
    pub policy: Option<(String, Vec<String>)>,
    /// The role, the ARNs of its attached policies and its inline policy names.
    pub role: Option<(String, Vec<String>, Vec<String>)>,
    /// The instance profile and the roles in it.
    pub profile: Option<(String, Vec<String>)>,
}

impl Found {
    /// `(label, detail)` per resource.
    pub fn lines(&self) -> Vec<(&'static str, String)> {
        let mut lines = Vec::new();
        if let Some((arn, versions)) = &self.policy {
            lines.push(("policy", format!("{arn} ({} older version(s))", versions.len())));
        }
        if let Some((name, attached, _)) = &self.role {
            lines.push(("role", format!("{name} ({} attached policy(ies))", attached.len())));
        }
        if let Some((name, _)) = &self.profile {
            lines.push(("instance profile", name.clone()));
        }
        lines
    }
}

/// Reads what exists of the role, profile and policy of `scope`.
pub async fn find(iam: &Client, scope: &Scope) -> anyhow::Result<Found> {
    let mut found = Found::default();
    let arn = scope.policy_arn();
    if remote::find_policy(iam, &arn).await?.is_some() {
        let out = iam
            .list_policy_versions()
            .policy_arn(&arn)
            .send()
            .await
            .iam_context(|| format!("failed to list the versions of policy `{arn}`"))?;
        let older: Vec<String> = out
            .versions()
            .iter()
            .filter(|v| !v.is_default_version())
            .filter_map(|v| v.version_id().map(str::to_string))
            .collect();
        found.policy = Some((arn, older));
    }
    let role = scope.role_name();
    if remote::find_role(iam, &role).await?.is_some() {
        let attached = remote::attached_policies(iam, &role).await?;
        let inline = remote::inline_policies(iam, &role).await?;
        found.role = Some((role, attached, inline));
    }
    let name = scope.profile_name();
    if let Some(profile) = remote::find_profile(iam, &name).await? {
        let roles = profile.roles().iter().map(|r| r.role_name().to_string()).collect();
        found.profile = Some((name, roles));
    }
    Ok(found)
}

/// Deletes what [`find`] found, in the order IAM allows.
pub async fn delete(iam: &Client, found: &Found, report: &mut Report) -> anyhow::Result<()> {
    if let Some((role, attached, inline)) = &found.role {
        for arn in attached {
            iam.detach_role_policy()
                .role_name(role)
                .policy_arn(arn)
                .send()
                .await
                .iam_context(|| format!("failed to detach policy `{arn}` from role `{role}`"))?;
            report.item(Mark::Deleted, "policy attachment", format!("{arn} from {role}"));
        }
        for name in inline {
            iam.delete_role_policy()
                .role_name(role)
                .policy_name(name)
                .send()
                .await
                .iam_context(|| format!("failed to delete inline policy `{name}` of `{role}`"))?;
            report.item(Mark::Deleted, "inline policy", format!("{name} of {role}"));
        }
    }
    if let Some((arn, versions)) = &found.policy {
        for version in versions {
            iam.delete_policy_version()
                .policy_arn(arn)
                .version_id(version)
                .send()
                .await
                .iam_context(|| format!("failed to delete version {version} of policy `{arn}`"))?;
            report.item(Mark::Deleted, "policy version", format!("{version} of {arn}"));
        }
        iam.delete_policy()
            .policy_arn(arn)
            .send()
            .await
            .iam_context(|| format!("failed to delete policy `{arn}`"))?;
        report.item(Mark::Deleted, "policy", arn);
    }
    if let Some((profile, roles)) = &found.profile {
        for role in roles {
            iam.remove_role_from_instance_profile()
                .instance_profile_name(profile)
                .role_name(role)
                .send()
                .await
                .iam_context(|| format!("failed to remove role `{role}` from `{profile}`"))?;
        }
        iam.delete_instance_profile()
            .instance_profile_name(profile)
            .send()
            .await
            .iam_context(|| format!("failed to delete instance profile `{profile}`"))?;
        report.item(Mark::Deleted, "instance profile", profile);
    }
    if let Some((role, _, _)) = &found.role {
        iam.delete_role()
            .role_name(role)
            .send()
            .await
            .iam_context(|| format!("failed to delete role `{role}`"))?;
        report.item(Mark::Deleted, "role", role);
    }
    Ok(())
}
