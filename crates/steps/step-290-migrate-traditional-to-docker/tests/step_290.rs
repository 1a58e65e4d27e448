//! step-290 against a private emulator: refusal, snapshot, order of the switch, rollback.
//!
//! Build, launch and the end-to-end job are replaced by [`Fake`] stages here; the last test
//! runs the real stages when a Docker engine answers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::deployment_path::{self, DeploymentPath};
use common::ui::Scripted;
use common::{Context, Settings};
use step_025_choose_deployment_path::links;
use step_290_migrate_traditional_to_docker::{Args, NAME, Real, Stages, run, run_with, snapshot};
use testkit::{Emulator, TestProject};

const DOCKER_WORKER: &str = "i-0docker0000000001";

/// Stages that answer at once: the check is served by `served`.
#[derive(Debug)]
struct Fake {
    served: &'static str,
}

impl Stages for Fake {
    async fn build_image(&self, _ctx: &Context) -> anyhow::Result<String> {
        Ok("127.0.0.1:5050/fleet-worker@sha256:0123".to_string())
    }

    async fn launch_docker_worker(&self, _ctx: &Context) -> anyhow::Result<String> {
        Ok(DOCKER_WORKER.to_string())
    }

    async fn end_to_end(&self, _: &Context, _: &Settings, _: Duration) -> anyhow::Result<String> {
        Ok(self.served.to_string())
    }
}

async fn s3(project: &TestProject) -> (common::sdk::s3::Client, String) {
    let settings = project.settings();
    let config = testkit::sdk_config(&settings).await;
    (common::aws::s3_client(&config, &settings), settings.bucket.clone())
}

/// A project on Path A: the choice, the links and a bundle version in the bucket.
async fn path_a(emulator: &Emulator, name: &str, bundle: &str) -> TestProject {
    let project = TestProject::local(emulator, name);
    deployment_path::write(&project.project(), DeploymentPath::Traditional).expect("path");
    let mut report = common::Report::new(NAME);
    links::ensure_links(&project.root().join("scripts"), DeploymentPath::Traditional, &mut report)
        .expect("links");
    create_bucket(&project).await;
    set_bundle(&project, bundle).await;
    project
}

async fn create_bucket(project: &TestProject) {
    use common::sdk::s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
    let (s3, bucket) = s3(project).await;
    let region = project.settings().region;
    let mut request = s3.create_bucket().bucket(&bucket);
    if region != "us-east-1" {
        let constraint = BucketLocationConstraint::from(region.as_str());
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder().location_constraint(constraint).build(),
        );
    }
    request.send().await.expect("bucket");
}

async fn set_bundle(project: &TestProject, version: &str) {
    let (s3, bucket) = s3(project).await;
    s3.put_object()
        .bucket(&bucket)
        .key(fleet::bundle::CURRENT_KEY)
        .body(format!("{version}\n").into_bytes().into())
        .send()
        .await
        .expect("bundles/current");
}

async fn bundle(project: &TestProject) -> Option<String> {
    let (s3, bucket) = s3(project).await;
    fleet::bundle::read_current(&s3, &bucket).await.expect("read bundles/current")
}

fn ctx(project: &TestProject) -> Context {
    testkit::context(NAME, project, Scripted::new([]))
}

fn chosen(project: &TestProject) -> String {
    std::fs::read_to_string(project.root().join(deployment_path::FILE_NAME)).expect("path file")
}

fn link(project: &TestProject, name: &str) -> PathBuf {
    std::fs::read_link(project.root().join("scripts").join(name)).expect("link")
}

fn snapshots(root: &Path) -> usize {
    std::fs::read_dir(root.join(".local/migrations")).map_or(0, |d| d.count())
}

