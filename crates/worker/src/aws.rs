//! The worker's SQS and S3 calls.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use common::aws::{ClientOptions, SdkResultExt, describe, error_code};
use common::job::{self, S3Uri};
use common::sdk::s3::primitives::ByteStream;
use common::sdk::sqs::error::SdkError;
use common::sdk::sqs::operation::delete_message::DeleteMessageError;
use common::sdk::sqs::types::{Message, MessageAttributeValue};
use common::sdk::{s3, sqs, ssm};
use tokio::io::AsyncWriteExt;

use crate::config::WorkerConfig;

/// The clients a worker uses.
#[derive(Debug, Clone)]
pub struct Clients {
    pub sqs: sqs::Client,
    pub s3: s3::Client,
    pub ssm: ssm::Client,
}

impl Clients {
    /// Builds the clients. SQS gets an attempt timeout of wait + 10 s, so a receive that hangs
    /// is abandoned and retried instead of stalling the worker (case C16).
    pub async fn new(config: &WorkerConfig) -> Self {
        let settings = &config.settings;
        let wait = u64::from(settings.queue.wait_seconds);
        let long_poll = ClientOptions {
            attempt_timeout: Duration::from_secs(wait + 10),
            ..ClientOptions::default()
        };
        let sqs_config = common::aws::sdk_config(settings, &config.env, &long_poll).await;
        let shared =
            common::aws::sdk_config(settings, &config.env, &ClientOptions::default()).await;
        let sqs = sqs::Client::from_conf(
            sqs::config::Builder::from(&sqs_config).interceptor(CountCalls(&SQS_CALLS)).build(),
        );
        let s3 = common::aws::s3_client(&shared, settings);
        let s3 = s3::Client::from_conf(
            s3.config().to_builder().interceptor(CountCalls(&S3_CALLS)).build(),
        );
        Self { sqs, s3, ssm: ssm::Client::new(&shared) }
    }
}

/// SQS operations this process's workers started (not counting retries); for the benchmarks.
static SQS_CALLS: AtomicU64 = AtomicU64::new(0);
/// S3 operations this process's workers started (not counting retries); for the benchmarks.
static S3_CALLS: AtomicU64 = AtomicU64::new(0);

/// SQS and S3 operations started so far by the workers in this process.
pub fn api_calls() -> (u64, u64) {
    (SQS_CALLS.load(Ordering::Relaxed), S3_CALLS.load(Ordering::Relaxed))
}

/// Counts every operation a client starts.
#[derive(Debug)]
struct CountCalls(&'static AtomicU64);

impl sqs::config::Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "CountCalls"
    }

    fn read_before_execution(
        &self,
        _context: &sqs::config::interceptors::BeforeSerializationInterceptorContextRef<'_>,
        _config: &mut sqs::config::ConfigBag,
    ) -> Result<(), sqs::error::BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Why an input cannot be used.
#[derive(Debug)]
pub enum InputError {
    /// Will never work: missing or empty object (case C10).
    Permanent(String),
    /// Might work later.
    Transient(anyhow::Error),
}

/// HEADs `input` and returns its size; a missing or 0-byte object is a permanent failure.
pub async fn head_input(s3: &s3::Client, input: &S3Uri) -> Result<u64, InputError> {
    let head = s3.head_object().bucket(&input.bucket).key(&input.key).send().await;
    match head {
        Ok(out) => {
            let size = out.content_length().unwrap_or(0).max(0) as u64;
            if size == 0 {
                return Err(InputError::Permanent(format!("input `{input}` is empty (0 bytes)")));
            }
            Ok(size)
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => {
            Err(InputError::Permanent(format!("input `{input}` does not exist")))
        }
        Err(e) if matches!(error_code(&e), Some("NoSuchBucket" | "AccessDenied" | "403")) => {
            Err(InputError::Permanent(format!("input `{input}` cannot be read: {}", describe(&e))))
        }
        Err(e) => Err(InputError::Transient(
            anyhow::anyhow!(describe(&e)).context(format!("failed to read input `{input}`")),
        )),
    }
}

/// Streams `input` to `path`, never holding the whole object in memory.
pub async fn download(s3: &s3::Client, input: &S3Uri, path: &Path) -> anyhow::Result<u64> {
    let out = s3
        .get_object()
        .bucket(&input.bucket)
        .key(&input.key)
        .send()
        .await
        .aws_context(|| format!("failed to download `{input}`"))?;
    let mut file = tokio::fs::File::create(path)
        .await
        .with_context(|| format!("failed to create `{}`", path.display()))?;
    let mut body = out.body;
    let mut written = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.with_context(|| format!("download of `{input}` broke off"))?;
        file.write_all(&chunk)
            .await
            .with_context(|| format!("failed to write `{}`", path.display()))?;
        written += chunk.len() as u64;
    }
    file.flush().await?;
    Ok(written)
}

