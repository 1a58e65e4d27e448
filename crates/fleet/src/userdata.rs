//! User data: a path's bootstrap template filled with the deployment's values (case C26).
//!
//! Templates mark values as `{{KEY}}`. Rendering fails on a placeholder without a value, so a
//! bootstrap never runs with an empty bucket name (the predecessor's "Invalid endpoint:
//! https://s3..amazonaws.com"). EC2 limits user data to 16 384 bytes before base64; the size is
//! checked before any API call and the error shows actual against allowed size. The bootstrap
//! stays small because it downloads everything else from the bucket.

use std::collections::BTreeMap;

use common::Settings;
use common::deployment_path::DeploymentPath;

/// EC2's limit on raw user data, in bytes.
pub const USER_DATA_LIMIT: usize = 16_384;

/// File on the instance holding the worker's settings as `KEY='value'` lines.
pub const WORKER_ENV_FILE: &str = "/etc/transcribe-fleet/worker.env";

/// User data too large for EC2.
#[derive(Debug, thiserror::Error)]
#[error(
    "user data is {size} bytes, more than EC2's limit of {USER_DATA_LIMIT} bytes (before base64)"
)]
pub struct TooLarge {
    /// The rendered size.
    pub size: usize,
}

/// Checks rendered user data against [`USER_DATA_LIMIT`].
pub fn check_size(user_data: &str) -> Result<(), TooLarge> {
    let size = user_data.len();
    if size > USER_DATA_LIMIT { Err(TooLarge { size }) } else { Ok(()) }
}

/// Fills `{{KEY}}` placeholders of `template` from `values`, then checks the size.
pub fn render(template: &str, values: &BTreeMap<String, String>) -> anyhow::Result<String> {
    let mut out = String::with_capacity(template.len() + 1024);
    let mut rest = template;
    let mut missing = Vec::new();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            anyhow::bail!("user data template has an unclosed `{{{{`");
        };
        let key = &after[..end];
        match values.get(key) {
            Some(value) => out.push_str(value),
            None => missing.push(key.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    if !missing.is_empty() {
        anyhow::bail!("user data template needs values for {}", missing.join(", "));
    }
    check_size(&out)?;
    Ok(out)
}

/// The worker's settings as environment variables, for [`WORKER_ENV_FILE`] or a container.
///
/// Secrets are left out: user data is readable by anything on the instance, so the worker
/// reads the Hugging Face token from `HF_TOKEN_PARAMETER` instead.
pub fn worker_environment(settings: &Settings, path: DeploymentPath) -> Vec<(String, String)> {
    let w = &settings.worker;
    let q = &settings.queue;
    let mut env: Vec<(&str, String)> = vec![
        ("AWS_REGION", settings.region.clone()),
        ("PROJECT_NAME", settings.project.clone()),
        ("ENVIRONMENT", settings.environment.clone()),
        ("AUDIO_BUCKET", settings.bucket.clone()),
        ("QUEUE_NAME", q.name.clone()),
        ("DLQ_NAME", q.dlq_name.clone()),
        ("VISIBILITY_TIMEOUT", q.visibility_timeout.to_string()),
        ("SQS_WAIT_SECONDS", q.wait_seconds.to_string()),
        ("MAX_RECEIVE_COUNT", q.max_receive_count.to_string()),
        ("WHISPER_ENGINE", w.engine.as_str().to_string()),
        ("WHISPER_MODEL", w.model.clone()),
        ("COMPUTE_TYPE", w.compute_type.clone()),
        ("BATCH_SIZE", w.batch_size.to_string()),
        ("DIARIZE", w.diarize.to_string()),
        ("IDLE_TIMEOUT_MINUTES", w.idle_timeout_minutes.to_string()),
        ("FLEET_DEPLOYMENT_PATH", path.as_str().to_string()),
    ];
    let optional = [
        ("AWS_ACCOUNT_ID", &settings.account_id),
        ("AWS_ENDPOINT_URL", &settings.endpoint_url),
        ("QUEUE_URL", &q.url),
        ("DLQ_URL", &q.dlq_url),
        ("LANGUAGE", &w.language),
        ("HF_TOKEN_PARAMETER", &w.hf_token_parameter),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            env.push((key, value.clone()));
        }
    }
    env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// `KEY='value'` lines readable by bash and by systemd's `EnvironmentFile=`.
///
/// Values holding a quote or a line break cannot be written that way and are an error.
pub fn env_file_lines(env: &[(String, String)]) -> anyhow::Result<String> {
    let mut out = String::new();
    for (key, value) in env {
        if value.contains(['\'', '\n', '\r', '\\']) {
            anyhow::bail!("the value of {key} holds a quote, backslash or line break");
        }
        out.push_str(&format!("{key}='{value}'\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn placeholders_are_filled() {
        let text = render(
            "bucket={{BUCKET}} region={{REGION}}\n",
            &values(&[("BUCKET", "b"), ("REGION", "us-east-2")]),
        )
        .expect("render");
        assert_eq!(text, "bucket=b region=us-east-2\n");
    }

    #[test]
    fn a_placeholder_without_value_is_an_error_naming_it() {
        let error = render("{{BUCKET}} {{QUEUE_URL}}", &values(&[("BUCKET", "b")]))
            .expect_err("missing value");
        assert!(error.to_string().contains("QUEUE_URL"), "{error}");
    }

    #[test]
    fn c26_user_data_over_16_kb_is_refused_with_actual_and_allowed_size() {
        let big = "x".repeat(17_000);
        let error = render("{{BIG}}", &values(&[("BIG", &big)])).expect_err("too large");
        let text = error.to_string();
        assert!(text.contains("17000 bytes") && text.contains("16384"), "{text}");
        assert!(check_size(&"y".repeat(USER_DATA_LIMIT)).is_ok());
    }

    #[test]
    fn env_lines_are_quoted_and_reject_quotes() {
        let env = vec![("A".to_string(), "x y".to_string())];
        assert_eq!(env_file_lines(&env).expect("lines"), "A='x y'\n");
        let bad = vec![("B".to_string(), "it's".to_string())];
        assert!(env_file_lines(&bad).is_err());
    }
}
