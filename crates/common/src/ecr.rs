//! The worker image's ECR repository: the settings it must have, and registry logins.
//!
//! The repository keeps immutable tags (a pushed version never changes under a running worker;
//! workers pull by digest), scans on push, is encrypted (AES256, or KMS if someone chose it),
//! and a lifecycle policy expires all but the last [`KEEP_IMAGES`] images. step-200 makes it
//! so ([`ensure_repository`]); step-201 checks it ([`check_repository`]).

use anyhow::Context as _;
use aws_sdk_ecr::Client;
use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability, Tag,
};

use crate::aws::SdkResultExt;
use crate::report::{Mark, Report};
use crate::settings::{Secret, Settings};

/// Images the lifecycle policy keeps; older ones expire.
pub const KEEP_IMAGES: u32 = 20;

/// What a repository looks like now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// Its URI, `<account>.dkr.ecr.<region>.amazonaws.com/<name>`.
    pub uri: String,
    /// Its ARN.
    pub arn: String,
    /// Whether tags are immutable.
    pub immutable: bool,
    /// Whether images are scanned on push.
    pub scan_on_push: bool,
    /// `AES256` or `KMS`.
    pub encryption: String,
}

/// The lifecycle policy keeping the last `keep` images.
pub fn lifecycle_policy(keep: u32) -> String {
    serde_json::json!({
        "rules": [{
            "rulePriority": 1,
            "description": format!("keep the last {keep} worker images"),
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
            "action": {"type": "expire"}
        }]
    })
    .to_string()
}

/// Whether two policy texts say the same, whatever their formatting.
pub fn same_policy(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(a),
        serde_json::from_str::<serde_json::Value>(b),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The repository `name`, or `None` when it does not exist.
pub async fn find_repository(client: &Client, name: &str) -> anyhow::Result<Option<Repository>> {
    let result = client.describe_repositories().repository_names(name).send().await;
    if let Err(e) = &result
        && crate::aws::error_code(e) == Some("RepositoryNotFoundException")
    {
        return Ok(None);
    }
    let out = result.aws_context(|| format!("failed to describe repository `{name}`"))?;
    let Some(repo) = out.repositories().first() else { return Ok(None) };
    Ok(Some(Repository {
        uri: repo.repository_uri().unwrap_or_default().to_string(),
        arn: repo.repository_arn().unwrap_or_default().to_string(),
        immutable: repo.image_tag_mutability() == Some(&ImageTagMutability::Immutable),
        scan_on_push: repo.image_scanning_configuration().is_some_and(|c| c.scan_on_push()),
        encryption: repo
            .encryption_configuration()
            .map_or("AES256", |c| c.encryption_type().as_str())
            .to_string(),
    }))
}

/// Creates the repository of `settings` or repairs its settings, reporting each aspect.
pub async fn ensure_repository(
    client: &Client,
    settings: &Settings,
    tags: &[(String, String)],
    report: &mut Report,
) -> anyhow::Result<Repository> {
    let name = &settings.ecr_repository;
    let repo = match find_repository(client, name).await? {
        Some(repo) => {
            report.item(Mark::Unchanged, "repository", &repo.uri);
            repair_settings(client, name, &repo, report).await?;
            ensure_tags(client, &repo.arn, tags, report).await?;
            repo
        }
        None => {
            let repo = create_repository(client, name, tags).await?;
            report.item(Mark::Created, "repository", &repo.uri);
            repo
        }
    };
    ensure_lifecycle(client, name, report).await?;
    find_repository(client, name)
        .await?
        .with_context(|| format!("repository `{name}` vanished right after it was set up"))
        .map(|found| Repository { uri: repo.uri, ..found })
}

async fn create_repository(
    client: &Client,
    name: &str,
    tags: &[(String, String)],
) -> anyhow::Result<Repository> {
    let encryption =
        EncryptionConfiguration::builder().encryption_type(EncryptionType::Aes256).build()?;
    let out = client
        .create_repository()
        .repository_name(name)
        .image_tag_mutability(ImageTagMutability::Immutable)
        .image_scanning_configuration(
            ImageScanningConfiguration::builder().scan_on_push(true).build(),
        )
        .encryption_configuration(encryption)
        .set_tags(Some(ecr_tags(tags)?))
        .send()
        .await
        .aws_context(|| format!("failed to create repository `{name}`"))?;
    let repo =
        out.repository().with_context(|| format!("no repository in the answer for `{name}`"))?;
    Ok(Repository {
        uri: repo.repository_uri().unwrap_or_default().to_string(),
        arn: repo.repository_arn().unwrap_or_default().to_string(),
        immutable: true,
        scan_on_push: true,
        encryption: "AES256".to_string(),
    })
}

fn ecr_tags(tags: &[(String, String)]) -> anyhow::Result<Vec<Tag>> {
    tags.iter().map(|(k, v)| Ok(Tag::builder().key(k).value(v).build()?)).collect()
}

async fn repair_settings(
    client: &Client,
    name: &str,
    repo: &Repository,
    report: &mut Report,
) -> anyhow::Result<()> {
    if repo.immutable {
        report.item(Mark::Unchanged, "tag mutability", "IMMUTABLE");
    } else {
        client
            .put_image_tag_mutability()
            .repository_name(name)
            .image_tag_mutability(ImageTagMutability::Immutable)
            .send()
            .await
            .aws_context(|| format!("failed to make the tags of `{name}` immutable"))?;
        report.item(Mark::Updated, "tag mutability", "MUTABLE → IMMUTABLE");
    }
    if repo.scan_on_push {
        report.item(Mark::Unchanged, "scan on push", "on");
    } else {
        client
            .put_image_scanning_configuration()
            .repository_name(name)
            .image_scanning_configuration(
                ImageScanningConfiguration::builder().scan_on_push(true).build(),
            )
            .send()
            .await
            .aws_context(|| format!("failed to turn on scan on push for `{name}`"))?;
        report.item(Mark::Updated, "scan on push", "off → on");
    }
    // Encryption is fixed when a repository is made; AES256 and KMS are both acceptable.
    report.item(Mark::Unchanged, "encryption", &repo.encryption);
    Ok(())
}

async fn ensure_tags(
    client: &Client,
    arn: &str,
    tags: &[(String, String)],
    report: &mut Report,
) -> anyhow::Result<()> {
    let out = client
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .aws_context(|| format!("failed to list the tags of `{arn}`"))?;
    let have: Vec<(&str, &str)> = out.tags().iter().map(|t| (t.key(), t.value())).collect();
    // CreatedBy records the first creator and is not rewritten by later runs.
    let missing: Vec<(String, String)> = tags
        .iter()
        .filter(|(k, v)| match have.iter().find(|(hk, _)| hk == k) {
            Some(_) if k == crate::tags::CREATED_BY => false,
            Some((_, hv)) => hv != v,
            None => true,
        })
        .cloned()
        .collect();
    if missing.is_empty() {
        report.item(Mark::Unchanged, "tags", "standard tags present");
        return Ok(());
    }
    client
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(ecr_tags(&missing)?))
        .send()
        .await
        .aws_context(|| format!("failed to tag `{arn}`"))?;
    let keys: Vec<&str> = missing.iter().map(|(k, _)| k.as_str()).collect();
    report.item(Mark::Updated, "tags", format!("set {}", keys.join(", ")));
    Ok(())
}

