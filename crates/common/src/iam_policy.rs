//! The worker's IAM documents, defined once for step-010, step-011 and teardown.
//!
//! [`Scope`] holds the names and ARNs of one deployment. From it come the worker's trust
//! policy ([`trust_policy`]), its least-privilege policy ([`worker_policy`]) and the operator
//! policy an administrator grants to whoever runs the steps ([`operator_policy`]).
//! [`document`] compares documents the way IAM means them, and `remote` (feature `iam`)
//! reads what exists.

use serde_json::{Value, json};

use crate::settings::Settings;

pub mod document;
mod operator;
#[cfg(feature = "iam")]
pub mod remote;

pub use operator::{OPERATOR_GROUPS, OperatorGroup, operator_policy};

/// The step that creates the worker's IAM resources; their `CreatedBy` tag names it.
pub const SETUP_STEP: &str = "step-010-setup-iam-permissions";
/// The command that repairs the worker's IAM resources.
pub const SETUP_COMMAND: &str = "./scripts/step-010-setup-iam-permissions.sh";
/// The policy language version of every document.
pub const POLICY_VERSION: &str = "2012-10-17";
/// The AWS-managed policy that lets Session Manager reach the workers.
pub const SSM_CORE_POLICY: &str = "AmazonSSMManagedInstanceCore";
/// The operator policy file, inside the project's `.local` folder.
pub const OPERATOR_POLICY_FILE: &str = "operator-policy.json";
/// The service that may assume the worker role.
pub const EC2_SERVICE: &str = "ec2.amazonaws.com";
/// Path of the role, profile and policy.
pub const IAM_PATH: &str = "/";

/// Names and ARNs of one deployment, everything the IAM documents refer to.
#[derive(Debug, Clone)]
pub struct Scope {
    /// `aws`, `aws-cn` or `aws-us-gov`.
    pub partition: String,
    /// The deployment's region.
    pub region: String,
    /// The deployment's account.
    pub account: String,
    /// `<project>-<environment>`.
    pub prefix: String,
    /// Project name (the `Project` tag).
    pub project: String,
    /// Environment name (the `Environment` tag).
    pub environment: String,
    /// The bucket.
    pub bucket: String,
    /// Job queue ARN.
    pub queue_arn: String,
    /// Dead-letter queue ARN.
    pub dlq_arn: String,
    /// ECR repository name.
    pub repository: String,
    /// SSM parameter holding the Hugging Face token, if one is used.
    pub hf_token_parameter: Option<String>,
}

impl Scope {
    /// The scope of the deployment described by `settings` in `account`.
    ///
    /// Queue ARNs come from the settings once step-020 wrote them, else from the names.
    pub fn new(settings: &Settings, account: &str) -> Self {
        let partition = partition(&settings.region).to_string();
        let queue_arn = |arn: &Option<String>, name: &str| {
            arn.clone().unwrap_or_else(|| {
                format!("arn:{partition}:sqs:{}:{account}:{name}", settings.region)
            })
        };
        Self {
            queue_arn: queue_arn(&settings.queue.arn, &settings.queue.name),
            dlq_arn: queue_arn(&settings.queue.dlq_arn, &settings.queue.dlq_name),
            partition: partition.clone(),
            region: settings.region.clone(),
            account: account.to_string(),
            prefix: settings.prefix(),
            project: settings.project.clone(),
            environment: settings.environment.clone(),
            bucket: settings.bucket.clone(),
            repository: settings.ecr_repository.clone(),
            hf_token_parameter: settings.worker.hf_token_parameter.clone(),
        }
    }

    /// The worker role's name.
    pub fn role_name(&self) -> String {
        format!("{}-worker-role", self.prefix)
    }

    /// The worker instance profile's name.
    pub fn profile_name(&self) -> String {
        format!("{}-worker-profile", self.prefix)
    }

    /// The worker policy's name.
    pub fn policy_name(&self) -> String {
        format!("{}-worker-policy", self.prefix)
    }

    /// The worker policy's ARN.
    pub fn policy_arn(&self) -> String {
        format!("arn:{}:iam::{}:policy/{}", self.partition, self.account, self.policy_name())
    }

    /// The ARN of the AWS-managed Session Manager policy.
    pub fn ssm_core_policy_arn(&self) -> String {
        format!("arn:{}:iam::aws:policy/{SSM_CORE_POLICY}", self.partition)
    }