/// Writes `body` to `target` with `content_type`.
pub async fn put(
    s3: &s3::Client,
    target: &S3Uri,
    body: Vec<u8>,
    content_type: &str,
) -> anyhow::Result<()> {
    s3.put_object()
        .bucket(&target.bucket)
        .key(&target.key)
        .content_type(content_type)
        .body(ByteStream::from(body))
        .send()
        .await
        .aws_context(|| format!("failed to write `{target}`"))?;
    Ok(())
}

/// Writes `value` as JSON at `key` in the bucket of `config`.
pub async fn put_json<T: serde::Serialize>(
    s3: &s3::Client,
    bucket: &str,
    key: &str,
    value: &T,
) -> anyhow::Result<()> {
    let body = serde_json::to_vec_pretty(value)?;
    put(s3, &S3Uri::new(bucket, key), body, "application/json").await
}

/// Receives at most one message, long-polling for the configured wait.
pub async fn receive(
    config: &WorkerConfig,
    sqs: &sqs::Client,
    queue_url: &str,
) -> anyhow::Result<Option<Message>> {
    receive_within(config, sqs, queue_url, config.settings.queue.wait_seconds).await
}

/// Receives at most one message, waiting up to `wait` seconds (0: only what is there now).
pub async fn receive_within(
    config: &WorkerConfig,
    sqs: &sqs::Client,
    queue_url: &str,
    wait: u32,
) -> anyhow::Result<Option<Message>> {
    let out = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(1)
        .wait_time_seconds(wait as i32)
        .visibility_timeout(config.visibility_timeout() as i32)
        .message_system_attribute_names(
            sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
        )
        .send()
        .await
        .aws_context(|| format!("failed to receive from queue `{queue_url}`"))?;
    Ok(out.messages.unwrap_or_default().into_iter().next())
}

/// Sets a message's visibility timeout; 0 releases it to other workers at once.
pub async fn set_visibility(
    sqs: &sqs::Client,
    queue_url: &str,
    receipt: &str,
    seconds: u32,
) -> anyhow::Result<()> {
    sqs.change_message_visibility()
        .queue_url(queue_url)
        .receipt_handle(receipt)
        .visibility_timeout(seconds as i32)
        .send()
        .await
        .aws_context(|| format!("failed to change the visibility of a message on `{queue_url}`"))?;
    Ok(())
}

/// Deletes a message. An expired receipt handle is only a warning: another worker may have
/// the message now, and there is nothing to undo.
pub async fn delete(sqs: &sqs::Client, queue_url: &str, receipt: &str) -> anyhow::Result<()> {
    let result = sqs.delete_message().queue_url(queue_url).receipt_handle(receipt).send().await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_stale_receipt(&e) => {
            tracing::warn!("message already gone or its receipt expired: {}", describe(&e));
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!(describe(&e))
            .context(format!("failed to delete a message from `{queue_url}`"))),
    }
}

fn is_stale_receipt<R>(error: &SdkError<DeleteMessageError, R>) -> bool {
    match error.as_service_error() {
        Some(DeleteMessageError::ReceiptHandleIsInvalid(_)) => true,
        Some(other) => other.meta().code() == Some("InvalidParameterValue"),
        None => false,
    }
}

