//! The deployment path chosen by step-025, kept in `.deployment-path` in the project folder.
//!
//! This module is the one reader and writer of that file. The format is a single line
//!
//! ```text
//! DEPLOYMENT_PATH=traditional
//! ```
//!
//! or `DEPLOYMENT_PATH=docker`, ending in a newline. The line is valid bash, so scripts can
//! `source .deployment-path`, and it is the same `KEY=VALUE` shape as `.env`.
//!
//! Reading is lenient where that is harmless: a trailing `\r` (Windows line endings), a
//! missing final newline, blank lines, `#` comments, an `export ` prefix and quotes around the
//! value are accepted. The predecessor's file held a bare word, `traditional` or `docker-gpu`;
//! both are still read, with a warning that step-025 rewrites the file in the current format.

use std::path::{Path, PathBuf};

use crate::cli::Project;

/// File name of the choice, in the project folder.
pub const FILE_NAME: &str = ".deployment-path";

/// The key on the file's line.
pub const KEY: &str = "DEPLOYMENT_PATH";

/// The two ways to run workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentPath {
    /// Path A: WhisperX installed directly on an EC2 GPU instance.
    Traditional,
    /// Path B: the worker as a Docker container on an EC2 GPU instance.
    Docker,
}

impl DeploymentPath {
    /// Both paths, A first.
    pub const ALL: [Self; 2] = [Self::Traditional, Self::Docker];

    /// The word written to the file: `traditional` or `docker`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Traditional => "traditional",
            Self::Docker => "docker",
        }
    }

    /// `A` or `B`, as the documentation names the paths.
    pub fn letter(self) -> char {
        match self {
            Self::Traditional => 'A',
            Self::Docker => 'B',
        }
    }

    /// A one-line title.
    pub fn title(self) -> &'static str {
        match self {
            Self::Traditional => "Path A: traditional EC2, WhisperX installed directly",
            Self::Docker => "Path B: Docker containers on EC2 GPU",
        }
    }

    /// The other path.
    pub fn other(self) -> Self {
        match self {
            Self::Traditional => Self::Docker,
            Self::Docker => Self::Traditional,
        }
    }

    /// File name (in `scripts/`) of the path's launch script.
    pub fn launch_script(self) -> &'static str {
        match self {
            Self::Traditional => "step-120-launch-spot-worker.sh",
            Self::Docker => "step-220-launch-docker-worker.sh",
        }
    }

    /// File name (in `scripts/`) of the path's health-check script.
    pub fn health_script(self) -> &'static str {
        match self {
            Self::Traditional => "step-125-check-worker-health.sh",
            Self::Docker => "step-225-check-docker-health.sh",
        }
    }
}

impl std::fmt::Display for DeploymentPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A choice read from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The chosen path.
    pub path: DeploymentPath,
    /// Set when the file used an old or unusual form; step-025 rewrites it.
    pub warning: Option<String>,
}

/// The file exists but does not name a path.
#[derive(Debug, thiserror::Error)]
#[error("{} does not name a deployment path: {message}", path.display())]
pub struct PathFileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

/// Where the choice is kept for `project`.
pub fn file(project: &Project) -> PathBuf {
    project.root.join(FILE_NAME)
}

/// The chosen path, or `None` when no path has been chosen yet.
pub fn read(project: &Project) -> anyhow::Result<Option<Choice>> {
    let path = file(project);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context(format!("failed to read `{}`", path.display()))
            );
        }
    };
    parse(&text).map(Some).map_err(|message| PathFileError { path, message }.into())
}

/// Parses the file's text; the error says what is wrong.
pub fn parse(text: &str) -> Result<Choice, String> {
    let lines: Vec<&str> = text
        .trim_start_matches('\u{feff}')
        .lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l).trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let [line] = lines.as_slice() else {
        return Err(format!("expected one line `{KEY}=traditional` or `{KEY}=docker`"));
    };
    let line = line.strip_prefix("export ").map_or(*line, str::trim_start);
    match line.split_once('=') {
        Some((key, value)) if key.trim() == KEY => {
            let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
            word(value).map(|path| Choice { path, warning: None })
        }
        Some((key, _)) => Err(format!("unknown key `{}`; expected {KEY}", key.trim())),
        None => legacy(line),
    }
}

fn word(value: &str) -> Result<DeploymentPath, String> {
    match value {
        "traditional" => Ok(DeploymentPath::Traditional),
        "docker" => Ok(DeploymentPath::Docker),
        other => Err(format!("`{}` is not traditional or docker", other.escape_debug())),
    }
}

/// The predecessor's file held only `traditional` or `docker-gpu`.
fn legacy(line: &str) -> Result<Choice, String> {
    let path = match line {
        "traditional" => DeploymentPath::Traditional,
        "docker-gpu" | "docker" => DeploymentPath::Docker,
        other => return Err(format!("`{}` is not traditional or docker", other.escape_debug())),
    };
    let warning = format!(
        "{FILE_NAME} holds the old bare word `{line}`; \
         run ./scripts/step-025-choose-deployment-path.sh to rewrite it as {KEY}={path}"
    );
    Ok(Choice { path, warning: Some(warning) })
}

/// The file's contents for `path`.
pub fn render(path: DeploymentPath) -> String {
    format!("{KEY}={}\n", path.as_str())
}

/// Records `path` as the choice, replacing the file atomically.
pub fn write(project: &Project, path: DeploymentPath) -> anyhow::Result<()> {
    let target = file(project);
    crate::dotenv::write_atomically(&target, &render(path)).map_err(|e| {
        anyhow::Error::new(e).context(format!("failed to write `{}`", target.display()))
    })
}

/// Whether `path` exists, following links (a dangling link does not count).
pub fn resolves(path: &Path) -> bool {
    std::fs::metadata(path).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_form_reads_back() {
        for path in DeploymentPath::ALL {
            assert_eq!(parse(&render(path)), Ok(Choice { path, warning: None }));
        }
    }

    #[test]
    fn crlf_and_missing_newline_are_tolerated() {
        let choice = parse("DEPLOYMENT_PATH=docker\r\n").expect("crlf");
        assert_eq!(choice.path, DeploymentPath::Docker);
        let choice = parse("DEPLOYMENT_PATH=traditional").expect("no newline");
        assert_eq!(choice.path, DeploymentPath::Traditional);
        let choice =
            parse("# chosen by step-025\nexport DEPLOYMENT_PATH=\"docker\"\n").expect("export");
        assert_eq!(choice.path, DeploymentPath::Docker);
    }

    #[test]
    fn predecessor_bare_words_read_with_a_warning() {
        let choice = parse("docker-gpu\n").expect("docker-gpu");
        assert_eq!(choice.path, DeploymentPath::Docker);
        assert!(choice.warning.as_deref().is_some_and(|w| w.contains("step-025")));
        let choice = parse("traditional\r\n").expect("traditional");
        assert_eq!(choice.path, DeploymentPath::Traditional);
        assert!(choice.warning.is_some());
    }

    #[test]
    fn unknown_values_are_refused() {
        assert!(parse("DEPLOYMENT_PATH=kubernetes\n").is_err());
        assert!(parse("PATH=docker\n").is_err());
        assert!(parse("").is_err());
        assert!(parse("DEPLOYMENT_PATH=docker\nDEPLOYMENT_PATH=traditional\n").is_err());
    }
}
