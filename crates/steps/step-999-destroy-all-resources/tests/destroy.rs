//! step-999-destroy-all-resources against a private emulator, after the real setup steps ran
//! in process: complete and interrupted setups, kept data, versions, dry run, prompts.

use std::time::Duration;

use common::deployment_path::DeploymentPath;
use common::sdk::{iam, s3, sqs};
use common::ui::{Answer, Scripted, Ui};
use common::{Mark, Report, Status};
use step_999_destroy_all_resources::{Args, STEP, run};
use testkit::{Emulator, TestProject};

fn ctx(step: &'static str, project: &TestProject) -> common::Context {
    testkit::context(step, project, Scripted::new([]))
}

async fn step_010(project: &TestProject) {
    let args =
        step_010_setup_iam_permissions::Args { propagation_timeout: 5, ..Default::default() };
    let ctx = ctx("step-010-setup-iam-permissions", project);
    step_010_setup_iam_permissions::run(ctx, args).await.expect("step-010");
}

async fn step_020(project: &TestProject) {
    let args = step_020_create_sqs_resources::Args { no_self_test: true };
    let ctx = ctx("step-020-create-sqs-resources", project);
    step_020_create_sqs_resources::run(ctx, args).await.expect("step-020");
}

async fn step_100(project: &TestProject) {
    let args = step_100_setup_ec2_configuration::Args { ssh_cidr: None, key_pair: true };
    let ctx = ctx("step-100-setup-ec2-configuration", project);
    step_100_setup_ec2_configuration::run(ctx, args).await.expect("step-100");
}

/// Launches one Path A worker as step-120 does, without the local runner (no bundle here).
async fn launch_worker(project: &TestProject) -> String {
    let settings = project.settings();
    let config = testkit::sdk_config(&settings).await;
    let clients = fleet::Clients::new(&config, &settings);
    let request = fleet::launcher::LaunchRequest {
        path: DeploymentPath::Traditional,
        step: "step-120-launch-spot-worker",
        count: Some(1),
        user_data: fleet::traditional::user_data(&settings).expect("user data"),
        pacing: fleet::launch::Pacing::immediate(),
        wait_timeout: Duration::from_secs(60),
    };
    let mut report = Report::new("step-120-launch-spot-worker");
    let summary =
        fleet::launcher::launch_path(&clients, &settings, &Ui::silent(), &request, &mut report)
            .await
            .expect("launch");
    summary.all_ids().into_iter().next().expect("one worker")
}

async fn put(project: &TestProject, key: &str) {
    let settings = project.settings();
    let s3 = common::aws::s3_client(&testkit::sdk_config(&settings).await, &settings);
    let body = s3::primitives::ByteStream::from_static(b"x");
    s3.put_object().bucket(&settings.bucket).key(key).body(body).send().await.expect("put");
}

async fn destroy(project: &TestProject, args: Args) -> Report {
    run(ctx(STEP, project), args).await.expect("destroy")
}

fn everything() -> Args {
    Args { include_data: true, dry_run: false }
}

fn has(report: &Report, mark: Mark, label: &str, detail: &str) -> bool {
    report.items.iter().any(|i| i.mark == mark && i.label == label && i.detail.contains(detail))
}

/// Asserts the step's own final check passed for every AWS service.
fn verified(report: &Report) {
    assert_eq!(report.status, Status::Ok, "{}", report.to_text());
    for service in ["EC2", "ECR", "SQS", "S3", "IAM"] {
        assert!(has(report, Mark::Passed, &format!("check {service}"), ""), "{}", report.to_text());
    }
}

async fn second_run_has_nothing_to_do(project: &TestProject) {
    let again = destroy(project, everything()).await;
    assert_eq!(again.summary, "nothing to delete", "{}", again.to_text());
    assert!(!again.changed_anything(), "{}", again.to_text());
    verified(&again);
}

async fn role_exists(project: &TestProject) -> bool {
    let settings = project.settings();
    let client = iam::Client::new(&testkit::sdk_config(&settings).await);
    let role = format!("{}-worker-role", settings.prefix());
    client.get_role().role_name(role).send().await.is_ok()
}