/// Sends `message` to the dead-letter queue with `reason` attached, then deletes it from the
/// job queue (case C12): a permanent failure must not burn the receive count.
pub async fn dead_letter(
    config: &WorkerConfig,
    sqs: &sqs::Client,
    message: &Message,
    reason: &str,
) -> anyhow::Result<()> {
    let queue = &config.settings.queue;
    let (Some(queue_url), Some(dlq_url)) = (&queue.url, &queue.dlq_url) else {
        anyhow::bail!("DLQ_URL is not set, so the message stays for the queue's redrive policy");
    };
    let text = |value: &str| {
        MessageAttributeValue::builder().data_type("String").string_value(value).build()
    };
    let reason: String = reason.chars().take(1000).collect();
    let mut send = sqs
        .send_message()
        .queue_url(dlq_url)
        .message_body(message.body().filter(|b| !b.is_empty()).unwrap_or("(empty body)"))
        .message_attributes(job::REASON_ATTRIBUTE, text(&reason)?)
        .message_attributes(job::FAILED_BY_ATTRIBUTE, text(&config.worker_id)?);
    if let Some(id) = message.message_id() {
        send = send.message_attributes(job::SOURCE_MESSAGE_ATTRIBUTE, text(id)?);
    }
    send.send()
        .await
        .aws_context(|| format!("failed to send a message to the dead-letter queue `{dlq_url}`"))?;
    delete(sqs, queue_url, message.receipt_handle().unwrap_or_default()).await
}

/// The Hugging Face token from SSM Parameter Store (decrypted). Never logged.
pub async fn hf_token_from_ssm(ssm: &ssm::Client, parameter: &str) -> anyhow::Result<String> {
    let out = ssm
        .get_parameter()
        .name(parameter)
        .with_decryption(true)
        .send()
        .await
        .aws_context(|| format!("failed to read the Hugging Face token from `{parameter}`"))?;
    out.parameter
        .and_then(|p| p.value)
        .filter(|v| !v.is_empty())
        .with_context(|| format!("parameter `{parameter}` is empty"))
}

#[cfg(test)]
mod tests {
    use aws_smithy_mocks::{MockResponseInterceptor, Rule, create_mock_http_client, mock};
    use common::sdk::sqs::types::error::{QueueDoesNotExist, ReceiptHandleIsInvalid};

    use super::*;

    fn client(rule: &Rule) -> sqs::Client {
        let credentials = sqs::config::Credentials::new("test", "test", None, None, "test");
        let config = sqs::Config::builder()
            .behavior_version(sqs::config::BehaviorVersion::latest())
            .region(sqs::config::Region::new("us-east-2"))
            .credentials_provider(credentials)
            .http_client(create_mock_http_client())
            .interceptor(MockResponseInterceptor::new().with_rule(rule))
            .build();
        sqs::Client::from_conf(config)
    }

    #[tokio::test]
    async fn c11_deleting_with_an_expired_receipt_handle_is_only_a_warning() {
        let expired = mock!(sqs::Client::delete_message).then_error(|| {
            let error =
                ReceiptHandleIsInvalid::builder().message("The receipt handle has expired").build();
            DeleteMessageError::ReceiptHandleIsInvalid(error)
        });
        delete(&client(&expired), "https://queue", "old-receipt")
            .await
            .expect("a warning, not an error");
    }

    #[tokio::test]
    async fn other_delete_failures_are_errors_naming_the_queue() {
        let gone = mock!(sqs::Client::delete_message).then_error(|| {
            DeleteMessageError::QueueDoesNotExist(
                QueueDoesNotExist::builder().message("no queue").build(),
            )
        });
        let error = delete(&client(&gone), "https://queue", "r").await.expect_err("an error");
        assert!(
            format!("{error:#}").contains("failed to delete a message from `https://queue`"),
            "{error:#}"
        );
    }
}
