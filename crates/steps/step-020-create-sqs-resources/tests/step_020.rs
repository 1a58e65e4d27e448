//! step-020 against a private emulator: create, re-run, repair, refuse, write back.

use common::sdk::sqs::types::QueueAttributeName;
use common::sdk::{s3, sqs};
use common::ui::Scripted;
use common::{Mark, Report};
use step_020_create_sqs_resources::{Args, NAME, run};
use testkit::{Emulator, TestProject};

async fn run_step(project: &TestProject, args: Args) -> anyhow::Result<Report> {
    run(testkit::context(NAME, project, Scripted::new([])), args).await
}

async fn sqs_client(project: &TestProject) -> sqs::Client {
    sqs::Client::new(&testkit::sdk_config(&project.settings()).await)
}

fn has(report: &Report, mark: Mark, label: &str, detail: &str) -> bool {
    report
        .items
        .iter()
        .any(|i| i.mark == mark && i.label.contains(label) && i.detail.contains(detail))
}

async fn queue_attribute(client: &sqs::Client, url: &str, name: QueueAttributeName) -> String {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(name.clone())
        .send()
        .await
        .expect("queue attributes");
    out.attributes().and_then(|a| a.get(&name)).cloned().unwrap_or_default()
}

#[tokio::test]
async fn creates_queues_and_bucket_then_second_run_changes_nothing() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "twice");

    let first = run_step(&project, Args::default()).await.expect("first run");
    assert!(has(&first, Mark::Created, "queue `twice-test-jobs-dlq`", "twice-test-jobs-dlq"));
    assert!(has(&first, Mark::Created, "queue `twice-test-jobs`", "twice-test-jobs"));
    assert!(has(&first, Mark::Created, "bucket `twice-test-audio`", "us-east-2"));
    assert!(has(&first, Mark::Passed, "queue self-test", "deleted"));
    assert!(has(&first, Mark::Passed, "bucket self-test", "tmp/selftest-"));
    let env_after_first = project.env_text();

    let second = run_step(&project, Args::default()).await.expect("second run");
    assert_eq!(second.summary, "nothing changed", "{}", second.to_text());
    assert!(!second.changed_anything(), "{}", second.to_text());
    assert_eq!(project.env_text(), env_after_first);

    let settings = project.settings();
    let client = sqs_client(&project).await;
    let url = settings.queue.url.expect("QUEUE_URL written");
    let redrive = queue_attribute(&client, &url, QueueAttributeName::RedrivePolicy).await;
    let (target, count) =
        step_020_create_sqs_resources::desired::parse_redrive(&redrive).expect("redrive");
    assert_eq!(Some(target), settings.queue.dlq_arn);
    assert_eq!(count, 3);
    let visibility = queue_attribute(&client, &url, QueueAttributeName::VisibilityTimeout).await;
    assert_eq!(visibility, "900");
}

#[tokio::test]
async fn c20_drifted_visibility_timeout_is_reported_and_repaired() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "drift");
    run_step(&project, Args { no_self_test: true }).await.expect("first run");
    let url = project.settings().queue.url.expect("QUEUE_URL");
    let client = sqs_client(&project).await;
    client
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::VisibilityTimeout, "60")
        .send()
        .await
        .expect("change by hand");

    let report = run_step(&project, Args { no_self_test: true }).await.expect("repair run");

    assert!(
        has(&report, Mark::Updated, "queue `drift-test-jobs`", "VisibilityTimeout: 60 → 900"),
        "{}",
        report.to_text()
    );
    assert_eq!(report.count(Mark::Updated), 1, "{}", report.to_text());
    assert_eq!(queue_attribute(&client, &url, QueueAttributeName::VisibilityTimeout).await, "900");
}

#[tokio::test]
async fn bucket_in_another_region_stops_the_step_before_anything_is_created() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "region");
    let mut elsewhere = project.settings();
    elsewhere.region = "eu-west-1".to_string();
    let s3_elsewhere = common::aws::s3_client(&testkit::sdk_config(&elsewhere).await, &elsewhere);
    let location = s3::types::BucketLocationConstraint::from("eu-west-1");
    s3_elsewhere
        .create_bucket()
        .bucket("region-test-audio")
        .create_bucket_configuration(
            s3::types::CreateBucketConfiguration::builder().location_constraint(location).build(),
        )
        .send()
        .await
        .expect("bucket in eu-west-1");
    let env_before = project.env_text();

    let error = run_step(&project, Args::default()).await.expect_err("wrong region");

    let text = common::cli::render_error(&error);
    assert!(
        text.contains("bucket `region-test-audio` is in eu-west-1, but AWS_REGION is us-east-2"),
        "{text}"
    );
    assert!(text.contains("hint: ") && text.contains("AUDIO_BUCKET"), "{text}");
    assert_eq!(common::cli::exit_code_for(&error), 1);
    let queues = sqs_client(&project).await.list_queues().send().await.expect("list queues");
    assert!(queues.queue_urls().is_empty(), "{:?}", queues.queue_urls());
    assert_eq!(project.env_text(), env_before);
}

