"""The secure-by-default parts every node group gets: KMS key, security group, role, topic, buckets."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
import jsii
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from mlcdk.constructs.nag import acknowledge, resource_finding
from mlcdk.presets import metrics

DATA_KEY_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
#: What a service needs on a topic's key to publish to a KMS-encrypted SNS topic.
_TOPIC_PUBLISHER_KEY_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey*"]


def encryption_key(scope: Construct, construct_id: str, *, description: str,
                   removal_policy: cdk.RemovalPolicy) -> kms.Key:
    """A customer-managed key with rotation, usable for EBS through EC2 and for alarm notifications.

    EBS: Auto Scaling launches instances with its service-linked role, which needs the key. The grant
    goes through ``kms:ViaService`` for EC2 in this account rather than naming that role, because the
    role does not exist in an account that has never used Auto Scaling, and a key policy naming a
    missing principal fails to create.

    Topic publishers: CloudWatch alarms and Budgets of this account. EventBridge is added by
    :class:`TopicTarget` only where a rule publishes to the topic.
    """
    stack = cdk.Stack.of(scope)
    key = kms.Key(scope, construct_id, enable_key_rotation=True, description=description, removal_policy=removal_policy)
    via_ec2 = {"kms:CallerAccount": stack.account, "kms:ViaService": f"ec2.{stack.region}.amazonaws.com"}
    key.add_to_resource_policy(iam.PolicyStatement(
        sid="EbsThroughEc2", actions=DATA_KEY_ACTIONS, principals=[iam.AnyPrincipal()], resources=["*"],
        conditions={"StringEquals": via_ec2}))
    key.add_to_resource_policy(iam.PolicyStatement(
        sid="EbsGrantsThroughEc2", actions=["kms:CreateGrant"], principals=[iam.AnyPrincipal()], resources=["*"],
        conditions={"StringEquals": via_ec2, "Bool": {"kms:GrantIsForAWSResource": "true"}}))
    key.add_to_resource_policy(iam.PolicyStatement(
        sid="EncryptedTopicPublishers", actions=_TOPIC_PUBLISHER_KEY_ACTIONS,
        principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com"), iam.ServicePrincipal("budgets.amazonaws.com")],
        resources=["*"], conditions={"StringEquals": {"aws:SourceAccount": stack.account}}))
    return key



def cluster_security_group(scope: Construct, construct_id: str, *, vpc: ec2.IVpc, description: str) -> ec2.SecurityGroup:
    """No ingress from outside; all traffic to and from itself (EFA and collectives need it); egress anywhere
    (packages, containers, S3 and AWS APIs, through NAT)."""
    group = ec2.SecurityGroup(scope, construct_id, vpc=vpc, description=description, allow_all_outbound=True)
    allow_self_traffic(scope, f"{construct_id}Self", group)
    return group


def allow_self_traffic(scope: Construct, construct_id: str, group: ec2.ISecurityGroup) -> None:
    """All-protocol ingress and egress whose source and destination is ``group`` itself (required by EFA).

    The egress rule is an explicit resource: CDK drops ``add_egress_rule`` on a group that allows all
    outbound traffic, and EFA needs the self-referencing rule regardless.
    """
    before = {child.node.id for child in group.node.children}
    group.add_ingress_rule(group, ec2.Port.all_traffic(), "EFA/NCCL/Neuron collectives between nodes")
    for rule in [child for child in group.node.children if child.node.id not in before]:
        acknowledge(rule, "NIST.800.53.R5-EC2RestrictedCommonPorts", "EFA requires a rule allowing all protocols "
                    "and ports whose source is the cluster's own group (EC2 User Guide, 'Get started with EFA', the "
                    "EFA-enabled security group), which the rule reads as common ports open; only members of the "
                    "group are admitted")
    ec2.CfnSecurityGroupEgress(scope, f"{construct_id}Egress", group_id=group.security_group_id, ip_protocol="-1",
                               destination_security_group_id=group.security_group_id,
                               description="EFA/NCCL/Neuron collectives between nodes")


#: What the SSM agent needs for Session Manager and nothing else: register the instance, and open the
#: control and data channels of a session. From the Systems Manager user guide, "Step 2: Verify or add
#: instance permissions for Session Manager" (a custom policy with Session Manager permissions only;
#: https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-getting-started-instance-profile.html).
#: AmazonSSMManagedInstanceCore is not used: it also grants ssm:GetParameter(s) and ssm:GetDocument on every
#: resource, and the containers on a node reach the node role through IMDS (hop limit 2). Run Command,
#: State Manager, Patch Manager and Inventory are therefore not available on mlcdk's nodes.
SESSION_MANAGER_ACTIONS = ["ssm:UpdateInstanceInformation", "ssmmessages:CreateControlChannel",
                           "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel",
                           "ssmmessages:OpenDataChannel"]


def node_role(scope: Construct, construct_id: str, *, description: str) -> iam.Role:
    """An EC2 role with SSM Session Manager only (no SSH, no other Systems Manager feature), through
    :func:`session_manager_policy`; no AWS managed policy."""
    role = iam.Role(scope, construct_id, assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"), description=description)
    session_manager_policy(scope, f"{construct_id}SessionManagerPolicy", role)
    return role


def session_manager_policy(scope: Construct, construct_id: str, role: iam.IRole) -> iam.Policy:
    """The SSM agent's Session Manager actions (:data:`SESSION_MANAGER_ACTIONS`) for one node role.

    Resource is "*": the four ``ssmmessages`` actions define no resource type, and the instance that
    calls ``ssm:UpdateInstanceInformation`` is not known when the role is made (AWS's documented
    minimal Session Manager policy uses "*" for all five). Session logging to S3 or CloudWatch Logs and
    KMS session encryption are off, so their extra permissions are not granted.
    """
    policy = iam.Policy(scope, construct_id, roles=[role], statements=[
        iam.PolicyStatement(actions=SESSION_MANAGER_ACTIONS, resources=["*"])])
    acknowledge(policy, "AwsSolutions-IAM5", "the ssmmessages channel actions support no resource-level "
                "permissions and ssm:UpdateInstanceInformation is called for an instance that does not exist "
                "yet; the statement holds the five Session Manager actions only", finding="Resource::*")
    return _inline(policy, "Session Manager permissions of one node role (in place of AmazonSSMManagedInstanceCore)")


def inline_policy(policy: iam.Policy, purpose: str) -> iam.Policy:
    """Acknowledge NIST's IAMNoInlinePolicy on ``policy``, naming its ``purpose``: a policy of one role, naming
    this stack's resources, deleted with it."""
    return _inline(policy, purpose)


