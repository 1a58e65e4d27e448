//! Where workers run: the VPC, one subnet per availability zone, the security group and the
//! optional key pair.
//!
//! The security group has no inbound rules: operators reach workers through Session Manager.
//! Only when `SSH_CIDR` is set is port 22 opened, and only to that CIDR.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use common::aws::{SdkResultExt, error_code};
use common::{HintExt, Mark};

use crate::ec2;
use crate::ec2::types::{Filter, IpPermission, IpRange, ResourceType};

/// A subnet and its zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    /// The id.
    pub id: String,
    /// Its availability zone.
    pub zone: String,
    /// Its VPC.
    pub vpc_id: String,
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// The configured VPC, or the region's default VPC.
pub async fn find_vpc(ec2: &ec2::Client, configured: Option<&str>) -> anyhow::Result<String> {
    let request = match configured {
        Some(id) => ec2.describe_vpcs().vpc_ids(id),
        None => ec2.describe_vpcs().filters(filter("isDefault", "true")),
    };
    let out = match request.send().await {
        Err(e) if error_code(&e) == Some("InvalidVpcID.NotFound") => None,
        other => Some(other.aws_context(|| "failed to describe the VPCs".to_string())?),
    };
    let found = out.and_then(|o| o.vpcs().first().and_then(|v| v.vpc_id()).map(str::to_string));
    match (found, configured) {
        (Some(id), _) => Ok(id),
        (None, Some(id)) => Err(anyhow::anyhow!("VPC `{id}` does not exist in this region"))
            .hint("correct VPC_ID in .env, or empty it to use the default VPC"),
        (None, None) => Err(anyhow::anyhow!("this region has no default VPC"))
            .hint("set VPC_ID in .env to the VPC the workers should run in"),
    }
}

/// One subnet per availability zone of `vpc_id`, by zone; default-for-zone subnets first.
pub async fn subnets_per_zone(ec2: &ec2::Client, vpc_id: &str) -> anyhow::Result<Vec<Subnet>> {
    let out = ec2
        .describe_subnets()
        .filters(filter("vpc-id", vpc_id))
        .send()
        .await
        .aws_context(|| format!("failed to list the subnets of `{vpc_id}`"))?;
    let mut all: Vec<(bool, Subnet)> = out
        .subnets()
        .iter()
        .filter(|s| s.state().is_none_or(|st| st.as_str() == "available"))
        .map(|s| (!s.default_for_az().unwrap_or(false), subnet_of(s)))
        .collect();
    all.sort_by(|a, b| (&a.1.zone, a.0, &a.1.id).cmp(&(&b.1.zone, b.0, &b.1.id)));
    let mut picked: Vec<Subnet> = Vec::new();
    for (_, subnet) in all {
        if picked.last().is_none_or(|p| p.zone != subnet.zone) {
            picked.push(subnet);
        }
    }
    Ok(picked)
}

fn subnet_of(s: &ec2::types::Subnet) -> Subnet {
    Subnet {
        id: s.subnet_id().unwrap_or_default().to_string(),
        zone: s.availability_zone().unwrap_or_default().to_string(),
        vpc_id: s.vpc_id().unwrap_or_default().to_string(),
    }
}

/// The subnets `ids`, as they are; ids the region does not know are left out.
pub async fn describe_subnets(ec2: &ec2::Client, ids: &[String]) -> anyhow::Result<Vec<Subnet>> {
    let mut found = Vec::new();
    for id in ids {
        match ec2.describe_subnets().subnet_ids(id).send().await {
            Ok(out) => found.extend(out.subnets().iter().map(subnet_of)),
            Err(e) if error_code(&e) == Some("InvalidSubnetID.NotFound") => {}
            Err(e) => return Err(e).aws_context(|| format!("failed to describe subnet `{id}`")),
        }
    }
    Ok(found)
}

/// The security group as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRules {
    /// Its id.
    pub id: String,
    /// Its VPC.
    pub vpc_id: String,
    /// Inbound rules as `proto:from-to:source`.
    pub inbound: Vec<String>,
}

/// The inbound rules the group should have: none, or SSH from `ssh_cidr`.
pub fn intended_inbound(ssh_cidr: Option<&str>) -> Vec<String> {
    ssh_cidr.map(|cidr| format!("tcp:22-22:{cidr}")).into_iter().collect()
}

/// The workers' security group named `name` in `vpc_id`, if it exists.
pub async fn find_security_group(
    ec2: &ec2::Client,
    name: &str,
    vpc_id: &str,
) -> anyhow::Result<Option<GroupRules>> {
    let out = ec2
        .describe_security_groups()
        .filters(filter("group-name", name))
        .filters(filter("vpc-id", vpc_id))
        .send()
        .await
        .aws_context(|| format!("failed to look up security group `{name}`"))?;
    Ok(out.security_groups().first().map(rules_of))
}

/// The security group `id`, if it exists.
pub async fn describe_security_group(
    ec2: &ec2::Client,
    id: &str,
) -> anyhow::Result<Option<GroupRules>> {
    match ec2.describe_security_groups().group_ids(id).send().await {
        Ok(out) => Ok(out.security_groups().first().map(rules_of)),
        Err(e) if error_code(&e) == Some("InvalidGroup.NotFound") => Ok(None),
        Err(e) => Err(e).aws_context(|| format!("failed to describe security group `{id}`")),
    }
}

