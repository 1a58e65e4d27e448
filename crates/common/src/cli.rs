//! What every step binary shares: global flags, the run loop, error printing and exit codes.
//!
//! A step's `main` parses its flags and calls [`run`] with a closure over the step's `run`
//! function. [`run`] starts logging, runs the step on a Tokio runtime, prints the report on
//! stdout (text or `--json`) and errors on stderr, and picks the exit code:
//! 0 ok, 1 the step failed, 2 bad configuration or usage, 130 cancelled.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::report::{Report, Status};
use crate::settings::{self, ConfigError, Env, Loaded};
use crate::ui::{self, Prompter, Ui};

/// Flags every step accepts.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GlobalArgs {
    /// More log output (-v info, -vv debug); RUST_LOG takes precedence.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print the final report as JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Never prompt: take defaults and confirm; a value without default is an error.
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
    /// Settings file (default: .env in the project folder).
    #[arg(long, value_name = "FILE", global = true)]
    pub env_file: Option<PathBuf>,
}

/// The operator cancelled (Ctrl-C or Esc at a prompt).
#[derive(Debug, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;

/// Wrong flags or a missing answer that only the operator can give.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A setting that a step discovers and writes back is missing when a later step needs it.
///
/// A configuration problem (exit code 2), not a failed step; [`missing_setting`] builds it
/// with the hint naming the step that writes the key.
#[derive(Debug, thiserror::Error)]
#[error("{key} is not set")]
pub struct MissingSetting {
    /// The settings key, e.g. `QUEUE_URL`.
    pub key: String,
}

/// The error for a missing `key`, with the hint from [`crate::keys::fix_for_missing`].
pub fn missing_setting(key: &str) -> anyhow::Error {
    let inner = anyhow::Error::new(MissingSetting { key: key.to_string() });
    anyhow::Error::new(Hint { hint: crate::keys::fix_for_missing(key), inner })
}

/// Turns an unset discovered setting into a [`missing_setting`] error.
pub trait RequireSetting<T> {
    /// The value, or the error for a missing `key`.
    fn require(self, key: &str) -> anyhow::Result<T>;
}

impl<T> RequireSetting<T> for Option<T> {
    fn require(self, key: &str) -> anyhow::Result<T> {
        self.ok_or_else(|| missing_setting(key))
    }
}

/// An error with a hint: printed as `hint:` after the error's causes.
///
/// It shows the wrapped error's message and lists that error as its source, so the chain
/// reads as before and [`render_error`] drops the repeated line.
#[derive(Debug)]
pub struct Hint {
    /// What to do about the error.
    pub hint: String,
    inner: anyhow::Error,
}

impl std::fmt::Display for Hint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.inner)
    }
}

impl std::error::Error for Hint {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let inner: &(dyn std::error::Error + Send + Sync + 'static) = self.inner.as_ref();
        Some(inner)
    }
}

/// Adds a [`Hint`] to errors.
pub trait HintExt<T> {
    /// Attaches `hint`, shown after the error's causes.
    fn hint(self, hint: impl Into<String>) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> HintExt<T> for Result<T, E> {
    fn hint(self, hint: impl Into<String>) -> anyhow::Result<T> {
        self.map_err(|e| anyhow::Error::new(Hint { hint: hint.into(), inner: e.into() }))
    }
}

/// Where the project lives and where the settings file is.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project folder (`FLEET_ROOT`, set by the script wrappers, or the current folder).
    pub root: PathBuf,
    /// The settings file.
    pub env_file: PathBuf,
}

impl Project {
    /// Resolves the project folder from `env` and the flags.
    pub fn locate(env: &Env, args: &GlobalArgs) -> Self {
        let root = env
            .get("FLEET_ROOT")
            .filter(|r| !r.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("."));
        let env_file = args.env_file.clone().unwrap_or_else(|| root.join(".env"));
        Self { root, env_file }
    }

    /// A project with an explicit folder, for tests.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self { env_file: root.join(".env"), root }
    }

    /// Folder for local state (emulator, local runners), git-ignored.
    pub fn local_dir(&self) -> PathBuf {
        self.root.join(".local")
    }
}

/// What a step gets to work with.
pub struct Context {
    /// The step's name, e.g. `step-020-create-sqs-resources`; used in tags and reports.
    pub step: &'static str,
    /// Project folder and settings file.
    pub project: Project,
    /// The environment snapshot taken at start.
    pub env: Env,
    /// Output on stderr.
    pub ui: Ui,
    /// Prompts (scripted in tests, none with `--yes` or without a terminal).
    pub prompter: Box<dyn Prompter + Send>,
    /// Whether `--yes` was given.
    pub assume_yes: bool,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("step", &self.step).field("project", &self.project).finish()
    }
}

impl Context {
    /// A context for tests: quiet output, the given prompter, no process environment.
    pub fn for_test(
        step: &'static str,
        project: Project,
        env: Env,
        prompter: Box<dyn Prompter + Send>,
    ) -> Self {
        Self { step, project, env, ui: Ui::silent(), prompter, assume_yes: true }
    }

