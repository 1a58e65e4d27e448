//! The transcription worker: takes jobs from the queue and runs them through the speech engine.
//!
//! One worker runs per instance (Path A) or container (Path B). It starts the Python engine
//! (`engine/whisper_engine.py`) once, transcribes a generated clip as a self-test and refuses
//! to take jobs if that fails (case C29). Then it long-polls the job queue and works one job
//! at a time:
//!
//! 1. parse the message; a body that is not a job goes to the dead-letter queue with the
//!    reason in the `failure_reason` attribute and is deleted (C12);
//! 2. HEAD the input (a missing or 0-byte object fails permanently, C10), download it to disk
//!    as a stream, probe it with ffprobe and decode it with ffmpeg to 16 kHz mono (C17), unless
//!    it already is a 16 kHz mono PCM WAV;
//! 3. send it to the engine; silence gives a valid empty transcript marked `no_speech` (C19);
//! 4. write `<stem>.json|.srt|.vtt|.txt` under the job's output prefix, then delete the message.
//!
//! The engine never waits on the network while jobs are queued: while it transcribes one job,
//! the next is received, downloaded and decoded, and the outputs of the one before go up.
//!
//! While a job runs a heartbeat keeps the message hidden, within SQS's 12-hour cap (C11). If the
//! engine dies mid-job, the message is released at once (visibility 0) and the engine
//! restarted. SIGTERM or a spot interruption notice (polled from the instance metadata service
//! with IMDSv2 tokens, C24) releases the in-flight message, writes a final status and exits.
//! A status object per worker lives at `status/workers/<worker id>.json`.
//!
//! Exit codes of the binary: 0 stopped by a signal or an interruption notice, 1 failed,
//! 2 bad settings, 3 the engine failed to start or its self-test failed, and [`EXIT_IDLE`]
//! (64) after `IDLE_TIMEOUT_MINUTES` without work, so the host can shut itself down.

mod audio;
mod aws;
pub mod config;
pub mod engine;
mod imds;
mod ledger;
mod process;
mod run;
mod shutdown;
mod status;

pub use aws::api_calls;
pub use config::{EngineCommand, WorkerConfig};
pub use run::{EngineUnusable, Outcome, run_worker};
pub use shutdown::{Shutdown, StopReason};

/// Exit code after `IDLE_TIMEOUT_MINUTES` without work: the host may shut down.
pub const EXIT_IDLE: u8 = 64;

/// Exit code when the engine cannot start or fails its self-test (case C29).
pub const EXIT_ENGINE_FAILED: u8 = 3;

/// The worker's version, written into transcripts and status objects.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
