//! Step 000: create or update the deployment settings in `.env`.
//!
//! Values start from the current `.env` (or the documented template), then flags apply, then
//! the operator is asked for the few values that matter, with the current ones as defaults.
//! The account id comes from STS, which also proves that the credentials and the region work.
//! The new file is validated as a whole before anything is written, and written atomically:
//! an interrupted or failed run leaves the old `.env` as it was.

use std::collections::BTreeMap;

use anyhow::Context as _;
use common::cli::UsageError;
use common::settings::{self, Env};
use common::{Context, HintExt, Mark, Report, dotenv, keys, naming};

/// The step's name.
pub const STEP: &str = "step-000-setup-configuration";

/// Endpoint of the local emulator that `make local-up` starts.
pub const LOCAL_ENDPOINT: &str = "http://127.0.0.1:4566";

/// Flags of step 000.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Aim at the local AWS emulator (CPU engine with the bundled tiny.en model).
    #[arg(long)]
    pub local: bool,
    /// Emulator endpoint for --local.
    #[arg(long, value_name = "URL", default_value = LOCAL_ENDPOINT, requires = "local")]
    pub endpoint: String,
    /// AWS region.
    #[arg(long)]
    pub region: Option<String>,
    /// Project name (first part of every resource name).
    #[arg(long)]
    pub project: Option<String>,
    /// Environment name (second part of every resource name).
    #[arg(long)]
    pub environment: Option<String>,
    /// Bucket for audio and transcripts.
    #[arg(long)]
    pub bucket: Option<String>,
    /// Any other setting, as KEY=VALUE; may be repeated.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Values being assembled: key → value, plus the keys the operator fixed with flags.
struct Draft {
    values: BTreeMap<String, String>,
    fixed: Vec<String>,
}

impl Draft {
    fn get(&self, key: &str) -> String {
        self.values.get(key).cloned().unwrap_or_default()
    }

    fn set(&mut self, key: &str, value: impl Into<String>, fixed: bool) {
        self.values.insert(key.to_string(), value.into());
        if fixed {
            self.fixed.push(key.to_string());
        }
    }

    /// Asks for `key` unless a flag fixed it; the current value is the default.
    fn ask(&mut self, ctx: &mut Context, key: &str, message: &str) -> anyhow::Result<()> {
        if self.fixed.iter().any(|k| k == key) {
            return Ok(());
        }
        let current = self.get(key);
        let default = (!current.is_empty()).then_some(current.as_str());
        let answer = ctx.prompter.text(key, message, default)?;
        self.set(key, answer.trim(), false);
        Ok(())
    }
}

/// Runs step 000.
pub async fn run(mut ctx: Context, args: Args) -> anyhow::Result<Report> {
    ctx.ui.header(STEP, "deployment settings");
    let path = ctx.project.env_file.clone();
    let existing = read_existing(&path, &ctx.env)?;
    let mut draft = start_draft(existing.as_ref());
    apply_flags(&mut draft, &args)?;
    if existing.is_some() {
        ctx.ui.note(&format!("updating {}; current values are the defaults", path.display()));
    }

    draft.ask(&mut ctx, "AWS_REGION", "AWS region")?;
    draft.ask(&mut ctx, "PROJECT_NAME", "Project name (start of every resource name)")?;
    draft.ask(&mut ctx, "ENVIRONMENT", "Environment (dev, staging, prod, ...)")?;
    check_early(&draft)?;

    let account = discover_account(&ctx, &draft).await?;
    draft.set("AWS_ACCOUNT_ID", account.clone(), false);
    if draft.get("AUDIO_BUCKET").is_empty() {
        let proposal = naming::default_bucket(
            &draft.get("PROJECT_NAME"),
            &draft.get("ENVIRONMENT"),
            &account,
            &draft.get("AWS_REGION"),
        );
        draft.set("AUDIO_BUCKET", proposal, false);
    }
    draft.ask(&mut ctx, "AUDIO_BUCKET", "Bucket for audio and transcripts")?;

    let original = existing.as_ref().map_or(keys::ENV_TEMPLATE, |(text, _)| text.as_str());
    let updates = changed_values(&draft, existing.as_ref().map(|(_, file)| file));
    let update_refs: Vec<(&str, &str)> =
        updates.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let new_text = dotenv::apply_updates(original, &update_refs);
    let parsed = dotenv::parse(&new_text, &ctx.env);
    settings::resolve(&path, &parsed, &ctx.env)?;

    if existing.is_none() || !updates.is_empty() {
        dotenv::write_atomically(&path, &new_text)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
    }
    Ok(report(&draft, existing.as_ref().map(|(_, f)| f), &updates, &path))
}

/// The current file's text and parsed contents; a file with errors stops the step.
fn read_existing(
    path: &std::path::Path,
    env: &Env,
) -> anyhow::Result<Option<(String, dotenv::EnvFile)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("failed to read `{}`", path.display())),
    };
    let file = dotenv::parse(&text, env);
    if !file.errors.is_empty() {
        let problems = file
            .errors
            .iter()
            .map(|d| settings::Problem {
                key: d.key.clone().unwrap_or_else(|| format!("line {}", d.line)),
                line: Some(d.line),
                message: d.message.clone(),
                fix: "edit the line; step-000 rewrites only files it can read completely".into(),
            })
            .collect();
        return Err(settings::ConfigError { path: path.to_path_buf(), problems }.into());
    }
    Ok(Some((text, file)))
}

