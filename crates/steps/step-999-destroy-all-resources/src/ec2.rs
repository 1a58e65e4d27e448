//! Launch templates, the security group and the key pair: found by tags and by name.

use std::path::Path;
use std::time::{Duration, Instant};

use common::aws::{SdkResultExt, error_code};
use common::deployment_path::DeploymentPath;
use common::ui::Ui;
use common::{Mark, Report, Settings, tags};
use fleet::ec2;
use fleet::ec2::types::Filter;

/// How long a security group may stay in use by terminated instances' network interfaces.
const GROUP_RELEASE: Duration = Duration::from_secs(180);

/// An EC2 resource by id and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// Its id (the name for key pairs).
    pub id: String,
    /// Its name.
    pub name: String,
}

/// The EC2 resources of the deployment, other than instances.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// Launch templates.
    pub templates: Vec<Named>,
    /// Security groups.
    pub groups: Vec<Named>,
    /// Key pairs.
    pub key_pairs: Vec<Named>,
}

fn tag_filters(settings: &Settings) -> [Filter; 2] {
    let f =
        |key: &str, value: &str| Filter::builder().name(format!("tag:{key}")).values(value).build();
    [f(tags::PROJECT, &settings.project), f(tags::ENVIRONMENT, &settings.environment)]
}

fn push(list: &mut Vec<Named>, item: Named) {
    if !list.iter().any(|n| n.id == item.id) {
        list.push(item);
    }
}

/// Name of the key pair step-100 creates with `--key-pair`.
pub fn key_pair_name(settings: &Settings) -> String {
    format!("{}-worker-key", settings.prefix())
}

/// Finds the launch templates, security groups and key pairs by tags and by their names.
pub async fn find(ec2: &ec2::Client, settings: &Settings) -> anyhow::Result<Found> {
    let mut found = Found::default();
    let [project, environment] = tag_filters(settings);
    let out = ec2
        .describe_launch_templates()
        .filters(project.clone())
        .filters(environment.clone())
        .send()
        .await
        .aws_context(|| "failed to list the launch templates".to_string())?;
    for t in out.launch_templates() {
        let id = t.launch_template_id().unwrap_or_default().to_string();
        push(
            &mut found.templates,
            Named { id, name: t.launch_template_name().unwrap_or_default().into() },
        );
    }
    for path in DeploymentPath::ALL {
        let name = fleet::launch_template_name(settings, path);
        if let Some(t) = fleet::template::find_template(ec2, &name).await? {
            push(&mut found.templates, Named { id: t.id, name });
        }
    }

    let name = fleet::security_group_name(settings);
    let by_name = Filter::builder().name("group-name").values(&name).build();
    for filters in [vec![project.clone(), environment.clone()], vec![by_name]] {
        let out = ec2
            .describe_security_groups()
            .set_filters(Some(filters))
            .send()
            .await
            .aws_context(|| "failed to list the security groups".to_string())?;
        for g in out.security_groups() {
            let id = g.group_id().unwrap_or_default().to_string();
            push(&mut found.groups, Named { id, name: g.group_name().unwrap_or_default().into() });
        }
    }

    let out = ec2
        .describe_key_pairs()
        .filters(project)
        .filters(environment)
        .send()
        .await
        .aws_context(|| "failed to list the key pairs".to_string())?;
    let mut names: Vec<String> =
        out.key_pairs().iter().filter_map(|k| k.key_name()).map(str::to_string).collect();
    let ours = key_pair_name(settings);
    match ec2.describe_key_pairs().key_names(&ours).send().await {
        Ok(out) if !out.key_pairs().is_empty() => names.push(ours),
        Ok(_) => {}
        Err(e) if error_code(&e) == Some("InvalidKeyPair.NotFound") => {}
        Err(e) => return Err(e).aws_context(|| format!("failed to look up key pair `{ours}`")),
    }
    for name in names {
        push(&mut found.key_pairs, Named { id: name.clone(), name });
    }
    Ok(found)
}

/// Deletes the templates, then the security groups (waiting while terminated instances
/// release them), then the key pairs and their private key files.
pub async fn delete(
    ec2: &ec2::Client,
    root: &Path,
    found: &Found,
    ui: &Ui,
    report: &mut Report,
) -> anyhow::Result<()> {
    for t in &found.templates {
        match ec2.delete_launch_template().launch_template_id(&t.id).send().await {
            Err(e) if error_code(&e).is_some_and(|c| c.contains("NotFound")) => {}
            other => {
                other.aws_context(|| format!("failed to delete launch template `{}`", t.name))?;
            }
        }
        report.item(Mark::Deleted, "launch template", format!("{} ({})", t.name, t.id));
    }
    for g in &found.groups {
        delete_group(ec2, g, ui).await?;
        report.item(Mark::Deleted, "security group", format!("{} ({})", g.name, g.id));
    }
    for k in &found.key_pairs {
        ec2.delete_key_pair()
            .key_name(&k.name)
            .send()
            .await
            .aws_context(|| format!("failed to delete key pair `{}`", k.name))?;
        report.item(Mark::Deleted, "key pair", &k.name);
        let pem = fleet::network::private_key_path(root, &k.name);
        if pem.exists() {
            std::fs::remove_file(&pem)
                .map_err(|e| anyhow::anyhow!("failed to delete `{}`: {e}", pem.display()))?;
            report.item(
                Mark::Deleted,
                "private key",
                format!("{} (its key pair is gone)", pem.display()),
            );
        }
    }
    Ok(())
}

/// Deletes a security group, retrying while EC2 still counts it as in use.
async fn delete_group(ec2: &ec2::Client, group: &Named, ui: &Ui) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut spinner = None;
    loop {
        match ec2.delete_security_group().group_id(&group.id).send().await {
            Ok(_) => break,
            Err(e) if error_code(&e) == Some("InvalidGroup.NotFound") => break,
            Err(e)
                if error_code(&e) == Some("DependencyViolation")
                    && started.elapsed() < GROUP_RELEASE =>
            {
                spinner.get_or_insert_with(|| {
                    ui.spinner(&format!("waiting until `{}` is no longer in use", group.name))
                });
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            Err(e) => {
                return Err(e)
                    .aws_context(|| format!("failed to delete security group `{}`", group.id));
            }
        }
    }
    if let Some(spinner) = spinner {
        spinner.finish(&format!("`{}` released", group.name));
    }
    Ok(())
}
