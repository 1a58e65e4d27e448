//! Worker images on this machine: the ones step-210 built and step-211 tagged for a push.
//!
//! They are found by repository name, the way those steps name them: `<ECR_REPOSITORY>`,
//! `<local registry>/<ECR_REPOSITORY>` in local mode, and `<ECR_REPOSITORY_URI>`. Only exact
//! repository names match, so images of other projects and environments are never touched.
//! Each tag is removed by name; the engine deletes an image when its last tag goes.

use std::time::Duration;

use anyhow::Context as _;
use common::registry::LocalRegistry;
use common::settings::Env;
use common::{Context, Mark, Report, Settings};

/// Time allowed for one `docker image` call.
const QUICK: Duration = Duration::from_secs(30);

/// The deployment's worker images on this machine.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// Image references (`repository:tag`), sorted.
    pub references: Vec<String>,
    /// Why the images could not be listed (no Docker engine answered), if so.
    pub unlisted: Option<String>,
}

/// The repository names the deployment's worker images carry on this machine.
pub fn repositories(ctx: &Context, settings: &Settings) -> anyhow::Result<Vec<String>> {
    let mut names = vec![settings.ecr_repository.clone()];
    if settings.is_local() {
        let registry = LocalRegistry::for_project(&ctx.project, &ctx.env)?;
        names.push(format!("{}/{}", registry.address(), settings.ecr_repository));
    }
    names.extend(settings.ecr_repository_uri.clone().filter(|uri| !uri.is_empty()));
    names.dedup();
    Ok(names)
}

/// Lists the deployment's worker images; an engine that does not answer lists none.
pub async fn find(ctx: &Context, settings: &Settings) -> anyhow::Result<Found> {
    let repositories = repositories(ctx, settings)?;
    let args: Vec<String> =
        ["image", "ls", "--format", "{{.Repository}}\t{{.Tag}}"].map(String::from).to_vec();
    match common::containers::run(&ctx.env, &args, QUICK).await {
        Ok(listing) => Ok(Found { references: matching(&listing, &repositories), unlisted: None }),
        Err(e) => Ok(Found { references: Vec::new(), unlisted: Some(format!("{e:#}")) }),
    }
}

/// The `repository:tag` references in `docker image ls` output whose repository is one of
/// `repositories` exactly; untagged images (`<none>`) belong to no one we can tell.
pub fn matching(listing: &str, repositories: &[String]) -> Vec<String> {
    let mut references: Vec<String> = listing
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter(|(repo, tag)| *tag != "<none>" && repositories.iter().any(|r| r == repo))
        .map(|(repo, tag)| format!("{repo}:{tag}"))
        .collect();
    references.sort();
    references.dedup();
    references
}

/// Removes each reference in `found`; one that cannot be removed is a problem in the report.
pub async fn delete(env: &Env, found: &Found, report: &mut Report) {
    for reference in &found.references {
        match remove(env, reference).await {
            Ok(()) => report.item(Mark::Deleted, "local image", reference),
            Err(e) => report.item(Mark::Problem, "local image", format!("{e:#}")),
        };
    }
}

async fn remove(env: &Env, reference: &str) -> anyhow::Result<()> {
    let args = ["image".to_string(), "rm".to_string(), reference.to_string()];
    common::containers::run(env, &args, QUICK)
        .await
        .with_context(|| format!("failed to remove image `{reference}`"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_repository_names_match() {
        let listing = "fleet-dev-worker\tlatest\n\
                       fleet-dev-worker\tabc123\n\
                       127.0.0.1:5050/fleet-dev-worker\tabc123\n\
                       fleet-prod-worker\tlatest\n\
                       fleet-dev-worker-old\tlatest\n\
                       other/fleet-dev-worker\tlatest\n\
                       fleet-dev-worker\t<none>\n\
                       <none>\t<none>\n";
        let repos = vec!["fleet-dev-worker".to_string(), "127.0.0.1:5050/fleet-dev-worker".into()];
        assert_eq!(
            matching(listing, &repos),
            vec![
                "127.0.0.1:5050/fleet-dev-worker:abc123",
                "fleet-dev-worker:abc123",
                "fleet-dev-worker:latest",
            ]
        );
    }
}