    /// Loads and validates the settings, telling the operator about overrides and warnings.
    pub fn load_settings(&self) -> Result<Loaded, ConfigError> {
        let loaded = settings::load(&self.project.env_file, &self.env)?;
        for o in &loaded.overrides {
            self.ui.note(&o.to_string());
        }
        for w in &loaded.warnings {
            self.ui.warn(w);
        }
        Ok(loaded)
    }
}

/// Runs a step: logging, runtime, report, errors and exit code.
pub fn run<F, Fut>(step: &'static str, args: &GlobalArgs, body: F) -> ExitCode
where
    F: FnOnce(Context) -> Fut,
    Fut: Future<Output = anyhow::Result<Report>>,
{
    crate::logging::init(args.verbose, args.quiet);
    let env = settings::process_env();
    let project = Project::locate(&env, args);
    let ui = Ui::new(args.quiet);
    let prompter = ui::prompter_for(args.yes);
    let context = Context { step, project, env, ui: ui.clone(), prompter, assume_yes: args.yes };
    let started = Instant::now();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            print_error(&anyhow::Error::new(e).context("failed to start the async runtime"));
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            result = body(context) => result,
            _ = tokio::signal::ctrl_c() => Err(anyhow::Error::new(Cancelled)),
        }
    });
    match result {
        Ok(mut report) => {
            report.elapsed_seconds = started.elapsed().as_secs_f64();
            report.print(args.json);
            ExitCode::from(report.status.exit_code())
        }
        Err(error) => {
            let code = exit_code_for(&error);
            if args.json {
                Report::from_error(step, &error, code).print(true);
            }
            if code == 130 {
                ui.note("cancelled; nothing more was changed");
            } else {
                print_error(&error);
            }
            ExitCode::from(code)
        }
    }
}

/// The exit code for an error: 2 for configuration and usage, 130 for cancel, else 1.
pub fn exit_code_for(error: &anyhow::Error) -> u8 {
    if error.chain().any(|e| e.is::<Cancelled>() || is_inquire_cancel(e)) {
        130
    } else if error
        .chain()
        .any(|e| e.is::<ConfigError>() || e.is::<UsageError>() || e.is::<MissingSetting>())
    {
        Status::BadConfig.exit_code()
    } else {
        Status::Failed.exit_code()
    }
}

fn is_inquire_cancel(e: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        e.downcast_ref::<inquire::InquireError>(),
        Some(
            inquire::InquireError::OperationCanceled | inquire::InquireError::OperationInterrupted
        )
    )
}

/// Renders an error as `error:`, one `caused by:` per source and the `hint:` lines.
pub fn render_error(error: &anyhow::Error) -> String {
    let mut messages = Vec::new();
    let mut hints = Vec::new();
    for cause in error.chain() {
        if let Some(hint) = cause.downcast_ref::<Hint>() {
            hints.push(hint.hint.clone());
        }
        let message = cause.to_string();
        if messages.last() != Some(&message) {
            messages.push(message);
        }
    }
    let mut out = String::new();
    for (i, message) in messages.iter().enumerate() {
        let label = if i == 0 { "error" } else { "caused by" };
        out.push_str(&format!("{label}: {message}\n"));
    }
    for hint in hints {
        out.push_str(&format!("hint: {hint}\n"));
    }
    out
}

fn print_error(error: &anyhow::Error) {
    eprint!("{}", render_error(error));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_render_with_causes_then_hints() {
        let error: anyhow::Result<()> = Err(anyhow::anyhow!("AccessDenied: not allowed"));
        let error = error
            .hint("ask for the operator policy")
            .map_err(|e| e.context("failed to create queue `jobs`"))
            .expect_err("error");
        assert_eq!(
            render_error(&error),
            "error: failed to create queue `jobs`\ncaused by: AccessDenied: not allowed\n\
             hint: ask for the operator policy\n"
        );
        assert_eq!(exit_code_for(&error), 1);
    }

    #[test]
    fn configuration_and_cancel_errors_pick_their_exit_codes() {
        let config = ConfigError { path: ".env".into(), problems: vec![] };
        assert_eq!(exit_code_for(&anyhow::Error::new(config).context("x")), 2);
        assert_eq!(exit_code_for(&anyhow::Error::new(Cancelled)), 130);
        let usage = anyhow::Error::new(UsageError("no terminal".into()));
        assert_eq!(exit_code_for(&usage), 2);
    }

    #[test]
    fn a_missing_discovered_setting_is_bad_config_with_the_step_that_writes_it() {
        let error = None::<String>.require("QUEUE_URL").expect_err("missing");
        assert_eq!(exit_code_for(&error), 2);
        assert_eq!(exit_code_for(&error.context("failed to submit")), 2);
        let text = render_error(&missing_setting("AMI_ID"));
        assert_eq!(
            text,
            "error: AMI_ID is not set\n\
             hint: run ./scripts/step-100-setup-ec2-configuration.sh, which writes AMI_ID\n"
        );
    }
}
