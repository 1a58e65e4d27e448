//! The job message, S3 addresses, transcripts and worker status: the formats the worker, the
//! `transcribe` CLI and the end-to-end steps share.
//!
//! Everything here is plain data with serde; no AWS client is involved.
//!
//! - A job arrives as a JSON [`JobMessage`]. [`JobMessage::parse`] checks it field by field and
//!   names the field at fault (case C12); unknown fields are tolerated.
//! - S3 keys are taken literally: spaces, `+` and non-ASCII characters are part of the key and
//!   never URL-decoded (case C08).
//! - A finished job leaves `<output prefix><stem>.json|.srt|.vtt|.txt` (see [`output_key`]); the
//!   same job run twice writes the same keys.
//! - Every worker keeps a [`WorkerStatus`] at [`worker_status_key`]; every job a [`JobRecord`] at
//!   [`job_record_key`].

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Bucket prefix for uploaded audio.
pub const INPUT_PREFIX: &str = "input/";
/// Bucket prefix for transcripts.
pub const OUTPUT_PREFIX: &str = "output/";
/// Bucket prefix for status objects (workers and jobs).
pub const STATUS_PREFIX: &str = "status/";
/// Bucket prefix for worker status objects, one per worker.
pub const WORKER_STATUS_PREFIX: &str = "status/workers/";
/// Bucket prefix for job records, one per job.
pub const JOB_STATUS_PREFIX: &str = "status/jobs/";
/// Bucket prefix for scratch objects.
pub const TMP_PREFIX: &str = "tmp/";

/// Message attribute carrying why a message was moved to the dead-letter queue.
pub const REASON_ATTRIBUTE: &str = "failure_reason";
/// Message attribute naming the worker that moved a message to the dead-letter queue.
pub const FAILED_BY_ATTRIBUTE: &str = "failed_by";
/// Message attribute with the id the message had on the job queue.
pub const SOURCE_MESSAGE_ATTRIBUTE: &str = "source_message_id";

/// An `s3://bucket/key` address; the key is kept exactly as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct S3Uri {
    /// Bucket name.
    pub bucket: String,
    /// Object key or prefix, possibly empty.
    pub key: String,
}

impl S3Uri {
    /// Parses `s3://bucket/key`. The key is not decoded: `a+b c.wav` is that key.
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some(rest) = text.strip_prefix("s3://") else {
            return Err(format!("`{}` does not start with s3://", preview(text, 80)));
        };
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("`{}` has no bucket name", preview(text, 80)));
        }
        if bucket.chars().any(|c| !(c.is_ascii_alphanumeric() || ".-_".contains(c))) {
            return Err(format!("`{}` is not a valid bucket name", preview(bucket, 80)));
        }
        Ok(Self { bucket: bucket.to_string(), key: key.to_string() })
    }

    /// An address in `bucket` at `key`.
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> Self {
        Self { bucket: bucket.into(), key: key.into() }
    }

    /// The last part of the key (the file name), empty for a prefix ending in `/`.
    pub fn file_name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or("")
    }
}

impl fmt::Display for S3Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

impl Serialize for S3Uri {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for S3Uri {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A transcript file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// The full result: segments, words, timings.
    Json,
    /// SubRip subtitles.
    Srt,
    /// WebVTT subtitles.
    Vtt,
    /// Plain text, one segment per line.
    Txt,
}

impl OutputFormat {
    /// Every format, in the order outputs are written.
    pub const ALL: [Self; 4] = [Self::Json, Self::Srt, Self::Vtt, Self::Txt];

    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Srt => "srt",
            Self::Vtt => "vtt",
            Self::Txt => "txt",
        }
    }

    /// The content type to store the object with.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Srt => "application/x-subrip; charset=utf-8",
            Self::Vtt => "text/vtt; charset=utf-8",
            Self::Txt => "text/plain; charset=utf-8",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.extension() == name.to_ascii_lowercase())
    }
}

/// One transcription job, as sent on the job queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobMessage {
    /// Caller-chosen id, used in logs, records and the DLQ.
    pub job_id: String,
    /// The audio to transcribe.
    pub s3_input_path: S3Uri,
    /// The prefix the outputs are written under.
    pub s3_output_path: S3Uri,
    /// Language code, or `None` to use the worker's setting or detect it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Formats to write; JSON is always written.
    pub output_formats: Vec<OutputFormat>,
    /// Whether to label speakers.
    pub diarize: bool,
}

/// Why a queue message is not a job. Always permanent: the message goes to the DLQ.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidJob(pub String);

