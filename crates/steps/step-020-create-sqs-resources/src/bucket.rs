//! The bucket: where it is and whose it is, then public access, encryption, the TLS-only
//! policy, the lifecycle rules and tags, each checked and brought in line on its own.
//!
//! Versioning stays off on purpose: every object here can be re-created (audio is uploaded
//! again, transcripts are made again from it), and without versions teardown deletes one
//! object per key instead of every version and delete marker.

use common::sdk::s3::{self, types};
use common::{HintExt, Mark, Report, Settings};
use serde_json::Value;

use crate::desired;
use crate::errors::{AwsResultExt, HasStatus, http_status};

/// The region S3 reports for a `LocationConstraint` (empty means us-east-1, `EU` eu-west-1).
pub fn region_of(constraint: Option<&str>) -> String {
    match constraint.unwrap_or("") {
        "" => "us-east-1".to_string(),
        "EU" => "eu-west-1".to_string(),
        other => other.to_string(),
    }
}

fn not_ours(bucket: &str) -> anyhow::Error {
    anyhow::anyhow!("bucket `{bucket}` exists and belongs to another account")
}

fn wrong_region(bucket: &str, actual: &str, wanted: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "bucket `{bucket}` is in {actual}, but AWS_REGION is {wanted}; nothing was changed"
    )
}

fn choose_another(bucket: &str) -> String {
    format!(
        "bucket names are global: choose another AUDIO_BUCKET in .env (for example \
         `{bucket}-2`), then re-run this step"
    )
}

/// Whether the bucket exists and is ours in the configured region; `false` when it is missing.
///
/// A bucket of another account, or in another region, is an error: nothing is configured on it.
pub async fn locate(client: &s3::Client, settings: &Settings) -> anyhow::Result<bool> {
    let bucket = &settings.bucket;
    if let Err(e) = client.head_bucket().bucket(bucket).send().await {
        return match http_status(&e) {
            Some(404) => Ok(false),
            Some(403) => Err(not_ours(bucket)).hint(choose_another(bucket)),
            Some(301) => {
                let actual = match &e {
                    s3::error::SdkError::ServiceError(s) => s.raw().header("x-amz-bucket-region"),
                    _ => None,
                };
                let actual = actual.unwrap_or_else(|| "another region".to_string());
                Err(wrong_region(bucket, &actual, &settings.region)).hint(choose_another(bucket))
            }
            _ => Err(e).or_fail(|| format!("failed to look up bucket `{bucket}`")),
        };
    }
    let actual = region(client, bucket).await?;
    if actual != settings.region {
        return Err(wrong_region(bucket, &actual, &settings.region)).hint(choose_another(bucket));
    }
    Ok(true)
}

/// The region the bucket lives in.
pub async fn region(client: &s3::Client, bucket: &str) -> anyhow::Result<String> {
    let out = client
        .get_bucket_location()
        .bucket(bucket)
        .send()
        .await
        .or_fail(|| format!("failed to read the region of bucket `{bucket}`"))?;
    Ok(region_of(out.location_constraint().map(types::BucketLocationConstraint::as_str)))
}

/// Creates the bucket in the configured region.
pub async fn create_bucket(client: &s3::Client, settings: &Settings) -> anyhow::Result<()> {
    let bucket = &settings.bucket;
    let mut request = client.create_bucket().bucket(bucket);
    // us-east-1 is the one region S3 wants no LocationConstraint for.
    if settings.region != "us-east-1" {
        let location = types::BucketLocationConstraint::from(settings.region.as_str());
        let config =
            types::CreateBucketConfiguration::builder().location_constraint(location).build();
        request = request.create_bucket_configuration(config);
    }
    match request.send().await {
        Ok(_) => Ok(()),
        Err(e) => match common::aws::error_code(&e) {
            Some("BucketAlreadyOwnedByYou") => Ok(()),
            Some("BucketAlreadyExists") => Err(not_ours(bucket)).hint(choose_another(bucket)),
            _ => Err(e).or_fail(|| format!("failed to create bucket `{bucket}`")),
        },
    }
}

