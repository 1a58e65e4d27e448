//! What the queues and the bucket should look like for the settings: plain data, no AWS calls.
//!
//! step-020 applies it and step-021 compares against it, so both read this one description.

use common::Settings;
use common::sdk::sqs::types::QueueAttributeName;
use serde_json::{Value, json};

/// The dead-letter queue keeps messages for the SQS maximum, 14 days, so a failed job can be
/// inspected long after it failed.
pub const DLQ_RETENTION_SECONDS: u32 = 1_209_600;

/// `Sid` of the bucket policy statement that denies requests without TLS.
pub const TLS_SID: &str = "DenyInsecureTransport";

/// Days before objects under the scratch prefix expire.
pub const TMP_EXPIRY_DAYS: i32 = 1;

/// Days before an unfinished multipart upload is aborted.
pub const ABORT_MULTIPART_DAYS: i32 = 7;

/// Id of the lifecycle rule that expires scratch objects.
pub const TMP_RULE_ID: &str = "expire-tmp";

/// Id of the lifecycle rule that aborts unfinished multipart uploads.
pub const ABORT_RULE_ID: &str = "abort-incomplete-multipart-uploads";

/// Prefixes of the bucket layout, in the order the report lists them.
pub const PREFIXES: [(&str, &str); 5] = [
    (common::job::INPUT_PREFIX, "audio to transcribe"),
    (common::job::OUTPUT_PREFIX, "transcripts"),
    (common::job::STATUS_PREFIX, "worker and job status"),
    (BUNDLES_PREFIX, "deployment bundles"),
    (common::job::TMP_PREFIX, "scratch, expires after a day"),
];

/// Prefix for deployment bundles (worker code and configuration for Path A).
pub const BUNDLES_PREFIX: &str = "bundles/";

/// Queue attributes of the dead-letter queue.
pub fn dlq_attributes() -> Vec<(QueueAttributeName, String)> {
    vec![
        (QueueAttributeName::MessageRetentionPeriod, DLQ_RETENTION_SECONDS.to_string()),
        (QueueAttributeName::SqsManagedSseEnabled, "true".to_string()),
    ]
}

/// Queue attributes of the job queue, whose redrive goes to `dlq_arn`.
pub fn job_attributes(settings: &Settings, dlq_arn: &str) -> Vec<(QueueAttributeName, String)> {
    let queue = &settings.queue;
    vec![
        (QueueAttributeName::VisibilityTimeout, queue.visibility_timeout.to_string()),
        (QueueAttributeName::MessageRetentionPeriod, queue.retention_seconds.to_string()),
        (QueueAttributeName::ReceiveMessageWaitTimeSeconds, queue.wait_seconds.to_string()),
        (QueueAttributeName::RedrivePolicy, redrive_policy(dlq_arn, queue.max_receive_count)),
        (QueueAttributeName::SqsManagedSseEnabled, "true".to_string()),
    ]
}

/// The `RedrivePolicy` attribute value.
pub fn redrive_policy(dlq_arn: &str, max_receive_count: u32) -> String {
    json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count }).to_string()
}

/// The redrive target and receive count of a `RedrivePolicy` value, if it parses.
pub fn parse_redrive(value: &str) -> Option<(String, u32)> {
    let policy: Value = serde_json::from_str(value).ok()?;
    let target = policy.get("deadLetterTargetArn")?.as_str()?.to_string();
    let count = match policy.get("maxReceiveCount")? {
        Value::Number(n) => u32::try_from(n.as_u64()?).ok()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    Some((target, count))
}

/// Whether an attribute's current value means the same as the wanted one.
///
/// `RedrivePolicy` is compared as parsed JSON (AWS returns the count as a number, some
/// emulators as a string); booleans ignore case.
pub fn same_value(name: &QueueAttributeName, current: Option<&str>, wanted: &str) -> bool {
    let Some(current) = current else { return false };
    match name {
        QueueAttributeName::RedrivePolicy => {
            parse_redrive(current).is_some_and(|c| Some(c) == parse_redrive(wanted))
        }
        QueueAttributeName::SqsManagedSseEnabled => current.eq_ignore_ascii_case(wanted),
        _ => current.trim() == wanted,
    }
}

/// Why the TLS-only bucket policy is not applied, when the endpoint is plain HTTP.
///
/// A local emulator is reached over `http://`; the emulator enforces bucket policies, so a
/// statement denying requests without TLS would deny every request the fleet makes to it.
pub fn tls_policy_skipped(settings: &Settings) -> Option<String> {
    let endpoint = settings.endpoint_url.as_deref()?;
    endpoint.starts_with("http://").then(|| {
        format!(
            "not applied: {endpoint} speaks plain HTTP, so a TLS-only policy would deny every \
             request; on AWS this step applies it"
        )
    })
}

/// The ARN of a bucket.
pub fn bucket_arn(bucket: &str) -> String {
    format!("arn:aws:s3:::{bucket}")
}

/// The statement denying every request to the bucket and its objects that is not over TLS.
pub fn tls_statement(bucket: &str) -> Value {
    json!({
        "Sid": TLS_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn(bucket), format!("{}/*", bucket_arn(bucket))],
        "Condition": { "Bool": { "aws:SecureTransport": "false" } }
    })
}

