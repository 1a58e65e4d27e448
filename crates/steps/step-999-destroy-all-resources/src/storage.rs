//! The queues and the bucket: found by the names in the settings, the URLs in `.env` and
//! their tags; the bucket emptied version by version.

use common::aws::SdkResultExt;
use common::job::{INPUT_PREFIX, OUTPUT_PREFIX};
use common::sdk::s3::types::{Delete, ObjectIdentifier};
use common::sdk::{s3, sqs};
use common::{Mark, Report, Settings};

/// DeleteObjects takes at most this many keys per call.
const DELETE_BATCH: usize = 1000;

/// A queue of the deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
}

/// A bucket of the deployment and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// Its name.
    pub name: String,
    /// Object versions and delete markers under `input/` and `output/` (the user's data).
    pub data: usize,
    /// Every other object version and delete marker (status, bundles, temporary files).
    pub other: usize,
}

/// Whether `key` is user data: audio under `input/` or transcripts under `output/`.
pub fn is_data(key: &str) -> bool {
    key.starts_with(INPUT_PREFIX) || key.starts_with(OUTPUT_PREFIX)
}

fn is_missing_queue<E, R>(e: &sqs::error::SdkError<E, R>) -> bool
where
    E: common::sdk::sqs::error::ProvideErrorMetadata,
{
    common::aws::error_code(e)
        .is_some_and(|c| c.contains("NonExistentQueue") || c.contains("QueueDoesNotExist"))
}

fn push(queues: &mut Vec<Queue>, url: &str) {
    if !queues.iter().any(|q| q.url == url) {
        let name = url.rsplit('/').next().unwrap_or(url).to_string();
        queues.push(Queue { name, url: url.to_string() });
    }
}

/// The queues named in the settings, at the URLs in `.env`, or tagged as ours.
pub async fn find_queues(client: &sqs::Client, settings: &Settings) -> anyhow::Result<Vec<Queue>> {
    let mut queues = Vec::new();
    for name in [&settings.queue.name, &settings.queue.dlq_name] {
        match client.get_queue_url().queue_name(name).send().await {
            Ok(out) => push(&mut queues, out.queue_url().unwrap_or_default()),
            Err(e) if is_missing_queue(&e) => {}
            Err(e) => return Err(e).aws_context(|| format!("failed to look up queue `{name}`")),
        }
    }
    for url in [&settings.queue.url, &settings.queue.dlq_url].into_iter().flatten() {
        if queues.iter().any(|q| q.url.rsplit('/').next() == url.rsplit('/').next()) {
            continue;
        }
        match client.get_queue_attributes().queue_url(url).send().await {
            Ok(_) => push(&mut queues, url),
            Err(e) if is_missing_queue(&e) => {}
            Err(e) => return Err(e).aws_context(|| format!("failed to look up queue `{url}`")),
        }
    }
    let mut pages =
        client.list_queues().queue_name_prefix(settings.prefix()).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.aws_context(|| "failed to list the queues".to_string())?;
        for url in page.queue_urls() {
            if queues.iter().any(|q| &q.url == url) {
                continue;
            }
            let tags = client.list_queue_tags().queue_url(url).send().await;
            let tags = tags.aws_context(|| format!("failed to read the tags of queue `{url}`"))?;
            let pairs = tags.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()));
            if common::tags::belongs_to(settings, pairs) {
                push(&mut queues, url);
            }
        }
    }
    Ok(queues)
}

/// Deletes the queues.
pub async fn delete_queues(
    client: &sqs::Client,
    queues: &[Queue],
    report: &mut Report,
) -> anyhow::Result<()> {
    for q in queues {
        match client.delete_queue().queue_url(&q.url).send().await {
            Err(e) if is_missing_queue(&e) => {}
            other => {
                other.aws_context(|| format!("failed to delete queue `{}`", q.name))?;
            }
        }
        report.item(Mark::Deleted, "queue", &q.name);
    }
    Ok(())
}

