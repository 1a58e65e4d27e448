//! The long-lived Python engine process and its JSON-lines protocol.
//!
//! The engine (`engine/whisper_engine.py`) prints one `ready` (or `fatal`) line when its model
//! is loaded, then answers each request line with one reply line. Its stderr is forwarded to
//! this process's log. A closed stdout while a request is open means the process died (a
//! native abort, case C29): [`EngineError::Crashed`].

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::job::Segment;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::config::EngineCommand;

/// How long the engine may take to load its model (large models on a cold disk are slow).
const READY_TIMEOUT: Duration = Duration::from_secs(900);

/// Why the engine could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine reported a fatal startup error (model, library, GPU).
    #[error("the engine failed to start ({kind}): {message}")]
    Fatal {
        /// The engine's classification (`missing_library`, `gpu`, `model_load`).
        kind: String,
        /// What it said.
        message: String,
    },
    /// The process exited or closed its output.
    #[error("the engine process crashed ({0})")]
    Crashed(String),
    /// The engine answered with an error.
    #[error("the engine failed ({kind}): {message}")]
    Failed {
        /// `bad_input`, `oom`, `internal` or `bad_request`.
        kind: String,
        /// What it said.
        message: String,
    },
    /// The engine could not be started or talked to.
    #[error("{0}")]
    Io(String),
}

/// The engine's `ready` line.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Ready {
    /// Backend name.
    #[serde(default)]
    pub backend: String,
    /// Model as given.
    #[serde(default)]
    pub model: String,
    /// Device.
    #[serde(default)]
    pub device: String,
    /// Seconds the model took to load.
    #[serde(default)]
    pub load_seconds: Option<f64>,
    /// Versions of Python and the libraries.
    #[serde(default)]
    pub versions: serde_json::Value,
}

/// One request.
#[derive(Debug, Clone, Serialize)]
pub struct Request<'a> {
    /// Echoed in the reply.
    pub id: &'a str,
    /// Absolute path of a 16 kHz mono 16-bit WAV.
    pub audio: &'a Path,
    /// Language code, or `None` to detect it.
    pub language: Option<&'a str>,
    /// Whether to time each word.
    pub word_timestamps: bool,
    /// Whether to label speakers.
    pub diarize: bool,
    /// Token for the diarization models; never logged.
    pub hf_token: Option<&'a str>,
}

/// A successful reply.
#[derive(Debug, Clone, Deserialize)]
pub struct Reply {
    /// Language given or detected.
    pub language: Option<String>,
    /// Audio duration in seconds.
    pub duration: Option<f64>,
    /// No segment has text.
    #[serde(default)]
    pub no_speech: bool,
    /// The speech.
    #[serde(default)]
    pub segments: Vec<Segment>,
    /// Seconds per stage (`load_audio`, `transcribe`, `align`, `diarize`).
    #[serde(default)]
    pub timings: std::collections::BTreeMap<String, Option<f64>>,
    /// Backend that answered.
    #[serde(default)]
    pub backend: String,
}

/// A running engine process.
#[derive(Debug)]
pub struct Engine {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    /// What the engine announced.
    pub ready: Ready,
}

impl Engine {
    /// Starts the engine and waits for its `ready` line.
    pub async fn start(command: &EngineCommand) -> Result<Self, EngineError> {
        let mut child = Command::new(&command.python)
            .arg(&command.script)
            .args(["--backend", &command.backend, "--model", &command.model])
            .args(["--device", &command.device, "--compute-type", &command.compute_type])
            .args(["--batch-size", &command.batch_size.max(1).to_string()])
            .args(["--threads", &command.threads.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                EngineError::Io(format!(
                    "failed to start `{} {}`: {e}",
                    command.python.display(),
                    command.script.display()
                ))
            })?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(EngineError::Io("the engine's pipes are missing".to_string()));
        };
        tokio::spawn(forward_log(stderr));
        let mut engine =
            Self { child, stdin, stdout: BufReader::new(stdout).lines(), ready: Ready::default() };
        let line =
            tokio::time::timeout(READY_TIMEOUT, engine.read_line()).await.map_err(|_| {
                EngineError::Io(format!("the engine sent no ready line in {READY_TIMEOUT:?}"))
            })??;
        let value: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| EngineError::Io(format!("the engine's first line is not JSON ({e})")))?;
        match value.get("event").and_then(|e| e.as_str()) {
            Some("ready") => {
                engine.ready = serde_json::from_value(value).unwrap_or_default();
                Ok(engine)
            }
            Some("fatal") => Err(EngineError::Fatal {
                kind: text_field(&value, "kind"),
                message: text_field(&value, "error"),
            }),
            _ => Err(EngineError::Io(format!("unexpected first line from the engine: {line}"))),
        }
    }

    /// Sends one request and waits for its reply.
    pub async fn transcribe(&mut self, request: &Request<'_>) -> Result<Reply, EngineError> {
        let mut line =
            serde_json::to_string(request).map_err(|e| EngineError::Io(e.to_string()))?;
        line.push('\n');
        if let Err(e) = self.stdin.write_all(line.as_bytes()).await {
            return Err(self.crashed(&format!("write failed: {e}")).await);
        }
        let _ = self.stdin.flush().await;
        let reply = self.read_line().await?;
        let value: serde_json::Value = serde_json::from_str(&reply)
            .map_err(|e| EngineError::Io(format!("the engine's reply is not JSON ({e})")))?;
        if value.get("id").and_then(|v| v.as_str()) != Some(request.id) {
            return Err(EngineError::Io(format!("reply for another request: {}", preview(&reply))));
        }
        if value.get("ok").and_then(|v| v.as_bool()) != Some(true) {
            return Err(EngineError::Failed {
                kind: text_field(&value, "kind"),
                message: text_field(&value, "error"),
            });
        }
        serde_json::from_value(value)
            .map_err(|e| EngineError::Io(format!("unreadable reply ({e})")))
    }

    /// Asks the engine to exit, and kills it if it does not within a few seconds.
    pub async fn shutdown(mut self) {
        let _ = self.stdin.write_all(b"{\"id\":\"shutdown\",\"op\":\"shutdown\"}\n").await;
        let _ = self.stdin.flush().await;
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    async fn read_line(&mut self) -> Result<String, EngineError> {
        match self.stdout.next_line().await {
            Ok(Some(line)) => Ok(line),
            Ok(None) => Err(self.crashed("output closed").await),
            Err(e) => Err(self.crashed(&format!("read failed: {e}")).await),
        }
    }

    async fn crashed(&mut self, what: &str) -> EngineError {
        let status = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        EngineError::Crashed(match status {
            Ok(Ok(status)) => describe_exit(status),
            _ => what.to_string(),
        })
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => status.to_string(),
    }
}

fn text_field(value: &serde_json::Value, key: &str) -> String {
    value.get(key).and_then(|v| v.as_str()).unwrap_or("unknown").to_string()
}

fn preview(text: &str) -> String {
    text.chars().take(200).collect()
}

async fn forward_log(stderr: tokio::process::ChildStderr) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(target: "engine", "{line}");
    }
}
