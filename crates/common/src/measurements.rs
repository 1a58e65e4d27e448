//! Figures measured by earlier runs, kept in `.local/measurements.json`.
//!
//! Steps that time something real (a worker becoming healthy, a transcription, an image push)
//! [`record`] it under a dotted key; step-025 [`load`]s them for `DEPLOYMENT_COMPARISON.md`.
//! A key that was never recorded is shown there as "not measured", never estimated.
//!
//! The file is a JSON object: `{"path_a.launch_to_healthy_seconds": {"value": 412.0,
//! "recorded_at": "2025-01-01T12:00:00Z"}, ...}`. The last value recorded for a key wins.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::cli::Project;

/// Seconds from launching a Path A worker until it reports healthy.
pub const PATH_A_LAUNCH_TO_HEALTHY: &str = "path_a.launch_to_healthy_seconds";
/// Seconds from launching a Path B worker until it reports healthy.
pub const PATH_B_LAUNCH_TO_HEALTHY: &str = "path_b.launch_to_healthy_seconds";
/// Size in bytes of the Path B worker image.
pub const PATH_B_IMAGE_SIZE: &str = "path_b.image_size_bytes";
/// Seconds from submitting a job to its transcript on a Path A worker.
pub const PATH_A_E2E_TRANSCRIPTION: &str = "path_a.e2e_transcription_seconds";
/// Seconds from submitting a job to its transcript on a Path B worker.
pub const PATH_B_E2E_TRANSCRIPTION: &str = "path_b.e2e_transcription_seconds";
/// Seconds from submitting a job to its transcript in the local end-to-end test.
pub const E2E_TRANSCRIPTION: &str = "e2e.transcription_seconds";
/// Audio seconds per wall-clock second through a worker on CPU, from `make bench`.
pub const BENCH_CPU_REALTIME_FACTOR: &str = "bench.cpu.realtime_factor";
/// Audio seconds per wall-clock second through a worker on a GPU, from `make bench` there.
pub const BENCH_GPU_REALTIME_FACTOR: &str = "bench.gpu.realtime_factor";
/// The worker's throughput as a share of the bare engine's, from `make bench`.
pub const BENCH_WORKER_OVER_ENGINE: &str = "bench.worker_over_engine_throughput";

/// AWS Transcribe's list price for batch transcription, USD per audio minute: the managed
/// service the cost figures are compared with.
pub const TRANSCRIBE_USD_PER_MINUTE: f64 = 0.024;

/// One recorded figure.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Measurement {
    /// The value, in the unit the key names.
    pub value: f64,
    /// When it was recorded.
    pub recorded_at: chrono::DateTime<chrono::Utc>,
}

/// Where the figures are kept for `project`.
pub fn file(project: &Project) -> PathBuf {
    project.local_dir().join("measurements.json")
}

/// Every recorded figure; an empty map when nothing was recorded yet.
pub fn load(project: &Project) -> anyhow::Result<BTreeMap<String, Measurement>> {
    let path = file(project);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context(format!("failed to read `{}`", path.display()))
            );
        }
    };
    serde_json::from_str(&text).map_err(|e| {
        anyhow::Error::new(e)
            .context(format!("`{}` is not valid measurements JSON", path.display()))
    })
}

/// Records `value` under `key`, keeping every other figure.
pub fn record(project: &Project, key: &str, value: f64) -> anyhow::Result<()> {
    let mut all = load(project)?;
    all.insert(key.to_string(), Measurement { value, recorded_at: chrono::Utc::now() });
    let path = file(project);
    std::fs::create_dir_all(project.local_dir()).map_err(|e| {
        anyhow::Error::new(e)
            .context(format!("failed to create `{}`", project.local_dir().display()))
    })?;
    let text = serde_json::to_string_pretty(&all)?;
    crate::dotenv::write_atomically(&path, &format!("{text}\n"))
        .map_err(|e| anyhow::Error::new(e).context(format!("failed to write `{}`", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_figures_load_back_and_missing_file_is_empty() {
        let dir = tempfile::tempdir().expect("dir");
        let project = Project::at(dir.path());
        assert!(load(&project).expect("empty").is_empty());
        record(&project, PATH_B_IMAGE_SIZE, 8.5e9).expect("record");
        record(&project, E2E_TRANSCRIPTION, 12.5).expect("record");
        record(&project, E2E_TRANSCRIPTION, 11.0).expect("record again");
        let all = load(&project).expect("load");
        assert_eq!(all.len(), 2);
        assert_eq!(all[E2E_TRANSCRIPTION].value, 11.0);
        assert_eq!(all[PATH_B_IMAGE_SIZE].value, 8.5e9);
    }

    #[test]
    fn corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("dir");
        let project = Project::at(dir.path());
        std::fs::create_dir_all(project.local_dir()).expect("dir");
        std::fs::write(file(&project), "{not json").expect("write");
        let error = load(&project).expect_err("corrupt");
        assert!(error.to_string().contains("measurements.json"), "{error}");
    }
}
