//! Round trips that prove SQS and S3 answer as the workers need, without touching real jobs.
//!
//! The queue round trip runs on a private temporary queue (`<prefix>-selftest-<random>`) that
//! is deleted afterwards, so it can never receive, hide or delete a job waiting on the job
//! queue. The bucket round trip writes one object under the scratch prefix and deletes it.

use std::time::{Duration, Instant};

use common::sdk::{s3, sqs};

use crate::errors::AwsResultExt;

/// A short random suffix for scratch names.
pub fn random_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_string()
}

/// Sends, receives and deletes one message on a temporary queue, then deletes the queue.
///
/// Returns a sentence for the report.
pub async fn queue_round_trip(
    client: &sqs::Client,
    prefix: &str,
    tags: &[(String, String)],
) -> anyhow::Result<String> {
    let name = format!("{prefix}-selftest-{}", random_suffix());
    let url = crate::queues::create_queue(client, &name, &[], tags).await?;
    let result = send_receive_delete(client, &name, &url).await;
    let deleted = client
        .delete_queue()
        .queue_url(&url)
        .send()
        .await
        .or_fail(|| format!("failed to delete the temporary queue `{name}`"));
    let elapsed = result?;
    deleted?;
    Ok(format!(
        "sent, received and deleted a message on temporary queue `{name}` ({elapsed} ms); queue deleted"
    ))
}

async fn send_receive_delete(client: &sqs::Client, name: &str, url: &str) -> anyhow::Result<u128> {
    let started = Instant::now();
    let body = format!("self-test {}", random_suffix());
    let sent = client
        .send_message()
        .queue_url(url)
        .message_body(&body)
        .send()
        .await
        .or_fail(|| format!("failed to send a message to the temporary queue `{name}`"))?;
    let sent_id = sent.message_id().unwrap_or_default().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let out = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(1)
            .wait_time_seconds(2)
            .send()
            .await
            .or_fail(|| format!("failed to receive from the temporary queue `{name}`"))?;
        let Some(message) =
            out.messages().iter().find(|m| m.message_id() == Some(sent_id.as_str()))
        else {
            continue;
        };
        anyhow::ensure!(
            message.body() == Some(body.as_str()),
            "the temporary queue `{name}` returned a different body than was sent"
        );
        client
            .delete_message()
            .queue_url(url)
            .receipt_handle(message.receipt_handle().unwrap_or_default())
            .send()
            .await
            .or_fail(|| {
                format!("failed to delete the message from the temporary queue `{name}`")
            })?;
        return Ok(started.elapsed().as_millis());
    }
    anyhow::bail!("the message sent to the temporary queue `{name}` did not arrive within 20 s")
}

/// Writes, reads back and deletes one object under the scratch prefix.
pub async fn bucket_round_trip(client: &s3::Client, bucket: &str) -> anyhow::Result<String> {
    let key = format!("{}selftest-{}", common::job::TMP_PREFIX, random_suffix());
    let body = format!("self-test {}\n", random_suffix());
    client
        .put_object()
        .bucket(bucket)
        .key(&key)
        .body(s3::primitives::ByteStream::from(body.clone().into_bytes()))
        .send()
        .await
        .or_fail(|| format!("failed to write `s3://{bucket}/{key}`"))?;
    let read = read_back(client, bucket, &key).await;
    let deleted = client
        .delete_object()
        .bucket(bucket)
        .key(&key)
        .send()
        .await
        .or_fail(|| format!("failed to delete `s3://{bucket}/{key}`"));
    let read = read?;
    deleted?;
    anyhow::ensure!(
        read == body.as_bytes(),
        "`s3://{bucket}/{key}` read back different bytes than were written"
    );
    Ok(format!("wrote, read back and deleted `s3://{bucket}/{key}`"))
}

async fn read_back(client: &s3::Client, bucket: &str, key: &str) -> anyhow::Result<Vec<u8>> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .or_fail(|| format!("failed to read `s3://{bucket}/{key}`"))?;
    let bytes =
        out.body.collect().await.map_err(|e| {
            anyhow::anyhow!("failed to read the body of `s3://{bucket}/{key}`: {e}")
        })?;
    Ok(bytes.into_bytes().to_vec())
}
