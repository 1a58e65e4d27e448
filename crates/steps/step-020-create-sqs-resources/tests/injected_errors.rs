//! Errors the emulator cannot produce, injected with aws-smithy-mocks.

use std::time::Duration;

use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use aws_smithy_runtime_api::http::{Response as HttpResponse, StatusCode};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::error::ErrorMetadata;
use common::aws::SdkConfig;
use common::sdk::s3;
use common::sdk::sqs::{
    self, operation::create_queue::CreateQueueError, operation::get_queue_url::GetQueueUrlError,
};
use common::ui::Scripted;
use step_020_create_sqs_resources::{Args, Clients, NAME, queues, run_with};
use testkit::TestProject;

/// A project aimed at a port nothing listens on: every call must be answered by a mock.
fn offline_project() -> TestProject {
    TestProject::with_env(
        "AWS_REGION=us-east-2\nAWS_ENDPOINT_URL=http://127.0.0.1:9\nPROJECT_NAME=mocked\n\
         ENVIRONMENT=test\nAUDIO_BUCKET=mocked-test-audio\n",
    )
}

fn interceptor(rules: &[&Rule]) -> MockResponseInterceptor {
    rules
        .iter()
        .fold(MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny), |i, r| i.with_rule(r))
}

/// Retries as the steps configure them, with a short first backoff so the test stays fast.
fn retries() -> aws_smithy_types::retry::RetryConfig {
    aws_smithy_types::retry::RetryConfig::standard()
        .with_max_attempts(common::aws::MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(10))
}

fn sqs_client(config: &SdkConfig, rules: &[&Rule]) -> sqs::Client {
    let conf = sqs::config::Builder::from(config)
        .http_client(create_mock_http_client())
        .interceptor(interceptor(rules))
        .retry_config(retries())
        .build();
    sqs::Client::from_conf(conf)
}

fn s3_client(config: &SdkConfig, rules: &[&Rule]) -> s3::Client {
    let conf = s3::config::Builder::from(config)
        .http_client(create_mock_http_client())
        .interceptor(interceptor(rules))
        .force_path_style(true)
        .retry_config(retries())
        .build();
    s3::Client::from_conf(conf)
}

fn bucket_missing() -> Rule {
    mock!(s3::Client::head_bucket).then_http_response(|| {
        HttpResponse::new(StatusCode::try_from(404u16).expect("status"), SdkBody::empty())
    })
}

fn queue_missing() -> Rule {
    mock!(sqs::Client::get_queue_url).then_error(|| {
        GetQueueUrlError::QueueDoesNotExist(sqs::types::error::QueueDoesNotExist::builder().build())
    })
}

fn error(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

#[tokio::test]
async fn access_denied_on_create_queue_names_the_queue_and_exits_1() {
    let project = offline_project();
    let settings = project.settings();
    let config = testkit::sdk_config(&settings).await;
    let denied = mock!(sqs::Client::create_queue).then_error(|| {
        CreateQueueError::generic(error(
            "AccessDenied",
            "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: sqs:createqueue",
        ))
    });
    let clients = Clients {
        sqs: sqs_client(&config, &[&queue_missing(), &denied]),
        s3: s3_client(&config, &[&bucket_missing()]),
    };
    let ctx = testkit::context(NAME, &project, Scripted::new([]));

    let failure = run_with(&ctx, &Args::default(), &settings, &clients).await.expect_err("denied");

    let text = common::cli::render_error(&failure);
    assert!(text.starts_with("error: failed to create queue `mocked-test-jobs-dlq`\n"), "{text}");
    assert!(
        text.contains("caused by: AccessDenied: User: arn:aws:iam::123456789012:user/dev"),
        "{text}"
    );
    assert!(text.contains("hint: ") && text.contains("step-010"), "{text}");
    assert_eq!(common::cli::exit_code_for(&failure), 1);
    assert_eq!(denied.num_calls(), 1, "access denied is not retried");
    assert!(!project.env_text().contains("QUEUE_URL"));
}

#[tokio::test]
async fn throttled_lookups_are_retried_until_they_succeed() {
    let project = offline_project();
    let config = testkit::sdk_config(&project.settings()).await;
    const URL: &str = "http://127.0.0.1:9/123456789012/mocked-test-jobs";
    let throttled_twice = mock!(sqs::Client::get_queue_url)
        .sequence()
        .error(|| GetQueueUrlError::generic(error("Throttling", "Rate exceeded")))
        .times(2)
        .output(|| {
            sqs::operation::get_queue_url::GetQueueUrlOutput::builder().queue_url(URL).build()
        })
        .build();
    let client = sqs_client(&config, &[&throttled_twice]);

    let found = queues::find_queue(&client, "mocked-test-jobs").await.expect("retried");

    assert_eq!(found.as_deref(), Some(URL));
    assert_eq!(throttled_twice.num_calls(), 3);
}

#[tokio::test]
async fn persistent_throttling_fails_after_bounded_retries_with_a_hint() {
    let project = offline_project();
    let settings = project.settings();
    let config = testkit::sdk_config(&settings).await;
    let throttled = mock!(sqs::Client::get_queue_url)
        .then_error(|| GetQueueUrlError::generic(error("Throttling", "Rate exceeded")));
    let clients = Clients {
        sqs: sqs_client(&config, &[&throttled]),
        s3: s3_client(&config, &[&bucket_missing()]),
    };
    let ctx = testkit::context(NAME, &project, Scripted::new([]));

    let failure =
        run_with(&ctx, &Args::default(), &settings, &clients).await.expect_err("throttled");

    let text = common::cli::render_error(&failure);
    assert!(text.starts_with("error: failed to look up queue `mocked-test-jobs-dlq`\n"), "{text}");
    assert!(text.contains("Throttling: Rate exceeded"), "{text}");
    assert!(text.contains("hint: AWS throttled the request"), "{text}");
    assert_eq!(throttled.num_calls(), common::aws::MAX_ATTEMPTS as usize);
    assert_eq!(common::cli::exit_code_for(&failure), 1);
}

#[tokio::test]
async fn bucket_of_another_account_is_refused_before_queues_are_created() {
    let project = offline_project();
    let settings = project.settings();
    let config = testkit::sdk_config(&settings).await;
    let forbidden = mock!(s3::Client::head_bucket).then_http_response(|| {
        HttpResponse::new(StatusCode::try_from(403u16).expect("status"), SdkBody::empty())
    });
    let clients = Clients { sqs: sqs_client(&config, &[]), s3: s3_client(&config, &[&forbidden]) };
    let ctx = testkit::context(NAME, &project, Scripted::new([]));

    let failure =
        run_with(&ctx, &Args::default(), &settings, &clients).await.expect_err("forbidden");

    let text = common::cli::render_error(&failure);
    assert!(
        text.contains("bucket `mocked-test-audio` exists and belongs to another account"),
        "{text}"
    );
    assert!(text.contains("choose another AUDIO_BUCKET"), "{text}");
    assert_eq!(forbidden.num_calls(), 1);
}
