//! The `transcription-worker` binary as a process: SIGKILL mid-job, SIGTERM when idle.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::job::{OutputFormat, Transcript, WorkerState};
use support::{Deployment, long_sample, wait_for};

fn start_worker(deployment: &Deployment, worker_id: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_transcription-worker"))
        .arg("--env-file")
        .arg(deployment.project.root().join(".env"))
        .args(["--worker-id", worker_id])
        .envs(support::worker_env())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the worker binary")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_worker_is_killed_is_completed_once_by_another_after_the_visibility_timeout() {
    let deployment = Deployment::start("sigkill", 3).await;
    let dir = tempfile::tempdir().expect("dir");
    let job = deployment.submit("killed", &long_sample(dir.path(), 3), "input/killed.wav").await;

    let mut first = start_worker(&deployment, "w-first");
    wait_for("the first worker to start the job", Duration::from_secs(60), || async {
        deployment.job_state("killed").await.filter(|s| s == "running")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    first.kill().expect("SIGKILL the first worker");
    let status = first.wait().expect("first worker exit");
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
    assert_eq!(deployment.job_state("killed").await.as_deref(), Some("running"));

    let mut second = start_worker(&deployment, "w-second");
    wait_for("the second worker to finish the job", Duration::from_secs(90), || async {
        deployment.job_state("killed").await.filter(|s| s == "done")
    })
    .await;
    let json = deployment.read(&job.output(OutputFormat::Json)).await.expect("json output");
    let transcript: Transcript = serde_json::from_str(&json).expect("transcript");
    assert_eq!(transcript.worker_id, "w-second");
    assert_eq!(deployment.keys("output/killed/").await.len(), 4);
    assert_eq!(deployment.queue_depth(deployment.queue_url()).await, (0, 0));
    assert!(deployment.dead_letters().await.is_empty());
    let first_status = deployment.worker_status("w-first").await.expect("first status");
    assert_eq!(first_status.jobs_done, 0);

    // SIGTERM: the idle worker writes its final status and exits 0.
    let status =
        Command::new("kill").args(["-TERM", &second.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let exit = wait_exit(&mut second, Duration::from_secs(30));
    assert_eq!(exit.code(), Some(0));
    let second_status = deployment.worker_status("w-second").await.expect("second status");
    assert_eq!((second_status.state, second_status.jobs_done), (WorkerState::Stopped, 1));
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the worker did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn help_documents_the_idle_exit_code() {
    let output = Command::new(env!("CARGO_BIN_EXE_transcription-worker"))
        .arg("--help")
        .output()
        .expect("help");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains(&format!(
            "{}  exited after IDLE_TIMEOUT_MINUTES",
            transcription_worker::EXIT_IDLE
        )),
        "{text}"
    );
}

#[test]
fn without_a_queue_url_the_worker_exits_2_naming_the_step_and_logs_without_colour() {
    let dir = tempfile::tempdir().expect("dir");
    let env_file = dir.path().join(".env");
    std::fs::write(
        &env_file,
        "AWS_REGION=us-east-2\nAWS_ENDPOINT_URL=http://127.0.0.1:9\nAUDIO_BUCKET=noqueue-audio\n",
    )
    .expect("write .env");
    let output = Command::new(env!("CARGO_BIN_EXE_transcription-worker"))
        .arg("--env-file")
        .arg(&env_file)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .output()
        .expect("run the worker");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("error: QUEUE_URL is not set"), "{stderr}");
    assert!(
        stderr.contains("hint: run ./scripts/step-020-create-sqs-resources.sh, which writes"),
        "{stderr}"
    );
    // Logs piped to a file carry no colour codes.
    assert!(stderr.contains("WHISPER_ENGINE=whisperx needs a GPU"), "a log line: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "ANSI escape in piped logs: {stderr:?}");
}
