//! The job CLI against a private local emulator.

use chrono::Utc;
use common::job::{self, JobMessage, JobRecord, JobState, S3Uri, WorkerState, WorkerStatus};
use common::sdk::{s3, sqs};
use common::ui::Scripted;
use common::{Mark, Report, Status};
use testkit::{Emulator, TestProject};
use transcribe::{Command, FetchArgs, RedriveArgs, StatusArgs, SubmitArgs};

struct Fixture {
    _emulator: Emulator,
    project: TestProject,
    settings: common::Settings,
    s3: s3::Client,
    sqs: sqs::Client,
}

async fn fixture(name: &str) -> Fixture {
    let emulator = Emulator::start();
    let base = testkit::local_env(&emulator, name);
    let settings = TestProject::with_env(&base).settings();
    let config = testkit::sdk_config(&settings).await;
    let s3 = common::aws::s3_client(&config, &settings);
    let sqs = sqs::Client::new(&config);
    let location = s3::types::BucketLocationConstraint::from(settings.region.as_str());
    s3.create_bucket()
        .bucket(&settings.bucket)
        .create_bucket_configuration(
            s3::types::CreateBucketConfiguration::builder().location_constraint(location).build(),
        )
        .send()
        .await
        .expect("bucket");
    let dlq = sqs.create_queue().queue_name(&settings.queue.dlq_name).send().await.expect("dlq");
    let queue = sqs.create_queue().queue_name(&settings.queue.name).send().await.expect("queue");
    let env = format!(
        "{base}QUEUE_URL={}\nDLQ_URL={}\n",
        queue.queue_url.expect("url"),
        dlq.queue_url.expect("url")
    );
    let project = TestProject::with_env(&env);
    let settings = project.settings();
    Fixture { _emulator: emulator, project, settings, s3, sqs }
}

impl Fixture {
    async fn run(&self, command: Command) -> anyhow::Result<Report> {
        let ctx = testkit::context("transcribe", &self.project, Scripted::new(Vec::new()));
        transcribe::run(ctx, command).await
    }

    async fn receive_all(&self, url: &str) -> Vec<String> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        out.messages
            .unwrap_or_default()
            .iter()
            .filter_map(|m| m.body().map(str::to_string))
            .collect()
    }

    async fn put(&self, key: &str, body: &str) {
        let body = s3::primitives::ByteStream::from(body.as_bytes().to_vec());
        self.s3
            .put_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .body(body)
            .send()
            .await
            .expect("put");
    }

    fn queue_url(&self) -> &str {
        self.settings.queue.url.as_deref().expect("queue url")
    }

    fn dlq_url(&self) -> &str {
        self.settings.queue.dlq_url.as_deref().expect("dlq url")
    }
}

/// Each `next:` line starts with a script the user can run from the project folder.
fn assert_runnable_from_the_project(next: &[String]) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for line in next {
        let command = line.split_whitespace().next().unwrap_or_default();
        assert!(command.starts_with("./scripts/"), "not a project script: {line}");
        assert!(root.join(command).is_file(), "no such script: {line}");
    }
}

fn submit_args(inputs: Vec<String>) -> SubmitArgs {
    SubmitArgs {
        inputs,
        output: None,
        language: Some("en".into()),
        formats: vec!["srt".into(), "txt".into()],
        diarize: false,
        wait: false,
        timeout: 10,
        download_dir: None,
    }
}

