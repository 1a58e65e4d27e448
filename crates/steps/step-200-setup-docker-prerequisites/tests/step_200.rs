//! step-200 and step-201 against a private emulator, a stand-in `docker` program that reports
//! an engine version, and a real local registry (Debian's docker-registry) on a free port.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::sdk::ecr;
use common::settings::Env;
use common::{Mark, Report};
use testkit::{Emulator, TestProject};

/// A `docker` that answers `version` like a 20.10 engine and fails everything else.
fn fake_docker(dir: &Path, version: &str) -> String {
    let path = dir.join("docker");
    let script = format!(
        "#!/bin/sh\ncase \"$1\" in version) echo '{version}';; *) echo \"fake: $*\" >&2; exit 1;; esac\n"
    );
    std::fs::write(&path, script).expect("write fake docker");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.display().to_string()
}

struct Setup {
    emulator: Emulator,
    project: TestProject,
    env: Env,
    _bin: tempfile::TempDir,
}

impl Setup {
    fn new(name: &str) -> Self {
        assert!(
            Path::new("/usr/bin/docker-registry").exists(),
            "the local registry is missing; run docker/local-prereqs.sh (apt-get install docker-registry)"
        );
        let emulator = Emulator::start();
        let project = TestProject::local(&emulator, name);
        let bin = tempfile::tempdir().expect("bin dir");
        let env = Env::from([
            ("FLEET_DOCKER".to_string(), fake_docker(bin.path(), "20.10.24+dfsg1")),
            ("FLEET_REGISTRY_PORT".to_string(), testkit::free_port().to_string()),
        ]);
        Self { emulator, project, env, _bin: bin }
    }

    fn context(&self, step: &'static str) -> common::Context {
        let mut ctx = testkit::context(step, &self.project, common::ui::Scripted::default());
        ctx.env.extend(self.env.clone());
        ctx
    }

    async fn step_200(&self) -> Report {
        let ctx = self.context(step_200_setup_docker_prerequisites::NAME);
        step_200_setup_docker_prerequisites::run(ctx, Default::default()).await.expect("step-200")
    }

    async fn step_201(&self) -> Report {
        let ctx = self.context("step-201-validate-docker-setup");
        step_201_validate_docker_setup::run(ctx, Default::default()).await.expect("step-201")
    }

    async fn ecr(&self) -> ecr::Client {
        ecr::Client::new(&testkit::sdk_config(&self.project.settings()).await)
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let registry =
            common::registry::LocalRegistry::for_project(&self.project.project(), &self.env);
        if let Ok(registry) = registry {
            let _ = registry.stop();
        }
    }
}

fn mark_of(report: &Report, label: &str) -> Mark {
    report.items.iter().find(|i| i.label == label).map(|i| i.mark).unwrap_or(Mark::Info)
}

#[tokio::test]
async fn repository_gets_immutable_tags_scanning_encryption_lifecycle_and_tags() {
    let setup = Setup::new("dock-a");
    let report = setup.step_200().await;
    assert_eq!(mark_of(&report, "repository"), Mark::Created, "{}", report.to_text());
    assert_eq!(mark_of(&report, "local registry"), Mark::Created, "{}", report.to_text());

    let client = setup.ecr().await;
    let repo = common::ecr::find_repository(&client, "dock-a-test-worker")
        .await
        .expect("describe")
        .expect("repository exists");
    assert!(repo.immutable && repo.scan_on_push, "{repo:?}");
    assert_eq!(repo.encryption, "AES256");
    let policy = common::ecr::lifecycle_of(&client, "dock-a-test-worker").await.expect("policy");
    let wanted = common::ecr::lifecycle_policy(common::ecr::KEEP_IMAGES);
    assert!(policy.is_some_and(|p| common::ecr::same_policy(&p, &wanted)));
    let tags = client.list_tags_for_resource().resource_arn(&repo.arn).send().await.expect("tags");
    let created_by = tags.tags().iter().find(|t| t.key() == "CreatedBy").map(|t| t.value());
    assert_eq!(created_by, Some(step_200_setup_docker_prerequisites::NAME));
    assert!(setup.project.env_text().contains(&format!("ECR_REPOSITORY_URI={}", repo.uri)));
}

#[tokio::test]
async fn a_second_run_changes_nothing_and_step_201_passes() {
    let setup = Setup::new("dock-b");
    setup.step_200().await;
    let env_before = setup.project.env_text();
    let again = setup.step_200().await;
    assert!(!again.changed_anything(), "{}", again.to_text());
    assert_eq!(mark_of(&again, "local registry"), Mark::Unchanged);
    assert_eq!(setup.project.env_text(), env_before);

    let check = setup.step_201().await;
    assert_eq!(check.count(Mark::Problem), 0, "{}", check.to_text());
    assert_eq!(mark_of(&check, "local registry"), Mark::Passed);
    assert_eq!(mark_of(&check, "lifecycle policy"), Mark::Passed);
}

#[tokio::test]
async fn a_mutable_unscanned_repository_is_flagged_by_201_and_repaired_by_200() {
    let setup = Setup::new("dock-c");
    let client = setup.ecr().await;
    client.create_repository().repository_name("dock-c-test-worker").send().await.expect("create");
    setup.step_200().await;
    client
        .put_image_tag_mutability()
        .repository_name("dock-c-test-worker")
        .image_tag_mutability(ecr::types::ImageTagMutability::Mutable)
        .send()
        .await
        .expect("make mutable");

    let check = setup.step_201().await;
    assert_eq!(mark_of(&check, "tag mutability"), Mark::Problem, "{}", check.to_text());
    assert_eq!(check.status, common::Status::Failed);

    let repair = setup.step_200().await;
    assert_eq!(mark_of(&repair, "tag mutability"), Mark::Updated, "{}", repair.to_text());
    assert_eq!(setup.step_201().await.count(Mark::Problem), 0);
}

#[tokio::test]
async fn step_201_reports_a_stopped_local_registry_with_the_fix() {
    let setup = Setup::new("dock-d");
    setup.step_200().await;
    let registry =
        common::registry::LocalRegistry::for_project(&setup.project.project(), &setup.env)
            .expect("registry");
    assert!(registry.stop().expect("stop"));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let check = setup.step_201().await;
    let line = check.items.iter().find(|i| i.label == "local registry").expect("registry line");
    assert_eq!(line.mark, Mark::Problem);
    assert!(line.detail.contains("step-200"), "{}", line.detail);
}

#[tokio::test]
async fn an_unreachable_docker_engine_stops_step_200_before_anything_is_created() {
    let mut setup = Setup::new("dock-e");
    setup.env.insert("FLEET_DOCKER".to_string(), "/nonexistent/docker".to_string());
    let ctx = setup.context(step_200_setup_docker_prerequisites::NAME);
    let error = step_200_setup_docker_prerequisites::run(ctx, Default::default())
        .await
        .expect_err("no engine");
    let text = common::cli::render_error(&error);
    assert!(text.contains("cannot reach the Docker engine"), "{text}");
    assert!(text.contains("hint: install Docker"), "{text}");
    let client = setup.ecr().await;
    let repo = common::ecr::find_repository(&client, "dock-e-test-worker").await.expect("describe");
    assert!(repo.is_none(), "the repository must not be created: {}", setup.emulator.log().len());
}
