//! The worker against a private local emulator, with the real engine (tiny.en on CPU) unless a
//! test needs a broken one.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::job::{JobMessage, OutputFormat, S3Uri, Transcript, WorkerState, word_error_rate};
use support::{Deployment, ffmpeg, long_sample, sample, sample_text, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use transcription_worker::{Outcome, Shutdown, StopReason, run_worker};

const JOB_LIMIT: Duration = Duration::from_secs(60);

fn spawn_worker(
    config: transcription_worker::WorkerConfig,
) -> (Shutdown, tokio::task::JoinHandle<anyhow::Result<Outcome>>) {
    let shutdown = Shutdown::new();
    let handle = tokio::spawn(run_worker(config, shutdown.clone()));
    (shutdown, handle)
}

async fn stop(
    shutdown: Shutdown,
    handle: tokio::task::JoinHandle<anyhow::Result<Outcome>>,
) -> Outcome {
    shutdown.request(StopReason::Signal);
    handle.await.expect("worker task").expect("worker result")
}

async fn wait_done(deployment: &Deployment, job_id: &str) {
    wait_for(&format!("job `{job_id}` to finish"), JOB_LIMIT, || async {
        deployment.job_state(job_id).await.filter(|s| s == "done" || s == "failed").map(|_| ())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_job_writes_all_formats_matching_the_reference_and_reruns_reuse_the_keys() {
    let deployment = Deployment::start("e2e", 30).await;
    let dir = tempfile::tempdir().expect("dir");
    let status_file = dir.path().join("status.json");
    let mut config = deployment.worker_config("w-e2e");
    config.status_file = Some(status_file.clone());
    let (shutdown, worker) = spawn_worker(config);
    // C08: the key is taken literally (space, `+`, non-ASCII).
    let job = deployment.submit("job-e2e", &sample(), "input/job-e2e/hello fleet+ü.wav").await;
    wait_done(&deployment, "job-e2e").await;

    let json = deployment.read(&job.output(OutputFormat::Json)).await.expect("json output");
    let transcript: Transcript = serde_json::from_str(&json).expect("transcript");
    let wer = word_error_rate(&sample_text(), &transcript.text());
    assert!(wer <= 0.3, "word error rate {wer} for `{}`", transcript.text());
    assert_eq!(transcript.worker_id, "w-e2e");
    assert_eq!(transcript.language.as_deref(), Some("en"));
    assert!(!transcript.no_speech);
    assert!((transcript.duration_seconds - 7.95).abs() < 0.1, "{}", transcript.duration_seconds);
    assert!(transcript.segments.iter().any(|s| !s.words.is_empty()), "no words");
    for stage in ["download", "probe", "decode", "transcribe", "upload"] {
        assert!(
            transcript.timings.get(stage).is_some_and(Option::is_some),
            "timing `{stage}` missing"
        );
    }
    let srt = deployment.read(&job.output(OutputFormat::Srt)).await.expect("srt");
    assert!(srt.starts_with("1\n00:00:0"), "{srt}");
    let vtt = deployment.read(&job.output(OutputFormat::Vtt)).await.expect("vtt");
    assert!(vtt.starts_with("WEBVTT\n\n00:00:0"), "{vtt}");
    let txt = deployment.read(&job.output(OutputFormat::Txt)).await.expect("txt");
    assert!(word_error_rate(&sample_text(), &txt) <= 0.3, "{txt}");
    let keys = deployment.keys("output/job-e2e/").await;
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert!(keys.contains(&"output/job-e2e/hello fleet+ü.srt".to_string()), "{keys:?}");

    // The same job again: the same four keys, no duplicates.
    deployment.send(&job.to_body()).await;
    wait_for("the second run", JOB_LIMIT, || async {
        let status = deployment.worker_status("w-e2e").await?;
        (status.jobs_done == 2).then_some(())
    })
    .await;
    assert_eq!(deployment.keys("output/job-e2e/").await, keys);
    assert_eq!(deployment.queue_depth(deployment.queue_url()).await, (0, 0));

    assert_eq!(stop(shutdown, worker).await, Outcome::Stopped(StopReason::Signal));
    let status = deployment.worker_status("w-e2e").await.expect("status object");
    assert_eq!(status.state, WorkerState::Stopped);
    assert_eq!((status.jobs_done, status.jobs_failed), (2, 0));
    assert_eq!(status.engine, "faster-whisper");
    // The local copy for container health checks matches the object in the bucket.
    let local: common::job::WorkerStatus =
        serde_json::from_slice(&std::fs::read(&status_file).expect("status file")).expect("json");
    assert_eq!((local.state, local.jobs_done), (WorkerState::Stopped, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c12_poison_messages_go_to_dlq_with_reason_and_the_worker_keeps_running() {
    let deployment = Deployment::start("poison", 30).await;
    let bucket = deployment.settings.bucket.clone();
    let poison = [
        ("hello".to_string(), "not valid JSON"),
        ("{}".to_string(), "field `job_id` is missing"),
        (
            r#"{"job_id":"j1","s3_input_path":"s3://b/a.wav"}"#.to_string(),
            "field `s3_output_path` is missing",
        ),
        (
            r#"{"job_id":123,"s3_input_path":"gs://x/a.wav","s3_output_path":"s3://t/o/"}"#
                .to_string(),
            "field `s3_input_path`",
        ),
        (
            r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}"#.to_string(),
            "S3 test event",
        ),
    ];
    for (body, _) in &poison {
        deployment.send(body).await;
    }
    // A job with an unknown extra field is still a job.
    let input = deployment.upload(&sample(), "input/extra/hello.wav").await;
    let extra = format!(
        r#"{{"job_id":"extra","s3_input_path":"{input}","s3_output_path":"s3://{bucket}/output/extra/","colour":"blue"}}"#
    );
    deployment.send(&extra).await;
    let (shutdown, worker) = spawn_worker(deployment.worker_config("w-poison"));
    wait_done(&deployment, "extra").await;
    wait_for("five dead letters", JOB_LIMIT, || async {
        let status = deployment.worker_status("w-poison").await?;
        (status.jobs_failed == 5).then_some(())
    })
    .await;

    assert_eq!(deployment.job_state("extra").await.as_deref(), Some("done"));
    let letters = deployment.dead_letters().await;
    assert_eq!(letters.len(), poison.len(), "{letters:?}");
    for (body, expected) in &poison {
        let (_, reason) = letters.iter().find(|(b, _)| b == body).expect("poison body in the DLQ");
        assert!(reason.contains(expected), "reason `{reason}` lacks `{expected}`");
    }
    assert_eq!(deployment.queue_depth(deployment.queue_url()).await, (0, 0));
    assert!(!worker.is_finished(), "the worker stopped");
    stop(shutdown, worker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c10_c17_c19_inputs_fail_permanently_or_transcribe_as_described() {
    let deployment = Deployment::start("inputs", 30).await;
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let speech = d.join("speech.wav");
    let espeak = std::process::Command::new("espeak-ng")
        .args(["-w", speech.to_str().expect("utf-8"), "testing one two three"])
        .status()
        .expect("espeak-ng");
    assert!(espeak.success());
    let m4a = ffmpeg(d, "memo.m4a", &["-i", speech.to_str().expect("utf-8"), "-c:a", "aac"]);
    // Cut short: with the index at the end (ffmpeg's default) nothing is left to decode; with
    // the index first (faststart) the part that arrived is still audio.
    let bytes = std::fs::read(&m4a).expect("m4a");
    let no_index = d.join("no-index.m4a");
    std::fs::write(&no_index, &bytes[..bytes.len() * 2 / 3]).expect("truncated");
    let sample_path = sample();
    let sample_arg = sample_path.to_str().expect("utf-8");
    let faststart =
        ffmpeg(d, "fast.m4a", &["-i", sample_arg, "-c:a", "aac", "-movflags", "+faststart"]);
    let bytes = std::fs::read(&faststart).expect("m4a");
    let truncated = d.join("trunc.m4a");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("truncated");
    let junk = d.join("junk.mp3");
    std::fs::write(
        &junk,
        (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect::<Vec<_>>(),
    )
    .expect("junk");
    let empty = d.join("empty.wav");
    std::fs::write(&empty, b"").expect("empty");
    let webm = ffmpeg(d, "tone.webm", &["-f", "lavfi", "-i", "sine=f=440:d=5", "-c:a", "libopus"]);
    let silence =
        ffmpeg(d, "silence.wav", &["-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "60"]);

    let cases = [
        ("empty", empty.as_path(), "input/empty.wav"),
        ("junk", &junk, "input/junk.mp3"),
        ("memo", &m4a, "input/memo.m4a"),
        ("truncated", &truncated, "input/trunc.m4a"),
        ("no-index", &no_index, "input/no-index.m4a"),
        ("webm", &webm, "input/tone.webm"),
        ("wrong-extension", &sample(), "input/really-a-wav.mp3"),
        ("silence", &silence, "input/silence.wav"),
    ];
    let mut jobs = Vec::new();
    for (id, file, key) in cases {
        jobs.push(deployment.submit(id, file, key).await);
    }
    let missing = JobMessage::new(
        "missing",
        S3Uri::new(&deployment.settings.bucket, "input/nothing-here.wav"),
        S3Uri::new(&deployment.settings.bucket, "output/missing/"),
    );
    deployment.send(&missing.to_body()).await;
    let (shutdown, worker) = spawn_worker(deployment.worker_config("w-inputs"));
    for id in [
        "empty",
        "junk",
        "memo",
        "truncated",
        "no-index",
        "webm",
        "wrong-extension",
        "silence",
        "missing",
    ] {
        wait_done(&deployment, id).await;
    }
    stop(shutdown, worker).await;

    let letters = deployment.dead_letters().await;
    let reason_of = |id: &str| {
        letters
            .iter()
            .find(|(body, _)| body.contains(&format!("\"job_id\":\"{id}\"")))
            .map(|(_, r)| r.clone())
    };
    assert!(reason_of("empty").expect("C10 empty in DLQ").contains("is empty (0 bytes)"));
    assert!(reason_of("missing").expect("missing in DLQ").contains("does not exist"));
    assert!(reason_of("junk").expect("C17 junk in DLQ").starts_with("cannot decode input"));
    assert!(reason_of("no-index").expect("C17 cut-off m4a in DLQ").contains("moov atom not found"));
    assert_eq!(letters.len(), 4, "{letters:?}");

    let transcript = |id: &str| {
        let job = jobs.iter().find(|j| j.job_id == id).cloned().unwrap_or_else(|| missing.clone());
        let deployment = &deployment;
        async move {
            let text = deployment.read(&job.output(OutputFormat::Json)).await.expect("json output");
            serde_json::from_str::<Transcript>(&text).expect("transcript")
        }
    };
    let memo = transcript("memo").await;
    assert!(word_error_rate("testing one two three", &memo.text()) <= 0.5, "{}", memo.text());
    assert!(!transcript("wrong-extension").await.no_speech);
    let truncated = transcript("truncated").await;
    assert!(
        truncated.duration_seconds > 1.0 && truncated.duration_seconds < 7.0,
        "{}",
        truncated.duration_seconds
    );
    assert!(truncated.warnings.iter().any(|w| w.contains("truncated")), "{:?}", truncated.warnings);
    assert!(!truncated.no_speech);
    for id in ["webm", "silence"] {
        let quiet = transcript(id).await;
        assert!(quiet.no_speech && quiet.segments.is_empty(), "{id}: {:?}", quiet.segments);
        let job = jobs.iter().find(|j| j.job_id == id).expect("job");
        assert_eq!(
            deployment.read(&job.output(OutputFormat::Vtt)).await.as_deref(),
            Some("WEBVTT\n\n")
        );
        assert_eq!(deployment.read(&job.output(OutputFormat::Srt)).await.as_deref(), Some(""));
    }
}

/// A metadata service on 127.0.0.1 that wants IMDSv2 tokens, rotates its token after the first
/// question (so the worker must handle a 401), and announces an interruption on demand.
struct FakeImds {
    endpoint: String,
    notice: Arc<AtomicBool>,
    tokens: Arc<AtomicUsize>,
}

impl FakeImds {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let notice = Arc::new(AtomicBool::new(false));
        let tokens = Arc::new(AtomicUsize::new(0));
        let (n, t) = (notice.clone(), tokens.clone());
        let questions = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (n, t, q) = (n.clone(), t.clone(), questions.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let read = stream.read(&mut buf).await.unwrap_or(0);
                    let request = String::from_utf8_lossy(&buf[..read]).to_string();
                    let current = format!("token-{}", t.load(Ordering::SeqCst));
                    let (status, body) = if request.starts_with("PUT /latest/api/token") {
                        (200, format!("token-{}", t.fetch_add(1, Ordering::SeqCst) + 1))
                    } else if !request.contains(&format!("X-aws-ec2-metadata-token: {current}\r\n"))
                        || q.fetch_add(1, Ordering::SeqCst) == 0
                    {
                        // The first question is answered 401, as if the token had expired.
                        (401, String::new())
                    } else if n.load(Ordering::SeqCst) {
                        (200, r#"{"action":"terminate","time":"2030-01-01T00:02:00Z"}"#.to_string())
                    } else {
                        (404, String::new())
                    };
                    let response = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        Self { endpoint, notice, tokens }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c11_heartbeat_holds_a_long_job_and_c24_a_spot_notice_releases_it_within_5_seconds() {
    let deployment = Deployment::start("spot", 2).await;
    let imds = FakeImds::start().await;
    let dir = tempfile::tempdir().expect("dir");
    deployment.submit("long", &long_sample(dir.path(), 3), "input/long.wav").await;
    let mut config = deployment.worker_config("w-spot");
    config.imds_endpoint = Some(imds.endpoint.clone());
    let (_shutdown, worker) = spawn_worker(config);
    wait_for("the job to start", JOB_LIMIT, || async {
        deployment.job_state("long").await.filter(|s| s == "running")
    })
    .await;

    // C11: the visibility timeout is 2 s; the heartbeat keeps the message hidden past it.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            deployment.queue_depth(deployment.queue_url()).await,
            (0, 1),
            "job visible mid-run"
        );
    }

    imds.notice.store(true, Ordering::SeqCst);
    let noticed = Instant::now();
    wait_for("the job back on the queue", Duration::from_secs(5), || async {
        let (visible, _) = deployment.queue_depth(deployment.queue_url()).await;
        (visible == 1).then_some(())
    })
    .await;
    assert!(noticed.elapsed() < Duration::from_secs(5));
    let outcome =
        tokio::time::timeout(Duration::from_secs(10), worker).await.expect("worker exits");
    assert!(matches!(
        outcome.expect("task").expect("result"),
        Outcome::Stopped(StopReason::SpotInterruption(_))
    ));
    assert!(imds.tokens.load(Ordering::SeqCst) >= 2, "the 401 did not refresh the token");
    let status = deployment.worker_status("w-spot").await.expect("status");
    assert_eq!(status.state, WorkerState::Stopped);
    assert!(status.reason.unwrap_or_default().contains("spot interruption"));
    assert_eq!(deployment.job_state("long").await.as_deref(), Some("queued"));
    assert!(deployment.keys("output/long/").await.is_empty());
}

fn fake_engine(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let target = dir.join(name);
    std::fs::copy(&source, &target).expect("copy fake engine");
    target
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c29_engine_crash_mid_job_releases_the_job_and_restarts_the_engine() {
    let deployment = Deployment::start("crash", 30).await;
    let dir = tempfile::tempdir().expect("dir");
    let mut config = deployment.worker_config("w-crash");
    config.engine.script = fake_engine(dir.path(), "crash_once_engine.py");
    deployment.submit("crashy", &sample(), "input/crashy.wav").await;
    let started = Instant::now();
    let (shutdown, worker) = spawn_worker(config);
    wait_done(&deployment, "crashy").await;
    // Released at once (visibility 0), not after the 30 s visibility timeout.
    assert!(started.elapsed() < Duration::from_secs(25), "took {:?}", started.elapsed());
    assert!(dir.path().join("crashed").exists(), "the fake engine never crashed");
    assert_eq!(deployment.job_state("crashy").await.as_deref(), Some("done"));
    let status = deployment.worker_status("w-crash").await.expect("status");
    assert_eq!((status.jobs_done, status.jobs_failed), (1, 0));
    assert_eq!(stop(shutdown, worker).await, Outcome::Stopped(StopReason::Signal));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c29_an_engine_that_fails_its_start_takes_no_jobs() {
    let deployment = Deployment::start("fatal", 30).await;
    let dir = tempfile::tempdir().expect("dir");
    let mut config = deployment.worker_config("w-fatal");
    config.engine.script = fake_engine(dir.path(), "fatal_engine.py");
    deployment
        .send(&JobMessage::new("j", S3Uri::new("b", "a.wav"), S3Uri::new("b", "o/")).to_body())
        .await;
    let error = run_worker(config, Shutdown::new())
        .await
        .expect_err("a broken engine must stop the worker");
    assert!(error.chain().any(|e| e.is::<transcription_worker::EngineUnusable>()), "{error:#}");
    assert!(format!("{error:#}").contains("libcudnn_ops.so.9"), "{error:#}");
    assert_eq!(deployment.queue_depth(deployment.queue_url()).await, (1, 0), "a job was taken");
    let status = deployment.worker_status("w-fatal").await.expect("status");
    assert_eq!(status.state, WorkerState::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_exits_after_the_idle_timeout() {
    let deployment = Deployment::start("idle", 30).await;
    let mut config = deployment.worker_config("w-idle");
    config.idle_timeout = Some(Duration::from_secs(2));
    let outcome =
        tokio::time::timeout(Duration::from_secs(60), run_worker(config, Shutdown::new()))
            .await
            .expect("the worker exits by itself");
    assert_eq!(outcome.expect("result"), Outcome::Idle);
    let status = deployment.worker_status("w-idle").await.expect("status");
    assert_eq!(status.reason.as_deref(), Some("idle timeout"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c11_c24_a_prefetched_job_is_released_at_once_on_shutdown() {
    // Visibility 120 s: only an explicit release (visibility 0) brings the jobs back quickly.
    let deployment = Deployment::start("prefetch", 120).await;
    let dir = tempfile::tempdir().expect("dir");
    deployment.submit("first", &long_sample(dir.path(), 4), "input/first.wav").await;
    deployment.submit("second", &sample(), "input/second.wav").await;
    let (shutdown, worker) = spawn_worker(deployment.worker_config("w-prefetch"));
    wait_for("the first job to run", JOB_LIMIT, || async {
        deployment.job_state("first").await.filter(|s| s == "running")
    })
    .await;
    wait_for("the second job to be prefetched", Duration::from_secs(10), || async {
        (deployment.queue_depth(deployment.queue_url()).await == (0, 2)).then_some(())
    })
    .await;
    assert_eq!(deployment.job_state("second").await, None, "a prefetched job must not start");

    let stopped = Instant::now();
    assert_eq!(stop(shutdown, worker).await, Outcome::Stopped(StopReason::Signal));
    wait_for("both jobs back on the queue", Duration::from_secs(5), || async {
        (deployment.queue_depth(deployment.queue_url()).await == (2, 0)).then_some(())
    })
    .await;
    assert!(stopped.elapsed() < Duration::from_secs(5));
    assert_eq!(deployment.job_state("first").await.as_deref(), Some("queued"));
    assert!(deployment.keys("output/").await.is_empty(), "no job may finish after the stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_that_cannot_be_written_release_the_job_and_the_next_job_still_finishes() {
    // The outputs go up in the background while the engine starts on the next job; a failed
    // upload must still put the job back, not count it done.
    let deployment = Deployment::start("unwritable", 30).await;
    let input = deployment.upload(&sample(), "input/unwritable.wav").await;
    let nowhere = S3Uri::new("no-such-output-bucket", "out/");
    deployment.send(&JobMessage::new("unwritable", input, nowhere).to_body()).await;
    deployment.submit("fine", &sample(), "input/fine.wav").await;
    let (shutdown, worker) = spawn_worker(deployment.worker_config("w-unwritable"));
    wait_done(&deployment, "fine").await;
    wait_for("the unwritable job to be released", JOB_LIMIT, || async {
        deployment.job_state("unwritable").await.filter(|s| s == "queued")
    })
    .await;
    stop(shutdown, worker).await;

    let status = deployment.worker_status("w-unwritable").await.expect("status");
    assert_eq!((status.jobs_done, status.jobs_failed), (1, 0), "{status:?}");
    let record = S3Uri::new(&deployment.settings.bucket, common::job::job_record_key("unwritable"));
    let record = deployment.read(&record).await.expect("job record");
    assert!(record.contains("no-such-output-bucket"), "{record}");
    assert_eq!(deployment.keys("output/fine/").await.len(), 4);
}
