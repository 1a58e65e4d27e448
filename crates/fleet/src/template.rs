//! The launch template of a path: everything about a worker except its type and subnet.
//!
//! IMDSv2 is required with a hop limit of 2 so a container can still reach the metadata
//! service (C24); the root volume is encrypted gp3 of `ROOT_VOLUME_GB`; an instance that shuts
//! itself down (idle worker) is terminated, not left stopped; the instance profile gives the
//! worker its permissions. A changed spec becomes a new template version that is made the
//! default; an unchanged spec leaves the template alone (the version description carries a
//! fingerprint of the spec).

use common::Mark;
use common::aws::{SdkResultExt, error_code};
use sha2::{Digest, Sha256};

use crate::ec2;
use crate::ec2::types::{
    LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
    LaunchTemplateHttpTokensState, LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMetadataEndpointState, LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateInstanceMetadataTagsState, LaunchTemplateTagSpecificationRequest,
    RequestLaunchTemplateData, ResourceType, ShutdownBehavior, VolumeType,
};

/// What a launch template holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSpec {
    /// Template name.
    pub name: String,
    /// The AMI.
    pub ami_id: String,
    /// Root device name of the AMI.
    pub root_device: String,
    /// Root volume size in GiB.
    pub root_volume_gb: u32,
    /// The workers' security group.
    pub security_group_id: String,
    /// Optional key pair.
    pub key_name: Option<String>,
    /// The worker instance profile's name.
    pub instance_profile: String,
    /// Raw (not base64) user data, already size-checked.
    pub user_data: String,
    /// Tags of the template, its instances and their volumes.
    pub tags: Vec<(String, String)>,
}

impl TemplateSpec {
    /// A short fingerprint of everything in the spec, kept as the version description.
    pub fn fingerprint(&self) -> String {
        let mut hash = Sha256::new();
        for part in [
            &self.ami_id,
            &self.root_device,
            &self.root_volume_gb.to_string(),
            &self.security_group_id,
            self.key_name.as_deref().unwrap_or(""),
            &self.instance_profile,
            &self.user_data,
        ] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        for (k, v) in &self.tags {
            hash.update(format!("{k}={v}\n").as_bytes());
        }
        let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        format!("spec {}", &hex[..16])
    }

    fn data(&self) -> RequestLaunchTemplateData {
        let tags = crate::ec2_tags(&self.tags);
        let tag_spec = |resource| {
            LaunchTemplateTagSpecificationRequest::builder()
                .resource_type(resource)
                .set_tags(Some(tags.clone()))
                .build()
        };
        let root = LaunchTemplateBlockDeviceMappingRequest::builder()
            .device_name(&self.root_device)
            .ebs(
                LaunchTemplateEbsBlockDeviceRequest::builder()
                    .volume_size(self.root_volume_gb as i32)
                    .volume_type(VolumeType::Gp3)
                    .encrypted(true)
                    .delete_on_termination(true)
                    .build(),
            )
            .build();
        let metadata = LaunchTemplateInstanceMetadataOptionsRequest::builder()
            .http_tokens(LaunchTemplateHttpTokensState::Required)
            .http_put_response_hop_limit(2)
            .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
            .instance_metadata_tags(LaunchTemplateInstanceMetadataTagsState::Enabled)
            .build();
        RequestLaunchTemplateData::builder()
            .image_id(&self.ami_id)
            .security_group_ids(&self.security_group_id)
            .set_key_name(self.key_name.clone())
            .iam_instance_profile(
                LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                    .name(&self.instance_profile)
                    .build(),
            )
            .block_device_mappings(root)
            .metadata_options(metadata)
            .instance_initiated_shutdown_behavior(ShutdownBehavior::Terminate)
            .user_data(aws_smithy_types::base64::encode(self.user_data.as_bytes()))
            .tag_specifications(tag_spec(ResourceType::Instance))
            .tag_specifications(tag_spec(ResourceType::Volume))
            .build()
    }
}

/// A launch template and the version to launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Its id.
    pub id: String,
    /// The default version number.
    pub version: i64,
}

/// The template named `name`, if it exists.
pub async fn find_template(ec2: &ec2::Client, name: &str) -> anyhow::Result<Option<Template>> {
    match ec2.describe_launch_templates().launch_template_names(name).send().await {
        Ok(out) => Ok(out.launch_templates().first().map(|t| Template {
            id: t.launch_template_id().unwrap_or_default().to_string(),
            version: t.default_version_number().unwrap_or(1),
        })),
        Err(e) if error_code(&e).is_some_and(|c| c.starts_with("InvalidLaunchTemplateName")) => {
            Ok(None)
        }
        Err(e) => Err(e).aws_context(|| format!("failed to look up launch template `{name}`")),
    }
}

/// Creates the template, or a new default version when the spec changed.
pub async fn ensure_template(
    ec2: &ec2::Client,
    spec: &TemplateSpec,
) -> anyhow::Result<(Template, Mark)> {
    let fingerprint = spec.fingerprint();
    let Some(existing) = find_template(ec2, &spec.name).await? else {
        let out = ec2
            .create_launch_template()
            .launch_template_name(&spec.name)
            .version_description(&fingerprint)
            .launch_template_data(spec.data())
            .tag_specifications(crate::tag_spec(ResourceType::LaunchTemplate, &spec.tags))
            .send()
            .await
            .aws_context(|| format!("failed to create launch template `{}`", spec.name))?;
        let t = out.launch_template();
        let template = Template {
            id: t.and_then(|t| t.launch_template_id()).unwrap_or_default().to_string(),
            version: t.and_then(|t| t.default_version_number()).unwrap_or(1),
        };
        return Ok((template, Mark::Created));
    };
    if default_description(ec2, &existing).await?.as_deref() == Some(fingerprint.as_str()) {
        return Ok((existing, Mark::Unchanged));
    }
    let out = ec2
        .create_launch_template_version()
        .launch_template_id(&existing.id)
        .version_description(&fingerprint)
        .launch_template_data(spec.data())
        .send()
        .await
        .aws_context(|| format!("failed to add a version to launch template `{}`", spec.name))?;
    let version = out
        .launch_template_version()
        .and_then(|v| v.version_number())
        .unwrap_or(existing.version + 1);
    ec2.modify_launch_template()
        .launch_template_id(&existing.id)
        .default_version(version.to_string())
        .send()
        .await
        .aws_context(|| {
            format!("failed to make version {version} of `{}` the default", spec.name)
        })?;
    Ok((Template { id: existing.id, version }, Mark::Updated))
}

async fn default_description(
    ec2: &ec2::Client,
    template: &Template,
) -> anyhow::Result<Option<String>> {
    let out = ec2
        .describe_launch_template_versions()
        .launch_template_id(&template.id)
        .versions(template.version.to_string())
        .send()
        .await
        .aws_context(|| format!("failed to read launch template `{}`", template.id))?;
    Ok(out
        .launch_template_versions()
        .first()
        .and_then(|v| v.version_description())
        .map(str::to_string))
}

/// The launch settings of the template's default version, for validation.
pub async fn default_data(
    ec2: &ec2::Client,
    template: &Template,
) -> anyhow::Result<Option<ec2::types::ResponseLaunchTemplateData>> {
    let out = ec2
        .describe_launch_template_versions()
        .launch_template_id(&template.id)
        .versions(template.version.to_string())
        .send()
        .await
        .aws_context(|| format!("failed to read launch template `{}`", template.id))?;
    Ok(out.launch_template_versions().first().and_then(|v| v.launch_template_data()).cloned())
}