/// One configured property of the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aspect {
    /// All four public access block settings on.
    PublicAccess,
    /// Default encryption SSE-S3 with a bucket key.
    Encryption,
    /// A bucket policy statement denying requests without TLS.
    TlsPolicy,
    /// Scratch objects expire; unfinished multipart uploads are aborted.
    Lifecycle,
    /// The standard tags.
    Tags,
}

/// How an aspect is now, compared with how it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Which aspect.
    pub aspect: Aspect,
    /// Whether it is as it should be.
    pub ok: bool,
    /// Whether nothing is configured for it at all.
    pub absent: bool,
    /// How it is now.
    pub current: String,
    /// How it should be.
    pub wanted: String,
}

impl Aspect {
    /// Every aspect, in the order they are applied.
    pub const ALL: [Self; 5] =
        [Self::PublicAccess, Self::Encryption, Self::TlsPolicy, Self::Lifecycle, Self::Tags];

    /// The report label.
    pub fn label(self) -> &'static str {
        match self {
            Self::PublicAccess => "public access block",
            Self::Encryption => "default encryption",
            Self::TlsPolicy => "bucket policy",
            Self::Lifecycle => "lifecycle rules",
            Self::Tags => "bucket tags",
        }
    }

    /// Reads the aspect and compares it with the wanted state.
    pub async fn check(
        self,
        client: &s3::Client,
        bucket: &str,
        tags: &[(String, String)],
    ) -> anyhow::Result<Check> {
        let (current, ok, absent, wanted) = match self {
            Self::PublicAccess => check_public_access(client, bucket).await?,
            Self::Encryption => check_encryption(client, bucket).await?,
            Self::TlsPolicy => check_policy(client, bucket).await?,
            Self::Lifecycle => check_lifecycle(client, bucket).await?,
            Self::Tags => check_tags(client, bucket, tags).await?,
        };
        Ok(Check { aspect: self, ok, absent, current, wanted: wanted.to_string() })
    }

    /// Brings the aspect in line, keeping unrelated policy statements, rules and tags.
    pub async fn apply(
        self,
        client: &s3::Client,
        bucket: &str,
        tags: &[(String, String)],
    ) -> anyhow::Result<()> {
        match self {
            Self::PublicAccess => apply_public_access(client, bucket).await,
            Self::Encryption => apply_encryption(client, bucket).await,
            Self::TlsPolicy => apply_policy(client, bucket).await,
            Self::Lifecycle => apply_lifecycle(client, bucket).await,
            Self::Tags => apply_tags(client, bucket, tags).await,
        }
    }
}

/// Creates the bucket when `exists` is false, then checks and applies every aspect.
pub async fn ensure_bucket(
    client: &s3::Client,
    settings: &Settings,
    exists: bool,
    tags: &[(String, String)],
    report: &mut Report,
) -> anyhow::Result<()> {
    let bucket = &settings.bucket;
    if exists {
        report.item(
            Mark::Unchanged,
            format!("bucket `{bucket}`"),
            format!("in {}", settings.region),
        );
    } else {
        create_bucket(client, settings).await?;
        report.item(Mark::Created, format!("bucket `{bucket}`"), format!("in {}", settings.region));
    }
    for aspect in Aspect::ALL {
        if aspect == Aspect::TlsPolicy
            && let Some(reason) = desired::tls_policy_skipped(settings)
        {
            report.item(Mark::Skipped, aspect.label(), reason);
            continue;
        }
        let check = aspect.check(client, bucket, tags).await?;
        if check.ok {
            report.item(Mark::Unchanged, aspect.label(), check.current);
            continue;
        }
        aspect.apply(client, bucket, tags).await?;
        let mark = if check.absent { Mark::Created } else { Mark::Updated };
        report.item(mark, aspect.label(), format!("{} → {}", check.current, check.wanted));
    }
    // Versioning is only reported; a bucket whose setting cannot be read is still usable.
    let versioning = versioning(client, bucket).await.unwrap_or_else(|e| {
        format!("left off on purpose; the current setting could not be read ({e:#})")
    });
    report.item(Mark::Info, "versioning", versioning);
    Ok(())
}

