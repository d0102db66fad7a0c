"""Read-back of AWS Batch: compute environments (with the launch template version they pin), job queues and job
definitions."""
from __future__ import annotations

from collections.abc import Collection
from typing import Any

from mlcdk.emulator.readback._view import Clients, Section, StackView, command_text
from mlcdk.emulator.readback.compute import describe_launch_template


def _pinned_template(view: StackView, spec: dict[str, Any]) -> None:
    """The launch template version a compute environment pins, against the template's latest."""
    ec2 = view.clients("ec2")
    query = ({"LaunchTemplateIds": [spec["launchTemplateId"]]} if spec.get("launchTemplateId")
             else {"LaunchTemplateNames": [spec["launchTemplateName"]]})
    template = ec2.describe_launch_templates(**query)["LaunchTemplates"][0]
    wanted = str(spec.get("version", "$Default"))
    latest = template["LatestVersionNumber"]
    view.line(f"    launch template version: {wanted} (pinned; the template's latest is {latest}"
              + (")" if wanted == str(latest) else f"; NOT the latest, Batch keeps launching version {wanted})"))
    version = ec2.describe_launch_template_versions(
        LaunchTemplateId=template["LaunchTemplateId"], Versions=[wanted])["LaunchTemplateVersions"][0]
    describe_launch_template(view, version)


def _environment(view: StackView, environment: dict[str, Any], asked: dict[str, Any]) -> None:
    resources = environment.get("computeResources", {})
    desired = f", desired {resources['desiredvCpus']}" if "desiredvCpus" in resources else ""
    view.line(f"  Batch compute environment {environment['computeEnvironmentName']}")
    view.line(f"    {environment.get('type')} {resources.get('type', '?')}, state {environment.get('state')}, status "
              f"{environment.get('status')}; vCPUs: min {resources.get('minvCpus')}, max {resources.get('maxvCpus')}"
              f"{desired}; instance types: {', '.join(resources.get('instanceTypes', [])) or 'none'}; "
              f"allocation {resources.get('allocationStrategy', '?')}")
    images = ", ".join(f"{c.get('imageType')} {c.get('imageIdOverride', '')}".strip()
                       for c in resources.get("ec2Configuration", []))
    groups = resources.get("securityGroupIds") or "none (the launch template network interfaces carry the group)"
    view.line(f"    image: {images or 'Batch default'}; subnets: {', '.join(resources.get('subnets', []))}; "
              f"SecurityGroupIds: {groups}; service role: {environment.get('serviceRole', 'none').rsplit('/', 1)[-1]}")
    if asked.get("PlacementGroup") or resources.get("placementGroup"):
        view.line(f"    placement group: {resources.get('placementGroup') or 'none'}"
                  + (" (the template asks for a cluster placement group; moto does not model "
                     "AWS::EC2::PlacementGroup, so the environment has none)" if not resources.get("placementGroup")
                     else ""))
    spec = resources.get("launchTemplate", {})
    if spec.get("launchTemplateId") or spec.get("launchTemplateName"):
        _pinned_template(view, spec)


def describe_environments(view: StackView) -> None:
    logical = {c.physical: c.logical for c in view.of_type("AWS::Batch::ComputeEnvironment")}
    if not logical:
        return
    found = view.clients("batch").describe_compute_environments(computeEnvironments=list(logical))
    for environment in found["computeEnvironments"]:
        arn = environment["computeEnvironmentArn"]
        view.keep("batch compute environments", arn, f"Batch compute environment {arn}", logical.get(arn))
        _environment(view, environment, view.properties(logical.get(arn, "")).get("ComputeResources", {}))


def environments_still_there(clients: Clients, arns: Collection[str]) -> set[str]:
    found = clients("batch").describe_compute_environments()["computeEnvironments"]
    return {e["computeEnvironmentArn"] for e in found} & set(arns)


def describe_queues(view: StackView) -> None:
    arns = [c.physical for c in view.of_type("AWS::Batch::JobQueue")]
    for queue in view.clients("batch").describe_job_queues(jobQueues=arns)["jobQueues"] if arns else []:
        view.keep("batch job queues", queue["jobQueueArn"], f"Batch job queue {queue['jobQueueArn']}")
        order = ", ".join(f"{c['computeEnvironment'].rsplit('/', 1)[-1]} (order {c['order']})"
                          for c in queue.get("computeEnvironmentOrder", []))
        view.line(f"  Batch job queue {queue['jobQueueName']}: state {queue['state']}, status {queue.get('status')}, "
                  f"priority {queue['priority']}; compute environments: {order}")


def queues_still_there(clients: Clients, arns: Collection[str]) -> set[str]:
    return {q["jobQueueArn"] for q in clients("batch").describe_job_queues()["jobQueues"]} & set(arns)


def _container_line(target: str, container: dict[str, Any]) -> str:
    needs = {r["type"]: r["value"] for r in container.get("resourceRequirements", [])}
    devices = container.get("linuxParameters", {}).get("devices", [])
    return (f"    node range \"{target}\": image {container.get('image')}; {needs.get('VCPU', '?')} vCPUs, "
            f"{needs.get('MEMORY', '?')} MiB{', ' + needs['GPU'] + ' GPUs' if 'GPU' in needs else ''}; "
            f"{len(devices)} host devices; command {command_text(container.get('command', []))}")


def describe_definitions(view: StackView) -> None:
    arns = [c.physical for c in view.of_type("AWS::Batch::JobDefinition")]
    for definition in view.clients("batch").describe_job_definitions(jobDefinitions=arns)["jobDefinitions"] \
            if arns else []:
        arn = definition["jobDefinitionArn"]
        view.keep("batch job definitions", arn, f"ACTIVE Batch job definition {arn}")
        nodes = definition.get("nodeProperties", {})
        retry = definition.get("retryStrategy") or {}
        timeout = (definition.get("timeout") or {}).get("attemptDurationSeconds")
        view.line(f"  Batch job definition {definition['jobDefinitionName']}:{definition['revision']}: type "
                  f"{definition['type']}, status {definition['status']}"
                  + (f", NumNodes {nodes.get('numNodes')} (main node {nodes.get('mainNode')})" if nodes else "")
                  + f"; platform {', '.join(definition.get('platformCapabilities') or ['?'])}; retry attempts "
                  f"{retry.get('attempts', 'not set')}; timeout {f'{timeout} s' if timeout else 'none'}")
        ranges = [(r.get("targetNodes"), r.get("container", {})) for r in nodes.get("nodeRangeProperties", [])]
        if "containerProperties" in definition:
            ranges.append(("(single node)", definition["containerProperties"]))
        for target, container in ranges:
            view.line(_container_line(target, container))


def definitions_still_active(clients: Clients, arns: Collection[str]) -> set[str]:
    found = clients("batch").describe_job_definitions(status="ACTIVE")["jobDefinitions"]
    return {d["jobDefinitionArn"] for d in found} & set(arns)


SECTIONS = (Section("batch compute environments", describe_environments, environments_still_there),
            Section("batch job queues", describe_queues, queues_still_there),
            Section("batch job definitions", describe_definitions, definitions_still_active))
