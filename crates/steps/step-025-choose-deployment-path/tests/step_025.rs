//! step-025 against a private emulator: choose, switch, refuse, link, compare.

use std::path::Path;

use common::deployment_path::{self, DeploymentPath};
use common::ui::{Answer, NoPrompt, Scripted};
use common::{Mark, Report};
use step_025_choose_deployment_path::{Args, NAME, comparison, run};
use testkit::{Emulator, TestProject};

async fn choose(
    project: &TestProject,
    path: Option<DeploymentPath>,
    answers: Vec<Answer>,
) -> anyhow::Result<Report> {
    run(testkit::context(NAME, project, Scripted::new(answers)), Args { path }).await
}

fn link_text(project: &TestProject, name: &str) -> String {
    let link = project.root().join("scripts").join(name);
    std::fs::read_link(link).expect("link").to_string_lossy().into_owned()
}

fn chosen(project: &TestProject) -> String {
    std::fs::read_to_string(project.root().join(deployment_path::FILE_NAME))
        .expect(".deployment-path")
}

#[tokio::test]
async fn docker_then_traditional_leaves_the_right_links_and_a_labelled_comparison() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "paths");

    let report = choose(&project, Some(DeploymentPath::Docker), vec![]).await.expect("docker");
    assert_eq!(chosen(&project), "DEPLOYMENT_PATH=docker\n");
    assert_eq!(link_text(&project, "launch-worker.sh"), "step-220-launch-docker-worker.sh");
    assert_eq!(link_text(&project, "check-health.sh"), "step-225-check-docker-health.sh");
    assert!(
        report.items.iter().any(|i| i.mark == Mark::Info && i.detail.contains("not built yet"))
    );
    let text =
        std::fs::read_to_string(project.root().join(comparison::FILE_NAME)).expect("comparison");
    assert!(text.contains(comparison::EMULATOR_LABEL), "{text}");
    let row = text.lines().find(|l| l.starts_with("| g5.xlarge |")).expect("g5.xlarge row");
    assert!(row.contains("$0.") && row.contains("/h"), "{row}");
    assert!(text.contains("| launch to healthy worker | not measured | not measured |"), "{text}");

    let report = choose(&project, Some(DeploymentPath::Traditional), vec![Answer::Confirm(true)])
        .await
        .expect("switch");
    let switched = "docker → DEPLOYMENT_PATH=traditional";
    assert!(report.items.iter().any(|i| i.mark == Mark::Updated && i.detail == switched));
    assert_eq!(chosen(&project), "DEPLOYMENT_PATH=traditional\n");
    assert_eq!(link_text(&project, "launch-worker.sh"), "step-120-launch-spot-worker.sh");
    assert_eq!(link_text(&project, "check-health.sh"), "step-125-check-worker-health.sh");

    let link = project.root().join("scripts/launch-worker.sh");
    assert!(!deployment_path::resolves(&link));
    std::fs::write(project.root().join("scripts/step-120-launch-spot-worker.sh"), "#!/bin/sh\n")
        .expect("script");
    assert!(deployment_path::resolves(&link), "the relative link resolves once its script exists");
    let leftovers: Vec<_> = std::fs::read_dir(project.root().join("scripts"))
        .expect("scripts")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn non_interactive_switch_without_yes_is_refused_and_keeps_the_old_choice() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "refuse");
    choose(&project, Some(DeploymentPath::Traditional), vec![]).await.expect("traditional");

    let mut ctx = testkit::context(NAME, &project, Scripted::new([]));
    ctx.prompter = Box::new(NoPrompt { assume_yes: false });
    ctx.assume_yes = false;
    let error = run(ctx, Args { path: Some(DeploymentPath::Docker) }).await.expect_err("refused");

    assert_eq!(common::cli::exit_code_for(&error), 2);
    let text = common::cli::render_error(&error);
    assert!(text.contains("step-999-terminate-workers.sh"), "says what switching means: {text}");
    assert!(text.contains("--yes"), "{text}");
    assert!(!text.contains(".env"), "a confirmation is not a setting: {text}");
    assert_eq!(chosen(&project), "DEPLOYMENT_PATH=traditional\n");
    assert_eq!(link_text(&project, "launch-worker.sh"), "step-120-launch-spot-worker.sh");
}

#[tokio::test]
async fn menu_choice_and_same_path_rerun_change_nothing_but_the_comparison() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "menu");
    let prompter = Scripted::new([Answer::Select(1)]);
    let report = run(testkit::context(NAME, &project, prompter.clone()), Args::default())
        .await
        .expect("menu");
    assert_eq!(prompter.asked(), vec!["--path".to_string()]);
    assert_eq!(report.data["path"], "docker");

    let again = choose(&project, Some(DeploymentPath::Docker), vec![]).await.expect("again");
    assert!(!again.changed_anything(), "{}", again.to_text());
}

#[tokio::test]
async fn predecessor_bare_word_file_is_read_and_rewritten() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "legacy");
    std::fs::write(project.root().join(deployment_path::FILE_NAME), "docker-gpu")
        .expect("old file");

    let report =
        choose(&project, Some(DeploymentPath::Docker), vec![]).await.expect("no switch asked");

    assert!(
        report
            .items
            .iter()
            .any(|i| i.mark == Mark::Updated && i.label == deployment_path::FILE_NAME)
    );
    assert_eq!(chosen(&project), "DEPLOYMENT_PATH=docker\n");
}

#[tokio::test]
async fn recorded_measurements_appear_and_the_rest_stay_not_measured() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "measured");
    let handle = project.project();
    common::measurements::record(&handle, common::measurements::PATH_B_LAUNCH_TO_HEALTHY, 184.0)
        .expect("record");
    common::measurements::record(&handle, common::measurements::PATH_B_IMAGE_SIZE, 9.5e9)
        .expect("record");

    choose(&project, Some(DeploymentPath::Docker), vec![]).await.expect("run");

    let text = std::fs::read_to_string(Path::new(project.root()).join(comparison::FILE_NAME))
        .expect("comparison");
    let row = text.lines().find(|l| l.starts_with("| launch to healthy worker |")).expect("row");
    assert!(row.contains("| not measured | 184 s (measured "), "{row}");
    assert!(text.contains("| worker image size | no image | 9.50 GB (measured "), "{text}");
    assert!(text.contains("| end-to-end transcription | not measured | not measured |"), "{text}");
}
