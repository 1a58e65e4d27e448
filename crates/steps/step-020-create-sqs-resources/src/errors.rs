//! Readable AWS errors with a hint when the fix is known.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use common::HintExt;
use common::aws::SdkResultExt;

/// Error codes that mean the credentials lack a permission.
const DENIED: &[&str] =
    &["AccessDenied", "AccessDeniedException", "Forbidden", "UnauthorizedOperation"];

/// Error codes that mean AWS throttled the caller.
const THROTTLED: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "SlowDown",
    "RequestLimitExceeded",
    "TooManyRequestsException",
];

/// The hint for an AWS error code, when there is a known fix.
pub fn hint_for(code: Option<&str>) -> Option<String> {
    let code = code?;
    if DENIED.contains(&code) {
        Some(
            "the credentials lack this permission; ask an administrator for the operator policy \
             that ./scripts/step-010-setup-iam-permissions.sh writes"
                .to_string(),
        )
    } else if THROTTLED.contains(&code) || code.ends_with("Throttled") {
        Some(format!(
            "AWS throttled the request {} times in a row; wait a minute and re-run this step \
             (it is safe to re-run)",
            common::aws::MAX_ATTEMPTS
        ))
    } else {
        None
    }
}

/// Like [`SdkResultExt::aws_context`], adding a hint for denied and throttled calls.
pub trait AwsResultExt<T> {
    /// Turns the error into `what: Code: message`, with a hint when the fix is known.
    fn or_fail(self, what: impl FnOnce() -> String) -> anyhow::Result<T>;
}

impl<T, E, R> AwsResultExt<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    fn or_fail(self, what: impl FnOnce() -> String) -> anyhow::Result<T> {
        let hint = self.as_ref().err().and_then(|e| hint_for(common::aws::error_code(e)));
        let result = self.aws_context(what);
        match hint {
            Some(hint) => result.hint(hint),
            None => result,
        }
    }
}

/// The HTTP status of a service error, when the service answered.
pub fn http_status<E, R>(error: &SdkError<E, R>) -> Option<u16>
where
    R: HasStatus,
{
    match error {
        SdkError::ServiceError(service) => Some(service.raw().status_code()),
        _ => None,
    }
}

/// Raw responses that carry an HTTP status and headers.
pub trait HasStatus {
    /// The status code.
    fn status_code(&self) -> u16;
    /// A header's value.
    fn header(&self, name: &str) -> Option<String>;
}

impl HasStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers().get(name).map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_and_throttled_codes_get_hints() {
        assert!(hint_for(Some("AccessDenied")).is_some_and(|h| h.contains("step-010")));
        assert!(hint_for(Some("RequestThrottled")).is_some_and(|h| h.contains("re-run")));
        assert!(hint_for(Some("QueueDeletedRecently")).is_none());
        assert!(hint_for(None).is_none());
    }
}
