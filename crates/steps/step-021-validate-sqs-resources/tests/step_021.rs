//! step-021 against a private emulator: passes after step-020, names drift, fails on absence.

use common::sdk::sqs::{self, types::QueueAttributeName};
use common::ui::Scripted;
use common::{Mark, Report, Status};
use testkit::{Emulator, TestProject};

async fn create(project: &TestProject) {
    let ctx = testkit::context(step_020_create_sqs_resources::NAME, project, Scripted::new([]));
    let args = step_020_create_sqs_resources::Args { no_self_test: true };
    step_020_create_sqs_resources::run(ctx, args).await.expect("step-020");
}

async fn validate(project: &TestProject) -> Report {
    let ctx = testkit::context(step_021_validate_sqs_resources::NAME, project, Scripted::new([]));
    step_021_validate_sqs_resources::run(ctx, Default::default()).await.expect("step-021")
}

fn problems(report: &Report) -> Vec<String> {
    report
        .items
        .iter()
        .filter(|i| i.mark == Mark::Problem)
        .map(|i| format!("{} {}", i.label, i.detail))
        .collect()
}

#[tokio::test]
async fn everything_passes_after_step_020_including_round_trips() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "valid");
    create(&project).await;

    let report = validate(&project).await;

    assert_eq!(report.status, Status::Ok, "{}", report.to_text());
    assert!(report.items.iter().any(|i| i.label == "queue round trip" && i.mark == Mark::Passed));
    assert!(report.items.iter().any(|i| i.label == "bucket round trip" && i.mark == Mark::Passed));
    assert!(report.items.iter().any(|i| i.detail == "maxReceiveCount = 3"));
    assert!(report.items.iter().any(|i| i.label == "bucket policy" && i.mark == Mark::Skipped));
}

#[tokio::test]
async fn c20_drift_fails_naming_the_attribute_and_step_020_repairs_it() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "drift");
    create(&project).await;
    let settings = project.settings();
    let client = sqs::Client::new(&testkit::sdk_config(&settings).await);
    let url = settings.queue.url.expect("QUEUE_URL");
    client
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::VisibilityTimeout, "60")
        .send()
        .await
        .expect("drift by hand");

    let report = validate(&project).await;

    assert_eq!(report.status, Status::Failed);
    assert_eq!(report.status.exit_code(), 1);
    let found = problems(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("VisibilityTimeout is 60, settings say 900"), "{found:?}");
    assert!(found[0].contains("step-020-create-sqs-resources.sh"), "{found:?}");

    create(&project).await;
    assert_eq!(validate(&project).await.status, Status::Ok);
}

#[tokio::test]
async fn missing_resources_and_wrong_redrive_count_are_problems() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "absent");

    let report = validate(&project).await;
    let found = problems(&report);
    assert!(
        found.iter().any(|p| p.contains("queue `absent-test-jobs-dlq` does not exist")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| p.contains("queue `absent-test-jobs` does not exist")),
        "the job queue is checked even without its DLQ: {found:?}"
    );
    assert!(
        found.iter().any(|p| p.contains("bucket `absent-test-audio` does not exist")),
        "{found:?}"
    );

    create(&project).await;
    let mut text = project.env_text();
    text.push_str("MAX_RECEIVE_COUNT=5\n");
    std::fs::write(project.root().join(".env"), text).expect("edit .env");
    let found = problems(&validate(&project).await);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("maxReceiveCount is 3, MAX_RECEIVE_COUNT says 5"), "{found:?}");
}
