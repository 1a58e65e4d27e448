//! The operator policy: exactly what the steps call, for whoever runs them.
//!
//! One list, [`OPERATOR_GROUPS`]; a step that calls a new action adds it here. Resources
//! are templates: `{partition}`, `{region}`, `{account}`, `{prefix}`, `{project}`,
//! `{environment}`, `{bucket}`, `{queue_arn}`, `{dlq_arn}`, `{repository}` and
//! `{hf_parameter_arn}` (a resource naming it is left out when no parameter is set).

use serde_json::{Value, json};

use super::{POLICY_VERSION, Scope};

/// One statement of the operator policy.
#[derive(Debug, Clone, Copy)]
pub struct OperatorGroup {
    /// The statement's `Sid`.
    pub sid: &'static str,
    /// What the steps do with it, for the printed summary.
    pub purpose: &'static str,
    /// The actions.
    pub actions: &'static [&'static str],
    /// Resource templates.
    pub resources: &'static [&'static str],
    /// An optional `Condition` block as a JSON template.
    pub condition: Option<&'static str>,
}

const fn group(
    sid: &'static str,
    purpose: &'static str,
    actions: &'static [&'static str],
    resources: &'static [&'static str],
) -> OperatorGroup {
    OperatorGroup { sid, purpose, actions, resources, condition: None }
}

const fn when(mut group: OperatorGroup, condition: &'static str) -> OperatorGroup {
    group.condition = Some(condition);
    group
}

const ROLES: &str = "arn:{partition}:iam::{account}:role/{prefix}-*";
const TAGGED: &str = r#"{"StringEquals": {"aws:ResourceTag/Project": "{project}",
    "aws:ResourceTag/Environment": "{environment}"}}"#;