#[tokio::test]
async fn refuses_when_path_a_was_never_set_up() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "never");
    let error = run_with(ctx(&project), Args::default(), &Fake { served: DOCKER_WORKER })
        .await
        .expect_err("no .deployment-path");
    assert!(format!("{error:#}").contains("Path A was never set up"), "{error:#}");

    deployment_path::write(&project.project(), DeploymentPath::Traditional).expect("path");
    create_bucket(&project).await;
    let error = run_with(ctx(&project), Args::default(), &Fake { served: DOCKER_WORKER })
        .await
        .expect_err("no bundle");
    assert!(format!("{error:#}").contains("names no bundle"), "{error:#}");
    assert_eq!(snapshots(project.root()), 0, "a refused migration takes no snapshot");
}

#[tokio::test]
async fn migration_snapshots_path_a_then_switches_to_docker() {
    let emulator = Emulator::start();
    let project = path_a(&emulator, "migrate", "a1b2c3d4e5f60718").await;
    let env_before = project.env_text();

    let report = run_with(ctx(&project), Args::default(), &Fake { served: DOCKER_WORKER })
        .await
        .expect("migrate");
    assert_eq!(chosen(&project), "DEPLOYMENT_PATH=docker\n");
    assert_eq!(link(&project, "launch-worker.sh"), Path::new("step-220-launch-docker-worker.sh"));
    assert!(report.next.iter().any(|n| n.contains("--rollback")), "{:?}", report.next);

    let dir = snapshot::latest(&project.project()).expect("snapshot");
    assert_eq!(std::fs::read_to_string(dir.join(snapshot::ENV_COPY)).expect("env"), env_before);
    let path_copy = std::fs::read_to_string(dir.join(snapshot::PATH_COPY)).expect("path copy");
    assert_eq!(path_copy, "DEPLOYMENT_PATH=traditional\n");
    let manifest = snapshot::read(&dir).expect("manifest");
    assert_eq!(manifest.bundle_version, "a1b2c3d4e5f60718");
    assert!(
        manifest.links.contains(&(
            "launch-worker.sh".to_string(),
            "step-120-launch-spot-worker.sh".to_string()
        ))
    );
}

#[tokio::test]
async fn check_served_by_path_a_never_switches() {
    let emulator = Emulator::start();
    let project = path_a(&emulator, "served-a", "a1b2c3d4e5f60718").await;
    let args = Args { attempts: 2, ..Args::default() };
    let error = run_with(ctx(&project), args, &Fake { served: "i-0traditional000001" })
        .await
        .expect_err("the Docker worker never served the check");
    let text = format!("{error:#}");
    assert!(
        text.contains("never reached the Docker worker") && text.contains("2 attempt"),
        "{text}"
    );
    assert_eq!(chosen(&project), "DEPLOYMENT_PATH=traditional\n");
    assert_eq!(link(&project, "launch-worker.sh"), Path::new("step-120-launch-spot-worker.sh"));
}

#[tokio::test]
async fn rollback_restores_env_bundle_and_links() {
    let emulator = Emulator::start();
    let project = path_a(&emulator, "rollback", "a1b2c3d4e5f60718").await;
    let env_before = project.env_text();
    run_with(ctx(&project), Args::default(), &Fake { served: DOCKER_WORKER })
        .await
        .expect("migrate");
    std::fs::write(&project.project().env_file, format!("{env_before}WORKER_IMAGE=x@sha256:1\n"))
        .expect("edit .env");
    set_bundle(&project, "ffffffffffffffff").await;

    let args = Args { rollback: true, ..Args::default() };
    let report = run(ctx(&project), args).await.expect("rollback");
    assert_eq!(project.env_text(), env_before);
    assert_eq!(bundle(&project).await.as_deref(), Some("a1b2c3d4e5f60718"));
    assert_eq!(chosen(&project), "DEPLOYMENT_PATH=traditional\n");
    assert_eq!(link(&project, "check-health.sh"), Path::new("step-125-check-worker-health.sh"));
    assert!(report.next.iter().any(|n| n.contains("step-999-terminate-workers.sh --path docker")));
}

