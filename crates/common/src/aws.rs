//! One SDK configuration for every AWS client, and readable SDK errors.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::settings::{Env, Settings};

pub use aws_config::SdkConfig;

/// Attempts per call, the first included: retries are bounded so a step fails in seconds.
pub const MAX_ATTEMPTS: u32 = 4;

/// Whether `endpoint` points at this machine (a local emulator).
pub fn is_loopback_endpoint(endpoint: &str) -> bool {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

/// Options for [`sdk_config`] that differ between steps and the worker.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time for one attempt of a call, including reading the response.
    pub attempt_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self { connect_timeout: Duration::from_secs(5), attempt_timeout: Duration::from_secs(30) }
    }
}

/// Where and as whom to call AWS: the part of the settings the SDK configuration needs.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// Region of every call.
    pub region: String,
    /// Named credentials profile.
    pub profile: Option<String>,
    /// Endpoint override (a local emulator).
    pub endpoint_url: Option<String>,
}

impl From<&Settings> for Target {
    fn from(settings: &Settings) -> Self {
        Self {
            region: settings.region.clone(),
            profile: settings.profile.clone(),
            endpoint_url: settings.endpoint_url.clone(),
        }
    }
}

/// Builds the SDK configuration every client uses; see [`sdk_config_for`].
pub async fn sdk_config(settings: &Settings, env: &Env, options: &ClientOptions) -> SdkConfig {
    sdk_config_for(&Target::from(settings), env, options).await
}

/// Builds the SDK configuration for `target`.
///
/// The region comes from the settings. Credentials come from the standard chain (environment,
/// profiles, SSO, instance role), except against a local emulator: there, without
/// `AWS_ACCESS_KEY_ID` in `env`, fixed test credentials are used so that nothing ever asks the
/// instance metadata service. `AWS_ENDPOINT_URL` sends every call to the emulator, and S3
/// then uses path-style addresses (see [`s3_client`]).
pub async fn sdk_config_for(target: &Target, env: &Env, options: &ClientOptions) -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(Region::new(target.region.clone()))
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(options.connect_timeout)
                .operation_attempt_timeout(options.attempt_timeout)
                .build(),
        );
    if let Some(profile) = &target.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(endpoint) = &target.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    if target.endpoint_url.as_deref().is_some_and(is_loopback_endpoint) {
        let credentials = match (env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => Credentials::new(id, secret, None, None, "environment"),
            _ => Credentials::new("test", "test", None, None, "local-emulator"),
        };
        loader = loader.credentials_provider(credentials);
    }
    loader.load().await
}

/// The S3 client, with path-style addressing when an endpoint override is set.
#[cfg(feature = "s3")]
pub fn s3_client(config: &SdkConfig, settings: &Settings) -> aws_sdk_s3::Client {
    let s3 = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(settings.endpoint_url.is_some())
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

/// A short description of an SDK error: the service's code and message, never a Debug dump.
///
/// Connection problems and timeouts are named as such, with the endpoint's cause.
pub fn describe<E, R>(error: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    match error {
        SdkError::ServiceError(service) => {
            let err = service.err();
            match (err.code(), err.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_string(),
                _ => format!("{err}"),
            }
        }
        SdkError::TimeoutError(_) => "the call timed out".to_string(),
        SdkError::DispatchFailure(failure) => {
            let kind = if failure.is_timeout() { "timed out" } else { "failed" };
            format!("connection {kind}: {}", source_chain(error))
        }
        SdkError::ConstructionFailure(_) => {
            format!("request could not be built: {}", source_chain(error))
        }
        SdkError::ResponseError(_) => format!("unreadable response: {}", source_chain(error)),
        _ => source_chain(error),
    }
}

/// The service error code of an SDK error, if the service answered.
pub fn error_code<E, R>(
    error: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match error {
        aws_smithy_runtime_api::client::result::SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

fn source_chain(error: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut current = error.source();
    while let Some(e) = current {
        let text = e.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        current = e.source();
    }
    if parts.is_empty() { error.to_string() } else { parts.join(": ") }
}

/// Adds `context` to SDK results, rendering the SDK error with [`describe`].
pub trait SdkResultExt<T> {
    /// Turns the error into `context: Code: message`.
    fn aws_context(self, context: impl FnOnce() -> String) -> anyhow::Result<T>;
}

impl<T, E, R> SdkResultExt<T> for Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    fn aws_context(self, context: impl FnOnce() -> String) -> anyhow::Result<T> {
        self.map_err(|e| {
            tracing::debug!(error = ?e, "AWS call failed");
            let description = describe(&e);
            anyhow::Error::msg(description).context(context())
        })
    }
}

/// Calls STS GetCallerIdentity and returns `(account, arn)`.
#[cfg(feature = "sts")]
pub async fn caller_identity(config: &SdkConfig) -> anyhow::Result<(String, String)> {
    let out = aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
        .aws_context(|| "failed to read the caller identity from STS".to_string())?;
    Ok((out.account().unwrap_or_default().to_string(), out.arn().unwrap_or_default().to_string()))
}

/// The account id: `AWS_ACCOUNT_ID` from the settings, else the caller's account from STS.
#[cfg(feature = "sts")]
pub async fn account_id(settings: &Settings, config: &SdkConfig) -> anyhow::Result<String> {
    match &settings.account_id {
        Some(account) => Ok(account.clone()),
        None => Ok(caller_identity(config).await?.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_endpoints_are_recognised() {
        assert!(is_loopback_endpoint("http://127.0.0.1:4566"));
        assert!(is_loopback_endpoint("http://localhost:5000/"));
        assert!(is_loopback_endpoint("http://[::1]:4566"));
        assert!(!is_loopback_endpoint("https://sqs.us-east-2.amazonaws.com"));
        assert!(!is_loopback_endpoint("http://10.0.0.5:4566"));
    }
}
