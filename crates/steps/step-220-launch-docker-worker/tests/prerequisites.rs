//! Step 220 refuses to launch without a pinned image, naming the steps that make one.

use common::ui::Scripted;
use step_220_launch_docker_worker::{Args, STEP, run};
use testkit::{Emulator, TestProject};

#[tokio::test]
async fn without_worker_image_the_hint_names_steps_210_and_211_and_nothing_launches() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "noimage");
    let error = run(testkit::context(STEP, &project, Scripted::default()), Args::default())
        .await
        .expect_err("no image");
    let text = common::cli::render_error(&error);
    assert!(text.contains("WORKER_IMAGE is not in .env"), "{text}");
    assert!(text.contains("step-210") && text.contains("step-211"), "{text}");
    let config = testkit::sdk_config(&project.settings()).await;
    let ec2 = fleet::ec2::Client::new(&config);
    let out = ec2.describe_instances().send().await.expect("instances");
    assert!(out.reservations().is_empty());
}

#[tokio::test]
async fn an_image_pinned_by_tag_only_is_refused() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "tagonly");
    let env_file = project.root().join(".env");
    common::dotenv::update(&env_file, &[("WORKER_IMAGE", "127.0.0.1:5050/w:latest")]).expect("env");
    let error = run(testkit::context(STEP, &project, Scripted::default()), Args::default())
        .await
        .expect_err("tag only");
    let text = common::cli::render_error(&error);
    assert!(text.contains("not pinned by a digest"), "{text}");
}