impl JobMessage {
    /// A job with every format and no diarization.
    pub fn new(job_id: impl Into<String>, input: S3Uri, output: S3Uri) -> Self {
        Self {
            job_id: job_id.into(),
            s3_input_path: input,
            s3_output_path: output,
            language: None,
            output_formats: OutputFormat::ALL.to_vec(),
            diarize: false,
        }
    }

    /// Parses a message body, naming the field at fault. Unknown fields are ignored.
    pub fn parse(body: &str) -> Result<Self, InvalidJob> {
        let value: Value = serde_json::from_str(body)
            .map_err(|e| InvalidJob(format!("body is not valid JSON ({e})")))?;
        let Value::Object(fields) = value else {
            return Err(InvalidJob("body is not a JSON object".to_string()));
        };
        if fields.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
            return Err(InvalidJob("body is an S3 test event, not a job".to_string()));
        }
        let mut problems = Vec::new();
        let job_id = match fields.get("job_id") {
            Some(Value::String(id)) if !id.trim().is_empty() => Some(id.clone()),
            other => {
                problems.push(field_problem("job_id", other, "a non-empty string"));
                None
            }
        };
        let input = uri_field(&fields, "s3_input_path", &mut problems);
        let output = uri_field(&fields, "s3_output_path", &mut problems);
        let language = match fields.get("language") {
            None | Some(Value::Null) => None,
            Some(Value::String(code)) if code.is_empty() => None,
            Some(Value::String(code)) if is_language_code(code) => Some(code.clone()),
            other => {
                problems.push(field_problem("language", other, "a language code such as `en`"));
                None
            }
        };
        let output_formats = formats_field(&fields, &mut problems);
        let diarize = match fields.get("diarize") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(flag)) => *flag,
            other => {
                problems.push(field_problem("diarize", other, "true or false"));
                false
            }
        };
        match (job_id, input, output) {
            (Some(job_id), Some(s3_input_path), Some(s3_output_path)) if problems.is_empty() => {
                Ok(Self {
                    job_id,
                    s3_input_path,
                    s3_output_path,
                    language,
                    output_formats,
                    diarize,
                })
            }
            _ => Err(InvalidJob(problems.join("; "))),
        }
    }

    /// The message body.
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The input file name without its extension: the stem of every output key.
    pub fn stem(&self) -> String {
        stem_of(self.s3_input_path.file_name())
    }

    /// The address of this job's output in `format`.
    pub fn output(&self, format: OutputFormat) -> S3Uri {
        S3Uri::new(
            &self.s3_output_path.bucket,
            output_key(&self.s3_output_path.key, &self.stem(), format),
        )
    }

    /// The formats to write: the requested ones with JSON first, each once.
    pub fn formats(&self) -> Vec<OutputFormat> {
        let mut formats = self.output_formats.clone();
        formats.push(OutputFormat::Json);
        formats.sort();
        formats.dedup();
        formats
    }
}

fn preview(text: &str, limit: usize) -> String {
    let mut out: String = text.chars().take(limit).collect();
    if text.chars().count() > limit {
        out.push('…');
    }
    out
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn field_problem(name: &str, value: Option<&Value>, expected: &str) -> String {
    match value {
        None => format!("field `{name}` is missing"),
        Some(Value::String(s)) => {
            format!("field `{name}` must be {expected}, got `{}`", preview(s, 60))
        }
        Some(other) => format!("field `{name}` must be {expected}, got {}", kind_of(other)),
    }
}

fn uri_field(
    fields: &serde_json::Map<String, Value>,
    name: &str,
    problems: &mut Vec<String>,
) -> Option<S3Uri> {
    match fields.get(name) {
        Some(Value::String(text)) => match S3Uri::parse(text) {
            Ok(uri) => Some(uri),
            Err(why) => {
                problems.push(format!("field `{name}`: {why}"));
                None
            }
        },
        other => {
            problems.push(field_problem(name, other, "an s3:// address"));
            None
        }
    }
}

fn formats_field(
    fields: &serde_json::Map<String, Value>,
    problems: &mut Vec<String>,
) -> Vec<OutputFormat> {
    let Some(value) = fields.get("output_formats").filter(|v| !v.is_null()) else {
        return OutputFormat::ALL.to_vec();
    };
    let expected = "a list of json, srt, vtt, txt";
    let Value::Array(items) = value else {
        problems.push(field_problem("output_formats", Some(value), expected));
        return Vec::new();
    };
    let mut formats = Vec::new();
    for item in items {
        match item.as_str().and_then(OutputFormat::parse) {
            Some(format) => formats.push(format),
            None => problems.push(field_problem("output_formats", Some(item), expected)),
        }
    }
    formats
}

fn is_language_code(code: &str) -> bool {
    (2..=8).contains(&code.len()) && code.chars().all(|c| c.is_ascii_alphabetic() || c == '-')
}

/// A file name without its last extension: `talk.final.m4a` → `talk.final`.
pub fn stem_of(file_name: &str) -> String {
    match file_name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem.to_string(),
        _ if file_name.is_empty() => "transcript".to_string(),
        _ => file_name.to_string(),
    }
}

