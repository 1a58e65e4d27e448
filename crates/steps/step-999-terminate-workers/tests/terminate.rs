//! step-999-terminate-workers against a private emulator: only our tagged workers, only our
//! spot requests, the path filter, refused ids, dry run, declining, and local runners.

use std::process::{Child, Command};

use common::deployment_path::DeploymentPath;
use common::ui::{Answer, Scripted};
use common::{Mark, Report, Settings, Status};
use fleet::ec2;
use fleet::ec2::types::{InstanceType, ResourceType};
use step_999_terminate_workers::{Args, PathFilter, STEP, run};
use testkit::{Emulator, TestProject};

/// An AMI of the emulator's catalogue (testkit's fixture).
const AMI: &str = "ami-0d1a2b3c4d5e6f701";

async fn ec2_client(settings: &Settings) -> ec2::Client {
    ec2::Client::new(&testkit::sdk_config(settings).await)
}

/// Launches one instance with `tags` and returns its id.
async fn launch(client: &ec2::Client, tags: &[(String, String)]) -> String {
    let mut request = client
        .run_instances()
        .image_id(AMI)
        .instance_type(InstanceType::G5Xlarge)
        .min_count(1)
        .max_count(1);
    if !tags.is_empty() {
        request = request.tag_specifications(fleet::tag_spec(ResourceType::Instance, tags));
    }
    let out = request.send().await.expect("run instance");
    out.instances()[0].instance_id().expect("instance id").to_string()
}

async fn worker(client: &ec2::Client, settings: &Settings, path: DeploymentPath) -> String {
    launch(client, &fleet::worker_tags(settings, "step-120-launch-spot-worker", path)).await
}

async fn state(client: &ec2::Client, id: &str) -> String {
    let out = client.describe_instances().instance_ids(id).send().await.expect("describe");
    let instance = &out.reservations()[0].instances()[0];
    instance.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).expect("state")
}

async fn terminate(project: &TestProject, args: Args) -> anyhow::Result<Report> {
    run(testkit::context(STEP, project, Scripted::new([])), args).await
}

fn deleted(report: &Report, label: &str) -> Vec<String> {
    report
        .items
        .iter()
        .filter(|i| i.mark == Mark::Deleted && i.label == label)
        .map(|i| i.detail.clone())
        .collect()
}

#[tokio::test]
async fn terminates_only_instances_tagged_as_ours() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "only");
    let settings = project.settings();
    let client = ec2_client(&settings).await;
    let ours = worker(&client, &settings, DeploymentPath::Traditional).await;
    let untagged = launch(&client, &[]).await;
    let other = TestProject::local(&emulator, "other").settings();
    let foreign = worker(&client, &other, DeploymentPath::Traditional).await;

    let report = terminate(&project, Args::default()).await.expect("terminate");

    assert_eq!(report.status, Status::Ok, "{}", report.to_text());
    assert_eq!(report.data["terminated"], serde_json::json!([ours.clone()]));
    assert_eq!(state(&client, &ours).await, "terminated");
    assert_eq!(state(&client, &untagged).await, "running", "an untagged instance survives");
    assert_eq!(state(&client, &foreign).await, "running", "another project's worker survives");

    let again = terminate(&project, Args::default()).await.expect("second run");
    assert_eq!(again.summary, "no workers to terminate");
    assert!(!again.changed_anything(), "{}", again.to_text());
}

#[tokio::test]
async fn path_filter_leaves_the_other_path_running() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "paths");
    let settings = project.settings();
    let client = ec2_client(&settings).await;
    let traditional = worker(&client, &settings, DeploymentPath::Traditional).await;
    let docker = worker(&client, &settings, DeploymentPath::Docker).await;

    let args = Args { path: PathFilter::Docker, ..Args::default() };
    let report = terminate(&project, args).await.expect("terminate");

    assert_eq!(deleted(&report, "worker").len(), 1, "{}", report.to_text());
    assert_eq!(state(&client, &docker).await, "terminated");
    assert_eq!(state(&client, &traditional).await, "running");
}

#[tokio::test]
async fn instance_id_of_an_untagged_instance_is_refused_and_left_running() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "refuse");
    let settings = project.settings();
    let client = ec2_client(&settings).await;
    let ours = worker(&client, &settings, DeploymentPath::Traditional).await;
    let untagged = launch(&client, &[]).await;

    let args = Args { instance_ids: vec![untagged.clone()], ..Args::default() };
    let report = terminate(&project, args).await.expect("terminate");

    assert_eq!(report.status, Status::Failed, "{}", report.to_text());
    assert!(report.items.iter().any(|i| i.mark == Mark::Problem && i.detail.contains(&untagged)));
    assert_eq!(state(&client, &untagged).await, "running");
    assert_eq!(state(&client, &ours).await, "running", "not named, so not terminated");
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "dry");
    let settings = project.settings();
    let client = ec2_client(&settings).await;
    let ours = worker(&client, &settings, DeploymentPath::Traditional).await;

    let args = Args { dry_run: true, ..Args::default() };
    let report = terminate(&project, args).await.expect("dry run");

    assert!(!report.changed_anything(), "{}", report.to_text());
    assert!(report.items.iter().any(|i| i.mark == Mark::Skipped && i.detail.contains(&ours)));
    assert_eq!(state(&client, &ours).await, "running");
}

