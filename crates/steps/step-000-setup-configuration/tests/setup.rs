//! Step 000 against a private local emulator.

use common::ui::{Answer, Scripted};
use step_000_setup_configuration::{Args, STEP, run};
use testkit::{Emulator, TestProject};

fn local_args(emulator: &Emulator) -> Args {
    Args { local: true, endpoint: emulator.endpoint(), ..Args::default() }
}

fn empty_project() -> TestProject {
    let project = TestProject::with_env("");
    std::fs::remove_file(project.root().join(".env")).expect("start without .env");
    project
}

#[tokio::test]
async fn local_yes_writes_a_complete_valid_env_with_the_discovered_account() {
    let emulator = Emulator::start();
    let project = empty_project();
    let ctx =
        testkit::context(STEP, &project, Scripted::new(std::iter::repeat_n(Answer::Default, 4)));
    let report = run(ctx, local_args(&emulator)).await.expect("step-000");

    let settings = project.settings();
    assert_eq!(settings.account_id.as_deref(), Some("123456789012"));
    assert_eq!(settings.endpoint_url.as_deref(), Some(emulator.endpoint().as_str()));
    assert_eq!(settings.bucket, "transcribe-fleet-dev-123456789012-us-east-2");
    assert_eq!(settings.worker.model, "bundled:tiny.en");
    assert!(project.env_text().contains("# Settings of one transcription-fleet deployment."));
    assert!(report.summary.starts_with("wrote "), "{}", report.summary);
}

#[tokio::test]
async fn rerun_keeps_values_and_comments_and_reports_nothing_changed() {
    let emulator = Emulator::start();
    let project = empty_project();
    let answers = || Scripted::new(std::iter::repeat_n(Answer::Default, 4));
    run(testkit::context(STEP, &project, answers()), local_args(&emulator)).await.expect("first");
    let mut text = project.env_text();
    text.push_str("# my own note\n");
    std::fs::write(project.root().join(".env"), &text).expect("edit");

    let report = run(testkit::context(STEP, &project, answers()), local_args(&emulator))
        .await
        .expect("second");
    assert!(report.summary.contains("already up to date"), "{}", report.summary);
    assert_eq!(project.env_text(), text);
}

#[tokio::test]
async fn answers_change_values_in_place() {
    let emulator = Emulator::start();
    let project = empty_project();
    let answers = Scripted::new([
        Answer::Text("eu-west-1".into()),
        Answer::Default,
        Answer::Text("prod".into()),
        Answer::Text("my-audio-bucket-for-tests".into()),
    ]);
    let prompts = answers.clone();
    run(testkit::context(STEP, &project, answers), local_args(&emulator)).await.expect("step-000");
    assert_eq!(prompts.asked(), ["AWS_REGION", "PROJECT_NAME", "ENVIRONMENT", "AUDIO_BUCKET"]);
    let settings = project.settings();
    assert_eq!(settings.region, "eu-west-1");
    assert_eq!(settings.environment, "prod");
    assert_eq!(settings.bucket, "my-audio-bucket-for-tests");
}

#[tokio::test]
async fn invalid_answer_exits_2_and_writes_nothing() {
    let emulator = Emulator::start();
    let project = TestProject::with_env("# keep me\nAWS_REGION=us-east-2\n");
    let answers =
        Scripted::new([Answer::Text("mars-north-1".into()), Answer::Default, Answer::Default]);
    let error = run(testkit::context(STEP, &project, answers), local_args(&emulator))
        .await
        .expect_err("bad region");
    assert_eq!(common::cli::exit_code_for(&error), 2);
    assert!(format!("{error:#}").contains("AWS_REGION"));
    assert_eq!(project.env_text(), "# keep me\nAWS_REGION=us-east-2\n");
}

#[tokio::test]
async fn unreachable_emulator_fails_with_a_hint_and_writes_nothing() {
    let project = empty_project();
    let port = testkit::free_port();
    let args =
        Args { local: true, endpoint: format!("http://127.0.0.1:{port}"), ..Args::default() };
    let error = run(
        testkit::context(STEP, &project, Scripted::new(std::iter::repeat_n(Answer::Default, 4))),
        args,
    )
    .await
    .expect_err("no emulator");
    assert_eq!(common::cli::exit_code_for(&error), 1);
    assert!(common::cli::render_error(&error).contains("hint: is the local emulator running"));
    assert!(!project.root().join(".env").exists());
}

#[tokio::test]
async fn unreadable_existing_file_is_not_rewritten() {
    let emulator = Emulator::start();
    let original = "AWS_REGION=\"never closed\nAUDIO_BUCKET=x\n";
    let project = TestProject::with_env(original);
    let error = run(testkit::context(STEP, &project, Scripted::new([])), local_args(&emulator))
        .await
        .expect_err("parse error");
    assert_eq!(common::cli::exit_code_for(&error), 2);
    assert_eq!(project.env_text(), original);
}

#[test]
fn without_terminal_or_yes_the_binary_exits_2_at_once_naming_the_key() {
    let project = empty_project();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_step-000-setup-configuration"))
        .args(["--local", "--endpoint", "http://127.0.0.1:9"])
        .env("FLEET_ROOT", project.root())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run step-000");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("AWS_REGION: a value is needed but there is no terminal"), "{stderr}");
    assert!(!project.root().join(".env").exists());
}