/// The key of an output: `<prefix>/<stem>.<ext>`, with exactly one `/` after a non-empty prefix.
pub fn output_key(prefix: &str, stem: &str, format: OutputFormat) -> String {
    let ext = format.extension();
    if prefix.is_empty() || prefix.ends_with('/') {
        format!("{prefix}{stem}.{ext}")
    } else {
        format!("{prefix}/{stem}.{ext}")
    }
}

/// The key of a worker's status object.
pub fn worker_status_key(worker_id: &str) -> String {
    format!("{WORKER_STATUS_PREFIX}{worker_id}.json")
}

/// The key of a job's record.
pub fn job_record_key(job_id: &str) -> String {
    format!("{JOB_STATUS_PREFIX}{job_id}.json")
}

/// One recognised word.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Word {
    /// Start in seconds, when aligned.
    pub start: Option<f64>,
    /// End in seconds, when aligned.
    pub end: Option<f64>,
    /// The word as written.
    pub word: String,
    /// Confidence from 0 to 1, when known.
    #[serde(default)]
    pub probability: Option<f64>,
}

/// One stretch of speech.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Start in seconds.
    pub start: Option<f64>,
    /// End in seconds.
    pub end: Option<f64>,
    /// The text.
    pub text: String,
    /// Words with times, where the engine gives them.
    #[serde(default)]
    pub words: Vec<Word>,
    /// Speaker label, with diarization.
    #[serde(default)]
    pub speaker: Option<String>,
    /// The model's no-speech probability for the segment.
    #[serde(default)]
    pub no_speech_prob: Option<f64>,
    /// Average log probability of the segment's tokens.
    #[serde(default)]
    pub avg_logprob: Option<f64>,
}

/// The JSON output of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// The job.
    pub job_id: String,
    /// The audio transcribed.
    pub input: String,
    /// Language spoken (given or detected).
    pub language: Option<String>,
    /// Decoded audio duration in seconds.
    pub duration_seconds: f64,
    /// True when no speech was found; `segments` is then empty (case C19).
    pub no_speech: bool,
    /// The speech, in order.
    pub segments: Vec<Segment>,
    /// Seconds per stage (download, probe, decode, transcribe, align, diarize, upload).
    pub timings: std::collections::BTreeMap<String, Option<f64>>,
    /// Model name as configured.
    pub model: String,
    /// Engine backend (`faster-whisper` or `whisperx`).
    pub engine: String,
    /// Worker that produced it.
    pub worker_id: String,
    /// Version of the worker.
    pub worker_version: String,
    /// When it was finished.
    pub created_at: DateTime<Utc>,
    /// Things worth knowing (e.g. a truncated input).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Transcript {
    /// The whole text, segments joined by spaces.
    pub fn text(&self) -> String {
        let parts: Vec<&str> =
            self.segments.iter().map(|s| s.text.trim()).filter(|t| !t.is_empty()).collect();
        parts.join(" ")
    }

    /// The output in `format`.
    pub fn render(&self, format: OutputFormat) -> String {
        match format {
            OutputFormat::Json => serde_json::to_string_pretty(self).unwrap_or_default() + "\n",
            OutputFormat::Srt => render_srt(&self.segments),
            OutputFormat::Vtt => render_vtt(&self.segments),
            OutputFormat::Txt => render_txt(&self.segments),
        }
    }
}

/// Segments that can be shown as cues: with text and times.
fn cues(segments: &[Segment]) -> impl Iterator<Item = (f64, f64, &Segment)> {
    segments.iter().filter(|s| !s.text.trim().is_empty()).filter_map(|s| {
        let start = s.start?;
        let end = s.end.unwrap_or(start).max(start);
        Some((start, end, s))
    })
}

fn cue_text(segment: &Segment) -> String {
    let text = segment.text.trim().replace("\n\n", "\n");
    match &segment.speaker {
        Some(speaker) => format!("[{speaker}] {text}"),
        None => text,
    }
}

/// `HH:MM:SS<sep>mmm`, rounded to the millisecond.
pub fn timestamp(seconds: f64, separator: char) -> String {
    let millis = (seconds.max(0.0) * 1000.0).round() as u64;
    let (h, m, s, ms) =
        (millis / 3_600_000, millis / 60_000 % 60, millis / 1000 % 60, millis % 1000);
    format!("{h:02}:{m:02}:{s:02}{separator}{ms:03}")
}

