//! The EC2 settings both paths need (step-100, and step-200 when Path A never ran), and their
//! validation (step-101).

use std::path::Path;

use common::{Mark, Report, Settings};

use crate::ami::{self, AmiSource};
use crate::network;
use crate::{Clients, ec2};

/// Options of the EC2 setup.
#[derive(Debug, Clone, Default)]
pub struct SetupOptions {
    /// Open SSH from this CIDR (`SSH_CIDR`), overriding the settings.
    pub ssh_cidr: Option<String>,
    /// Create a key pair named `<prefix>-worker-key` when `KEY_NAME` is empty.
    pub key_pair: bool,
}

/// Finds or makes the AMI, VPC, subnets, security group and key pair; reports each and returns
/// the `.env` values that changed.
pub async fn setup_ec2(
    clients: &Clients,
    settings: &Settings,
    step: &str,
    root: &Path,
    options: &SetupOptions,
    report: &mut Report,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let mut updates = Vec::new();
    let ec2 = &clients.ec2;
    let ami_id = resolve_ami(clients, settings, report).await?;
    if settings.ec2.ami_id.as_deref() != Some(ami_id.as_str()) {
        updates.push(("AMI_ID", ami_id));
    }

    let vpc_id = network::find_vpc(ec2, settings.ec2.vpc_id.as_deref()).await?;
    let mark = if settings.ec2.vpc_id.is_some() { Mark::Unchanged } else { Mark::Info };
    report.item(mark, "VPC", &vpc_id);
    if settings.ec2.vpc_id.as_deref() != Some(vpc_id.as_str()) {
        updates.push(("VPC_ID", vpc_id.clone()));
    }

    let subnets = network::subnets_per_zone(ec2, &vpc_id).await?;
    if subnets.is_empty() {
        anyhow::bail!("VPC `{vpc_id}` has no available subnet");
    }
    let ids: Vec<String> = subnets.iter().map(|s| s.id.clone()).collect();
    let configured_ok = !settings.ec2.subnet_ids.is_empty()
        && network::describe_subnets(ec2, &settings.ec2.subnet_ids)
            .await?
            .iter()
            .filter(|s| s.vpc_id == vpc_id)
            .count()
            == settings.ec2.subnet_ids.len();
    if configured_ok {
        report.item(Mark::Unchanged, "subnets", settings.ec2.subnet_ids.join(", "));
    } else {
        let zones: Vec<String> = subnets.iter().map(|s| format!("{} ({})", s.id, s.zone)).collect();
        report.item(Mark::Updated, "subnets", zones.join(", "));
        updates.push(("SUBNET_IDS", ids.join(",")));
    }

    let ssh_cidr = options.ssh_cidr.clone().or_else(|| settings.ec2.ssh_cidr.clone());
    let tags = common::tags::standard(settings, step);
    let name = crate::security_group_name(settings);
    let (group_id, mark) =
        network::ensure_security_group(ec2, &name, &vpc_id, ssh_cidr.as_deref(), &tags).await?;
    let inbound = ssh_cidr
        .as_deref()
        .map_or("no inbound rules".to_string(), |c| format!("SSH from {c} only"));
    report.item(mark, "security group", format!("{name} ({group_id}), {inbound}"));
    if settings.ec2.security_group_id.as_deref() != Some(group_id.as_str()) {
        updates.push(("SECURITY_GROUP_ID", group_id));
    }
    if options.ssh_cidr.is_some() && options.ssh_cidr != settings.ec2.ssh_cidr {
        updates.push(("SSH_CIDR", options.ssh_cidr.clone().unwrap_or_default()));
    }

    let key_name = settings
        .ec2
        .key_name
        .clone()
        .or_else(|| options.key_pair.then(|| format!("{}-worker-key", settings.prefix())));
    match key_name {
        Some(key) => {
            let (mark, note) = network::ensure_key_pair(ec2, &key, root, &tags).await?;
            report.item(mark, "key pair", note.map_or(key.clone(), |n| format!("{key}: {n}")));
            if settings.ec2.key_name.as_deref() != Some(key.as_str()) {
                updates.push(("KEY_NAME", key));
            }
        }
        None => {
            report.item(
                Mark::Skipped,
                "key pair",
                "none; workers are reached through Session Manager",
            );
        }
    }
    report.item(Mark::Info, "instance types", settings.ec2.instance_types.join(", "));
    report.item(
        Mark::Info,
        "root volume",
        format!("{} GiB encrypted gp3", settings.ec2.root_volume_gb),
    );
    Ok(updates)
}