#[tokio::test]
async fn c08_submit_uploads_under_literal_keys_and_sends_one_job_per_file() {
    let fx = fixture("cli-submit").await;
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("my talk+v2 ü.wav"), b"RIFF....").expect("write");
    std::fs::write(dir.path().join("memo.m4a"), b"....").expect("write");
    std::fs::write(dir.path().join("notes.txt"), b"not audio").expect("write");

    let report = fx
        .run(Command::Submit(submit_args(vec![dir.path().display().to_string()])))
        .await
        .expect("submit");
    assert_eq!(report.count(Mark::Created), 2, "{report:?}");
    assert!(report.next[0].starts_with("./scripts/transcribe.sh status "), "{:?}", report.next);
    assert_runnable_from_the_project(&report.next);

    let bodies = fx.receive_all(fx.queue_url()).await;
    assert_eq!(bodies.len(), 2);
    let jobs: Vec<JobMessage> =
        bodies.iter().map(|b| JobMessage::parse(b).expect("a valid job")).collect();
    let talk = jobs.iter().find(|j| j.s3_input_path.key.ends_with(".wav")).expect("wav job");
    assert_eq!(talk.s3_input_path.key, format!("input/{}/my talk+v2 ü.wav", talk.job_id));
    assert_eq!(
        talk.s3_output_path,
        S3Uri::new(&fx.settings.bucket, format!("output/{}/", talk.job_id))
    );
    assert_eq!(talk.language.as_deref(), Some("en"));
    let head =
        fx.s3.head_object().bucket(&fx.settings.bucket).key(&talk.s3_input_path.key).send().await;
    assert_eq!(head.expect("uploaded under the literal key").content_length(), Some(8));

    let status = fx
        .run(Command::Status(StatusArgs { jobs: vec![talk.job_id.clone()] }))
        .await
        .expect("status");
    assert!(status.items[0].detail.starts_with("queued"), "{:?}", status.items);
}

#[tokio::test]
async fn submit_of_a_missing_file_is_a_usage_error() {
    let fx = fixture("cli-missing").await;
    let error = fx
        .run(Command::Submit(submit_args(vec!["/no/such/file.wav".into()])))
        .await
        .expect_err("error");
    assert_eq!(common::cli::exit_code_for(&error), 2, "{error:#}");
    assert!(fx.receive_all(fx.queue_url()).await.is_empty());
}

#[tokio::test]
async fn submit_of_an_empty_file_is_a_usage_error_naming_it_and_uploads_nothing() {
    let fx = fixture("cli-empty").await;
    let dir = tempfile::tempdir().expect("dir");
    let good = dir.path().join("good.wav");
    std::fs::write(&good, b"RIFF....").expect("write");
    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, b"").expect("write");
    let inputs = vec![good.display().to_string(), empty.display().to_string()];

    let error = fx.run(Command::Submit(submit_args(inputs))).await.expect_err("empty file");
    let text = common::cli::render_error(&error);
    assert_eq!(common::cli::exit_code_for(&error), 2, "{text}");
    assert!(text.contains(&format!("`{}` is empty (0 bytes)", empty.display())), "{text}");
    assert!(fx.receive_all(fx.queue_url()).await.is_empty());
    let listed = fx.s3.list_objects_v2().bucket(&fx.settings.bucket).send().await.expect("list");
    assert!(listed.contents().is_empty(), "uploaded: {:?}", listed.contents());
}

#[tokio::test]
async fn submit_without_a_queue_url_is_bad_config_naming_step_020() {
    let emulator = Emulator::start();
    let project = TestProject::with_env(&testkit::local_env(&emulator, "cli-noqueue"));
    let dir = tempfile::tempdir().expect("dir");
    let audio = dir.path().join("talk.wav");
    std::fs::write(&audio, b"RIFF....").expect("write");
    let ctx = testkit::context("transcribe", &project, Scripted::new(Vec::new()));
    let command = Command::Submit(submit_args(vec![audio.display().to_string()]));
    let error = transcribe::run(ctx, command).await.expect_err("no queue url");
    let text = common::cli::render_error(&error);
    assert_eq!(common::cli::exit_code_for(&error), 2, "{text}");
    assert!(text.contains("QUEUE_URL is not set"), "{text}");
    assert!(text.contains("hint: run ./scripts/step-020-create-sqs-resources.sh"), "{text}");
}