    /// The bucket's ARN.
    pub fn bucket_arn(&self) -> String {
        format!("arn:{}:s3:::{}", self.partition, self.bucket)
    }

    /// The ECR repository's ARN.
    pub fn repository_arn(&self) -> String {
        let Self { partition, region, account, repository, .. } = self;
        format!("arn:{partition}:ecr:{region}:{account}:repository/{repository}")
    }

    /// ARN pattern of the deployment's log groups, `/<prefix>/...`.
    pub fn log_groups_arn(&self) -> String {
        let Self { partition, region, account, prefix, .. } = self;
        format!("arn:{partition}:logs:{region}:{account}:log-group:/{prefix}/*")
    }

    /// ARN of the Hugging Face token parameter, if one is used.
    pub fn hf_token_parameter_arn(&self) -> Option<String> {
        let name = self.hf_token_parameter.as_deref()?.trim_start_matches('/');
        let Self { partition, region, account, .. } = self;
        Some(format!("arn:{partition}:ssm:{region}:{account}:parameter/{name}"))
    }
}

/// The AWS partition of `region`.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The bucket prefixes workers may list, and what they do there.
pub const WORKER_PREFIXES: [&str; 4] = ["bundles/*", "input/*", "output/*", "status/*"];

/// The worker role's trust policy: EC2 instances, nothing else.
pub fn trust_policy() -> Value {
    json!({
        "Version": POLICY_VERSION,
        "Statement": [{
            "Sid": "WorkersOnEc2",
            "Effect": "Allow",
            "Principal": { "Service": EC2_SERVICE },
            "Action": "sts:AssumeRole",
        }],
    })
}

/// The worker policy: only this deployment's queue, bucket prefixes, image and logs.
///
/// `ecr:GetAuthorizationToken` is the one action on `*`, because it has no resource.
pub fn worker_policy(scope: &Scope) -> Value {
    let object = |prefix: &str| format!("{}/{prefix}", scope.bucket_arn());
    let mut statements = vec![
        statement(
            "ReceiveJobs",
            &[
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ReceiveMessage",
            ],
            vec![scope.queue_arn.clone()],
        ),
        statement(
            "DeadLetterPoisonJobs",
            &["sqs:GetQueueAttributes", "sqs:SendMessage"],
            vec![scope.dlq_arn.clone()],
        ),
        statement("ReadInputAudio", &["s3:GetObject"], vec![object("input/*")]),
        statement("WriteTranscripts", &["s3:PutObject"], vec![object("output/*")]),
        statement(
            "ReadWriteWorkerStatus",
            &["s3:GetObject", "s3:PutObject"],
            vec![object("status/*")],
        ),
        statement("ReadDeploymentBundles", &["s3:GetObject"], vec![object("bundles/*")]),
        with_condition(
            statement("ListWorkerPrefixes", &["s3:ListBucket"], vec![scope.bucket_arn()]),
            json!({ "StringLike": { "s3:prefix": WORKER_PREFIXES } }),
        ),
        statement("LogInToEcr", &["ecr:GetAuthorizationToken"], vec!["*".to_string()]),
        statement(
            "PullWorkerImage",
            &["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            vec![scope.repository_arn()],
        ),
        statement(
            "WriteWorkerLogs",
            &["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            vec![scope.log_groups_arn()],
        ),
    ];
    if let Some(parameter) = scope.hf_token_parameter_arn() {
        statements.push(statement("ReadHuggingFaceToken", &["ssm:GetParameter"], vec![parameter]));
    }
    json!({ "Version": POLICY_VERSION, "Statement": statements })
}

/// One `Allow` statement.
pub fn statement(sid: &str, actions: &[&str], resources: Vec<String>) -> Value {
    json!({ "Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources })
}

/// `statement` with a `Condition` block.
pub fn with_condition(mut statement: Value, condition: Value) -> Value {
    if let Some(object) = statement.as_object_mut() {
        object.insert("Condition".to_string(), condition);
    }
    statement
}

/// The hint for an access-denied error: which policy to ask an administrator for.
pub fn access_denied_hint() -> String {
    format!(
        "your AWS identity lacks this permission; ask an administrator to grant the operator \
         policy in .local/{OPERATOR_POLICY_FILE} (write it without IAM rights with \
         `{SETUP_COMMAND} --operator-policy-only`)"
    )
}

/// Whether an AWS error code means the caller lacks a permission.
pub fn is_access_denied(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "Forbidden")
    )
}

#[cfg(test)]
mod tests;