def _inline(policy: iam.Policy, purpose: str) -> iam.Policy:
    acknowledge(policy, "NIST.800.53.R5-IAMNoInlinePolicy", f"{purpose}; the statements name this stack's own "
                "resources, are attached to one role and are deleted with it, so a standalone managed policy "
                "would have nothing to share (an inline policy keeps a strict one-to-one relationship with its "
                "identity: IAM User Guide, 'Managed policies and inline policies')")
    return policy


def agent_policy(scope: Construct, construct_id: str, role: iam.IRole) -> iam.Policy:
    """PutMetricData to the agent's namespace only, and DescribeTags for its AutoScalingGroupName dimension."""
    policy = iam.Policy(scope, construct_id, roles=[role], statements=[
        iam.PolicyStatement(actions=["cloudwatch:PutMetricData"], resources=["*"],
                            conditions={"StringEquals": {"cloudwatch:namespace": metrics.NAMESPACE}}),
        iam.PolicyStatement(actions=["ec2:DescribeTags"], resources=["*"]),
    ])
    acknowledge(policy, "AwsSolutions-IAM5", "cloudwatch:PutMetricData and ec2:DescribeTags support no resource-level "
                "permissions (Resource must be *); PutMetricData is limited to the CWAgent namespace by condition",
                finding="Resource::*")
    return _inline(policy, "CloudWatch agent permissions of one node role")


def data_policy(scope: Construct, construct_id: str, role: iam.IRole, *, bucket: s3.IBucket, key: kms.IKey) -> iam.Policy:
    """Read, write and delete objects in one bucket, and use of one key: named actions, no action wildcards."""
    policy = iam.Policy(scope, construct_id, roles=[role], statements=[
        iam.PolicyStatement(actions=["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"],
                            resources=[bucket.bucket_arn]),
        iam.PolicyStatement(actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                                     "s3:ListMultipartUploadParts"], resources=[bucket.arn_for_objects("*")]),
        iam.PolicyStatement(actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                            resources=[key.key_arn]),
    ])
    acknowledge(policy, "AwsSolutions-IAM5", "object access is scoped to the one checkpoint bucket (its ARN/*); "
                "object keys are the job's checkpoint names and cannot be listed in advance",
                finding=resource_finding(policy, bucket.arn_for_objects("*")).removeprefix("Resource::"))
    return _inline(policy, "checkpoint bucket and key access of one node role")