/// The bucket named in the settings and any other bucket tagged as ours, with their contents.
pub async fn find_buckets(client: &s3::Client, settings: &Settings) -> anyhow::Result<Vec<Bucket>> {
    let mut names = Vec::new();
    match client.head_bucket().bucket(&settings.bucket).send().await {
        Ok(_) => names.push(settings.bucket.clone()),
        Err(s3::error::SdkError::ServiceError(e)) if e.raw().status().as_u16() == 404 => {}
        Err(e) => {
            return Err(e)
                .aws_context(|| format!("failed to look up bucket `{}`", settings.bucket));
        }
    }
    let listed = client.list_buckets().send().await;
    let listed = listed.aws_context(|| "failed to list the buckets".to_string())?;
    for bucket in listed.buckets().iter().filter_map(|b| b.name()) {
        if names.iter().any(|n| n == bucket) {
            continue;
        }
        // Buckets without tags, or of other owners, answer with an error: not ours.
        let Ok(tags) = client.get_bucket_tagging().bucket(bucket).send().await else { continue };
        let pairs = tags.tag_set().iter().map(|t| (t.key(), t.value()));
        if common::tags::belongs_to(settings, pairs) {
            names.push(bucket.to_string());
        }
    }
    let mut buckets = Vec::new();
    for name in names {
        let versions = versions(client, &name).await?;
        let data = versions.iter().filter(|(key, _)| is_data(key)).count();
        buckets.push(Bucket { other: versions.len() - data, data, name });
    }
    Ok(buckets)
}

/// Every object version and delete marker in `bucket`, as `(key, version id)`.
async fn versions(client: &s3::Client, bucket: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut all = Vec::new();
    let (mut key_marker, mut version_marker) = (None, None);
    loop {
        let out = client
            .list_object_versions()
            .bucket(bucket)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .aws_context(|| format!("failed to list the object versions of bucket `{bucket}`"))?;
        let version = |key: Option<&str>, id: Option<&str>| {
            (key.unwrap_or_default().to_string(), id.unwrap_or("null").to_string())
        };
        all.extend(out.versions().iter().map(|v| version(v.key(), v.version_id())));
        all.extend(out.delete_markers().iter().map(|m| version(m.key(), m.version_id())));
        if !out.is_truncated().unwrap_or(false) {
            return Ok(all);
        }
        key_marker = out.next_key_marker().map(str::to_string);
        version_marker = out.next_version_id_marker().map(str::to_string);
    }
}

/// Deletes every object version of `bucket` (all but user data unless `include_data`), then
/// the bucket itself when nothing is left in it. Returns whether the bucket was kept.
pub async fn empty_and_delete(
    client: &s3::Client,
    bucket: &Bucket,
    include_data: bool,
    report: &mut Report,
) -> anyhow::Result<bool> {
    let name = &bucket.name;
    let doomed: Vec<(String, String)> = versions(client, name)
        .await?
        .into_iter()
        .filter(|(key, _)| include_data || !is_data(key))
        .collect();
    for batch in doomed.chunks(DELETE_BATCH) {
        delete_batch(client, name, batch).await?;
    }
    if !doomed.is_empty() {
        let what = if include_data {
            "all object versions"
        } else {
            "object versions outside input/ and output/"
        };
        report.item(Mark::Deleted, "objects", format!("{} {what} in `{name}`", doomed.len()));
    }
    let kept = !include_data && bucket.data > 0;
    if kept {
        report.item(
            Mark::Skipped,
            "bucket",
            format!(
                "`{name}` kept: it holds {} audio file and transcript version(s) under input/ and output/; \
                 rerun with --include-data --yes to delete them and the bucket",
                bucket.data
            ),
        );
        return Ok(true);
    }
    client
        .delete_bucket()
        .bucket(name)
        .send()
        .await
        .aws_context(|| format!("failed to delete bucket `{name}`"))?;
    report.item(Mark::Deleted, "bucket", name);
    Ok(false)
}

async fn delete_batch(
    client: &s3::Client,
    bucket: &str,
    batch: &[(String, String)],
) -> anyhow::Result<()> {
    let objects = batch
        .iter()
        .map(|(key, version)| ObjectIdentifier::builder().key(key).version_id(version).build())
        .collect::<Result<Vec<_>, _>>()?;
    let delete = Delete::builder().set_objects(Some(objects)).quiet(true).build()?;
    let out = client
        .delete_objects()
        .bucket(bucket)
        .delete(delete)
        .send()
        .await
        .aws_context(|| format!("failed to delete objects in bucket `{bucket}`"))?;
    if let Some(first) = out.errors().first() {
        anyhow::bail!(
            "failed to delete {} object(s) in bucket `{bucket}`, e.g. `{}`: {} {}",
            out.errors().len(),
            first.key().unwrap_or_default(),
            first.code().unwrap_or_default(),
            first.message().unwrap_or_default()
        );
    }
    Ok(())
}