/// A sentence on the bucket's versioning, which is left as it is.
pub async fn versioning(client: &s3::Client, bucket: &str) -> anyhow::Result<String> {
    let out = client
        .get_bucket_versioning()
        .bucket(bucket)
        .send()
        .await
        .or_fail(|| format!("failed to read the versioning of bucket `{bucket}`"))?;
    Ok(match out.status() {
        Some(types::BucketVersioningStatus::Enabled) => {
            "on (left as it is); teardown must delete every object version".to_string()
        }
        _ => {
            "off on purpose: every object can be re-created, and teardown stays simple".to_string()
        }
    })
}

/// Turns "this configuration does not exist" errors into `None`.
async fn optional<T, E, R>(
    result: Result<T, s3::error::SdkError<E, R>>,
    missing_code: &str,
    what: impl FnOnce() -> String,
) -> anyhow::Result<Option<T>>
where
    E: s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) if common::aws::error_code(&e) == Some(missing_code) => Ok(None),
        Err(e) => Err(e).or_fail(what),
    }
}

type Found = (String, bool, bool, &'static str);

const ALL_BLOCKED: &str = "all four settings on";

async fn check_public_access(client: &s3::Client, bucket: &str) -> anyhow::Result<Found> {
    let result = client.get_public_access_block().bucket(bucket).send().await;
    let out = optional(result, "NoSuchPublicAccessBlockConfiguration", || {
        format!("failed to read the public access block of bucket `{bucket}`")
    })
    .await?;
    let Some(config) = out.as_ref().and_then(|o| o.public_access_block_configuration()) else {
        return Ok(("none".to_string(), false, true, ALL_BLOCKED));
    };
    let settings = [
        ("BlockPublicAcls", config.block_public_acls()),
        ("IgnorePublicAcls", config.ignore_public_acls()),
        ("BlockPublicPolicy", config.block_public_policy()),
        ("RestrictPublicBuckets", config.restrict_public_buckets()),
    ];
    let off: Vec<&str> =
        settings.iter().filter(|(_, v)| *v != Some(true)).map(|(n, _)| *n).collect();
    if off.is_empty() {
        Ok((ALL_BLOCKED.to_string(), true, false, ALL_BLOCKED))
    } else {
        Ok((format!("{} off", off.join(", ")), false, false, ALL_BLOCKED))
    }
}

async fn apply_public_access(client: &s3::Client, bucket: &str) -> anyhow::Result<()> {
    let config = types::PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    client
        .put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(config)
        .send()
        .await
        .or_fail(|| format!("failed to block public access to bucket `{bucket}`"))?;
    Ok(())
}

const SSE_S3: &str = "SSE-S3 (AES256) with bucket key";

async fn check_encryption(client: &s3::Client, bucket: &str) -> anyhow::Result<Found> {
    let result = client.get_bucket_encryption().bucket(bucket).send().await;
    let out = optional(result, "ServerSideEncryptionConfigurationNotFoundError", || {
        format!("failed to read the default encryption of bucket `{bucket}`")
    })
    .await?;
    let rule = out
        .as_ref()
        .and_then(|o| o.server_side_encryption_configuration())
        .and_then(|c| c.rules().first());
    let Some(rule) = rule else { return Ok(("none".to_string(), false, true, SSE_S3)) };
    let algorithm = rule
        .apply_server_side_encryption_by_default()
        .map(|d| d.sse_algorithm().as_str().to_string())
        .unwrap_or_else(|| "none".to_string());
    let bucket_key = rule.bucket_key_enabled() == Some(true);
    let current = format!("{algorithm}{}", if bucket_key { " with bucket key" } else { "" });
    let ok = algorithm == "AES256" && bucket_key;
    Ok((if ok { SSE_S3.to_string() } else { current }, ok, false, SSE_S3))
}

async fn apply_encryption(client: &s3::Client, bucket: &str) -> anyhow::Result<()> {
    let default = types::ServerSideEncryptionByDefault::builder()
        .sse_algorithm(types::ServerSideEncryption::Aes256)
        .build()?;
    let rule = types::ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(default)
        .bucket_key_enabled(true)
        .build();
    let config = types::ServerSideEncryptionConfiguration::builder().rules(rule).build()?;
    client
        .put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(config)
        .send()
        .await
        .or_fail(|| format!("failed to set the default encryption of bucket `{bucket}`"))?;
    Ok(())
}

const TLS_ONLY: &str = "denies requests without TLS";

/// The bucket policy as JSON, or `None` when the bucket has none.
pub async fn policy(client: &s3::Client, bucket: &str) -> anyhow::Result<Option<Value>> {
    let result = client.get_bucket_policy().bucket(bucket).send().await;
    let out = optional(result, "NoSuchBucketPolicy", || {
        format!("failed to read the policy of bucket `{bucket}`")
    })
    .await?;
    let Some(text) = out.as_ref().and_then(|o| o.policy()) else { return Ok(None) };
    let value = serde_json::from_str(text)
        .map_err(|e| anyhow::anyhow!("the policy of bucket `{bucket}` is not valid JSON: {e}"))?;
    Ok(Some(value))
}

async fn check_policy(client: &s3::Client, bucket: &str) -> anyhow::Result<Found> {
    Ok(match policy(client, bucket).await? {
        None => ("none".to_string(), false, true, TLS_ONLY),
        Some(p) if desired::has_tls_deny(&p, bucket) => {
            (TLS_ONLY.to_string(), true, false, TLS_ONLY)
        }
        Some(_) => {
            ("no statement denying requests without TLS".to_string(), false, false, TLS_ONLY)
        }
    })
}

async fn apply_policy(client: &s3::Client, bucket: &str) -> anyhow::Result<()> {
    let current = policy(client, bucket).await?;
    let document = desired::with_tls_deny(current.as_ref(), bucket);
    client
        .put_bucket_policy()
        .bucket(bucket)
        .policy(document.to_string())
        .send()
        .await
        .or_fail(|| format!("failed to set the policy of bucket `{bucket}`"))?;
    Ok(())
}

const LIFECYCLE: &str = "tmp/ expires after 1 day; unfinished uploads aborted after 7 days";

async fn lifecycle_rules(
    client: &s3::Client,
    bucket: &str,
) -> anyhow::Result<Vec<types::LifecycleRule>> {
    let result = client.get_bucket_lifecycle_configuration().bucket(bucket).send().await;
    let out = optional(result, "NoSuchLifecycleConfiguration", || {
        format!("failed to read the lifecycle rules of bucket `{bucket}`")
    })
    .await?;
    Ok(out.map(|o| o.rules().to_vec()).unwrap_or_default())
}

// Rules written by older tools carry the deprecated rule-level `Prefix` instead of a filter.
#[allow(deprecated)]
fn rule_prefix(rule: &types::LifecycleRule) -> Option<&str> {
    rule.filter().and_then(|f| f.prefix()).or(rule.prefix())
}

fn expires_tmp(rule: &types::LifecycleRule) -> bool {
    rule.status() == &types::ExpirationStatus::Enabled
        && rule_prefix(rule) == Some(common::job::TMP_PREFIX)
        && rule.expiration().and_then(|e| e.days()) == Some(desired::TMP_EXPIRY_DAYS)
}

fn aborts_uploads(rule: &types::LifecycleRule) -> bool {
    rule.status() == &types::ExpirationStatus::Enabled
        && rule_prefix(rule).unwrap_or("").is_empty()
        && rule.abort_incomplete_multipart_upload().and_then(|a| a.days_after_initiation())
            == Some(desired::ABORT_MULTIPART_DAYS)
}

async fn check_lifecycle(client: &s3::Client, bucket: &str) -> anyhow::Result<Found> {
    let rules = lifecycle_rules(client, bucket).await?;
    if rules.is_empty() {
        return Ok(("none".to_string(), false, true, LIFECYCLE));
    }
    let tmp = rules.iter().any(expires_tmp);
    let abort = rules.iter().any(aborts_uploads);
    let current = match (tmp, abort) {
        (true, true) => LIFECYCLE.to_string(),
        (true, false) => "no rule aborting unfinished uploads".to_string(),
        (false, true) => "no rule expiring tmp/".to_string(),
        (false, false) => format!("{} other rule(s), none of ours", rules.len()),
    };
    Ok((current, tmp && abort, false, LIFECYCLE))
}

fn our_rules() -> anyhow::Result<Vec<types::LifecycleRule>> {
    let tmp = types::LifecycleRule::builder()
        .id(desired::TMP_RULE_ID)
        .filter(types::LifecycleRuleFilter::builder().prefix(common::job::TMP_PREFIX).build())
        .status(types::ExpirationStatus::Enabled)
        .expiration(types::LifecycleExpiration::builder().days(desired::TMP_EXPIRY_DAYS).build())
        .build()?;
    let abort = types::LifecycleRule::builder()
        .id(desired::ABORT_RULE_ID)
        .filter(types::LifecycleRuleFilter::builder().prefix("").build())
        .status(types::ExpirationStatus::Enabled)
        .abort_incomplete_multipart_upload(
            types::AbortIncompleteMultipartUpload::builder()
                .days_after_initiation(desired::ABORT_MULTIPART_DAYS)
                .build(),
        )
        .build()?;
    Ok(vec![tmp, abort])
}

async fn apply_lifecycle(client: &s3::Client, bucket: &str) -> anyhow::Result<()> {
    let ours = [desired::TMP_RULE_ID, desired::ABORT_RULE_ID];
    let mut rules: Vec<types::LifecycleRule> = lifecycle_rules(client, bucket)
        .await?
        .into_iter()
        .filter(|r| !r.id().is_some_and(|id| ours.contains(&id)))
        .collect();
    rules.extend(our_rules()?);
    let config = types::BucketLifecycleConfiguration::builder().set_rules(Some(rules)).build()?;
    client
        .put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(config)
        .send()
        .await
        .or_fail(|| format!("failed to set the lifecycle rules of bucket `{bucket}`"))?;
    Ok(())
}

/// The bucket's tags.
pub async fn bucket_tags(
    client: &s3::Client,
    bucket: &str,
) -> anyhow::Result<std::collections::HashMap<String, String>> {
    let result = client.get_bucket_tagging().bucket(bucket).send().await;
    let out = optional(result, "NoSuchTagSet", || {
        format!("failed to read the tags of bucket `{bucket}`")
    })
    .await?;
    Ok(out
        .map(|o| o.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect())
        .unwrap_or_default())
}

async fn check_tags(
    client: &s3::Client,
    bucket: &str,
    wanted: &[(String, String)],
) -> anyhow::Result<Found> {
    let current = bucket_tags(client, bucket).await?;
    let missing = desired::missing_tags(wanted, &current);
    if missing.is_empty() {
        return Ok(("standard tags set".to_string(), true, false, "standard tags set"));
    }
    let keys: Vec<&str> = missing.iter().map(|(k, _)| k.as_str()).collect();
    Ok((format!("missing {}", keys.join(", ")), false, current.is_empty(), "standard tags set"))
}

async fn apply_tags(
    client: &s3::Client,
    bucket: &str,
    wanted: &[(String, String)],
) -> anyhow::Result<()> {
    let mut all = bucket_tags(client, bucket).await?;
    for (key, value) in desired::missing_tags(wanted, &all) {
        all.insert(key, value);
    }
    let mut set = Vec::new();
    for (key, value) in all {
        set.push(types::Tag::builder().key(key).value(value).build()?);
    }
    let tagging = types::Tagging::builder().set_tag_set(Some(set)).build()?;
    client
        .put_bucket_tagging()
        .bucket(bucket)
        .tagging(tagging)
        .send()
        .await
        .or_fail(|| format!("failed to tag bucket `{bucket}`"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_location_constraint_means_us_east_1() {
        assert_eq!(region_of(None), "us-east-1");
        assert_eq!(region_of(Some("")), "us-east-1");
        assert_eq!(region_of(Some("EU")), "eu-west-1");
        assert_eq!(region_of(Some("us-east-2")), "us-east-2");
    }
}
