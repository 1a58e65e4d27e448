//! Path A end to end against a private emulator with the real worker: steps 100, 101, 110,
//! 111, 120, 125, 135 and 130, then 120 again to prove no duplicate is launched.

use std::time::Duration;

use common::sdk::{iam, s3, sqs};
use common::ui::Scripted;
use common::{Report, Settings, Status};
use testkit::{Emulator, TestProject};

/// Links the shipped files the steps read into the test project's folder.
fn link_workspace_files(project: &TestProject) {
    let root = testkit::workspace_root();
    for name in ["samples", "engine", "deploy", ".venv"] {
        std::os::unix::fs::symlink(root.join(name), project.root().join(name)).expect("symlink");
    }
}

/// What step-010 and step-020 make: the bucket, the queues and the worker instance profile.
async fn common_resources(project: &TestProject) {
    let settings = project.settings();
    let config = testkit::sdk_config(&settings).await;
    let s3 = common::aws::s3_client(&config, &settings);
    let mut bucket = s3.create_bucket().bucket(&settings.bucket);
    bucket = bucket.create_bucket_configuration(
        s3::types::CreateBucketConfiguration::builder()
            .location_constraint(s3::types::BucketLocationConstraint::from(
                settings.region.as_str(),
            ))
            .build(),
    );
    bucket.send().await.expect("bucket");
    let sqs = sqs::Client::new(&config);
    let dlq = sqs.create_queue().queue_name(&settings.queue.dlq_name).send().await.expect("dlq");
    let dlq_url = dlq.queue_url().expect("dlq url").to_string();
    let queue = sqs.create_queue().queue_name(&settings.queue.name).send().await.expect("queue");
    let queue_url = queue.queue_url().expect("queue url").to_string();
    let iam = iam::Client::new(&config);
    let role = format!("{}-worker-role", settings.prefix());
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]
    })
    .to_string();
    iam.create_role()
        .role_name(&role)
        .assume_role_policy_document(&trust)
        .send()
        .await
        .expect("role");
    let profile = fleet::instance_profile_name(&settings);
    iam.create_instance_profile().instance_profile_name(&profile).send().await.expect("profile");
    iam.add_role_to_instance_profile()
        .instance_profile_name(&profile)
        .role_name(&role)
        .send()
        .await
        .expect("add role");
    let env = project.root().join(".env");
    common::dotenv::update(
        &env,
        &[("QUEUE_URL", &queue_url), ("DLQ_URL", &dlq_url), ("SQS_WAIT_SECONDS", "1")],
    )
    .expect("write queue URLs");
}

fn ctx(step: &'static str, project: &TestProject) -> common::Context {
    testkit::context(step, project, Scripted::default())
}

fn ok(report: Report) -> Report {
    assert_eq!(report.status, Status::Ok, "{}", report.to_text());
    report
}

async fn live_workers(settings: &Settings) -> Vec<fleet::workers::WorkerInstance> {
    let config = testkit::sdk_config(settings).await;
    let ec2 = fleet::ec2::Client::new(&config);
    let path = common::deployment_path::DeploymentPath::Traditional;
    fleet::workers::find_workers(&ec2, settings, path, fleet::workers::LIVE_STATES)
        .await
        .expect("workers")
}

/// Stops the runners even when an assertion fails.
struct Runners(common::Project);

impl Drop for Runners {
    fn drop(&mut self) {
        fleet::local::stop_all(&self.0, Duration::from_secs(10));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn path_a_transcribes_the_sample_and_a_second_launch_adds_no_worker() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "patha");
    link_workspace_files(&project);
    common_resources(&project).await;
    let _runners = Runners(project.project());

    let report = ok(step_100_setup_ec2_configuration::run(
        ctx("step-100-setup-ec2-configuration", &project),
        Default::default(),
    )
    .await
    .expect("step-100"));
    assert!(
        project.env_text().contains("AMI_ID=ami-0f9e8d7c6b5a40312"),
        "newest DLAMI: {}",
        report.to_text()
    );
    ok(step_101_validate_ec2_configuration::run(
        ctx("step-101-validate-ec2-configuration", &project),
        Default::default(),
    )
    .await
    .expect("step-101"));

    let worker = testkit::target_dir().join("debug/transcription-worker");
    assert!(worker.exists(), "build the worker first: cargo build -p transcription-worker");
    let args = step_110_deploy_worker_code::Args { worker_bin: Some(worker) };
    let deployed =
        ok(step_110_deploy_worker_code::run(ctx("step-110-deploy-worker-code", &project), args)
            .await
            .expect("step-110"));
    let version = deployed.data["version"].as_str().expect("version").to_string();
    ok(step_111_validate_worker_code::run(
        ctx("step-111-validate-worker-code", &project),
        Default::default(),
    )
    .await
    .expect("step-111"));

    let launched = ok(step_120_launch_spot_worker::run(
        ctx("step-120-launch-spot-worker", &project),
        Default::default(),
    )
    .await
    .expect("step-120"));
    assert_eq!(
        launched.data["launched"].as_array().map(Vec::len),
        Some(1),
        "{}",
        launched.to_text()
    );
    let args = step_125_check_worker_health::Args { wait: true, timeout: 120 };
    let health =
        ok(step_125_check_worker_health::run(ctx("step-125-check-worker-health", &project), args)
            .await
            .expect("step-125"));
    assert!(health.summary.starts_with("1 of 1"), "{}", health.to_text());

    let e2e = ok(step_135_test_complete_workflow::run(
        ctx("step-135-test-complete-workflow", &project),
        Default::default(),
    )
    .await
    .expect("step-135"));
    let text = e2e.data["transcript"].as_str().expect("transcript").to_lowercase();
    assert!(text.contains("quick brown fox"), "{}", e2e.to_text());
    assert!(e2e.data["wer"].as_f64().expect("wer") <= 0.3);
    let measured = common::measurements::load(&project.project()).expect("measurements");
    assert!(measured.contains_key(common::measurements::E2E_TRANSCRIPTION));

    let again = ok(step_120_launch_spot_worker::run(
        ctx("step-120-launch-spot-worker", &project),
        Default::default(),
    )
    .await
    .expect("step-120 again"));
    assert_eq!(again.data["launched"].as_array().map(Vec::len), Some(0), "{}", again.to_text());
    assert_eq!(live_workers(&project.settings()).await.len(), 1, "no duplicate worker");

    let updated = ok(step_130_update_system_fixes::run(
        ctx("step-130-update-system-fixes", &project),
        Default::default(),
    )
    .await
    .expect("step-130"));
    assert_eq!(updated.data["version"].as_str(), Some(version.as_str()));
    assert!(updated.summary.starts_with("1 worker(s) run bundle"), "{}", updated.to_text());
}
