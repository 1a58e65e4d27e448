//! Errors the emulator cannot produce, injected with aws-smithy-mocks: access denied,
//! throttling and IAM propagation delay (C25).

use std::time::Duration;

use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use common::iam_policy::Scope;
use common::sdk::iam;
use common::sdk::iam::Client;
use common::sdk::iam::primitives::DateTime;
use common::sdk::iam::types::{InstanceProfile, Policy, Role};
use common::ui::{Scripted, Ui};
use step_010_setup_iam_permissions::{Args, NAME, apply, wait_for_role};
use testkit::TestProject;

const ACCOUNT: &str = "123456789012";

fn project() -> TestProject {
    // The endpoint is never contacted: the mock HTTP client answers every request.
    TestProject::with_env(
        "AWS_REGION=us-east-2\nAWS_ACCOUNT_ID=123456789012\nAWS_ENDPOINT_URL=http://127.0.0.1:9\n\
         PROJECT_NAME=mocked\nENVIRONMENT=test\nAUDIO_BUCKET=mocked-test-audio\n\
         WHISPER_ENGINE=faster-whisper\nCOMPUTE_TYPE=int8\n",
    )
}

/// An IAM client with the steps' own SDK configuration (retries included), answered by
/// `rules`; only the first backoff is shortened so the test does not sleep for seconds.
async fn mocked(project: &TestProject, rules: &[&Rule]) -> Client {
    let config = testkit::sdk_config(&project.settings()).await;
    let retry = config.retry_config().cloned().expect("the steps configure retries");
    assert_eq!(retry.max_attempts(), common::aws::MAX_ATTEMPTS);
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    let conf = iam::config::Builder::from(&config)
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .retry_config(retry.with_initial_backoff(Duration::from_millis(1)))
        .build();
    Client::from_conf(conf)
}

fn error_body(code: &str, message: &str) -> Option<String> {
    Some(format!(
        "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type>\
         <Code>{code}</Code><Message>{message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
    ))
}

fn throttled() -> Option<String> {
    error_body("Throttling", "Rate exceeded")
}

fn role(name: &str) -> Role {
    Role::builder()
        .path("/")
        .role_name(name)
        .role_id("AROAEXAMPLE")
        .arn(format!("arn:aws:iam::{ACCOUNT}:role/{name}"))
        .create_date(DateTime::from_secs(0))
        .build()
        .expect("role")
}

fn profile(name: &str, roles: Vec<Role>) -> InstanceProfile {
    InstanceProfile::builder()
        .path("/")
        .instance_profile_name(name)
        .instance_profile_id("AIPAEXAMPLE")
        .arn(format!("arn:aws:iam::{ACCOUNT}:instance-profile/{name}"))
        .create_date(DateTime::from_secs(0))
        .set_roles(Some(roles))
        .build()
        .expect("profile")
}

async fn wait(client: &Client, scope: &Scope, timeout: Duration) -> anyhow::Result<()> {
    let (profile, role) = (scope.profile_name(), scope.role_name());
    wait_for_role(&Ui::silent(), client, &profile, &role, timeout).await
}

fn scope(project: &TestProject) -> Scope {
    Scope::new(&project.settings(), ACCOUNT)
}

#[tokio::test]
async fn access_denied_on_create_role_names_the_operator_policy() {
    let project = project();
    let scope = scope(&project);
    let no_policy =
        mock!(Client::get_policy).sequence().http_status(404, error_body("NoSuchEntity", "none"));
    let no_policy = no_policy.repeatedly().build();
    let policy = Policy::builder().arn(scope.policy_arn()).build();
    let create_policy = mock!(Client::create_policy).then_output(move || {
        iam::operation::create_policy::CreatePolicyOutput::builder().policy(policy.clone()).build()
    });
    let no_role =
        mock!(Client::get_role).sequence().http_status(404, error_body("NoSuchEntity", "none"));
    let no_role = no_role.repeatedly().build();
    let denied = mock!(Client::create_role).sequence().http_status(
        403,
        error_body(
            "AccessDenied",
            "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: iam:CreateRole",
        ),
    );
    let denied = denied.repeatedly().build();
    let client = mocked(&project, &[&no_policy, &create_policy, &no_role, &denied]).await;

    let ctx = testkit::context(NAME, &project, Scripted::new([]));
    let error = apply(&ctx, &project.settings(), &scope, &client, &Args::default())
        .await
        .expect_err("creating the role is denied");
    let text = common::cli::render_error(&error);
    assert!(
        text.starts_with(&format!("error: failed to create role `{}`", scope.role_name())),
        "{text}"
    );
    assert!(
        text.contains("caused by: AccessDenied: User: arn:aws:iam::123456789012:user/dev"),
        "{text}"
    );
    assert!(text.contains("hint: your AWS identity lacks this permission"), "{text}");
    assert!(text.contains(".local/operator-policy.json"), "{text}");
    assert_eq!(common::cli::exit_code_for(&error), 1);
    assert_eq!(denied.num_calls(), 1, "access denied is not retried");
    assert!(
        project.root().join(".local/operator-policy.json").exists(),
        "written before IAM calls"
    );
}