#[tokio::test]
async fn c20_self_test_never_touches_a_job_waiting_on_the_real_queue() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "selftest");
    run_step(&project, Args { no_self_test: true }).await.expect("create");
    let url = project.settings().queue.url.expect("QUEUE_URL");
    let client = sqs_client(&project).await;
    let job = r#"{"job_id": "real-job", "s3_input_path": "s3://selftest-test-audio/input/a.wav"}"#;
    let sent =
        client.send_message().queue_url(&url).message_body(job).send().await.expect("send job");

    let report = run_step(&project, Args::default()).await.expect("run with self-test");
    assert!(
        has(&report, Mark::Passed, "queue self-test", "selftest-test-selftest-"),
        "{}",
        report.to_text()
    );

    let out = client
        .receive_message()
        .queue_url(&url)
        .message_system_attribute_names(
            sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
        )
        .wait_time_seconds(1)
        .send()
        .await
        .expect("receive job");
    let message = out.messages().first().expect("the job is still on the queue");
    assert_eq!(message.message_id(), sent.message_id());
    assert_eq!(message.body(), Some(job));
    let receives = message
        .attributes()
        .and_then(|a| a.get(&sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
        .cloned();
    assert_eq!(receives.as_deref(), Some("1"), "only this test received the job");
    let left = client
        .list_queues()
        .queue_name_prefix("selftest-test-selftest-")
        .send()
        .await
        .expect("list");
    assert!(left.queue_urls().is_empty(), "temporary queue left behind: {:?}", left.queue_urls());
}

#[tokio::test]
async fn c01_stale_queue_urls_in_env_are_rewritten_and_other_lines_kept() {
    let emulator = Emulator::start();
    let mut text = testkit::local_env(&emulator, "stale");
    text.push_str("# queue written by hand\n");
    text.push_str("QUEUE_URL=https://sqs.us-east-2.amazonaws.com/123456789012/old-queue\n");
    let project = TestProject::with_env(&text);

    let report = run_step(&project, Args { no_self_test: true }).await.expect("run");

    assert!(
        has(&report, Mark::Updated, ".env", "QUEUE_URL, QUEUE_ARN, DLQ_URL, DLQ_ARN"),
        "{}",
        report.to_text()
    );
    let settings = project.settings();
    let url = settings.queue.url.expect("QUEUE_URL");
    assert!(url.ends_with("/stale-test-jobs"), "{url}");
    assert!(settings.queue.arn.is_some_and(|a| a.ends_with(":stale-test-jobs")));
    assert!(settings.queue.dlq_url.is_some_and(|u| u.ends_with("/stale-test-jobs-dlq")));
    assert!(project.env_text().contains("# queue written by hand\n"));
    assert_eq!(project.env_text().matches("QUEUE_URL=").count(), 1);
}

#[tokio::test]
async fn existing_bucket_policy_is_kept_and_the_tls_statement_added_beside_it() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "keep");
    let settings = project.settings();
    let s3c = common::aws::s3_client(&testkit::sdk_config(&settings).await, &settings);
    let location = s3::types::BucketLocationConstraint::from("us-east-2");
    s3c.create_bucket()
        .bucket("keep-test-audio")
        .create_bucket_configuration(
            s3::types::CreateBucketConfiguration::builder().location_constraint(location).build(),
        )
        .send()
        .await
        .expect("bucket");
    let theirs = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Readers","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::keep-test-audio/*"}]}"#;
    s3c.put_bucket_policy().bucket("keep-test-audio").policy(theirs).send().await.expect("policy");

    let report = run_step(&project, Args { no_self_test: true }).await.expect("run");

    assert!(
        has(&report, Mark::Unchanged, "bucket `keep-test-audio`", "us-east-2"),
        "{}",
        report.to_text()
    );
    assert!(has(&report, Mark::Skipped, "bucket policy", "plain HTTP"), "{}", report.to_text());
    let policy =
        step_020_create_sqs_resources::bucket::policy(&s3c, "keep-test-audio").await.expect("read");
    assert_eq!(policy.map(|p| p.to_string().contains("Readers")), Some(true));

    // On AWS the step adds its statement; applied directly here, since the emulator would
    // then deny the plain-HTTP object calls of the other tests.
    let tls = step_020_create_sqs_resources::bucket::Aspect::TlsPolicy;
    let tags = common::tags::standard(&settings, NAME);
    assert!(!tls.check(&s3c, "keep-test-audio", &tags).await.expect("check").ok);
    tls.apply(&s3c, "keep-test-audio", &tags).await.expect("apply");
    assert!(tls.check(&s3c, "keep-test-audio", &tags).await.expect("check").ok);
    let policy = step_020_create_sqs_resources::bucket::policy(&s3c, "keep-test-audio")
        .await
        .expect("read")
        .expect("policy");
    assert!(policy.to_string().contains("Readers"), "{policy}");
    assert!(step_020_create_sqs_resources::desired::has_tls_deny(&policy, "keep-test-audio"));
}