fn rules_of(group: &ec2::types::SecurityGroup) -> GroupRules {
    let mut inbound = Vec::new();
    for p in group.ip_permissions() {
        let proto = p.ip_protocol().unwrap_or("-1");
        let ports = format!("{}-{}", p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1));
        for range in p.ip_ranges() {
            inbound.push(format!("{proto}:{ports}:{}", range.cidr_ip().unwrap_or_default()));
        }
        for pair in p.user_id_group_pairs() {
            inbound.push(format!("{proto}:{ports}:{}", pair.group_id().unwrap_or_default()));
        }
        for range in p.ipv6_ranges() {
            inbound.push(format!("{proto}:{ports}:{}", range.cidr_ipv6().unwrap_or_default()));
        }
    }
    inbound.sort();
    GroupRules {
        id: group.group_id().unwrap_or_default().to_string(),
        vpc_id: group.vpc_id().unwrap_or_default().to_string(),
        inbound,
    }
}

/// Creates the security group if missing and makes its inbound rules the intended ones.
pub async fn ensure_security_group(
    ec2: &ec2::Client,
    name: &str,
    vpc_id: &str,
    ssh_cidr: Option<&str>,
    tags: &[(String, String)],
) -> anyhow::Result<(String, Mark)> {
    let (group, mut mark) = match find_security_group(ec2, name, vpc_id).await? {
        Some(group) => (group, Mark::Unchanged),
        None => {
            let out = ec2
                .create_security_group()
                .group_name(name)
                .description("transcription workers: no inbound ports (Session Manager)")
                .vpc_id(vpc_id)
                .tag_specifications(crate::tag_spec(ResourceType::SecurityGroup, tags))
                .send()
                .await
                .aws_context(|| format!("failed to create security group `{name}`"))?;
            let id = out.group_id().unwrap_or_default().to_string();
            let group = GroupRules { id, vpc_id: vpc_id.to_string(), inbound: Vec::new() };
            (group, Mark::Created)
        }
    };
    let intended = intended_inbound(ssh_cidr);
    if group.inbound != intended {
        replace_inbound(ec2, &group, ssh_cidr).await?;
        if mark == Mark::Unchanged {
            mark = Mark::Updated;
        }
    }
    Ok((group.id, mark))
}

async fn replace_inbound(
    ec2: &ec2::Client,
    group: &GroupRules,
    ssh_cidr: Option<&str>,
) -> anyhow::Result<()> {
    let current = ec2
        .describe_security_groups()
        .group_ids(&group.id)
        .send()
        .await
        .aws_context(|| format!("failed to describe security group `{}`", group.id))?;
    let permissions: Vec<IpPermission> =
        current.security_groups().first().map(|g| g.ip_permissions().to_vec()).unwrap_or_default();
    if !permissions.is_empty() {
        ec2.revoke_security_group_ingress()
            .group_id(&group.id)
            .set_ip_permissions(Some(permissions))
            .send()
            .await
            .aws_context(|| format!("failed to remove inbound rules of `{}`", group.id))?;
    }
    if let Some(cidr) = ssh_cidr {
        let ssh = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(22)
            .to_port(22)
            .ip_ranges(IpRange::builder().cidr_ip(cidr).description("operator SSH").build())
            .build();
        ec2.authorize_security_group_ingress()
            .group_id(&group.id)
            .ip_permissions(ssh)
            .send()
            .await
            .aws_context(|| format!("failed to allow SSH from `{cidr}` in `{}`", group.id))?;
    }
    Ok(())
}

/// Where the private key of key pair `name` is kept: `<project>/<name>.pem` (git-ignored).
pub fn private_key_path(root: &Path, name: &str) -> PathBuf {
    root.join(format!("{name}.pem"))
}

/// Creates key pair `name` if missing, writing its private key with mode 0600.
///
/// Returns the mark and a note when the pair exists but its private key is not on this machine
/// (AWS shows a private key only once).
pub async fn ensure_key_pair(
    ec2: &ec2::Client,
    name: &str,
    root: &Path,
    tags: &[(String, String)],
) -> anyhow::Result<(Mark, Option<String>)> {
    let path = private_key_path(root, name);
    match ec2.describe_key_pairs().key_names(name).send().await {
        Ok(_) if path.exists() => return Ok((Mark::Unchanged, None)),
        Ok(_) => {
            let note = format!(
                "key pair `{name}` exists but {} is not here; use Session Manager, or delete \
                 the key pair and run again",
                path.display()
            );
            return Ok((Mark::Unchanged, Some(note)));
        }
        Err(e) if error_code(&e) == Some("InvalidKeyPair.NotFound") => {}
        Err(e) => return Err(e).aws_context(|| format!("failed to look up key pair `{name}`")),
    }
    let out = ec2
        .create_key_pair()
        .key_name(name)
        .tag_specifications(crate::tag_spec(ResourceType::KeyPair, tags))
        .send()
        .await
        .aws_context(|| format!("failed to create key pair `{name}`"))?;
    let material = out.key_material().context("CreateKeyPair returned no private key")?;
    write_private_key(&path, material)?;
    Ok((Mark::Created, Some(format!("private key written to {} (mode 600)", path.display()))))
}

fn write_private_key(path: &Path, material: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file =
        options.open(path).with_context(|| format!("failed to create `{}`", path.display()))?;
    file.write_all(material.as_bytes())
        .with_context(|| format!("failed to write `{}`", path.display()))
}
