//! The dead-letter queue and the job queue: find or create, then reconcile attributes and tags.

use std::collections::HashMap;

use common::sdk::sqs::{self, types::QueueAttributeName};
use common::{Mark, Report};

use crate::desired;
use crate::errors::AwsResultExt;

/// A queue as it is after [`ensure_queue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    /// The queue name.
    pub name: String,
    /// The queue URL.
    pub url: String,
    /// The queue ARN.
    pub arn: String,
}

/// The URL of queue `name`, or `None` when it does not exist.
pub async fn find_queue(client: &sqs::Client, name: &str) -> anyhow::Result<Option<String>> {
    match client.get_queue_url().queue_name(name).send().await {
        Ok(out) => Ok(out.queue_url().map(str::to_string)),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_queue_does_not_exist()) => Ok(None),
        Err(e) => Err(e).or_fail(|| format!("failed to look up queue `{name}`")),
    }
}

/// Every attribute of the queue at `url`.
pub async fn attributes(
    client: &sqs::Client,
    url: &str,
) -> anyhow::Result<HashMap<QueueAttributeName, String>> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .or_fail(|| format!("failed to read the attributes of queue `{url}`"))?;
    Ok(out.attributes().cloned().unwrap_or_default())
}

/// The tags of the queue at `url`.
pub async fn tags(client: &sqs::Client, url: &str) -> anyhow::Result<HashMap<String, String>> {
    let out = client
        .list_queue_tags()
        .queue_url(url)
        .send()
        .await
        .or_fail(|| format!("failed to read the tags of queue `{url}`"))?;
    Ok(out.tags().cloned().unwrap_or_default())
}

/// Creates queue `name` with `wanted` attributes and `tags`, or brings an existing one in line.
///
/// Every change is reported with its old and new value.
pub async fn ensure_queue(
    client: &sqs::Client,
    name: &str,
    wanted: &[(QueueAttributeName, String)],
    tags: &[(String, String)],
    report: &mut Report,
) -> anyhow::Result<Queue> {
    let url = match find_queue(client, name).await? {
        Some(url) => {
            reconcile(client, name, &url, wanted, report).await?;
            tag_missing(client, name, &url, tags, report).await?;
            url
        }
        None => {
            let url = create_queue(client, name, wanted, tags).await?;
            report.item(Mark::Created, format!("queue `{name}`"), url.clone());
            url
        }
    };
    let arn = attributes(client, &url)
        .await?
        .remove(&QueueAttributeName::QueueArn)
        .ok_or_else(|| anyhow::anyhow!("queue `{name}` has no QueueArn attribute"))?;
    Ok(Queue { name: name.to_string(), url, arn })
}

/// Creates queue `name`; returns its URL.
pub async fn create_queue(
    client: &sqs::Client,
    name: &str,
    wanted: &[(QueueAttributeName, String)],
    tags: &[(String, String)],
) -> anyhow::Result<String> {
    let mut request = client.create_queue().queue_name(name);
    for (key, value) in wanted {
        request = request.attributes(key.clone(), value);
    }
    for (key, value) in tags {
        request = request.tags(key, value);
    }
    let out = request.send().await.or_fail(|| format!("failed to create queue `{name}`"))?;
    out.queue_url()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("creating queue `{name}` returned no URL"))
}

/// One attribute whose value differs from the wanted one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// The attribute.
    pub name: QueueAttributeName,
    /// Its value now (`None`: not set).
    pub current: Option<String>,
    /// The value the settings ask for.
    pub wanted: String,
}

impl Drift {
    /// `VisibilityTimeout: 60 → 900`.
    pub fn describe(&self) -> String {
        let current = self.current.as_deref().unwrap_or("(not set)");
        format!("{}: {current} → {}", self.name.as_str(), self.wanted)
    }
}

/// The attributes of `current` that differ from `wanted`.
pub fn drift(
    current: &HashMap<QueueAttributeName, String>,
    wanted: &[(QueueAttributeName, String)],
) -> Vec<Drift> {
    wanted
        .iter()
        .filter(|(name, value)| {
            !desired::same_value(name, current.get(name).map(String::as_str), value)
        })
        .map(|(name, value)| Drift {
            name: name.clone(),
            current: current.get(name).cloned(),
            wanted: value.clone(),
        })
        .collect()
}

async fn reconcile(
    client: &sqs::Client,
    name: &str,
    url: &str,
    wanted: &[(QueueAttributeName, String)],
    report: &mut Report,
) -> anyhow::Result<()> {
    let changes = drift(&attributes(client, url).await?, wanted);
    if changes.is_empty() {
        report.item(Mark::Unchanged, format!("queue `{name}`"), url);
        return Ok(());
    }
    let mut request = client.set_queue_attributes().queue_url(url);
    for change in &changes {
        request = request.attributes(change.name.clone(), &change.wanted);
    }
    request
        .send()
        .await
        .or_fail(|| format!("failed to update the attributes of queue `{name}`"))?;
    for change in &changes {
        report.item(Mark::Updated, format!("queue `{name}`"), change.describe());
    }
    Ok(())
}

async fn tag_missing(
    client: &sqs::Client,
    name: &str,
    url: &str,
    wanted: &[(String, String)],
    report: &mut Report,
) -> anyhow::Result<()> {
    let missing = desired::missing_tags(wanted, &tags(client, url).await?);
    if missing.is_empty() {
        return Ok(());
    }
    let mut request = client.tag_queue().queue_url(url);
    for (key, value) in &missing {
        request = request.tags(key, value);
    }
    request.send().await.or_fail(|| format!("failed to tag queue `{name}`"))?;
    let keys: Vec<&str> = missing.iter().map(|(k, _)| k.as_str()).collect();
    report.item(
        Mark::Updated,
        format!("queue `{name}`"),
        format!("added tags {}", keys.join(", ")),
    );
    Ok(())
}