#[tokio::test]
async fn rollback_without_snapshot_says_so() {
    let emulator = Emulator::start();
    let project = path_a(&emulator, "no-snapshot", "a1b2c3d4e5f60718").await;
    let args = Args { rollback: true, ..Args::default() };
    let error = run(ctx(&project), args).await.expect_err("nothing to restore");
    assert!(format!("{error:#}").contains("no migration snapshot"), "{error:#}");
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let emulator = Emulator::start();
    let project = path_a(&emulator, "dry", "a1b2c3d4e5f60718").await;
    let args = Args { dry_run: true, ..Args::default() };
    let report = run(ctx(&project), args).await.expect("dry run");
    assert_eq!(report.summary, "dry run: nothing changed");
    assert_eq!(chosen(&project), "DEPLOYMENT_PATH=traditional\n");
    assert_eq!(snapshots(project.root()), 0);
}

fn yes(step: &'static str, project: &TestProject) -> Context {
    let mut ctx = testkit::context(step, project, Scripted::new([]));
    ctx.assume_yes = true;
    ctx.prompter = Box::new(common::ui::NoPrompt { assume_yes: true });
    ctx
}

/// IAM, queues and bucket, EC2 settings: what a launch needs.
async fn common_setup(project: &TestProject) {
    use step_010_setup_iam_permissions as s010;
    use step_020_create_sqs_resources as s020;
    use step_100_setup_ec2_configuration as s100;
    s010::run(yes(s010::NAME, project), Default::default()).await.expect("step-010");
    s020::run(yes(s020::NAME, project), Default::default()).await.expect("step-020");
    s100::run(yes(s100::STEP, project), Default::default()).await.expect("step-100");
}

/// Stops the local registry the flow starts for its project, also when an assertion fails.
struct StopRegistry(common::registry::LocalRegistry);

impl Drop for StopRegistry {
    fn drop(&mut self) {
        let _ = self.0.stop();
    }
}

fn docker_answers() -> bool {
    std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The real stages, building from this workspace: the Docker worker must serve the check
/// before the path switches. Without a Docker engine the test says so and passes.
#[tokio::test]
async fn whole_flow_with_docker_switches_only_after_the_check() {
    if !docker_answers() {
        eprintln!("skipped: no Docker engine answers `docker version`; the whole flow needs one");
        return;
    }
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "docker-flow");
    let registry =
        common::registry::LocalRegistry::for_project(&project.project(), &ctx(&project).env)
            .expect("registry");
    let _stop_registry = StopRegistry(registry);
    common_setup(&project).await;
    deployment_path::write(&project.project(), DeploymentPath::Traditional).expect("path");
    set_bundle(&project, "a1b2c3d4e5f60718").await;
    let root = testkit::workspace_root();
    std::fs::create_dir_all(project.root().join("samples")).expect("samples");
    for name in ["hello-fleet.wav", "hello-fleet.txt"] {
        let from = root.join("samples").join(name);
        std::fs::copy(&from, project.root().join("samples").join(name)).expect("sample");
    }
    let build = step_210_build_worker_image::Args { source_dir: Some(root), ..Default::default() };
    let stages = Real { build };
    let args = Args { timeout: 300, attempts: 1, ..Args::default() };
    let result = run_with(ctx(&project), args, &stages).await;
    let report = match result {
        Ok(report) => report,
        Err(error) => {
            assert_eq!(chosen(&project), "DEPLOYMENT_PATH=traditional\n", "switched on failure");
            panic!("the migration failed: {error:#}");
        }
    };
    assert_eq!(chosen(&project), "DEPLOYMENT_PATH=docker\n");
    let check = report.items.iter().find(|i| i.label == "end-to-end check").expect("check");
    assert!(check.detail.starts_with("served by i-"), "{}", check.detail);
    let worker = report.data["docker_worker"].as_str().expect("worker").to_string();
    let mut containers = std::process::Command::new("docker");
    containers.args(["ps", "-aq", "--filter", &format!("label=fleet.worker-id={worker}")]);
    let ids = String::from_utf8(containers.output().expect("docker ps").stdout).expect("ids");
    for id in ids.split_whitespace() {
        let _ = std::process::Command::new("docker").args(["rm", "-f", id]).output();
    }
}
