//! A local deployment for worker tests: emulator, bucket, queue with its DLQ, settings.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::job::{JobMessage, S3Uri};
use common::sdk::{s3, sqs};
use common::settings::Env;
use testkit::{Emulator, TestProject};
use transcription_worker::WorkerConfig;

/// Emulator plus a bucket, a job queue and its DLQ, with the settings pointing at them.
pub struct Deployment {
    pub emulator: Emulator,
    pub project: TestProject,
    pub settings: common::Settings,
    pub s3: s3::Client,
    pub sqs: sqs::Client,
}

impl Deployment {
    /// A deployment whose messages stay hidden `visibility` seconds after a receive.
    pub async fn start(name: &str, visibility: u32) -> Self {
        let emulator = Emulator::start();
        let base = testkit::local_env(&emulator, name);
        let draft = TestProject::with_env(&base);
        let settings = draft.settings();
        let config = testkit::sdk_config(&settings).await;
        let s3 = common::aws::s3_client(&config, &settings);
        let sqs = sqs::Client::new(&config);
        s3.create_bucket()
            .bucket(&settings.bucket)
            .create_bucket_configuration(
                s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(s3::types::BucketLocationConstraint::from(
                        settings.region.as_str(),
                    ))
                    .build(),
            )
            .send()
            .await
            .expect("create bucket");
        let dlq_url =
            sqs.create_queue().queue_name(&settings.queue.dlq_name).send().await.expect("dlq");
        let dlq_url = dlq_url.queue_url.expect("dlq url");
        let dlq_arn = queue_arn(&sqs, &dlq_url).await;
        let redrive = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"5"}}"#);
        let queue_url = sqs
            .create_queue()
            .queue_name(&settings.queue.name)
            .attributes(sqs::types::QueueAttributeName::RedrivePolicy, redrive)
            .attributes(sqs::types::QueueAttributeName::VisibilityTimeout, visibility.to_string())
            .send()
            .await
            .expect("queue")
            .queue_url
            .expect("queue url");
        let env = format!(
            "{base}QUEUE_URL={queue_url}\nDLQ_URL={dlq_url}\nVISIBILITY_TIMEOUT={visibility}\n\
             SQS_WAIT_SECONDS=1\nIDLE_TIMEOUT_MINUTES=0\nLANGUAGE=en\n"
        );
        let project = TestProject::with_env(&env);
        let settings = project.settings();
        Self { emulator, project, settings, s3, sqs }
    }

    /// A worker configuration with short intervals, using the project's engine.
    pub fn worker_config(&self, worker_id: &str) -> WorkerConfig {
        let mut config = WorkerConfig::new(self.settings.clone(), worker_env());
        config.worker_id = worker_id.to_string();
        config.status_interval = Duration::from_secs(2);
        config.imds_interval = Duration::from_millis(500);
        config.retry_delay = Duration::from_secs(1);
        config
    }

    pub fn queue_url(&self) -> &str {
        self.settings.queue.url.as_deref().expect("queue url")
    }

    pub fn dlq_url(&self) -> &str {
        self.settings.queue.dlq_url.as_deref().expect("dlq url")
    }

    /// Uploads `file` to `key` in the bucket.
    pub async fn upload(&self, file: &Path, key: &str) -> S3Uri {
        let body = s3::primitives::ByteStream::from_path(file).await.expect("read audio");
        self.s3
            .put_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .body(body)
            .send()
            .await
            .expect("upload");
        S3Uri::new(&self.settings.bucket, key)
    }

    /// Uploads `file` and sends a job for it with outputs under `output/<job_id>/`.
    pub async fn submit(&self, job_id: &str, file: &Path, key: &str) -> JobMessage {
        let input = self.upload(file, key).await;
        let job = JobMessage::new(
            job_id,
            input,
            S3Uri::new(&self.settings.bucket, format!("output/{job_id}/")),
        );
        self.send(&job.to_body()).await;
        job
    }

    pub async fn send(&self, body: &str) {
        self.sqs
            .send_message()
            .queue_url(self.queue_url())
            .message_body(body)
            .send()
            .await
            .expect("send");
    }

    /// The text of an object, or `None` when it does not exist.
    pub async fn read(&self, uri: &S3Uri) -> Option<String> {
        let out = self.s3.get_object().bucket(&uri.bucket).key(&uri.key).send().await.ok()?;
        let bytes = out.body.collect().await.expect("body").into_bytes();
        Some(String::from_utf8(bytes.to_vec()).expect("utf-8"))
    }

    /// Keys under `prefix`.
    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        let out = self
            .s3
            .list_objects_v2()
            .bucket(&self.settings.bucket)
            .prefix(prefix)
            .send()
            .await
            .expect("list");
        out.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect()
    }

    /// Messages on the DLQ with their `failure_reason` attribute (received, then left visible).
    pub async fn dead_letters(&self) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for _ in 0..10 {
            let out = self
                .sqs
                .receive_message()
                .queue_url(self.dlq_url())
                .max_number_of_messages(10)
                .visibility_timeout(30)
                .message_attribute_names("All")
                .send()
                .await
                .expect("receive dlq");
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                let reason = m
                    .message_attributes()
                    .and_then(|a| a.get(common::job::REASON_ATTRIBUTE))
                    .and_then(|v| v.string_value())
                    .unwrap_or_default()
                    .to_string();
                found.push((m.body().unwrap_or_default().to_string(), reason));
            }
        }
        found
    }

    /// Visible plus in-flight messages on the job queue.
    pub async fn queue_depth(&self, url: &str) -> (u64, u64) {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(sqs::types::QueueAttributeName::All)
            .send()
            .await
            .expect("attributes");
        let attrs = out.attributes.unwrap_or_default();
        let get = |name: sqs::types::QueueAttributeName| -> u64 {
            attrs.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        (
            get(sqs::types::QueueAttributeName::ApproximateNumberOfMessages),
            get(sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }

    /// The job's record state (`running`, `done`, ...), if written.
    pub async fn job_state(&self, job_id: &str) -> Option<String> {
        let uri = S3Uri::new(&self.settings.bucket, common::job::job_record_key(job_id));
        let text = self.read(&uri).await?;
        let value: serde_json::Value = serde_json::from_str(&text).ok()?;
        value["state"].as_str().map(str::to_string)
    }

    pub async fn worker_status(&self, worker_id: &str) -> Option<common::job::WorkerStatus> {
        let uri = S3Uri::new(&self.settings.bucket, common::job::worker_status_key(worker_id));
        serde_json::from_str(&self.read(&uri).await?).ok()
    }
}

async fn queue_arn(sqs: &sqs::Client, url: &str) -> String {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue arn");
    out.attributes
        .unwrap_or_default()
        .get(&sqs::types::QueueAttributeName::QueueArn)
        .cloned()
        .expect("arn")
}

/// Environment for a worker under test: the project's engine, two CPU threads.
pub fn worker_env() -> Env {
    let mut env = Env::new();
    env.insert("FLEET_ROOT".into(), testkit::workspace_root().display().to_string());
    env.insert("FLEET_ENGINE_THREADS".into(), "2".into());
    // The virtualenv may live outside the clone (FLEET_VENV, as in CI).
    env.insert("FLEET_PYTHON".into(), testkit::venv_bin().join("python").display().to_string());
    env
}

pub fn sample() -> PathBuf {
    testkit::workspace_root().join("samples/hello-fleet.wav")
}

pub fn sample_text() -> String {
    std::fs::read_to_string(testkit::workspace_root().join("samples/hello-fleet.txt"))
        .expect("reference")
}

/// Runs ffmpeg with `args`, writing `out` in `dir`.
pub fn ffmpeg(dir: &Path, out: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(out);
    let status = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .arg(&path)
        .status()
        .expect("ffmpeg");
    assert!(status.success(), "ffmpeg {args:?} failed");
    path
}

/// The sample repeated `times`, for jobs long enough to interrupt.
pub fn long_sample(dir: &Path, times: usize) -> PathBuf {
    let list = dir.join("list.txt");
    let line = format!("file '{}'\n", sample().display());
    std::fs::write(&list, line.repeat(times)).expect("list");
    ffmpeg(
        dir,
        "long.wav",
        &["-f", "concat", "-safe", "0", "-i", list.to_str().expect("utf-8"), "-c", "copy"],
    )
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `limit`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
