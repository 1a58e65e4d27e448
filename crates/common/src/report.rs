//! The final report of a step: text for people, JSON with `--json`, always on stdout.

use serde::Serialize;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Everything done or checked.
    Ok,
    /// The step failed, or a check found a problem.
    Failed,
    /// The settings or the command line are wrong.
    BadConfig,
    /// The operator cancelled.
    Cancelled,
}

impl Status {
    /// The process exit code for this status.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Failed => 1,
            Self::BadConfig => 2,
            Self::Cancelled => 130,
        }
    }
}

/// What happened to one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    /// Created now.
    Created,
    /// Changed to match the settings.
    Updated,
    /// Already as it should be.
    Unchanged,
    /// Deleted now.
    Deleted,
    /// Checked and fine.
    Passed,
    /// Checked and wrong.
    Problem,
    /// Worth knowing, not a verdict.
    Info,
    /// Left alone on purpose.
    Skipped,
}

impl Mark {
    fn symbol(self) -> &'static str {
        match self {
            Self::Created => "+",
            Self::Updated => "~",
            Self::Unchanged | Self::Passed => "✓",
            Self::Deleted => "-",
            Self::Problem => "✗",
            Self::Info | Self::Skipped => "·",
        }
    }
}

/// One line of a report.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// What happened.
    pub mark: Mark,
    /// What the line is about (a resource kind, a key, a check).
    pub label: String,
    /// The detail: a name, a value, the problem and its fix.
    pub detail: String,
}

/// The final report of a step.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The step's name.
    pub step: String,
    /// How it ended.
    pub status: Status,
    /// One-line summary.
    pub summary: String,
    /// The lines of the report.
    pub items: Vec<Item>,
    /// Commands to run next.
    pub next: Vec<String>,
    /// Machine-readable extras (ids, URLs, measurements).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
    /// Wall time of the step in seconds.
    pub elapsed_seconds: f64,
}

impl Report {
    /// An empty report that ends well unless a problem is added.
    pub fn new(step: &str) -> Self {
        Self {
            step: step.to_string(),
            status: Status::Ok,
            summary: String::new(),
            items: Vec::new(),
            next: Vec::new(),
            data: serde_json::Value::Null,
            elapsed_seconds: 0.0,
        }
    }

    /// Adds a line; a [`Mark::Problem`] makes the report fail.
    pub fn item(
        &mut self,
        mark: Mark,
        label: impl Into<String>,
        detail: impl Into<String>,
    ) -> &mut Self {
        if mark == Mark::Problem && self.status == Status::Ok {
            self.status = Status::Failed;
        }
        self.items.push(Item { mark, label: label.into(), detail: detail.into() });
        self
    }

    /// Number of lines with `mark`.
    pub fn count(&self, mark: Mark) -> usize {
        self.items.iter().filter(|i| i.mark == mark).count()
    }

    /// Whether any line changed something.
    pub fn changed_anything(&self) -> bool {
        self.items.iter().any(|i| matches!(i.mark, Mark::Created | Mark::Updated | Mark::Deleted))
    }

    /// A summary of creates, updates and unchanged items, e.g. `created 2, unchanged 3`.
    pub fn change_summary(&self) -> String {
        let parts: Vec<String> = [
            (Mark::Created, "created"),
            (Mark::Updated, "updated"),
            (Mark::Deleted, "deleted"),
            (Mark::Unchanged, "unchanged"),
        ]
        .iter()
        .filter_map(|(mark, word)| match self.count(*mark) {
            0 => None,
            n => Some(format!("{word} {n}")),
        })
        .collect();
        if self.changed_anything() { parts.join(", ") } else { "nothing changed".to_string() }
    }

    /// The report of a step that ended in an error, for `--json`.
    pub fn from_error(step: &str, error: &anyhow::Error, code: u8) -> Self {
        let mut report = Self::new(step);
        report.status = match code {
            2 => Status::BadConfig,
            130 => Status::Cancelled,
            _ => Status::Failed,
        };
        report.summary = error.to_string();
        report.data = serde_json::json!({ "error": crate::cli::render_error(error) });
        report
    }

    /// The report as text.
    pub fn to_text(&self) -> String {
        let mut out = format!("{}: {} ({:.1} s)\n", self.step, self.summary, self.elapsed_seconds);
        let width = self.items.iter().map(|i| i.label.chars().count()).max().unwrap_or(0);
        for item in &self.items {
            out.push_str(&format!(
                "  {} {:width$}  {}\n",
                item.mark.symbol(),
                item.label,
                item.detail
            ));
        }
        for next in &self.next {
            out.push_str(&format!("next: {next}\n"));
        }
        out
    }

    /// Prints the report on stdout.
    pub fn print(&self, json: bool) {
        if json {
            match serde_json::to_string_pretty(self) {
                Ok(text) => println!("{text}"),
                Err(e) => eprintln!("error: cannot encode the report as JSON: {e}"),
            }
        } else {
            print!("{}", self.to_text());
        }
    }
}