/// The repository's lifecycle policy text, or `None` when it has none.
pub async fn lifecycle_of(client: &Client, name: &str) -> anyhow::Result<Option<String>> {
    let result = client.get_lifecycle_policy().repository_name(name).send().await;
    if let Err(e) = &result
        && crate::aws::error_code(e) == Some("LifecyclePolicyNotFoundException")
    {
        return Ok(None);
    }
    let out = result.aws_context(|| format!("failed to read the lifecycle policy of `{name}`"))?;
    Ok(out.lifecycle_policy_text().map(str::to_string))
}

async fn ensure_lifecycle(client: &Client, name: &str, report: &mut Report) -> anyhow::Result<()> {
    let wanted = lifecycle_policy(KEEP_IMAGES);
    let have = lifecycle_of(client, name).await?;
    let detail = format!("keep the last {KEEP_IMAGES} images");
    if have.as_deref().is_some_and(|h| same_policy(h, &wanted)) {
        report.item(Mark::Unchanged, "lifecycle policy", detail);
        return Ok(());
    }
    client
        .put_lifecycle_policy()
        .repository_name(name)
        .lifecycle_policy_text(&wanted)
        .send()
        .await
        .aws_context(|| format!("failed to set the lifecycle policy of `{name}`"))?;
    let mark = if have.is_some() { Mark::Updated } else { Mark::Created };
    report.item(mark, "lifecycle policy", detail);
    Ok(())
}