def read_policy(scope: Construct, construct_id: str, role: iam.IRole, *, bucket: s3.IBucket) -> iam.Policy:
    """Read objects of one bucket (model artifacts), and decrypt with its key if it has one."""
    statements = [
        iam.PolicyStatement(actions=["s3:ListBucket", "s3:GetBucketLocation"], resources=[bucket.bucket_arn]),
        iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects("*")]),
    ]
    if bucket.encryption_key is not None:
        statements.append(iam.PolicyStatement(actions=["kms:Decrypt", "kms:DescribeKey"],
                                              resources=[bucket.encryption_key.key_arn]))
    policy = iam.Policy(scope, construct_id, roles=[role], statements=statements)
    acknowledge(policy, "AwsSolutions-IAM5", "read-only object access scoped to the one model bucket (its ARN/*); "
                "artifact names are not known at deploy time",
                finding=resource_finding(policy, bucket.arn_for_objects("*")).removeprefix("Resource::"))
    return _inline(policy, "read access of one node role to one model bucket")


#: What the ECS container agent on a Batch node does (the actions of AWS's AmazonEC2ContainerServiceforEC2Role,
#: less cluster creation and ECR, which mlcdk grants per repository): register with the Batch-made ECS cluster,
#: poll for tasks and report their state.
_ECS_AGENT_ACTIONS = ["ecs:RegisterContainerInstance", "ecs:DeregisterContainerInstance", "ecs:Poll",
                      "ecs:StartTelemetrySession", "ecs:SubmitContainerStateChange", "ecs:SubmitTaskStateChange",
                      "ecs:SubmitAttachmentStateChanges", "ecs:UpdateContainerInstancesState"]


def ecs_agent_policy(scope: Construct, construct_id: str, role: iam.IRole, *, log_group) -> iam.Policy:
    """The ECS agent's actions on the ECS clusters AWS Batch creates (named ``AWSBatch-<environment>-<uuid>``)
    and their container instances, and writing the jobs' log streams in one log group."""
    stack = cdk.Stack.of(scope)
    ecs_arn = f"arn:{stack.partition}:ecs:{stack.region}:{stack.account}"
    policy = iam.Policy(scope, construct_id, roles=[role], statements=[
        iam.PolicyStatement(actions=_ECS_AGENT_ACTIONS,
                            resources=[f"{ecs_arn}:cluster/AWSBatch-*", f"{ecs_arn}:container-instance/AWSBatch-*/*"]),
        iam.PolicyStatement(actions=["ecs:DiscoverPollEndpoint"], resources=["*"]),
        iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                            resources=[log_group.log_group_arn, f"{log_group.log_group_arn}:*"]),
    ])
    for resource in ("*", f"{ecs_arn}:cluster/AWSBatch-*", f"{ecs_arn}:container-instance/AWSBatch-*/*"):
        finding = "*" if resource == "*" else resource_finding(policy, resource).removeprefix("Resource::")
        acknowledge(policy, "AwsSolutions-IAM5", "AWS Batch names the ECS cluster of a compute environment "
                    "AWSBatch-<name>-<uuid> at creation, so the agent's actions are scoped to that prefix in this "
                    "account and region; ecs:DiscoverPollEndpoint has no resource-level permissions", finding=finding)
    acknowledge(policy, "AwsSolutions-IAM5", "log stream names are created by Batch per job, inside this cluster's "
                "one log group", finding=resource_finding(policy, f"{log_group.log_group_arn}:*").removeprefix("Resource::"))
    return _inline(policy, "ECS container agent permissions of one Batch node role")


