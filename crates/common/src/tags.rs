//! The tags every created resource carries, so teardown finds them without a state file.

use crate::settings::Settings;

/// Tag naming the project.
pub const PROJECT: &str = "Project";
/// Tag naming the environment.
pub const ENVIRONMENT: &str = "Environment";
/// Tag naming the step that created the resource.
pub const CREATED_BY: &str = "CreatedBy";
/// Tag marking resources managed by this tool.
pub const MANAGED_BY: &str = "ManagedBy";
/// Value of [`MANAGED_BY`].
pub const MANAGED_BY_VALUE: &str = "transcribe-fleet";

/// The standard tags for a resource created by `step`, as key/value pairs.
pub fn standard(settings: &Settings, step: &str) -> Vec<(String, String)> {
    vec![
        (PROJECT.to_string(), settings.project.clone()),
        (ENVIRONMENT.to_string(), settings.environment.clone()),
        (CREATED_BY.to_string(), step.to_string()),
        (MANAGED_BY.to_string(), MANAGED_BY_VALUE.to_string()),
    ]
}

/// Whether `tags` mark a resource as belonging to this deployment.
pub fn belongs_to<'a>(
    settings: &Settings,
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> bool {
    let mut project = false;
    let mut environment = false;
    for (key, value) in tags {
        project |= key == PROJECT && value == settings.project;
        environment |= key == ENVIRONMENT && value == settings.environment;
    }
    project && environment
}
