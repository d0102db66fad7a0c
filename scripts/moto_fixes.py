"""Workarounds for moto 5.2.5 bugs that stop a CDK stack from deploying or deleting in the local emulator.

Each fix is listed in MOTO_FIXES (printed on every emulator run). None changes what a template asks for.
They are applied in the moto server process that scripts/emulator.py starts, and by
tests/integration/test_inprocess_deploy.py around mock_aws(), and undone on exit.
"""
from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

# --------------------------------------------------------------------------------------------------
# moto fixes. Each works around a bug or gap of moto 5.2.5 that stops a CDK stack from deploying or
# deleting; none changes what the templates ask for. They are applied in the moto server process
# (``--serve-moto``) and by tests/integration/test_inprocess_deploy.py around mock_aws().
# --------------------------------------------------------------------------------------------------

MOTO_FIXES = (
    "AWS::KMS::Key Tags: CloudFormation's Key/Value tags are passed to moto's KMS tagger as TagKey/TagValue "
    "(moto raised KeyError 'TagKey', so every tagged key failed as 'Fn::GetAtt references undefined resource')",
    "AWS::KMS::Key KeyPolicy: stored as JSON text (moto stored the template's object, and every later "
    "DescribeKey on the key answered HTTP 500: 'the JSON object must be str ... not dict')",
    "Fn::GetAtt on a resource type moto does not model (AWS::CloudWatch::Alarm, AWS::EC2::PlacementGroup) "
    "returns a placeholder 'arn:aws:moto-unmodeled:...' string instead of failing the stack",
    "ExecuteChangeSet (how cdk deploy creates a stack) also installs the change set's template on the stack, "
    "so DescribeStacks returns its Outputs and Exports (moto kept the empty placeholder template: no outputs at all)",
    "AWS::EC2::RouteTable is deleted with its stack (moto kept it, so the VPC's deletion failed with "
    "DependencyViolation)",
)


@contextlib.contextmanager
def moto_fixes() -> Iterator[None]:
    """Apply the MOTO_FIXES to the moto modules of this process; undo them on exit."""
    from moto.cloudformation import parsing
    from moto.cloudformation.models import ChangeSet
    from moto.ec2.models.route_tables import RouteTable
    from moto.kms.models import Key

    original_key_create = Key.__dict__["create_from_cloudformation_json"]
    original_clean_json = parsing.clean_json
    had_route_table_delete = "delete" in RouteTable.__dict__

    def key_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = dict(cloudformation_json.get("Properties", {}))
        properties["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} if "Key" in t else t
                              for t in properties.get("Tags", [])]
        if isinstance(properties.get("KeyPolicy"), dict):
            properties["KeyPolicy"] = json.dumps(properties["KeyPolicy"])
        fixed = dict(cloudformation_json, Properties=properties)
        return original_key_create.__func__(cls, resource_name, fixed, account_id, region_name, **kwargs)

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, dict) and "Fn::GetAtt" in resource_json:
            name, attribute = resource_json["Fn::GetAtt"][0], resource_json["Fn::GetAtt"][1]
            declared = resources_map._resource_json_map.get(name)
            if declared is not None and parsing.resource_class_from_type(declared["Type"]) is None:
                return f"arn:aws:moto-unmodeled:::{declared['Type']}/{name}/{attribute}"
        return original_clean_json(resource_json, resources_map)

    def route_table_delete(self, account_id: str, region_name: str) -> None:
        from moto.ec2.models import ec2_backends
        backend = ec2_backends[account_id][region_name]
        if self.id in backend.route_tables:
            backend.delete_route_table(self.id)  # DependencyViolation while associated: moto retries later

    original_apply = ChangeSet.apply

    def change_set_apply(self) -> None:
        original_apply(self)
        stack = self.stack
        stack.template, stack.template_dict = self.template, self.template_dict
        stack.description = self.template_dict.get("Description")
        stack.output_map = stack._create_output_map()
        from moto.cloudformation.models import cloudformation_backends
        backend = cloudformation_backends[stack.account_id][stack.region_name]
        for export in stack.exports:  # as create_stack registers them (delete_stack removes them)
            backend.exports[export.name] = export

    ChangeSet.apply = change_set_apply
    Key.create_from_cloudformation_json = classmethod(key_create)
    parsing.clean_json = clean_json
    if not had_route_table_delete:
        RouteTable.delete = route_table_delete
    try:
        yield
    finally:
        Key.create_from_cloudformation_json = original_key_create
        ChangeSet.apply = original_apply
        parsing.clean_json = original_clean_json
        if not had_route_table_delete:
            del RouteTable.delete