#[tokio::test]
async fn throttled_calls_succeed_within_the_attempt_budget() {
    let project = project();
    let scope = scope(&project);
    let answer = profile(&scope.profile_name(), vec![role(&scope.role_name())]);
    let rule = mock!(Client::get_instance_profile)
        .sequence()
        .http_status(400, throttled())
        .times(2)
        .output(move || {
            iam::operation::get_instance_profile::GetInstanceProfileOutput::builder()
                .instance_profile(answer.clone())
                .build()
        })
        .build();
    let client = mocked(&project, &[&rule]).await;

    let waited = wait(&client, &scope, Duration::ZERO);
    waited.await.expect("two throttles are retried away");
    assert_eq!(rule.num_calls(), 3);
}

#[tokio::test]
async fn throttling_beyond_the_attempt_budget_fails_readably() {
    let project = project();
    let scope = scope(&project);
    let rule = mock!(Client::get_instance_profile)
        .sequence()
        .http_status(400, throttled())
        .repeatedly()
        .build();
    let client = mocked(&project, &[&rule]).await;

    let waited = wait(&client, &scope, Duration::ZERO);
    let error = waited.await.expect_err("throttled every time");
    let text = common::cli::render_error(&error);
    assert!(
        text.contains(&format!("failed to read instance profile `{}`", scope.profile_name())),
        "{text}"
    );
    assert!(text.contains("Throttling: Rate exceeded"), "{text}");
    assert_eq!(rule.num_calls(), common::aws::MAX_ATTEMPTS as usize);
}

#[tokio::test]
async fn c25_waits_until_the_profile_lists_the_role() {
    let project = project();
    let scope = scope(&project);
    let (empty, full) = (
        profile(&scope.profile_name(), vec![]),
        profile(&scope.profile_name(), vec![role(&scope.role_name())]),
    );
    let output = |p: InstanceProfile| {
        move || {
            iam::operation::get_instance_profile::GetInstanceProfileOutput::builder()
                .instance_profile(p.clone())
                .build()
        }
    };
    let rule = mock!(Client::get_instance_profile)
        .sequence()
        .output(output(empty))
        .times(2)
        .output(output(full))
        .build();
    let client = mocked(&project, &[&rule]).await;

    let waited = wait(&client, &scope, Duration::from_secs(10));
    waited.await.expect("the role shows up on the third look");
    assert_eq!(rule.num_calls(), 3);
}

#[tokio::test]
async fn c25_gives_up_after_the_propagation_timeout_with_a_hint() {
    let project = project();
    let scope = scope(&project);
    let empty = profile(&scope.profile_name(), vec![]);
    let rule = mock!(Client::get_instance_profile)
        .sequence()
        .output(move || {
            iam::operation::get_instance_profile::GetInstanceProfileOutput::builder()
                .instance_profile(empty.clone())
                .build()
        })
        .repeatedly()
        .build();
    let client = mocked(&project, &[&rule]).await;

    let started = std::time::Instant::now();
    let waited = wait(&client, &scope, Duration::from_millis(500));
    let error = waited.await.expect_err("the role never shows up");
    assert!(started.elapsed() < Duration::from_secs(3), "the wait is bounded");
    let text = common::cli::render_error(&error);
    assert!(text.contains("does not list role"), "{text}");
    assert!(text.contains("hint: IAM is eventually consistent"), "{text}");
    assert!(rule.num_calls() >= 2, "it looked more than once");
}