/// Every statement of the operator policy, in the order the steps need them.
pub const OPERATOR_GROUPS: &[OperatorGroup] = &[
    group(
        "ReadCallerIdentity",
        "check the credentials and the account",
        &["sts:GetCallerIdentity"],
        &["*"],
    ),
    group(
        "ManageWorkerRole",
        "create, check, repair and delete the worker role",
        &[
            "iam:CreateRole",
            "iam:DeleteRole",
            "iam:DeleteRolePolicy",
            "iam:DetachRolePolicy",
            "iam:GetRole",
            "iam:ListAttachedRolePolicies",
            "iam:ListInstanceProfilesForRole",
            "iam:ListRolePolicies",
            "iam:TagRole",
            "iam:UntagRole",
            "iam:UpdateAssumeRolePolicy",
        ],
        &[ROLES],
    ),
    when(
        group(
            "AttachWorkerPolicies",
            "attach only the worker policy and Session Manager",
            &["iam:AttachRolePolicy"],
            &[ROLES],
        ),
        r#"{"ArnLike": {"iam:PolicyARN": ["arn:{partition}:iam::{account}:policy/{prefix}-*",
            "arn:{partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"]}}"#,
    ),
    when(
        group("PassWorkerRole", "launch workers with the worker role", &["iam:PassRole"], &[ROLES]),
        r#"{"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}"#,
    ),
    group(
        "ManageWorkerPolicy",
        "create, version and delete the worker policy",
        &[
            "iam:CreatePolicy",
            "iam:CreatePolicyVersion",
            "iam:DeletePolicy",
            "iam:DeletePolicyVersion",
            "iam:GetPolicy",
            "iam:GetPolicyVersion",
            "iam:ListPolicyVersions",
            "iam:TagPolicy",
            "iam:UntagPolicy",
        ],
        &["arn:{partition}:iam::{account}:policy/{prefix}-*"],
    ),
    group(
        "ManageWorkerProfile",
        "create, repair and delete the worker instance profile",
        &[
            "iam:AddRoleToInstanceProfile",
            "iam:CreateInstanceProfile",
            "iam:DeleteInstanceProfile",
            "iam:GetInstanceProfile",
            "iam:RemoveRoleFromInstanceProfile",
            "iam:TagInstanceProfile",
            "iam:UntagInstanceProfile",
        ],
        &["arn:{partition}:iam::{account}:instance-profile/{prefix}-*"],
    ),
    when(
        group(
            "CreateSpotServiceRole",
            "let EC2 create its spot service role once",
            &["iam:CreateServiceLinkedRole"],
            &["arn:{partition}:iam::{account}:role/aws-service-role/spot.amazonaws.com/*"],
        ),
        r#"{"StringEquals": {"iam:AWSServiceName": "spot.amazonaws.com"}}"#,
    ),
    group(
        "ManageQueues",
        "create, check, self-test and delete the job queue and DLQ",
        &[
            "sqs:ChangeMessageVisibility",
            "sqs:CreateQueue",
            "sqs:DeleteMessage",
            "sqs:DeleteQueue",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
            "sqs:ListQueueTags",
            "sqs:ReceiveMessage",
            "sqs:SendMessage",
            "sqs:SetQueueAttributes",
            "sqs:TagQueue",
            "sqs:UntagQueue",
        ],
        &["{queue_arn}", "{dlq_arn}", "arn:{partition}:sqs:{region}:{account}:{prefix}-*"],
    ),
    group(
        "ManageBucket",
        "create, secure, check and delete the bucket",
        &[
            "s3:CreateBucket",
            "s3:DeleteBucket",
            "s3:DeleteBucketPolicy",
            "s3:GetBucketLocation",
            "s3:GetBucketPolicy",
            "s3:GetBucketPublicAccessBlock",
            "s3:GetBucketTagging",
            "s3:GetEncryptionConfiguration",
            "s3:GetLifecycleConfiguration",
            "s3:ListBucket",
            "s3:PutBucketPolicy",
            "s3:PutBucketPublicAccessBlock",
            "s3:PutBucketTagging",
            "s3:PutEncryptionConfiguration",
            "s3:PutLifecycleConfiguration",
        ],
        &["arn:{partition}:s3:::{bucket}"],
    ),
    group(
        "ReadWriteBucketObjects",
        "upload audio and bundles, read transcripts, clean up",
        &["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
        &["arn:{partition}:s3:::{bucket}/*"],
    ),
    group(
        "DescribeEc2",
        "find AMIs, networks, prices and workers (no resource scoping)",
        &[
            "ec2:DescribeAvailabilityZones",
            "ec2:DescribeImages",
            "ec2:DescribeInstanceTypeOfferings",
            "ec2:DescribeInstanceTypes",
            "ec2:DescribeInstances",
            "ec2:DescribeKeyPairs",
            "ec2:DescribeLaunchTemplateVersions",
            "ec2:DescribeLaunchTemplates",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSpotInstanceRequests",
            "ec2:DescribeSpotPriceHistory",
            "ec2:DescribeSubnets",
            "ec2:DescribeTags",
            "ec2:DescribeVpcs",
        ],
        &["*"],
    ),
    group(
        "LaunchWorkers",
        "create launch templates, security groups, key pairs and workers",
        &[
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:CreateFleet",
            "ec2:CreateKeyPair",
            "ec2:CreateLaunchTemplate",
            "ec2:CreateLaunchTemplateVersion",
            "ec2:CreateSecurityGroup",
            "ec2:ModifyLaunchTemplate",
            "ec2:RequestSpotInstances",
            "ec2:RunInstances",
        ],
        &["*"],
    ),
    when(
        group(
            "TagOnCreate",
            "tag EC2 resources only as they are created",
            &["ec2:CreateTags"],
            &["*"],
        ),
        r#"{"StringEquals": {"ec2:CreateAction": ["CreateFleet", "CreateKeyPair",
            "CreateLaunchTemplate", "CreateSecurityGroup", "RequestSpotInstances",
            "RunInstances"]}}"#,
    ),
    when(
        group(
            "StopOwnWorkers",
            "terminate and delete only this deployment's EC2 resources",
            &[
                "ec2:CancelSpotInstanceRequests",
                "ec2:DeleteKeyPair",
                "ec2:DeleteLaunchTemplate",
                "ec2:DeleteSecurityGroup",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:TerminateInstances",
            ],
            &["*"],
        ),
        TAGGED,
    ),
    group(
        "ReadParameters",
        "find the GPU AMI and the Hugging Face token parameter",
        &["ssm:GetParameter"],
        &["arn:{partition}:ssm:{region}::parameter/aws/service/*", "{hf_parameter_arn}"],
    ),
    group(
        "RunCommandDocument",
        "run health checks through Session Manager",
        &["ssm:SendCommand"],
        &["arn:{partition}:ssm:{region}::document/AWS-RunShellScript"],
    ),
    when(
        group(
            "RunCommandOnOwnWorkers",
            "only on this deployment's workers",
            &["ssm:SendCommand"],
            &["arn:{partition}:ec2:{region}:{account}:instance/*"],
        ),
        TAGGED,
    ),
    group(
        "ReadCommandResults",
        "read health-check output (no resource scoping)",
        &["ssm:GetCommandInvocation"],
        &["*"],
    ),
    group(
        "LogInToEcr",
        "log Docker in to ECR (no resource scoping)",
        &["ecr:GetAuthorizationToken"],
        &["*"],
    ),
    group(
        "ManageWorkerImage",
        "create the repository, push, check and delete the image",
        &[
            "ecr:BatchCheckLayerAvailability",
            "ecr:BatchDeleteImage",
            "ecr:BatchGetImage",
            "ecr:CompleteLayerUpload",
            "ecr:CreateRepository",
            "ecr:DeleteRepository",
            "ecr:DescribeImages",
            "ecr:DescribeRepositories",
            "ecr:GetDownloadUrlForLayer",
            "ecr:GetLifecyclePolicy",
            "ecr:InitiateLayerUpload",
            "ecr:ListImages",
            "ecr:ListTagsForResource",
            "ecr:PutImage",
            "ecr:PutLifecyclePolicy",
            "ecr:TagResource",
            "ecr:UploadLayerPart",
        ],
        &["arn:{partition}:ecr:{region}:{account}:repository/{repository}"],
    ),
    group(
        "ReadWorkerLogs",
        "read and delete the workers' log groups",
        &[
            "logs:DeleteLogGroup",
            "logs:DescribeLogStreams",
            "logs:FilterLogEvents",
            "logs:GetLogEvents",
        ],
        &["arn:{partition}:logs:{region}:{account}:log-group:/{prefix}/*"],
    ),
];