def ecs_cluster_agent_policy(scope: Construct, construct_id: str, role: iam.IRole, *, cluster_arn: str,
                             cluster_name: str) -> iam.Policy:
    """The ECS container agent's actions (:data:`_ECS_AGENT_ACTIONS`) on one ECS cluster and its container instances,
    for the nodes of an InferenceFleet's ECS engine. No log permission: task logs are written with the task
    execution role."""
    stack = cdk.Stack.of(scope)
    instances = f"arn:{stack.partition}:ecs:{stack.region}:{stack.account}:container-instance/{cluster_name}/*"
    policy = iam.Policy(scope, construct_id, roles=[role], statements=[
        iam.PolicyStatement(actions=_ECS_AGENT_ACTIONS, resources=[cluster_arn, instances]),
        iam.PolicyStatement(actions=["ecs:DiscoverPollEndpoint"], resources=["*"]),
    ])
    acknowledge(policy, "AwsSolutions-IAM5", "ecs:DiscoverPollEndpoint supports no resource-level permissions",
                finding="Resource::*")
    acknowledge(policy, "AwsSolutions-IAM5", "container instance IDs are assigned by ECS when a node registers; the "
                "actions are limited to this fleet's one cluster", finding=resource_finding(policy, instances))
    return _inline(policy, "ECS container agent permissions of one fleet's node role")


def log_writer_policy(scope: Construct, construct_id: str, role: iam.IRole, *, log_group, purpose: str) -> iam.Policy:
    """Create log streams in one log group and write to them (e.g. the CloudWatch agent's embedded-metric logs)."""
    streams = f"{log_group.log_group_arn}:*"
    policy = iam.Policy(scope, construct_id, roles=[role], statements=[iam.PolicyStatement(
        actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
        resources=[log_group.log_group_arn, streams])])
    acknowledge(policy, "AwsSolutions-IAM5", "log stream names are created by the writer inside this one log group",
                finding=resource_finding(policy, streams))
    return _inline(policy, purpose)


def allow_log_encryption(key: kms.IKey) -> None:
    """Let CloudWatch Logs use ``key`` for this account's log groups in this region only (the CloudWatch Logs user
    guide's "Encrypt log data in CloudWatch Logs using AWS KMS" policy, with the log-group ARN condition). Added
    once per key: a marker child records it."""
    if key.node.try_find_child("LogsMayUseKey") is not None:
        return
    Construct(key, "LogsMayUseKey")
    stack = cdk.Stack.of(key)
    key.add_to_resource_policy(iam.PolicyStatement(
        sid="CloudWatchLogsForLogGroups", principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
        actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        resources=["*"], conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                                  f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:*"}}))


def encrypted_log_group(scope: Construct, construct_id: str, *, key: kms.IKey, retention, removal_policy) -> logs.LogGroup:
    """A log group encrypted with ``key`` (which CloudWatch Logs may then use, :func:`allow_log_encryption`)."""
    allow_log_encryption(key)
    return logs.LogGroup(scope, construct_id, encryption_key=key, retention=retention, removal_policy=removal_policy)


def ecs_tasks_principal(scope: Construct) -> iam.ServicePrincipal:
    """ecs-tasks.amazonaws.com for this account's ECS tasks in this region only (aws:SourceArn, aws:SourceAccount:
    the ECS developer guide's confused-deputy conditions for task roles)."""
    stack = cdk.Stack.of(scope)
    return iam.ServicePrincipal("ecs-tasks.amazonaws.com", conditions={
        "ArnLike": {"aws:SourceArn": f"arn:{stack.partition}:ecs:{stack.region}:{stack.account}:*"},
        "StringEquals": {"aws:SourceAccount": stack.account}})


def ecr_pull_policy(scope: Construct, construct_id: str, roles: Sequence[iam.IRole], account: str, region: str,
                    repository: str) -> iam.Policy:
    """Pull one private ECR repository (the job image); GetAuthorizationToken has no resource-level permission."""
    stack = cdk.Stack.of(scope)
    policy = iam.Policy(scope, construct_id, roles=list(roles), statements=[
        iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]),
        iam.PolicyStatement(actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                            resources=[f"arn:{stack.partition}:ecr:{region}:{account}:repository/{repository}"]),
    ])
    acknowledge(policy, "AwsSolutions-IAM5", "ecr:GetAuthorizationToken supports no resource-level permissions; "
                "image pulls are limited to the job image's one repository", finding="Resource::*")
    return _inline(policy, "pulling the job image's one ECR repository")