async fn bucket_keys(project: &TestProject) -> Option<Vec<String>> {
    let settings = project.settings();
    let s3 = common::aws::s3_client(&testkit::sdk_config(&settings).await, &settings);
    let out = s3.list_objects_v2().bucket(&settings.bucket).send().await.ok()?;
    Some(out.contents().iter().filter_map(|o| o.key()).map(str::to_string).collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn destroys_a_complete_setup_and_a_second_run_finds_nothing() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "full");
    step_010(&project).await;
    step_020(&project).await;
    step_100(&project).await;
    let worker = launch_worker(&project).await;
    for key in ["input/a.wav", "output/a.json", "status/workers/x.json", "bundles/current", "tmp/t"]
    {
        put(&project, key).await;
    }
    let settings = project.settings();
    let ecr = common::sdk::ecr::Client::new(&testkit::sdk_config(&settings).await);
    let tags = common::tags::standard(&settings, "step-200-setup-docker-prerequisites");
    common::ecr::ensure_repository(&ecr, &settings, &tags, &mut Report::new("t"))
        .await
        .expect("repo");
    let pem = fleet::network::private_key_path(
        project.root(),
        &format!("{}-worker-key", settings.prefix()),
    );
    assert!(pem.exists(), "step-100 wrote the private key");

    let report = destroy(&project, everything()).await;

    verified(&report);
    assert!(has(&report, Mark::Deleted, "worker", &worker), "{}", report.to_text());
    for label in ["launch template", "security group", "key pair", "private key", "repository"] {
        assert!(has(&report, Mark::Deleted, label, ""), "{label}: {}", report.to_text());
    }
    assert!(has(&report, Mark::Deleted, "queue", "full-test-jobs-dlq"));
    assert!(has(&report, Mark::Deleted, "bucket", "full-test-audio"));
    for label in ["policy", "role", "instance profile", "policy attachment"] {
        assert!(has(&report, Mark::Deleted, label, ""), "{label}: {}", report.to_text());
    }
    assert!(has(&report, Mark::Updated, ".env", "QUEUE_URL"), "{}", report.to_text());
    assert!(has(&report, Mark::Skipped, "operator policy", "operator-policy.json"));
    assert!(!pem.exists());
    let left = project.settings();
    assert_eq!(left.queue.url, None);
    assert_eq!(left.ec2.security_group_id, None);
    assert_eq!(left.ec2.key_name, None, "the generated key pair's name is cleared");
    assert_eq!(left.region, "us-east-2", "operator settings stay");
    assert!(left.ec2.ami_id.is_some(), "AMI_ID names AWS's image, not ours: kept");
    assert!(!role_exists(&project).await);
    assert_eq!(bucket_keys(&project).await, None, "bucket gone");

    second_run_has_nothing_to_do(&project).await;
}

#[tokio::test]
async fn interrupted_after_step_010_is_destroyed() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "only010");
    step_010(&project).await;
    let settings = project.settings();
    let client = iam::Client::new(&testkit::sdk_config(&settings).await);
    let arn = format!("arn:aws:iam::123456789012:policy/{}-worker-policy", settings.prefix());
    let document = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}"#;
    let add = client.create_policy_version().policy_arn(&arn).policy_document(document);
    add.set_as_default(true).send().await.expect("second policy version");

    let report = destroy(&project, everything()).await;

    verified(&report);
    assert!(has(&report, Mark::Deleted, "policy version", "v1 of"), "{}", report.to_text());
    assert!(has(&report, Mark::Deleted, "role", "only010-test-worker-role"));
    assert!(!role_exists(&project).await);
    second_run_has_nothing_to_do(&project).await;
}

#[tokio::test]
async fn interrupted_after_step_020_without_queue_urls_in_env_is_destroyed() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "half");
    step_010(&project).await;
    step_020(&project).await;
    let env = project.root().join(".env");
    common::dotenv::update(&env, &[("QUEUE_URL", ""), ("DLQ_URL", "")]).expect("forget URLs");

    let report = destroy(&project, everything()).await;

    verified(&report);
    assert!(report.count(Mark::Deleted) >= 2, "{}", report.to_text());
    assert!(has(&report, Mark::Deleted, "queue", "half-test-jobs"), "found by name");
    let settings = project.settings();
    let sqs = sqs::Client::new(&testkit::sdk_config(&settings).await);
    let queues = sqs.list_queues().send().await.expect("list queues");
    assert!(queues.queue_urls().is_empty(), "{:?}", queues.queue_urls());
    second_run_has_nothing_to_do(&project).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupted_after_a_launch_is_destroyed_worker_first() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "launched");
    step_010(&project).await;
    step_020(&project).await;
    step_100(&project).await;
    let worker = launch_worker(&project).await;
    let env = project.root().join(".env");
    common::dotenv::update(&env, &[("SECURITY_GROUP_ID", "")]).expect("forget the group");

    let report = destroy(&project, everything()).await;

    verified(&report);
    let position =
        |label: &str| report.items.iter().position(|i| i.label == label && i.mark == Mark::Deleted);
    let (worker_at, group_at) = (position("worker"), position("security group"));
    assert!(worker_at.is_some() && group_at.is_some(), "{}", report.to_text());
    assert!(worker_at < group_at, "terminated before its security group: {}", report.to_text());
    assert!(has(&report, Mark::Deleted, "worker", &worker));
    second_run_has_nothing_to_do(&project).await;
}

