//! The operator policy file and its printed summary.

use anyhow::Context as _;
use common::iam_policy::{OPERATOR_GROUPS, OPERATOR_POLICY_FILE, Scope, operator_policy};
use common::{Context, Mark, Report};

/// Writes `.local/operator-policy.json` when its content changed; prints the summary then,
/// and always adds it to the report when `in_report`.
pub fn write(
    ctx: &Context,
    scope: &Scope,
    report: &mut Report,
    in_report: bool,
) -> anyhow::Result<()> {
    let path = ctx.project.local_dir().join(OPERATOR_POLICY_FILE);
    let shown = format!(".local/{OPERATOR_POLICY_FILE}");
    let text = serde_json::to_string_pretty(&operator_policy(scope))? + "\n";
    let old = std::fs::read_to_string(&path).ok();
    let mark = match &old {
        Some(old) if *old == text => Mark::Unchanged,
        Some(_) => Mark::Updated,
        None => Mark::Created,
    };
    if mark != Mark::Unchanged {
        std::fs::create_dir_all(ctx.project.local_dir()).with_context(|| {
            format!("failed to create folder `{}`", ctx.project.local_dir().display())
        })?;
        common::dotenv::write_atomically(&path, &text)
            .with_context(|| format!("failed to write the operator policy `{}`", path.display()))?;
        print_summary(ctx, &shown);
    }
    let actions: usize = OPERATOR_GROUPS.iter().map(|g| g.actions.len()).sum();
    let detail = format!("{shown} ({} statements, {actions} actions)", OPERATOR_GROUPS.len());
    report.item(mark, "operator policy", detail);
    if in_report {
        for group in OPERATOR_GROUPS {
            report.item(Mark::Info, group.sid, summary_line(group));
        }
    }
    Ok(())
}

fn summary_line(group: &common::iam_policy::OperatorGroup) -> String {
    let count = group.actions.len();
    let noun = if count == 1 { "action" } else { "actions" };
    format!("{count} {noun}: {}", group.purpose)
}

fn print_summary(ctx: &Context, shown: &str) {
    ctx.ui.note(&format!("operator policy for an administrator to grant: {shown}"));
    for group in OPERATOR_GROUPS {
        ctx.ui.note(&format!("  {:<24} {}", group.sid, summary_line(group)));
    }
}
