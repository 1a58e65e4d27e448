//! The worker image's ECR repository: the one named in the settings, and any tagged as ours.

use common::aws::SdkResultExt;
use common::sdk::ecr::Client;
use common::{Mark, Report, Settings};

/// A repository and how many images it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// Its name.
    pub name: String,
    /// Images (by digest) in it.
    pub images: usize,
}

/// The repository of the settings and any other repository tagged as ours.
pub async fn find(client: &Client, settings: &Settings) -> anyhow::Result<Vec<Repository>> {
    let mut names = Vec::new();
    if common::ecr::find_repository(client, &settings.ecr_repository).await?.is_some() {
        names.push(settings.ecr_repository.clone());
    }
    let mut pages = client.describe_repositories().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.aws_context(|| "failed to list the ECR repositories".to_string())?;
        for repo in page.repositories() {
            let (Some(name), Some(arn)) = (repo.repository_name(), repo.repository_arn()) else {
                continue;
            };
            if names.iter().any(|n| n == name) {
                continue;
            }
            let tags = client.list_tags_for_resource().resource_arn(arn).send().await;
            let tags = tags.aws_context(|| format!("failed to read the tags of `{name}`"))?;
            let pairs = tags.tags().iter().map(|t| (t.key(), t.value()));
            if common::tags::belongs_to(settings, pairs) {
                names.push(name.to_string());
            }
        }
    }
    let mut found = Vec::new();
    for name in names {
        let images = image_count(client, &name).await?;
        found.push(Repository { name, images });
    }
    Ok(found)
}

async fn image_count(client: &Client, name: &str) -> anyhow::Result<usize> {
    let mut count = 0;
    let mut pages = client.list_images().repository_name(name).into_paginator().send();
    while let Some(page) = pages.next().await {
        count += page
            .aws_context(|| format!("failed to list the images of `{name}`"))?
            .image_ids()
            .len();
    }
    Ok(count)
}

/// Deletes the repositories with their images.
pub async fn delete(
    client: &Client,
    repos: &[Repository],
    report: &mut Report,
) -> anyhow::Result<()> {
    for repo in repos {
        client
            .delete_repository()
            .repository_name(&repo.name)
            .force(true)
            .send()
            .await
            .aws_context(|| format!("failed to delete repository `{}`", repo.name))?;
        report.item(
            Mark::Deleted,
            "repository",
            format!("{} with {} image(s)", repo.name, repo.images),
        );
    }
    Ok(())
}