#[tokio::test]
async fn user_data_is_kept_without_include_data_and_the_bucket_stays() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "keep");
    step_010(&project).await;
    step_020(&project).await;
    for key in
        ["input/talk.wav", "output/talk.json", "status/jobs/j.json", "bundles/current", "tmp/x"]
    {
        put(&project, key).await;
    }

    let report = destroy(&project, Args::default()).await;

    assert_eq!(report.status, Status::Ok, "{}", report.to_text());
    assert!(has(&report, Mark::Skipped, "bucket", "--include-data"), "{}", report.to_text());
    assert!(has(&report, Mark::Passed, "check S3", "kept for its data"), "{}", report.to_text());
    let mut keys = bucket_keys(&project).await.expect("bucket kept");
    keys.sort();
    assert_eq!(keys, vec!["input/talk.wav".to_string(), "output/talk.json".to_string()]);
    assert!(!role_exists(&project).await, "everything else is gone");
}

#[tokio::test]
async fn data_is_deleted_only_after_its_own_confirmation() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "ask");
    step_010(&project).await;
    step_020(&project).await;
    put(&project, "input/talk.wav").await;
    let prompter = Scripted::new([Answer::Confirm(true), Answer::Confirm(false)]);
    let mut context = testkit::context(STEP, &project, prompter.clone());
    context.assume_yes = false;

    let report = run(context, Args { include_data: true, dry_run: false }).await.expect("destroy");

    assert_eq!(prompter.asked(), vec!["DESTROY_ALL".to_string(), "DELETE_DATA".to_string()]);
    assert_eq!(bucket_keys(&project).await, Some(vec!["input/talk.wav".to_string()]));
    assert_eq!(report.status, Status::Ok, "{}", report.to_text());
}

#[tokio::test]
async fn versioned_bucket_with_delete_markers_is_emptied_and_deleted() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "versions");
    step_020(&project).await;
    let settings = project.settings();
    let s3 = common::aws::s3_client(&testkit::sdk_config(&settings).await, &settings);
    let enabled = s3::types::VersioningConfiguration::builder()
        .status(s3::types::BucketVersioningStatus::Enabled)
        .build();
    s3.put_bucket_versioning()
        .bucket(&settings.bucket)
        .versioning_configuration(enabled)
        .send()
        .await
        .expect("versioning");
    put(&project, "output/a.json").await;
    put(&project, "output/a.json").await;
    s3.delete_object()
        .bucket(&settings.bucket)
        .key("output/a.json")
        .send()
        .await
        .expect("delete marker");

    let report = destroy(&project, everything()).await;

    verified(&report);
    assert!(
        has(&report, Mark::Deleted, "objects", "3 all object versions"),
        "{}",
        report.to_text()
    );
    assert!(has(&report, Mark::Deleted, "bucket", "versions-test-audio"));
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "dryrun");
    step_010(&project).await;
    step_020(&project).await;
    put(&project, "input/kept.wav").await;
    let env_before = project.env_text();

    let report = destroy(&project, Args { include_data: false, dry_run: true }).await;

    assert!(!report.changed_anything(), "{}", report.to_text());
    assert!(has(&report, Mark::Skipped, "role", "would be deleted"), "{}", report.to_text());
    // A bucket holding audio is not announced as deleted: its data needs a confirmation.
    let bucket = report.items.iter().find(|i| i.label == "bucket").expect("bucket line");
    assert!(bucket.detail.contains("kept unless"), "{}", bucket.detail);
    assert!(!bucket.detail.contains("would be deleted"), "{}", bucket.detail);
    assert!(role_exists(&project).await);
    assert_eq!(bucket_keys(&project).await, Some(vec!["input/kept.wav".to_string()]));
    assert_eq!(project.env_text(), env_before);
}

#[tokio::test]
async fn without_a_terminal_or_yes_it_is_a_usage_error() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "noterm");
    step_010(&project).await;
    let mut context = ctx(STEP, &project);
    context.prompter = Box::new(common::ui::NoPrompt { assume_yes: false });
    context.assume_yes = false;

    let error = run(context, everything()).await.expect_err("no terminal");

    assert_eq!(common::cli::exit_code_for(&error), 2, "{error:#}");
    assert!(role_exists(&project).await);
}