/// Checks every setting of the repository of `settings`, one report line each.
pub async fn check_repository(
    client: &Client,
    settings: &Settings,
    report: &mut Report,
) -> anyhow::Result<Option<Repository>> {
    let name = &settings.ecr_repository;
    let fix = "run ./scripts/step-200-setup-docker-prerequisites.sh, which repairs it";
    let Some(repo) = find_repository(client, name).await? else {
        report.item(Mark::Problem, "repository", format!("`{name}` does not exist; {fix}"));
        return Ok(None);
    };
    let mark = |ok: bool| if ok { Mark::Passed } else { Mark::Problem };
    report.item(Mark::Passed, "repository", &repo.uri);
    if settings.ecr_repository_uri.as_deref() != Some(repo.uri.as_str()) {
        let have = settings.ecr_repository_uri.as_deref().unwrap_or("(not set)");
        report.item(
            Mark::Problem,
            "ECR_REPOSITORY_URI",
            format!("{have} differs from {}; {fix}", repo.uri),
        );
    }
    let immutable =
        if repo.immutable { "IMMUTABLE".to_string() } else { format!("MUTABLE; {fix}") };
    report.item(mark(repo.immutable), "tag mutability", immutable);
    let scan = if repo.scan_on_push { "on".to_string() } else { format!("off; {fix}") };
    report.item(mark(repo.scan_on_push), "scan on push", scan);
    report.item(Mark::Passed, "encryption", &repo.encryption);
    let policy = lifecycle_of(client, name).await?;
    let wanted = lifecycle_policy(KEEP_IMAGES);
    let good = policy.as_deref().is_some_and(|p| same_policy(p, &wanted));
    let detail = match (&policy, good) {
        (_, true) => format!("keeps the last {KEEP_IMAGES} images"),
        (None, _) => format!("missing; {fix}"),
        (Some(_), _) => format!("differs from keeping the last {KEEP_IMAGES} images; {fix}"),
    };
    report.item(mark(good), "lifecycle policy", detail);
    let tags = client
        .list_tags_for_resource()
        .resource_arn(&repo.arn)
        .send()
        .await
        .aws_context(|| format!("failed to list the tags of `{}`", repo.arn))?;
    let ours = crate::tags::belongs_to(settings, tags.tags().iter().map(|t| (t.key(), t.value())));
    let detail =
        if ours { "Project and Environment match".to_string() } else { format!("missing; {fix}") };
    report.item(mark(ours), "tags", detail);
    Ok(Some(repo))
}

/// A registry login from ECR's GetAuthorizationToken.
#[derive(Debug, Clone)]
pub struct Login {
    /// Registry host for `docker login` (no scheme).
    pub registry: String,
    /// User name (`AWS`).
    pub user: String,
    /// The password; masked in Debug.
    pub password: Secret,
    /// When the token expires.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Asks ECR for a fresh registry token and decodes it.
pub async fn fresh_login(client: &Client) -> anyhow::Result<Login> {
    let out = client
        .get_authorization_token()
        .send()
        .await
        .aws_context(|| "failed to get an ECR authorization token".to_string())?;
    let data = out.authorization_data().first().context("ECR returned no authorization data")?;
    let token = data.authorization_token().context("ECR returned an empty authorization token")?;
    let (user, password) = decode_token(token)?;
    let registry = data
        .proxy_endpoint()
        .map(|e| e.trim_start_matches("https://").trim_start_matches("http://").to_string())
        .context("ECR returned no registry endpoint")?;
    let expires_at = data
        .expires_at()
        .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()));
    Ok(Login { registry, user, password, expires_at })
}

/// Splits a base64 `user:password` token.
pub fn decode_token(token: &str) -> anyhow::Result<(String, Secret)> {
    let bytes = aws_smithy_types::base64::decode(token)
        .map_err(|_| anyhow::anyhow!("the ECR authorization token is not base64"))?;
    let text = String::from_utf8(bytes).context("the ECR authorization token is not UTF-8")?;
    let (user, password) =
        text.split_once(':').context("the ECR authorization token is not `user:password`")?;
    Ok((user.to_string(), Secret::new(password)))
}

/// The registry host of a repository URI: everything before the first `/`.
pub fn registry_of(uri: &str) -> &str {
    uri.split('/').next().unwrap_or(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifecycle_policy_keeps_the_last_images_and_compares_by_meaning() {
        let policy = lifecycle_policy(20);
        let value: serde_json::Value = serde_json::from_str(&policy).expect("json");
        assert_eq!(value["rules"][0]["selection"]["countNumber"], 20);
        assert_eq!(value["rules"][0]["action"]["type"], "expire");
        let pretty = serde_json::to_string_pretty(&value).expect("pretty");
        assert!(same_policy(&policy, &pretty));
        assert!(!same_policy(&policy, &lifecycle_policy(5)));
    }

    #[test]
    fn tokens_decode_to_user_and_masked_password() {
        let token = aws_smithy_types::base64::encode("AWS:s3cr3t-password-value");
        let (user, password) = decode_token(&token).expect("decode");
        assert_eq!(user, "AWS");
        assert_eq!(password.expose(), "s3cr3t-password-value");
        assert!(!format!("{password:?}").contains("s3cr3t"));
        assert!(decode_token("not base64!").is_err());
    }

    #[test]
    fn the_registry_is_the_host_part_of_the_uri() {
        let uri = "123456789012.dkr.ecr.us-east-2.amazonaws.com/fleet-dev-worker";
        assert_eq!(registry_of(uri), "123456789012.dkr.ecr.us-east-2.amazonaws.com");
    }
}