#[tokio::test]
async fn declining_the_question_cancels_and_terminates_nothing() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "decline");
    let settings = project.settings();
    let client = ec2_client(&settings).await;
    let ours = worker(&client, &settings, DeploymentPath::Traditional).await;
    let prompter = Scripted::new([Answer::Confirm(false)]);
    let mut ctx = testkit::context(STEP, &project, prompter.clone());
    ctx.assume_yes = false;

    let error = run(ctx, Args::default()).await.expect_err("declined");

    assert_eq!(common::cli::exit_code_for(&error), 130);
    assert_eq!(prompter.asked(), vec!["TERMINATE_WORKERS".to_string()]);
    assert_eq!(state(&client, &ours).await, "running");
}

#[tokio::test]
async fn without_a_terminal_or_yes_it_is_a_usage_error() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "noterm");
    let settings = project.settings();
    let client = ec2_client(&settings).await;
    let ours = worker(&client, &settings, DeploymentPath::Traditional).await;
    let mut ctx = testkit::context(STEP, &project, Scripted::new([]));
    ctx.prompter = Box::new(common::ui::NoPrompt { assume_yes: false });
    ctx.assume_yes = false;

    let error = run(ctx, Args::default()).await.expect_err("no terminal");

    assert_eq!(common::cli::exit_code_for(&error), 2, "{error:#}");
    assert_eq!(state(&client, &ours).await, "running");
}

async fn spot_request(client: &ec2::Client, tags: &[(String, String)]) -> String {
    let spec = ec2::types::RequestSpotLaunchSpecification::builder()
        .image_id(AMI)
        .instance_type(InstanceType::G5Xlarge)
        .build();
    let mut request = client.request_spot_instances().instance_count(1).launch_specification(spec);
    if !tags.is_empty() {
        request =
            request.tag_specifications(fleet::tag_spec(ResourceType::SpotInstancesRequest, tags));
    }
    let out = request.send().await.expect("request spot");
    out.spot_instance_requests()[0].spot_instance_request_id().expect("id").to_string()
}

/// The request's state; `None` once the emulator forgot it (moto drops cancelled requests).
async fn request_state(client: &ec2::Client, id: &str) -> Option<String> {
    let out = client
        .describe_spot_instance_requests()
        .spot_instance_request_ids(id)
        .send()
        .await
        .expect("describe spot request");
    let request = out.spot_instance_requests().first()?;
    request.state().map(|s| s.as_str().to_string())
}

#[tokio::test]
async fn cancels_only_spot_requests_tagged_as_ours() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "spot");
    let settings = project.settings();
    let client = ec2_client(&settings).await;
    let tags = common::tags::standard(&settings, "step-120-launch-spot-worker");
    let ours = spot_request(&client, &tags).await;
    let foreign = spot_request(&client, &[]).await;

    let report = terminate(&project, Args::default()).await.expect("terminate");

    assert_eq!(report.data["cancelled_spot_requests"], serde_json::json!([ours.clone()]));
    let state = request_state(&client, &ours).await;
    assert!(state.as_deref().is_none_or(|s| s == "cancelled"), "ours is cancelled: {state:?}");
    let state = request_state(&client, &foreign).await;
    assert!(state.as_deref().is_some_and(|s| s != "cancelled"), "not ours: {state:?}");
}

/// A stand-in worker process: `sleep` under the worker binary's name, as the runner records it.
fn fake_runner(project: &TestProject, instance_id: &str) -> Child {
    let binary = project.root().join(fleet::bundle::WORKER_BINARY);
    std::fs::copy("/bin/sleep", &binary).expect("copy sleep");
    let child = Command::new(&binary).arg("300").spawn().expect("start fake worker");
    let runner = fleet::local::Runner {
        instance_id: instance_id.to_string(),
        pid: child.id(),
        bundle_version: "test".to_string(),
        log: project.root().join("runner.log"),
        started_at: "2025-01-01T00:00:00Z".to_string(),
    };
    let dir = fleet::local::runners_dir(&project.project());
    std::fs::create_dir_all(&dir).expect("runners dir");
    let text = serde_json::to_string(&runner).expect("runner json");
    std::fs::write(dir.join(format!("{instance_id}.json")), text).expect("pid file");
    child
}

#[tokio::test]
async fn local_runner_of_a_terminated_worker_is_stopped() {
    let emulator = Emulator::start();
    let project = TestProject::local(&emulator, "runner");
    let settings = project.settings();
    let client = ec2_client(&settings).await;
    let ours = worker(&client, &settings, DeploymentPath::Traditional).await;
    let mut child = fake_runner(&project, &ours);
    assert!(fleet::local::running(&project.project(), &ours).is_some(), "runner alive");

    let report = terminate(&project, Args::default()).await.expect("terminate");

    assert_eq!(deleted(&report, "local runner").len(), 1, "{}", report.to_text());
    assert!(fleet::local::running(&project.project(), &ours).is_none());
    let status = child.wait().expect("reap the fake worker");
    assert!(!status.success(), "stopped by a signal");
}
