//! Reading the worker's IAM resources as they exist, for step-010, step-011 and teardown.

use aws_sdk_iam::Client;
use aws_sdk_iam::types::{InstanceProfile, Policy, Role, Tag};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde_json::Value;

use super::Scope;
use crate::aws::SdkResultExt;
use crate::cli::HintExt;

/// Adds context to IAM results, and the operator-policy hint when access is denied.
pub trait IamResultExt<T> {
    /// Like [`SdkResultExt::aws_context`], plus [`super::access_denied_hint`] on AccessDenied.
    fn iam_context(self, context: impl FnOnce() -> String) -> anyhow::Result<T>;
}

impl<T, E, R> IamResultExt<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    fn iam_context(self, context: impl FnOnce() -> String) -> anyhow::Result<T> {
        let denied =
            self.as_ref().err().is_some_and(|e| super::is_access_denied(crate::aws::error_code(e)));
        let result = self.aws_context(context);
        if denied { result.hint(super::access_denied_hint()) } else { result }
    }
}

fn is_missing<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    crate::aws::error_code(error) == Some("NoSuchEntity")
}

/// The role `name`, or `None` when it does not exist.
pub async fn find_role(iam: &Client, name: &str) -> anyhow::Result<Option<Role>> {
    match iam.get_role().role_name(name).send().await {
        Ok(out) => Ok(out.role),
        Err(e) if is_missing(&e) => Ok(None),
        Err(e) => Err(e).iam_context(|| format!("failed to read role `{name}`")),
    }
}

/// The instance profile `name`, or `None` when it does not exist.
pub async fn find_profile(iam: &Client, name: &str) -> anyhow::Result<Option<InstanceProfile>> {
    match iam.get_instance_profile().instance_profile_name(name).send().await {
        Ok(out) => Ok(out.instance_profile),
        Err(e) if is_missing(&e) => Ok(None),
        Err(e) => Err(e).iam_context(|| format!("failed to read instance profile `{name}`")),
    }
}

/// The managed policy `arn`, or `None` when it does not exist.
pub async fn find_policy(iam: &Client, arn: &str) -> anyhow::Result<Option<Policy>> {
    match iam.get_policy().policy_arn(arn).send().await {
        Ok(out) => Ok(out.policy),
        Err(e) if is_missing(&e) => Ok(None),
        Err(e) => Err(e).iam_context(|| format!("failed to read policy `{arn}`")),
    }
}

/// The document of the policy's default version.
pub async fn default_document(iam: &Client, arn: &str, policy: &Policy) -> anyhow::Result<Value> {
    let version = policy.default_version_id().unwrap_or("v1");
    let out = iam
        .get_policy_version()
        .policy_arn(arn)
        .version_id(version)
        .send()
        .await
        .iam_context(|| format!("failed to read version {version} of policy `{arn}`"))?;
    let text = out.policy_version.and_then(|v| v.document).unwrap_or_default();
    super::document::decode(&text)
        .map_err(|e| e.context(format!("cannot read version {version} of policy `{arn}`")))
}

/// The trust policy of `role`.
pub fn trust_document(role: &Role) -> anyhow::Result<Value> {
    let text = role.assume_role_policy_document().unwrap_or_default();
    super::document::decode(text).map_err(|e| {
        e.context(format!("cannot read the trust policy of role `{}`", role.role_name()))
    })
}

/// ARNs of the managed policies attached to role `name`.
pub async fn attached_policies(iam: &Client, name: &str) -> anyhow::Result<Vec<String>> {
    let pages = iam.list_attached_role_policies().role_name(name).into_paginator().items().send();
    let items: Vec<_> = pages
        .collect::<Result<Vec<_>, _>>()
        .await
        .iam_context(|| format!("failed to list the policies attached to role `{name}`"))?;
    Ok(items.into_iter().filter_map(|p| p.policy_arn).collect())
}

/// The worker role's managed policies against the two it should have (the worker policy and
/// Session Manager).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerAttachments {
    /// Each wanted policy ARN, and whether it is attached.
    pub wanted: Vec<(String, bool)>,
    /// Attached policy ARNs that are not the worker's.
    pub foreign: Vec<String>,
}

/// Reads which policies the worker role of `scope` has attached, against the wanted two.
pub async fn worker_attachments(iam: &Client, scope: &Scope) -> anyhow::Result<WorkerAttachments> {
    let wanted = [scope.policy_arn(), scope.ssm_core_policy_arn()];
    let attached = attached_policies(iam, &scope.role_name()).await?;
    let foreign = attached.iter().filter(|arn| !wanted.contains(arn)).cloned().collect();
    let wanted = wanted
        .into_iter()
        .map(|arn| {
            let on = attached.contains(&arn);
            (arn, on)
        })
        .collect();
    Ok(WorkerAttachments { wanted, foreign })
}

/// Names of the inline policies of role `name`.
pub async fn inline_policies(iam: &Client, name: &str) -> anyhow::Result<Vec<String>> {
    let pages = iam.list_role_policies().role_name(name).into_paginator().items().send();
    pages
        .collect::<Result<Vec<_>, _>>()
        .await
        .iam_context(|| format!("failed to list the inline policies of role `{name}`"))
}

/// The expected tags that `actual` lacks or holds with another value.
pub fn missing_tags(expected: &[(String, String)], actual: &[Tag]) -> Vec<(String, String)> {
    expected
        .iter()
        .filter(|(key, value)| !actual.iter().any(|t| t.key() == key && t.value() == value))
        .cloned()
        .collect()
}

/// IAM tags from key/value pairs.
pub fn iam_tags(pairs: &[(String, String)]) -> anyhow::Result<Vec<Tag>> {
    pairs
        .iter()
        .map(|(key, value)| {
            Tag::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|e| anyhow::anyhow!("bad tag `{key}`: {e}"))
        })
        .collect()
}

/// `key=value, ...` for messages.
pub fn describe_tags(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}
