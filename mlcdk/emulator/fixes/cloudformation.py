"""moto fixes for CloudFormation itself and the non-Batch resources of a CDK stack (KMS, EC2, Logs).

Source lines are moto 5.2.5's. Each function applies one fix; ``FIXES`` lists them in the order they apply.
"""
from __future__ import annotations

import json
from typing import Any

from mlcdk.emulator.fixes._patch import Fix, Patcher, fix, rewrite_properties


@fix("kms-key-tags", patches="moto.kms.models.Key.create_from_cloudformation_json",
     why="""A template's Key/Value tags reach moto's KMS tagger as TagKey/TagValue. moto raised KeyError 'TagKey',
     the key was never created, and every stack whose keys carry tags (cdk.Tags.of(stack)) failed with
     'Fn::GetAtt references undefined resource'.""",
     source="moto/kms/models.py:327 passes Tags as written to a tagger that reads TagKey/TagValue")
def kms_key_tags(patch: Patcher) -> None:
    from moto.kms.models import Key

    def rewrite(properties: dict[str, Any]) -> dict[str, Any]:
        properties["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} if "Key" in t else t
                              for t in properties.get("Tags", [])]
        return properties
    rewrite_properties(patch, Key, rewrite)


@fix("kms-key-policy", patches="moto.kms.models.Key.create_from_cloudformation_json",
     why="""A key's KeyPolicy is stored as JSON text. moto stored the template's object, and every later DescribeKey
     on the key answered HTTP 500 ('the JSON object must be str ... not dict').""",
     source="moto/kms/models.py:323 stores properties['KeyPolicy'] as given; DescribeKey json.loads it")
def kms_key_policy(patch: Patcher) -> None:
    from moto.kms.models import Key

    def rewrite(properties: dict[str, Any]) -> dict[str, Any]:
        if isinstance(properties.get("KeyPolicy"), dict):
            properties["KeyPolicy"] = json.dumps(properties["KeyPolicy"])
        return properties
    rewrite_properties(patch, Key, rewrite)


@fix("getatt-unmodeled", patches="moto.cloudformation.parsing.clean_json",
     why="""Fn::GetAtt on a resource type moto does not model (AWS::CloudWatch::Alarm in a dashboard,
     AWS::EC2::PlacementGroup, AWS::FSx::FileSystem's LustreMountName in user data) returns the placeholder
     'arn:aws:moto-unmodeled:::<type>/<id>/<attribute>'. moto skips such resources, then failed the stack with
     'Fn::GetAtt references undefined resource'.""",
     source="moto/cloudformation/parsing.py:155 (clean_json) finds no resource for a skipped type")
def getatt_unmodeled(patch: Patcher) -> None:
    from moto.cloudformation import parsing

    original = parsing.clean_json

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, dict) and "Fn::GetAtt" in resource_json:
            name, attribute = resource_json["Fn::GetAtt"][0], resource_json["Fn::GetAtt"][1]
            declared = resources_map._resource_json_map.get(name)
            if declared is not None and parsing.resource_class_from_type(declared["Type"]) is None:
                return f"arn:aws:moto-unmodeled:::{declared['Type']}/{name}/{attribute}"
        return original(resource_json, resources_map)
    patch.set(parsing, "clean_json", clean_json)


@fix("change-set-outputs", patches="moto.cloudformation.models.ChangeSet.apply",
     why="""ExecuteChangeSet (how cdk deploy creates a stack) also installs the change set's template on the stack,
     so DescribeStacks returns its Outputs and the stack's Exports exist. moto kept the empty placeholder template:
     no outputs (no cost, no JobQueue for mlcdk submit), no exports, and deleting CDKToolkit failed with
     KeyError 'CdkBootstrap-hnb659fds-FileAssetKeyArn'.""",
     source="moto/cloudformation/models.py:747 (ChangeSet.apply) updates the resources only")
def change_set_outputs(patch: Patcher) -> None:
    from moto.cloudformation.models import ChangeSet, cloudformation_backends

    original = ChangeSet.apply

    def apply(self: Any) -> None:
        original(self)
        stack = self.stack
        stack.template, stack.template_dict = self.template, self.template_dict
        stack.description = self.template_dict.get("Description")
        stack.output_map = stack._create_output_map()
        backend = cloudformation_backends[stack.account_id][stack.region_name]
        for export in stack.exports:  # as create_stack registers them (delete_stack removes them)
            backend.exports[export.name] = export
    patch.set(ChangeSet, "apply", apply)


@fix("route-table-delete", patches="moto.ec2.models.route_tables.RouteTable.delete",
     why="""AWS::EC2::RouteTable is deleted with its stack. moto kept it, so deleting the VPC failed with
     DependencyViolation and cdk destroy never completed.""",
     source="moto/ec2/models/route_tables.py:35 (RouteTable) has no delete() for CloudFormation")
def route_table_delete(patch: Patcher) -> None:
    from moto.ec2.models.route_tables import RouteTable

    def delete(self: Any, account_id: str, region_name: str) -> None:
        from moto.ec2.models import ec2_backends

        backend = ec2_backends[account_id][region_name]
        if self.id in backend.route_tables:
            backend.delete_route_table(self.id)  # DependencyViolation while associated: moto retries it later
    patch.set_if_missing(RouteTable, "delete", delete)


@fix("log-group-kms-key", patches="moto.logs.models.LogGroup.create_from_cloudformation_json",
     why="""AWS::Logs::LogGroup's KmsKeyId reaches the log group. moto read only 'kmsKeyId', so every
     KMS-encrypted log group (flow logs, job logs) was created unencrypted.""",
     source="moto/logs/models.py:408 reads kwargs.get('kmsKeyId'); CloudFormation writes KmsKeyId")
def log_group_kms_key(patch: Patcher) -> None:
    from moto.logs.models import LogGroup

    def rewrite(properties: dict[str, Any]) -> dict[str, Any]:
        if "KmsKeyId" in properties:
            properties["kmsKeyId"] = properties["KmsKeyId"]
        return properties
    rewrite_properties(patch, LogGroup, rewrite)


FIXES: tuple[Fix, ...] = (kms_key_tags, kms_key_policy, getatt_unmodeled, change_set_outputs, route_table_delete,
                          log_group_kms_key)
