//! Teardown removes the worker images of this project and environment from the Docker engine
//! on this machine, local registry tags included, and no one else's. The images are tiny ones
//! the test imports from an empty tar under names it makes unique.

use std::process::Command;

use common::ui::Scripted;
use common::{Mark, Report};
use step_999_destroy_all_resources::{Args, STEP, run};
use testkit::{Emulator, TestProject};

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker").args(args).output().expect("run docker")
}

fn engine_answers() -> bool {
    Command::new("docker").arg("info").output().is_ok_and(|o| o.status.success())
}

fn image_exists(reference: &str) -> bool {
    docker(&["image", "inspect", reference]).status.success()
}

/// Images the test made; whatever is left is removed when the test ends.
struct Images(Vec<String>);

impl Images {
    fn import(dir: &std::path::Path, references: &[String]) -> Self {
        let tar = dir.join("empty.tar");
        let status = Command::new("tar")
            .args(["-cf", &tar.display().to_string(), "--files-from", "/dev/null"])
            .status()
            .expect("tar");
        assert!(status.success());
        let first = &references[0];
        let out = docker(&["import", &tar.display().to_string(), first]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        for reference in &references[1..] {
            assert!(docker(&["tag", first, reference]).status.success(), "tag {reference}");
        }
        Self(references.to_vec())
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        for reference in &self.0 {
            let _ = docker(&["image", "rm", reference]);
        }
    }
}

fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("img{}x{nanos}", std::process::id())
}

async fn destroy(project: &TestProject, dry_run: bool) -> Report {
    let ctx = testkit::context(STEP, project, Scripted::new([]));
    run(ctx, Args { include_data: true, dry_run }).await.expect("destroy")
}

fn lines(report: &Report, mark: Mark, label: &str) -> Vec<String> {
    let mut found: Vec<String> = report
        .items
        .iter()
        .filter(|i| i.mark == mark && i.label == label)
        .map(|i| i.detail.clone())
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn removes_this_deployments_worker_images_and_only_those() {
    if !engine_answers() {
        println!("SKIPPED: no Docker engine answers; only the no-engine test runs");
        return;
    }
    let emulator = Emulator::start();
    let name = unique_name();
    let project = TestProject::local(&emulator, &name);
    let repo = project.settings().ecr_repository;
    assert_eq!(repo, format!("{name}-test-worker"));
    let ours = vec![
        format!("{repo}:latest"),
        format!("{repo}:abc123"),
        format!("127.0.0.1:{}/{repo}:abc123", common::registry::DEFAULT_PORT),
    ];
    let theirs = vec![
        format!("{name}-prod-worker:latest"),
        format!("{repo}-old:latest"),
        format!("other.example/{repo}:latest"),
    ];
    let dir = tempfile::tempdir().expect("dir");
    let all: Vec<String> = ours.iter().chain(&theirs).cloned().collect();
    let _images = Images::import(dir.path(), &all);
    let mut expected = ours.clone();
    expected.sort();

    let dry = destroy(&project, true).await;
    let listed: Vec<String> = lines(&dry, Mark::Skipped, "local image")
        .into_iter()
        .map(|d| d.trim_end_matches(": would be deleted (dry run)").to_string())
        .collect();
    assert_eq!(listed, expected, "{}", dry.to_text());
    assert!(all.iter().all(|r| image_exists(r)), "a dry run removes nothing");

    let report = destroy(&project, false).await;
    assert_eq!(lines(&report, Mark::Deleted, "local image"), expected, "{}", report.to_text());
    for reference in &ours {
        assert!(!image_exists(reference), "{reference} remains");
    }
    for reference in &theirs {
        assert!(image_exists(reference), "{reference} of another deployment was removed");
    }
    assert!(lines(&report, Mark::Problem, "check local").is_empty(), "{}", report.to_text());

    let again = destroy(&project, true).await;
    assert!(lines(&again, Mark::Skipped, "local image").is_empty(), "{}", again.to_text());
}

#[tokio::test]
async fn without_a_docker_engine_teardown_says_the_images_may_remain() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "noengine");
    std::fs::create_dir_all(project.root().join(".local/docker")).expect("build folder");
    let mut env = testkit::build_env();
    env.insert("FLEET_DOCKER".into(), project.root().join("no-docker").display().to_string());
    let ctx = common::Context::for_test(STEP, project.project(), env, Box::new(Scripted::new([])));

    let report = run(ctx, Args { include_data: true, dry_run: false }).await.expect("destroy");

    let kept = lines(&report, Mark::Skipped, "local images");
    assert_eq!(kept.len(), 1, "{}", report.to_text());
    assert!(kept[0].contains("noengine-test-worker:*") && kept[0].contains("did not answer"));
    assert!(lines(&report, Mark::Deleted, "local image").is_empty());
}