def lifecycle_policy(scope: Construct, construct_id: str, role: iam.IRole, asg_arn: str) -> iam.Policy:
    """Let a terminating node finish (or extend) its termination lifecycle hook, on this group only.

    A separate policy: the launch template depends on the role's default policy, and the group's ARN
    depends on the launch template, so putting this statement there would make a cycle.
    """
    policy = iam.Policy(scope, construct_id, roles=[role], statements=[iam.PolicyStatement(
        actions=["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"],
        resources=[asg_arn])])
    acknowledge(policy, "AwsSolutions-IAM5", "an Auto Scaling group ARN contains a generated UUID that CloudFormation "
                "does not return; the ARN is pinned to this group by its name",
                finding=resource_finding(policy, asg_arn).removeprefix("Resource::"))
    return _inline(policy, "lifecycle-hook actions of one node role on its own group")


def alarm_topic(scope: Construct, construct_id: str, *, key: kms.IKey, emails: Sequence[str]) -> sns.Topic:
    """An SNS topic for alarms and events, KMS-encrypted and SSL-only, with e-mail subscriptions."""
    topic = sns.Topic(scope, construct_id, master_key=key, enforce_ssl=True)
    for email in emails:
        topic.add_subscription(subscriptions.EmailSubscription(email))
    return topic


@jsii.implements(events.IRuleTarget)
class TopicTarget:
    """An EventBridge rule target that publishes to an SNS topic, allowed for that one rule only.

    ``aws_events_targets.SnsTopic`` grants ``events.amazonaws.com`` publishing with no condition, so any
    rule in any account could publish to the topic. This target instead adds a topic policy statement
    conditioned on ``aws:SourceArn`` equal to the rule's ARN (the form the EventBridge user guide gives,
    "Using resource-based policies for Amazon EventBridge", Amazon SNS permissions), and no role: EventBridge
    delivers to KMS-encrypted SNS topics only through the resource policy. If the topic has a KMS key
    that mlcdk can edit, EventBridge gets kms:Decrypt and kms:GenerateDataKey* on it, conditioned on
    ``aws:SourceAccount`` (the rule's ARN cannot appear in the key policy: the rule depends on the topic,
    which depends on the key). Topic policy statements on an imported topic are dropped, as with
    ``SnsTopic``; that topic's owner grants publishing.
    """

    def __init__(self, topic: sns.ITopic) -> None:
        self.topic = topic

    def bind(self, rule: events.IRule, id: str | None = None) -> events.RuleTargetConfig:  # noqa: A002 (jsii name)
        self.topic.add_to_resource_policy(iam.PolicyStatement(
            actions=["sns:Publish"], principals=[iam.ServicePrincipal("events.amazonaws.com")],
            resources=[self.topic.topic_arn], conditions={"ArnEquals": {"aws:SourceArn": rule.rule_arn}}))
        key = self.topic.master_key
        if key is not None:
            key.add_to_resource_policy(iam.PolicyStatement(
                sid="EventBridgeToEncryptedTopic", actions=_TOPIC_PUBLISHER_KEY_ACTIONS,
                principals=[iam.ServicePrincipal("events.amazonaws.com")], resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Stack.of(rule).account}}))
        return events.RuleTargetConfig(arn=self.topic.topic_arn, target_resource=self.topic)


def access_log_bucket(scope: Construct, construct_id: str, *, of: str, retention: cdk.Duration,
                      removal_policy: cdk.RemovalPolicy, key: kms.IKey | None = None) -> s3.Bucket:
    """A bucket that receives access logs: SSL-only, no public access, ACLs disabled (object ownership
    "bucket owner enforced"), versioned so that a deleted log stays recoverable for 30 days, expired after
    ``retention``.

    With ``key`` (S3 server access logs may go to an SSE-KMS bucket; :func:`log_server_access` grants the
    logging service the key) it is encrypted with that key; without, SSE-S3, the only encryption ALB log
    delivery accepts. Log delivery is granted by bucket policy only, never by the LogDeliveryWrite ACL, so
    the bucket is the same in apps with or without CDK's feature flags.
    """
    encryption = dict(encryption=s3.BucketEncryption.KMS, encryption_key=key, bucket_key_enabled=True) if key else \
        dict(encryption=s3.BucketEncryption.S3_MANAGED)
    logs = s3.Bucket(scope, construct_id, enforce_ssl=True, block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                     removal_policy=removal_policy, versioned=True, **encryption,
                     object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                     lifecycle_rules=[s3.LifecycleRule(expiration=retention,
                                                       noncurrent_version_expiration=cdk.Duration.days(30))])
    acknowledge(logs, ("AwsSolutions-S1", "NIST.800.53.R5-S3BucketLoggingEnabled"),
                f"this bucket receives the access logs of {of}; logging it into itself would log its own log "
                "writes, which the Amazon S3 User Guide advises against ('Logging requests using server access "
                "logging')")
    if key is None:
        acknowledge(logs, "NIST.800.53.R5-S3DefaultEncryptionKMS", "Application Load Balancer access logs can be "
                    "delivered only to a bucket encrypted with SSE-S3 (Amazon S3 managed keys): 'The only "
                    "server-side encryption option that's supported' (Elastic Load Balancing User Guide, 'Enable "
                    "access logs for your Application Load Balancer')")
    acknowledge(logs, "NIST.800.53.R5-S3BucketReplicationEnabled", "access logs are kept in their own region, "
                "versioned; a cross-region copy is a compliance choice left to the app's owner and the account's "
                "log archive (README, 'Security gates')")
    return logs