/// Current values: the existing file's, or the template's for a new file.
fn start_draft(existing: Option<&(String, dotenv::EnvFile)>) -> Draft {
    let template = dotenv::parse(keys::ENV_TEMPLATE, &Env::new());
    let source = existing.map_or(&template, |(_, f)| f);
    let mut values = BTreeMap::new();
    for spec in keys::KEYS {
        let current = source.get(spec.name).map(|e| e.value.clone());
        values.insert(spec.name.to_string(), current.unwrap_or_else(|| spec.default.to_string()));
    }
    Draft { values, fixed: Vec::new() }
}

fn apply_flags(draft: &mut Draft, args: &Args) -> anyhow::Result<()> {
    if args.local {
        draft.set("AWS_ENDPOINT_URL", args.endpoint.clone(), true);
        draft.set("WHISPER_ENGINE", "faster-whisper", true);
        draft.set("WHISPER_MODEL", "bundled:tiny.en", true);
        draft.set("COMPUTE_TYPE", "int8", true);
    }
    let named = [
        ("AWS_REGION", &args.region),
        ("PROJECT_NAME", &args.project),
        ("ENVIRONMENT", &args.environment),
        ("AUDIO_BUCKET", &args.bucket),
    ];
    for (key, value) in named {
        if let Some(value) = value {
            draft.set(key, value.clone(), true);
        }
    }
    for pair in &args.set {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(UsageError(format!("--set `{pair}` is not KEY=VALUE")).into());
        };
        if keys::spec(key).is_none() {
            return Err(UsageError(format!("--set {key}: not a setting; see .env.example")).into());
        }
        draft.set(key, value, true);
    }
    Ok(())
}

/// Checks the values that the STS call depends on, before making it.
fn check_early(draft: &Draft) -> anyhow::Result<()> {
    let checks = [
        ("AWS_REGION", naming::check_region(&draft.get("AWS_REGION"))),
        ("PROJECT_NAME", naming::check_project(&draft.get("PROJECT_NAME"))),
        ("ENVIRONMENT", naming::check_environment(&draft.get("ENVIRONMENT"))),
    ];
    let problems: Vec<settings::Problem> = checks
        .into_iter()
        .filter_map(|(key, result)| {
            result.err().map(|fix| settings::Problem {
                key: key.into(),
                line: None,
                message: format!("`{}` is not valid", draft.get(key)),
                fix,
            })
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(settings::ConfigError { path: ".env".into(), problems }.into())
    }
}

async fn discover_account(ctx: &Context, draft: &Draft) -> anyhow::Result<String> {
    let endpoint = Some(draft.get("AWS_ENDPOINT_URL")).filter(|e| !e.is_empty());
    let target = common::aws::Target {
        region: draft.get("AWS_REGION"),
        profile: Some(draft.get("AWS_PROFILE")).filter(|p| !p.is_empty()),
        endpoint_url: endpoint.clone(),
    };
    let config = common::aws::sdk_config_for(&target, &ctx.env, &Default::default()).await;
    let spinner = ctx.ui.spinner("asking STS who these credentials belong to");
    let hint = match &endpoint {
        Some(url) => {
            format!("is the local emulator running at {url}? start it with `make local-up`")
        }
        None => {
            "configure credentials (aws configure, aws sso login, or AWS_PROFILE) and check that \
                 the region is enabled for the account"
                .to_string()
        }
    };
    let (account, arn) = common::aws::caller_identity(&config).await.hint(hint)?;
    spinner.finish(&format!("credentials belong to account {account} ({arn})"));
    Ok(account)
}

/// The keys whose value differs from the file (all set keys for a new file).
fn changed_values(draft: &Draft, existing: Option<&dotenv::EnvFile>) -> Vec<(String, String)> {
    draft
        .values
        .iter()
        .filter(|(key, value)| match existing {
            Some(file) => {
                file.get(key).map(|e| &e.value) != Some(*value)
                    && !(file.get(key).is_none() && value.is_empty())
            }
            None => {
                let template = dotenv::parse(keys::ENV_TEMPLATE, &Env::new());
                template.get(key).map(|e| &e.value) != Some(*value) && !value.is_empty()
            }
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn report(
    draft: &Draft,
    existing: Option<&dotenv::EnvFile>,
    updates: &[(String, String)],
    path: &std::path::Path,
) -> Report {
    let mut report = Report::new(STEP);
    let shown = [
        "AWS_REGION",
        "AWS_ACCOUNT_ID",
        "AWS_ENDPOINT_URL",
        "PROJECT_NAME",
        "ENVIRONMENT",
        "AUDIO_BUCKET",
    ];
    for key in keys::KEYS.iter().map(|k| k.name) {
        let changed = updates.iter().any(|(k, _)| k == key);
        if !changed && !shown.contains(&key) {
            continue;
        }
        let value = draft.get(key);
        let value = if settings::is_secret_key(key) { settings::mask(&value) } else { value };
        let mark = match (changed, existing.and_then(|f| f.get(key)).is_some()) {
            _ if existing.is_none() => Mark::Created,
            (false, _) => Mark::Unchanged,
            (true, true) => Mark::Updated,
            (true, false) => Mark::Created,
        };
        report.item(mark, key, if value.is_empty() { "(empty)".to_string() } else { value });
    }
    report.summary = match (existing.is_some(), updates.is_empty()) {
        (false, _) => format!("wrote {}", path.display()),
        (true, true) => format!("{} already up to date", path.display()),
        (true, false) => format!("updated {} value(s) in {}", updates.len(), path.display()),
    };
    report.next.push("./scripts/step-001-validate-configuration.sh".to_string());
    report
}
