//! Step 235 is step-135 for Path B: without a live Path B worker it names step-220.

use common::ui::Scripted;
use step_235_test_docker_workflow::{Args, STEP, run};
use testkit::{Emulator, TestProject};

#[tokio::test]
async fn without_a_live_path_b_worker_the_hint_names_step_220_and_no_job_is_sent() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "nob");
    let settings = project.settings();
    let config = testkit::sdk_config(&settings).await;
    let sqs = common::sdk::sqs::Client::new(&config);
    let queue = sqs.create_queue().queue_name(&settings.queue.name).send().await.expect("queue");
    let url = queue.queue_url().expect("url").to_string();
    common::dotenv::update(&project.root().join(".env"), &[("QUEUE_URL", &url)]).expect("env");
    let error = run(testkit::context(STEP, &project, Scripted::default()), Args::default())
        .await
        .expect_err("no worker");
    let text = common::cli::render_error(&error);
    assert!(text.contains("no live Path B worker"), "{text}");
    assert!(text.contains("run ./scripts/step-220-launch-docker-worker.sh"), "{text}");
    assert!(text.contains("then ./scripts/step-225-check-docker-health.sh --wait"), "{text}");
    let received = sqs.receive_message().queue_url(&url).send().await.expect("receive");
    assert!(received.messages().is_empty(), "no job was sent");
}
