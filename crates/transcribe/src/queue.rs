//! `transcribe queue` and `transcribe redrive`.

use common::aws::SdkResultExt;
use common::sdk::sqs::types::QueueAttributeName;
use common::{Mark, Report};

use crate::Fleet;

/// Flags of `redrive`.
#[derive(Debug, Clone, clap::Args)]
pub struct RedriveArgs {
    /// Move at most this many messages.
    #[arg(long, default_value_t = 100)]
    pub count: u32,
}

/// Messages waiting, in flight and delayed on one queue.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Depth {
    /// Ready to be received.
    pub waiting: u64,
    /// Received and not yet deleted.
    pub in_flight: u64,
    /// Sent with a delay not yet over.
    pub delayed: u64,
}

async fn depth(fleet: &Fleet, url: &str) -> anyhow::Result<Depth> {
    let out = fleet
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .aws_context(|| format!("failed to read the attributes of `{url}`"))?;
    let attributes = out.attributes.unwrap_or_default();
    let get = |name| attributes.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(Depth {
        waiting: get(QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        delayed: get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
    })
}

/// Reports the job queue's and the DLQ's depth.
pub async fn show(fleet: &Fleet, report: &mut Report) -> anyhow::Result<()> {
    let jobs = depth(fleet, fleet.queue_url()?).await?;
    let dead = depth(fleet, fleet.dlq_url()?).await?;
    report.item(Mark::Info, "waiting", jobs.waiting.to_string());
    report.item(Mark::Info, "in flight", jobs.in_flight.to_string());
    if jobs.delayed > 0 {
        report.item(Mark::Info, "delayed", jobs.delayed.to_string());
    }
    let mark = if dead.waiting + dead.in_flight > 0 { Mark::Problem } else { Mark::Passed };
    report.item(mark, "dead-letter queue", (dead.waiting + dead.in_flight).to_string());
    if mark == Mark::Problem {
        report.next.push("./scripts/transcribe.sh redrive   (after fixing the cause)".to_string());
    }
    report.summary =
        format!("{} waiting, {} in flight, {} dead", jobs.waiting, jobs.in_flight, dead.waiting);
    report.data = serde_json::json!({ "queue": jobs, "dead_letter_queue": dead });
    Ok(())
}

/// Moves up to `count` messages from the DLQ back to the job queue: send, then delete.
///
/// Only the messages waiting when it starts are moved: a job that fails again at once comes
/// back to the DLQ during the redrive and must not be moved a second time.
pub async fn redrive(fleet: &Fleet, args: RedriveArgs, report: &mut Report) -> anyhow::Result<()> {
    let (queue_url, dlq_url) = (fleet.queue_url()?, fleet.dlq_url()?);
    let waiting = u32::try_from(depth(fleet, dlq_url).await?.waiting).unwrap_or(u32::MAX);
    let limit = args.count.min(waiting);
    let mut moved = 0u32;
    while moved < limit {
        let batch = (limit - moved).min(10) as i32;
        let out = fleet
            .sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(batch)
            .visibility_timeout(60)
            .wait_time_seconds(1)
            .send()
            .await
            .aws_context(|| format!("failed to receive from the dead-letter queue `{dlq_url}`"))?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            fleet
                .sqs
                .send_message()
                .queue_url(queue_url)
                .message_body(message.body().unwrap_or_default())
                .send()
                .await
                .aws_context(|| format!("failed to send a message to `{queue_url}`"))?;
            fleet
                .sqs
                .delete_message()
                .queue_url(dlq_url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .aws_context(|| format!("failed to delete a message from `{dlq_url}`"))?;
            moved += 1;
        }
    }
    report.item(
        if moved > 0 { Mark::Updated } else { Mark::Unchanged },
        "moved",
        moved.to_string(),
    );
    report.summary = format!("{moved} message(s) moved back to the job queue");
    report.data = serde_json::json!({ "moved": moved });
    Ok(())
}
