//! Step 120 refuses to launch, naming the step to run, when something it needs is missing.

use common::ui::Scripted;
use step_120_launch_spot_worker::{Args, STEP, run};
use testkit::{Emulator, TestProject};

async fn with_ec2_settings(emulator: &Emulator, name: &str) -> TestProject {
    let project = TestProject::local(emulator, name);
    let ctx = testkit::context("step-100-setup-ec2-configuration", &project, Scripted::default());
    step_100_setup_ec2_configuration::run(ctx, Default::default()).await.expect("step-100");
    project
}

#[tokio::test]
async fn without_a_queue_url_it_exits_2_and_the_hint_names_step_020() {
    let emulator = Emulator::start();
    let project = with_ec2_settings(&emulator, "noqueue").await;
    let error = run(testkit::context(STEP, &project, Scripted::default()), Args::default())
        .await
        .expect_err("no queue");
    let text = common::cli::render_error(&error);
    assert!(text.contains("QUEUE_URL is not set"), "{text}");
    assert!(text.contains("run ./scripts/step-020-create-sqs-resources.sh"), "{text}");
    assert_eq!(common::cli::exit_code_for(&error), 2, "{text}");
}

#[tokio::test]
async fn without_subnets_it_exits_2_and_the_hint_names_step_100() {
    let emulator = Emulator::start();
    let project = with_ec2_settings(&emulator, "nosubnet").await;
    let queue = format!("{}/123456789012/nosubnet-test-jobs", emulator.endpoint());
    let env_file = project.root().join(".env");
    common::dotenv::update(&env_file, &[("QUEUE_URL", &queue), ("SUBNET_IDS", "")]).expect("env");
    let error = run(testkit::context(STEP, &project, Scripted::default()), Args::default())
        .await
        .expect_err("no subnets");
    let text = common::cli::render_error(&error);
    assert!(text.contains("SUBNET_IDS is not set"), "{text}");
    assert!(text.contains("run ./scripts/step-100-setup-ec2-configuration.sh"), "{text}");
    assert_eq!(common::cli::exit_code_for(&error), 2, "{text}");
}

#[tokio::test]
async fn without_the_instance_profile_the_hint_names_step_010_and_nothing_launches() {
    let emulator = Emulator::start();
    let project = with_ec2_settings(&emulator, "noprofile").await;
    let queue = format!("{}/123456789012/noprofile-test-jobs", emulator.endpoint());
    common::dotenv::update(&project.root().join(".env"), &[("QUEUE_URL", &queue)]).expect("env");
    let error = run(testkit::context(STEP, &project, Scripted::default()), Args::default())
        .await
        .expect_err("no profile");
    let text = common::cli::render_error(&error);
    assert!(text.contains("noprofile-test-worker-profile` does not exist"), "{text}");
    assert!(text.contains("step-010"), "{text}");
    assert_eq!(common::cli::exit_code_for(&error), 1);
    let config = testkit::sdk_config(&project.settings()).await;
    let ec2 = fleet::ec2::Client::new(&config);
    let out = ec2.describe_instances().send().await.expect("instances");
    assert!(out.reservations().is_empty());
}