/// The operator policy for `scope`, built from [`OPERATOR_GROUPS`].
pub fn operator_policy(scope: &Scope) -> Value {
    let statements: Vec<Value> = OPERATOR_GROUPS.iter().map(|g| g.statement(scope)).collect();
    json!({ "Version": POLICY_VERSION, "Statement": statements })
}

impl OperatorGroup {
    /// The group's statement with its templates filled in for `scope`.
    pub fn statement(&self, scope: &Scope) -> Value {
        let resources: Vec<String> = self
            .resources
            .iter()
            .filter(|r| !r.contains("{hf_parameter_arn}") || scope.hf_token_parameter.is_some())
            .map(|r| fill(r, scope))
            .collect();
        let mut statement = super::statement(self.sid, self.actions, resources);
        if let Some(condition) = self.condition {
            // The templates are constants of this file; a test parses every one of them.
            let condition = serde_json::from_str(condition).map(|c| fill_strings(c, scope));
            statement = super::with_condition(statement, condition.unwrap_or(Value::Null));
        }
        statement
    }
}

fn fill(template: &str, scope: &Scope) -> String {
    let hf = scope.hf_token_parameter_arn().unwrap_or_default();
    [
        ("{partition}", scope.partition.as_str()),
        ("{region}", &scope.region),
        ("{account}", &scope.account),
        ("{prefix}", &scope.prefix),
        ("{project}", &scope.project),
        ("{environment}", &scope.environment),
        ("{bucket}", &scope.bucket),
        ("{queue_arn}", &scope.queue_arn),
        ("{dlq_arn}", &scope.dlq_arn),
        ("{repository}", &scope.repository),
        ("{hf_parameter_arn}", &hf),
    ]
    .iter()
    .fold(template.to_string(), |text, (name, value)| text.replace(name, value))
}

fn fill_strings(value: Value, scope: &Scope) -> Value {
    match value {
        Value::String(text) => Value::String(fill(&text, scope)),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| fill_strings(v, scope)).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter().map(|(k, v)| (fill(&k, scope), fill_strings(v, scope))).collect(),
        ),
        other => other,
    }
}
