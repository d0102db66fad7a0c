"""SharedStorage: an FSx for Lustre file system that every node of a TrainingCluster mounts, linked to S3.

What it creates (facts from ``mlcdk/presets/data/fsx.json``, each with its FSx documentation source):

- **File system:** ``aws_fsx.LustreFileSystem`` on Lustre 2.15, in the cluster's subnet (so its AZ). PERSISTENT_2
  is encrypted with the cluster's KMS key; SCRATCH_2 cannot take a customer-managed key and uses the FSx
  service key.
- **Network:** a group of its own with no rule but TCP 988 and 1018-1023 (FSx for Lustre user guide, "File
  system access control with Amazon VPC"): in and out between it and the nodes' group, both ways, and within
  itself (the file servers talk to each other). The L2 would open 988-1023 within the group, so it receives
  an immutable reference to the group and every rule here is explicit.
- **Links to S3:** data repository associations (``CfnDataRepositoryAssociation``), at most 8: the checkpoint
  bucket at ``/checkpoints`` (``/fsx/checkpoints`` on the nodes) with automatic import and export, and each
  data repository read-only (automatic import only). FSx reaches the buckets through its service-linked role
  ``AWSServiceRoleForFSxS3Access_<file system id>``, which it creates with the S3 permissions of the linked
  buckets; a same-account bucket needs no bucket policy. What that role cannot get by itself is the use of a
  customer-managed key: the checkpoint bucket's key gets one statement for it, limited to calls through S3 in
  this region, from this account, on that bucket's objects (FSx for Lustre user guide, "Working with
  server-side encrypted Amazon S3 buckets").
- **Mount:** :meth:`mount_commands` installs the Lustre client for the AMI and mounts at ``/fsx`` (see
  mlcdk.constructs.user_data.mount_lustre); on Neuron types the compile cache goes to ``/fsx/neuron-cache``.
- **Guardrails:** :meth:`add_alarms` alarms when free capacity falls below the threshold, and
  :attr:`monthly_cost_usd` is the storage charge from the sourced price.

**Removal.** The file system and its associations follow the cluster's ``removal_policy``. DESTROY deletes the
file system with the stack: what was never exported is lost. That is everything outside the checkpoint link
(``/fsx/neuron-cache``, scratch files, files under the read-only data links) and any checkpoint file whose
automatic export had not finished (export is asynchronous, after the file is closed). Run an export task
(``aws fsx create-data-repository-task --type EXPORT_TO_REPOSITORY``) and wait for it before deleting. RETAIN
(the default) keeps the file system, and its bill, after the stack is deleted; it keeps its network
interfaces in the cluster's subnet and group, so a stack-made VPC is only deleted once you delete it.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_fsx as fsx
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlcdk.constructs import security
from mlcdk.constructs.options import ExistingFileSystem, SharedStorageOptions
from mlcdk.constructs.user_data import mount_lustre
from mlcdk.constructs.validation import concrete
from mlcdk.constructs.warning_registry import warn
from mlcdk.presets import fsx as facts

#: Lustre's ports (FSx for Lustre user guide, "File system access control with Amazon VPC").
LUSTRE_PORTS = ((988, 988), (1018, 1023))
#: Where the Neuron compile cache lives on the file system.
NEURON_CACHE_DIR = "neuron-cache"
#: Events of an automatic import or export policy.
ALL_EVENTS = ["NEW", "CHANGED", "DELETED"]
#: The service-linked role FSx creates per linked file system.
FSX_S3_ROLE_PATH = "role/aws-service-role/s3.data-source.lustre.fsx.amazonaws.com/AWSServiceRoleForFSxS3Access_"

@dataclass(frozen=True)
class StorageSite:
    """Where a cluster's shared file system goes and what it works with: the cluster's VPC and subnet (so its AZ),
    the nodes' security group, the cluster's key and checkpoint bucket, its removal policy and label, and the region
    whose price stands in for an env-agnostic stack."""

    vpc: ec2.IVpc
    subnet: ec2.ISubnet
    node_security_group: ec2.ISecurityGroup
    key: kms.IKey
    checkpoint_bucket: s3.IBucket
    removal_policy: cdk.RemovalPolicy
    label: str
    reference_region: str


class SharedStorage(Construct):
    """The file system (or the one you bring), its group and rules, its S3 links and its key statement.

    Attributes: ``file_system`` (the L2, or None for one you bring), ``file_system_id``, ``dns_name``,
    ``mount_name``, ``security_group``, ``associations``, ``monthly_cost_usd`` (None when not counted).
    """

    def __init__(self, scope: Construct, construct_id: str, *, options: SharedStorageOptions, site: StorageSite) -> None:
        super().__init__(scope, construct_id)
        vpc, subnet, key, label = site.vpc, site.subnet, site.key, site.label
        node_security_group, checkpoint_bucket = site.node_security_group, site.checkpoint_bucket
        removal_policy, reference_region = site.removal_policy, site.reference_region
        stack = cdk.Stack.of(self)
        self.options, self.mount_point = options, options.mount_point
        self.deployment_type = facts.deployment_type(options.deployment_type)
        existing = options.existing_file_system
        self.file_system: fsx.LustreFileSystem | None = None
        self.monthly_cost_usd: float | None = None
        self.price = None
        self.cost_label: str | None = None
        if existing is None:
            self.security_group = ec2.SecurityGroup(
                self, "SecurityGroup", vpc=vpc, allow_all_outbound=False,
                description=f"{label} shared file system: Lustre (TCP 988, 1018-1023) with the nodes only")
            # Immutable: the L2 adds no rule of its own to it (it would open 988-1023 within the group).
            group_ref = ec2.SecurityGroup.from_security_group_id(
                self, "SecurityGroupRef", self.security_group.security_group_id, mutable=False)
            throughput = options.throughput_mbps_per_tib or facts.default_throughput(options.deployment_type)
            self.file_system = fsx.LustreFileSystem(
                self, "FileSystem", vpc=vpc, vpc_subnet=subnet, storage_capacity_gib=options.storage_capacity_gib,
                security_group=group_ref, removal_policy=removal_policy,
                kms_key=key if self.deployment_type.customer_managed_key else None,
                file_system_type_version=fsx.FileSystemTypeVersion.V_2_15,
                lustre_configuration=fsx.LustreConfiguration(
                    deployment_type=getattr(fsx.LustreDeploymentType, options.deployment_type),
                    per_unit_storage_throughput=throughput,
                    data_compression_type=getattr(fsx.LustreDataCompressionType, options.data_compression)))
            self.file_system_id, self.dns_name = self.file_system.file_system_id, self.file_system.dns_name
            self.mount_name = self.file_system.mount_name
            group_id = self.security_group.security_group_id
            region = stack.region if concrete(stack.region) else reference_region
            self.price = facts.storage_price(region, options.deployment_type, throughput)
            if self.price is not None:
                self.monthly_cost_usd = self.price.monthly_usd(options.storage_capacity_gib)
                self.cost_label = (f"FSx for Lustre {options.deployment_type}"
                                   f"{f' {throughput} MB/s/TiB' if throughput else ''} {options.storage_capacity_gib} GiB "
                                   f"at ${self.price.usd_per_gb_month}/GB-month ({region}, as of {self.price.as_of})")
            else:
                warn(self, "noFsxPrice", deployment_type=options.deployment_type,
                     at_throughput=f" at {throughput} MB/s/TiB" if throughput else "", region=region)
        else:
            self.security_group = ec2.SecurityGroup.from_security_group_id(
                self, "SecurityGroup", existing.security_group_id, mutable=False)
            self.file_system_id, self.dns_name = existing.file_system_id, existing.dns_name
            self.mount_name = existing.mount_name
            group_id = existing.security_group_id
        self._lustre_rules(group_id, node_security_group.security_group_id, own=existing is None)
        self.associations = self._associations(options, checkpoint_bucket, removal_policy, existing)

    # ----------------------------------------------------------------------------------------

    def _lustre_rules(self, file_system_group: str, node_group: str, *, own: bool) -> None:
        """TCP 988 and 1018-1023, both ways, between the file system's group and the nodes' group (and, for a
        file system mlcdk creates, within its own group); one explicit resource per rule, nothing wider."""
        pairs = [("FileSystemFromNodes", "in", file_system_group, node_group),
                 ("FileSystemToNodes", "out", file_system_group, node_group),
                 ("NodesFromFileSystem", "in", node_group, file_system_group),
                 ("NodesToFileSystem", "out", node_group, file_system_group)]
        if own:
            pairs += [("FileSystemFromItself", "in", file_system_group, file_system_group),
                      ("FileSystemToItself", "out", file_system_group, file_system_group)]
        for low, high in LUSTRE_PORTS:
            ports = str(low) if low == high else f"{low}-{high}"
            for name, direction, group, peer in pairs:
                common = dict(group_id=group, ip_protocol="tcp", from_port=low, to_port=high,
                              description=f"Lustre TCP {ports} ({name})")
                rule_id = f"Lustre{ports.replace('-', 'To')}{name}"
                if direction == "in":
                    ec2.CfnSecurityGroupIngress(self, rule_id, source_security_group_id=peer, **common)
                else:
                    ec2.CfnSecurityGroupEgress(self, rule_id, destination_security_group_id=peer, **common)

    def _associations(self, options: SharedStorageOptions, bucket: s3.IBucket, removal_policy: cdk.RemovalPolicy,
                      existing: ExistingFileSystem | None) -> list:
        """The checkpoint link (import and export) and the read-only data links, one after another (FSx works
        on one association request at a time)."""
        links = []
        if options.checkpoint_path is not None:
            links.append(("CheckpointLink", options.checkpoint_path, bucket.s3_url_for_object(), True))
            self._allow_fsx_on_bucket_key(bucket, existing)
        links += [(f"DataLink{i}", d.path, d.s3_uri, False) for i, d in enumerate(options.data_repositories)]
        created = []
        for construct_id, path, uri, export in links:
            policy = fsx.CfnDataRepositoryAssociation.S3Property(
                auto_import_policy=fsx.CfnDataRepositoryAssociation.AutoImportPolicyProperty(events=ALL_EVENTS),
                auto_export_policy=fsx.CfnDataRepositoryAssociation.AutoExportPolicyProperty(events=ALL_EVENTS)
                if export else None)
            association = fsx.CfnDataRepositoryAssociation(
                self, construct_id, file_system_id=self.file_system_id, file_system_path=path, data_repository_path=uri,
                batch_import_meta_data_on_create=True, s3=policy)
            association.apply_removal_policy(removal_policy)
            if created:
                association.node.add_dependency(created[-1])
            created.append(association)
        return created

    def _allow_fsx_on_bucket_key(self, bucket: s3.IBucket, existing: ExistingFileSystem | None) -> None:
        """Let FSx's S3 role for this file system use the checkpoint bucket's key, through S3, on that bucket only.

        The role's name holds the file system's ID, which depends on the key (the file system is encrypted with
        it): naming the role in the key policy would be a cycle. The statement therefore admits the role by
        ``aws:PrincipalArn`` (the ID itself for a file system you bring, ``fs-*`` otherwise) in this account, for
        calls made through S3 in this region. The bucket's ARN cannot be named either when the bucket is encrypted
        with that key and named by CloudFormation (another cycle); the cluster's key encrypts only the cluster's
        own buckets, and FSx's role reaches only the buckets linked to its file system.
        """
        stack = cdk.Stack.of(self)
        bucket_key = bucket.encryption_key
        if bucket_key is None:  # SSE-S3, or a bucket whose key mlcdk cannot see: nothing to grant here
            return
        suffix = existing.file_system_id if existing is not None else "fs-*"
        conditions = {
            "StringEquals": {"kms:CallerAccount": stack.account, "kms:ViaService": f"s3.{stack.region}.amazonaws.com"},
            "ArnLike": {"aws:PrincipalArn": f"arn:{stack.partition}:iam::{stack.account}:{FSX_S3_ROLE_PATH}{suffix}"}}
        if not cdk.Token.is_unresolved(bucket.bucket_name):  # a bucket named in advance: only its objects
            conditions["StringLike"] = {"kms:EncryptionContext:aws:s3:arn": [bucket.bucket_arn, bucket.arn_for_objects("*")]}
        statement = iam.PolicyStatement(
            sid="FsxS3AccessForCheckpointLink", principals=[iam.AnyPrincipal()],
            actions=security.DATA_KEY_ACTIONS,
            resources=["*"], conditions=conditions)
        if not bucket_key.add_to_resource_policy(statement).statement_added:
            warn(self, "fsxBucketKey")

    # ----------------------------------------------------------------------------------------

    def neuron_cache_path(self) -> str:
        return posixpath.join(self.mount_point, NEURON_CACHE_DIR)

    def mount_commands(self, *, neuron: bool) -> list[str]:
        """Bootstrap lines: install the client, mount at the mount point (fstab too), and on Neuron types
        point NEURON_COMPILE_CACHE_URL at the shared cache."""
        return mount_lustre(self.dns_name, self.mount_name, self.mount_point,
                            neuron_cache=self.neuron_cache_path() if neuron else None)

    def job_environment(self, *, neuron: bool) -> dict[str, str]:
        """What a Batch job's container gets (the nodes engine writes the same to /etc/environment)."""
        environment = {"MLCDK_SHARED_STORAGE": self.mount_point}
        if neuron:
            environment["NEURON_COMPILE_CACHE_URL"] = self.neuron_cache_path()
        return environment

    def metric_free_data_storage_capacity_percent(self) -> cloudwatch.IMetric:
        """Free data storage in percent of the capacity: ``FreeDataStorageCapacity`` (AWS/FSx, bytes, summed over
        the storage targets, one-minute data) over the configured capacity in bytes. The usable space is a little
        below the nominal capacity, so this reads slightly low: the alarm errs early."""
        free = cloudwatch.Metric(namespace="AWS/FSx", metric_name="FreeDataStorageCapacity", statistic="Sum",
                                 dimensions_map={"FileSystemId": self.file_system_id}, period=cdk.Duration.minutes(1))
        capacity_bytes = self.options.storage_capacity_gib * 1024 ** 3
        return cloudwatch.MathExpression(expression=f"100 * free / {capacity_bytes}", using_metrics={"free": free},
                                         label="shared storage free (% of capacity)", period=cdk.Duration.minutes(1))

    def add_alarms(self, guardrails, label: str) -> None:
        """The free-capacity alarm, on the guardrails' topic and dashboard."""
        percent = self.options.free_capacity_alarm_percent
        guardrails.add_alarm(
            "SharedStorageFreeCapacity", self.metric_free_data_storage_capacity_percent(), percent,
            cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD, periods=5,
            description=f"{label}: shared file system {self.mount_point} has less than {percent}% of its "
                        f"{self.options.storage_capacity_gib} GiB free; delete or export data, or increase its capacity")