#[tokio::test]
async fn fetch_downloads_the_outputs_of_a_finished_job() {
    let fx = fixture("cli-fetch").await;
    let bucket = fx.settings.bucket.clone();
    let job = JobMessage::new(
        "j1",
        S3Uri::new(&bucket, "input/j1/a b.wav"),
        S3Uri::new(&bucket, "output/j1/"),
    );
    let mut record = JobRecord::new(&job, JobState::Done, Some("w-1"));
    for format in [job::OutputFormat::Json, job::OutputFormat::Txt] {
        let uri = job.output(format);
        fx.put(&uri.key, &format!("{} content", format.extension())).await;
        record.outputs.push(uri.to_string());
    }
    fx.put(&job::job_record_key("j1"), &serde_json::to_string(&record).expect("json")).await;

    let dir = tempfile::tempdir().expect("dir");
    let args = FetchArgs { job: "j1".into(), dir: Some(dir.path().to_path_buf()) };
    let report = fx.run(Command::Fetch(args)).await.expect("fetch");
    assert_eq!(report.count(Mark::Created), 2);
    assert_eq!(std::fs::read_to_string(dir.path().join("a b.txt")).expect("txt"), "txt content");
    assert_eq!(std::fs::read_to_string(dir.path().join("a b.json")).expect("json"), "json content");

    let status = fx
        .run(Command::Status(StatusArgs { jobs: vec!["j1".into(), "nope".into()] }))
        .await
        .expect("status");
    assert_eq!(status.items[0].mark, Mark::Passed);
    assert_eq!(status.items[1].mark, Mark::Problem);
    assert_eq!(status.status, Status::Failed);
}

#[tokio::test]
async fn queue_shows_depths_and_redrive_moves_the_requested_count_back() {
    let fx = fixture("cli-redrive").await;
    for i in 0..3 {
        fx.sqs
            .send_message()
            .queue_url(fx.dlq_url())
            .message_body(format!("dead {i}"))
            .send()
            .await
            .expect("send");
    }
    fx.sqs
        .send_message()
        .queue_url(fx.queue_url())
        .message_body("live")
        .send()
        .await
        .expect("send");

    let queue = fx.run(Command::Queue).await.expect("queue");
    assert_eq!(queue.data["queue"]["waiting"], 1);
    assert_eq!(queue.data["dead_letter_queue"]["waiting"], 3);
    assert_eq!(queue.count(Mark::Problem), 1);
    assert!(queue.next[0].starts_with("./scripts/transcribe.sh redrive"), "{:?}", queue.next);
    assert_runnable_from_the_project(&queue.next);

    let redrive = fx.run(Command::Redrive(RedriveArgs { count: 2 })).await.expect("redrive");
    assert_eq!(redrive.data["moved"], 2);
    let queue = fx.run(Command::Queue).await.expect("queue");
    assert_eq!(queue.data["queue"]["waiting"], 3);
    assert_eq!(queue.data["dead_letter_queue"]["waiting"], 1);

    // A count above the DLQ's depth moves what was there at the start, and no more: a job
    // that a worker dead-letters again during the redrive is not moved twice.
    let redrive = fx.run(Command::Redrive(RedriveArgs { count: 100 })).await.expect("redrive");
    assert_eq!(redrive.data["moved"], 1);
}

#[tokio::test]
async fn workers_lists_live_stopped_and_silent_workers() {
    let fx = fixture("cli-workers").await;
    let status = |id: &str, state: WorkerState, seconds_ago: i64| WorkerStatus {
        worker_id: id.into(),
        state,
        current_job: None,
        jobs_done: 3,
        jobs_failed: 1,
        started_at: Utc::now(),
        last_seen: Utc::now() - chrono::Duration::seconds(seconds_ago),
        engine: "faster-whisper".into(),
        model: "bundled:tiny.en".into(),
        device: "cpu".into(),
        gpu: None,
        version: "0.1.0".into(),
        host: None,
        reason: None,
    };
    for s in [
        status("live", WorkerState::Idle, 5),
        status("silent", WorkerState::Busy, 600),
        status("gone", WorkerState::Stopped, 900),
    ] {
        fx.put(&job::worker_status_key(&s.worker_id), &serde_json::to_string(&s).expect("json"))
            .await;
    }
    let report = fx.run(Command::Workers).await.expect("workers");
    let mark_of = |id: &str| report.items.iter().find(|i| i.label == id).map(|i| i.mark);
    assert_eq!(mark_of("live"), Some(Mark::Passed));
    assert_eq!(mark_of("silent"), Some(Mark::Problem));
    assert_eq!(mark_of("gone"), Some(Mark::Info));
    assert_eq!(report.summary, "1 live worker(s), 3 known");
}