def checkpoint_bucket(scope: Construct, construct_id: str, *, key: kms.IKey,
                      removal_policy: cdk.RemovalPolicy) -> s3.Bucket:
    """Versioned, KMS-encrypted, SSL-only, no public access, logged, with lifecycle rules for old data."""
    logs = access_log_bucket(scope, f"{construct_id}AccessLogs", of="the checkpoint bucket", key=key,
                             retention=cdk.Duration.days(365), removal_policy=removal_policy)
    bucket = s3.Bucket(
        scope, construct_id, encryption=s3.BucketEncryption.KMS, encryption_key=key, bucket_key_enabled=True,
        versioned=True, enforce_ssl=True, block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        removal_policy=removal_policy,
        lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=cdk.Duration.days(30),
                                          abort_incomplete_multipart_upload_after=cdk.Duration.days(7))],
    )
    log_server_access(bucket, logs, prefix="checkpoints/", key=key)
    acknowledge(bucket, "NIST.800.53.R5-S3BucketReplicationEnabled", "checkpoints are versioned for 30 days; "
                "replicating terabytes of checkpoints to a second region doubles storage and transfer cost, so "
                "cross-region copies are the app owner's decision, or the training job's own export (README, "
                "'Security gates')")
    return bucket


def log_server_access(bucket: s3.Bucket, logs: s3.IBucket, *, prefix: str, key: kms.IKey | None = None) -> None:
    """S3 server access logs of ``bucket`` into ``logs`` under ``prefix``, granted by bucket policy only.

    aws-cdk's ``server_access_logs_bucket`` grants delivery by bucket policy under the feature flag
    ``@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy`` and by the legacy LogDeliveryWrite ACL without it
    (cfn-lint W3045), and gives the logging service ``key`` with no condition. Here the result does not
    depend on the app's flags: the L1 logging configuration, and a bucket policy statement for
    ``logging.s3.amazonaws.com`` limited to ``prefix`` and conditioned on ``aws:SourceArn`` (this bucket) and
    ``aws:SourceAccount`` (the S3 user guide's "Permissions for log delivery" form). With ``key`` (the key
    of an SSE-KMS log bucket) the logging service may generate data keys with it, conditioned on
    ``aws:SourceAccount``: the key cannot name the bucket, which depends on it.
    """
    account = cdk.Stack.of(bucket).account
    bucket.node.default_child.logging_configuration = s3.CfnBucket.LoggingConfigurationProperty(
        destination_bucket_name=logs.bucket_name, log_file_prefix=prefix)
    logging_service = iam.ServicePrincipal("logging.s3.amazonaws.com")
    logs.add_to_resource_policy(iam.PolicyStatement(
        sid="S3ServerAccessLogs", actions=["s3:PutObject"], principals=[logging_service],
        resources=[logs.arn_for_objects(f"{prefix}*")],
        conditions={"ArnLike": {"aws:SourceArn": bucket.bucket_arn}, "StringEquals": {"aws:SourceAccount": account}}))
    if key is not None:
        key.add_to_resource_policy(iam.PolicyStatement(
            sid="S3ServerAccessLogsToEncryptedBucket", actions=["kms:GenerateDataKey*", "kms:Decrypt"],
            principals=[logging_service], resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": account}}))
