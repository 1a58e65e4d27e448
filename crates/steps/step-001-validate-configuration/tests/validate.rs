//! Step 001 against a private local emulator and broken settings files.

use common::ui::Scripted;
use common::{Mark, Status};
use step_001_validate_configuration::{Args, STEP, run};
use testkit::{Emulator, TestProject};

#[tokio::test]
async fn valid_local_settings_pass_with_matching_credentials() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "valid");
    let report = run(testkit::context(STEP, &project, Scripted::default()), Args::default())
        .await
        .expect("step-001");
    assert_eq!(report.status, Status::Ok, "{}", report.to_text());
    assert!(report.items.iter().any(|i| i.label == "credentials" && i.mark == Mark::Passed));
}

#[tokio::test]
async fn several_problems_exit_2_and_are_listed_by_key() {
    let project = TestProject::with_env("AWS_REGION=mars-1\nVISIBILITY_TIMEOUT=abc\n");
    let error = run(testkit::context(STEP, &project, Scripted::default()), Args { offline: true })
        .await
        .expect_err("invalid settings");
    assert_eq!(common::cli::exit_code_for(&error), 2);
    let text = common::cli::render_error(&error);
    for key in ["AWS_REGION (line 1)", "AUDIO_BUCKET", "VISIBILITY_TIMEOUT (line 2)"] {
        assert!(text.contains(key), "{key} missing from:\n{text}");
    }
}

#[tokio::test]
async fn credentials_of_another_account_are_a_problem() {
    let emulator = Emulator::start();
    let text = testkit::local_env(&emulator, "other").replace("123456789012", "210987654321");
    let project = TestProject::with_env(&text);
    let report = run(testkit::context(STEP, &project, Scripted::default()), Args::default())
        .await
        .expect("step-001");
    assert_eq!(report.status, Status::Failed);
    let problem = report.items.iter().find(|i| i.mark == Mark::Problem).expect("a problem");
    assert!(problem.detail.contains("AWS_ACCOUNT_ID is 210987654321"), "{}", problem.detail);
}

#[cfg(unix)]
#[tokio::test]
async fn world_readable_env_file_is_reported_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "perms");
    let env = project.root().join(".env");
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let report = run(testkit::context(STEP, &project, Scripted::default()), Args { offline: true })
        .await
        .expect("step-001");
    assert_eq!(report.status, Status::Failed);
    assert!(report.to_text().contains("chmod 600"));
}