/// SubRip subtitles; no speech gives an empty file.
pub fn render_srt(segments: &[Segment]) -> String {
    let mut out = String::new();
    for (index, (start, end, segment)) in cues(segments).enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n{}\n\n",
            index + 1,
            timestamp(start, ','),
            timestamp(end, ','),
            cue_text(segment)
        ));
    }
    out
}

/// WebVTT subtitles; no speech gives just the header, which is still a valid file.
pub fn render_vtt(segments: &[Segment]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for (start, end, segment) in cues(segments) {
        let text = cue_text(segment).replace("-->", "->");
        out.push_str(&format!("{} --> {}\n{text}\n\n", timestamp(start, '.'), timestamp(end, '.')));
    }
    out
}

/// Plain text, one segment per line.
pub fn render_txt(segments: &[Segment]) -> String {
    segments
        .iter()
        .map(|s| s.text.trim())
        .filter(|t| !t.is_empty())
        .map(|t| format!("{t}\n"))
        .collect()
}

/// Word error rate of `hypothesis` against `reference`, ignoring case and punctuation.
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let words = |text: &str| -> Vec<String> {
        text.to_lowercase()
            .chars()
            .map(|c| if c.is_alphanumeric() || c == '\'' { c } else { ' ' })
            .collect::<String>()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let (reference, hypothesis) = (words(reference), words(hypothesis));
    let mut previous: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            let cost = previous[j] + usize::from(r != h);
            current.push(cost.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[hypothesis.len()] as f64 / reference.len().max(1) as f64
}

/// What a worker is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Loading the model and running the self-test.
    Starting,
    /// Waiting for jobs.
    Idle,
    /// Running a job.
    Busy,
    /// Finishing after SIGTERM or a spot interruption notice.
    Stopping,
    /// Exited normally (signal, notice or idle timeout).
    Stopped,
    /// Exited because something is broken (failed self-test, engine will not start).
    Failed,
}

impl WorkerState {
    /// The name shown in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Idle => "idle",
            Self::Busy => "busy",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }
}

/// The status object a worker keeps at [`worker_status_key`], refreshed about every 30 s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerStatus {
    /// The worker.
    pub worker_id: String,
    /// What it is doing.
    pub state: WorkerState,
    /// The job it is running.
    pub current_job: Option<String>,
    /// Jobs finished.
    pub jobs_done: u64,
    /// Jobs that failed permanently.
    pub jobs_failed: u64,
    /// When the worker started.
    pub started_at: DateTime<Utc>,
    /// When the object was last written.
    pub last_seen: DateTime<Utc>,
    /// Engine backend.
    pub engine: String,
    /// Model name.
    pub model: String,
    /// Device the engine runs on (`cpu` or `cuda`).
    pub device: String,
    /// GPU name, when there is one.
    pub gpu: Option<String>,
    /// Worker version.
    pub version: String,
    /// Host name or instance id.
    pub host: Option<String>,
    /// Why the worker stopped or failed.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// On the queue.
    Queued,
    /// A worker is on it.
    Running,
    /// Outputs written.
    Done,
    /// Failed permanently; the message is in the dead-letter queue.
    Failed,
}

impl JobState {
    /// The name shown in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

/// The record of a job at [`job_record_key`], written by the CLI and the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job as sent.
    pub job: JobRecordJob,
    /// Where it is.
    pub state: JobState,
    /// The last worker that touched it.
    pub worker_id: Option<String>,
    /// Output addresses, once done.
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// When this record was written.
    pub updated_at: DateTime<Utc>,
}

/// The job part of a [`JobRecord`] (addresses as text, so a record always reads back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecordJob {
    /// Job id.
    pub job_id: String,
    /// Input address.
    pub s3_input_path: String,
    /// Output prefix.
    pub s3_output_path: String,
}

impl JobRecord {
    /// A record of `job` in `state`.
    pub fn new(job: &JobMessage, state: JobState, worker_id: Option<&str>) -> Self {
        Self {
            job: JobRecordJob {
                job_id: job.job_id.clone(),
                s3_input_path: job.s3_input_path.to_string(),
                s3_output_path: job.s3_output_path.to_string(),
            },
            state,
            worker_id: worker_id.map(str::to_string),
            outputs: Vec::new(),
            error: None,
            updated_at: Utc::now(),
        }
    }
}

#[cfg(test)]
#[path = "job_tests.rs"]
mod tests;