async fn resolve_ami(
    clients: &Clients,
    settings: &Settings,
    report: &mut Report,
) -> anyhow::Result<String> {
    if let Some(id) = &settings.ec2.ami_id {
        match ami::describe_ami(&clients.ec2, id).await? {
            Some(found) if ami::unusable_reason(&found).is_none() => {
                report.item(
                    Mark::Unchanged,
                    "AMI",
                    format!("{id} ({}) {}", found.name, AmiSource::Configured.describe()),
                );
                return Ok(id.clone());
            }
            _ => report.item(
                Mark::Info,
                "AMI",
                format!(
                    "{id} is not usable in {}; looking up this region's GPU AMI (C26)",
                    settings.region
                ),
            ),
        };
    }
    let (found, source) = ami::find_gpu_ami(&clients.ec2, &clients.ssm, &settings.region).await?;
    report.item(
        Mark::Updated,
        "AMI",
        format!("{} ({}) {}", found.id, found.name, source.describe()),
    );
    Ok(found.id)
}

/// Checks the EC2 settings as step-101 does, adding a line per check to `report`.
pub async fn validate_ec2(
    clients: &Clients,
    settings: &Settings,
    report: &mut Report,
) -> anyhow::Result<()> {
    let ec2 = &clients.ec2;
    match &settings.ec2.ami_id {
        None => {
            report.item(Mark::Problem, "AMI", "AMI_ID is empty; run step-100");
        }
        Some(id) => match ami::describe_ami(ec2, id).await? {
            None => {
                report.item(
                    Mark::Problem,
                    "AMI",
                    format!(
                        "{id} does not exist in {} (AMI ids are per region); run step-100 \
                         to find this region's",
                        settings.region
                    ),
                );
            }
            Some(found) => match ami::unusable_reason(&found) {
                Some(reason) => {
                    report.item(Mark::Problem, "AMI", reason);
                }
                None => {
                    report.item(Mark::Passed, "AMI", format!("{id} ({}) available", found.name));
                }
            },
        },
    };
    let vpc = settings.ec2.vpc_id.clone().unwrap_or_default();
    let subnets = network::describe_subnets(ec2, &settings.ec2.subnet_ids).await?;
    if settings.ec2.subnet_ids.is_empty() {
        report.item(Mark::Problem, "subnets", "SUBNET_IDS is empty; run step-100");
    }
    for id in &settings.ec2.subnet_ids {
        match subnets.iter().find(|s| &s.id == id) {
            None => report.item(Mark::Problem, "subnet", format!("{id} does not exist")),
            Some(s) if !vpc.is_empty() && s.vpc_id != vpc => report.item(
                Mark::Problem,
                "subnet",
                format!("{id} is in {}, not in VPC_ID {vpc}", s.vpc_id),
            ),
            Some(s) => {
                report.item(Mark::Passed, "subnet", format!("{id} in {} ({})", s.zone, s.vpc_id))
            }
        };
    }
    let zones: Vec<String> = subnets.iter().map(|s| s.zone.clone()).collect();
    for instance_type in &settings.ec2.instance_types {
        let offered = offered_zones(ec2, instance_type, &zones).await?;
        if offered.is_empty() {
            report.item(
                Mark::Problem,
                "instance type",
                format!("{instance_type} is not offered in {}", zones.join(", ")),
            );
        } else {
            report.item(
                Mark::Passed,
                "instance type",
                format!("{instance_type} offered in {}", offered.join(", ")),
            );
        }
    }
    match &settings.ec2.security_group_id {
        None => {
            report.item(
                Mark::Problem,
                "security group",
                "SECURITY_GROUP_ID is empty; run step-100",
            );
        }
        Some(id) => match network::describe_security_group(ec2, id).await? {
            None => {
                report.item(
                    Mark::Problem,
                    "security group",
                    format!("{id} does not exist; run step-100"),
                );
            }
            Some(group) => {
                let intended = network::intended_inbound(settings.ec2.ssh_cidr.as_deref());
                if group.inbound == intended {
                    let what = if intended.is_empty() {
                        "no inbound rules".to_string()
                    } else {
                        intended.join(", ")
                    };
                    report.item(Mark::Passed, "security group", format!("{id}: {what}"));
                } else {
                    report.item(
                        Mark::Problem,
                        "security group",
                        format!(
                            "{id} allows {:?}, intended {:?}; run step-100 to repair",
                            group.inbound, intended
                        ),
                    );
                }
            }
        },
    };
    Ok(())
}

async fn offered_zones(
    ec2: &ec2::Client,
    instance_type: &str,
    zones: &[String],
) -> anyhow::Result<Vec<String>> {
    use common::aws::SdkResultExt as _;
    let out = ec2
        .describe_instance_type_offerings()
        .location_type(ec2::types::LocationType::AvailabilityZone)
        .filters(ec2::types::Filter::builder().name("instance-type").values(instance_type).build())
        .send()
        .await
        .aws_context(|| format!("failed to read where `{instance_type}` is offered"))?;
    let mut offered: Vec<String> = out
        .instance_type_offerings()
        .iter()
        .filter_map(|o| o.location())
        .filter(|z| zones.iter().any(|zone| zone == z))
        .map(str::to_string)
        .collect();
    offered.sort();
    offered.dedup();
    Ok(offered)
}