/// Whether `policy` denies non-TLS access to the bucket and all its objects.
pub fn has_tls_deny(policy: &Value, bucket: &str) -> bool {
    let wanted = [bucket_arn(bucket), format!("{}/*", bucket_arn(bucket))];
    statements(policy).iter().any(|s| {
        let denies = s.get("Effect").and_then(Value::as_str) == Some("Deny");
        let insecure = s
            .pointer("/Condition/Bool/aws:SecureTransport")
            .is_some_and(|v| v == "false" || v == &Value::Bool(false));
        let everyone =
            s.get("Principal").is_some_and(|p| p == "*" || p.pointer("/AWS") == Some(&json!("*")));
        let all_actions = strings(s.get("Action")).iter().any(|a| a == "s3:*");
        let resources = strings(s.get("Resource"));
        let covers = wanted.iter().all(|w| resources.contains(w));
        denies && insecure && everyone && all_actions && covers
    })
}

/// `policy` with the TLS statement added (or replaced), keeping every other statement.
pub fn with_tls_deny(policy: Option<&Value>, bucket: &str) -> Value {
    let mut kept: Vec<Value> = policy
        .map(statements)
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.get("Sid").and_then(Value::as_str) != Some(TLS_SID))
        .collect();
    kept.push(tls_statement(bucket));
    let version = policy.and_then(|p| p.get("Version")).cloned().unwrap_or(json!("2012-10-17"));
    json!({ "Version": version, "Statement": kept })
}

fn statements(policy: &Value) -> Vec<Value> {
    match policy.get("Statement") {
        Some(Value::Array(items)) => items.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => {
            items.iter().filter_map(Value::as_str).map(str::to_string).collect()
        }
        _ => Vec::new(),
    }
}

/// Standard tags missing from `current` (a tag already set to another value is left alone).
pub fn missing_tags(
    wanted: &[(String, String)],
    current: &std::collections::HashMap<String, String>,
) -> Vec<(String, String)> {
    wanted.iter().filter(|(k, _)| !current.contains_key(k)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redrive_policy_compares_as_json_not_text() {
        let wanted = redrive_policy("arn:aws:sqs:us-east-2:123456789012:jobs-dlq", 3);
        let spaced = r#"{"maxReceiveCount": "3", "deadLetterTargetArn": "arn:aws:sqs:us-east-2:123456789012:jobs-dlq"}"#;
        assert!(same_value(&QueueAttributeName::RedrivePolicy, Some(spaced), &wanted));
        let other = redrive_policy("arn:aws:sqs:us-east-2:123456789012:jobs-dlq", 5);
        assert!(!same_value(&QueueAttributeName::RedrivePolicy, Some(&other), &wanted));
        assert!(!same_value(&QueueAttributeName::RedrivePolicy, None, &wanted));
    }

    #[test]
    fn tls_deny_is_recognised_and_merged_without_losing_statements() {
        let other = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Readers", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::b1/*"}]});
        assert!(!has_tls_deny(&other, "b1"));
        let merged = with_tls_deny(Some(&other), "b1");
        assert!(has_tls_deny(&merged, "b1"));
        assert_eq!(merged["Statement"].as_array().map(Vec::len), Some(2));
        let again = with_tls_deny(Some(&merged), "b1");
        assert_eq!(again["Statement"].as_array().map(Vec::len), Some(2));
        assert!(!has_tls_deny(&merged, "another-bucket"));
    }

    #[test]
    fn only_missing_tags_are_added() {
        let wanted = vec![
            ("Project".to_string(), "p".to_string()),
            ("CreatedBy".to_string(), "s".to_string()),
        ];
        let current = [("CreatedBy".to_string(), "someone-else".to_string())].into_iter().collect();
        assert_eq!(missing_tags(&wanted, &current), vec![("Project".to_string(), "p".to_string())]);
    }
}
