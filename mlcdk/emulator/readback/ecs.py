"""Read-back of Amazon ECS (an InferenceFleet's engine): clusters with their capacity providers, each provider's Auto
Scaling group settings, the services (task definition, load balancer, deployment settings, health-check grace) and
the task definitions they run (image, command, GPUs or Neuron devices, memory, health check)."""
from __future__ import annotations

from collections.abc import Collection
from typing import Any

from mlcdk.emulator.readback._view import Clients, Section, StackView, command_text


def _provider(view: StackView, name: str) -> None:
    found = view.clients("ecs").describe_capacity_providers(capacityProviders=[name])["capacityProviders"]
    for provider in found:
        view.keep("ecs capacity providers", provider["name"], f"ECS capacity provider {provider['name']}")
        group = provider.get("autoScalingGroupProvider", {})
        scaling = group.get("managedScaling", {})
        view.line(f"    capacity provider {provider['name']}: Auto Scaling group {group.get('autoScalingGroupArn')}; "
                  f"managed scaling {scaling.get('status')} (target {scaling.get('targetCapacity')}%), managed "
                  f"termination protection {group.get('managedTerminationProtection')}, managed draining "
                  f"{group.get('managedDraining', 'unset')}")


def describe_clusters(view: StackView) -> None:
    names = [c.physical for c in view.of_type("AWS::ECS::Cluster")]
    if not names:
        return
    for cluster in view.clients("ecs").describe_clusters(clusters=names)["clusters"]:
        view.keep("ecs clusters", cluster["clusterArn"], f"ECS cluster {cluster['clusterName']}")
        strategy = ", ".join(f"{s['capacityProvider']} (weight {s.get('weight', 0)})"
                             for s in cluster.get("defaultCapacityProviderStrategy", []))
        view.line(f"  ECS cluster {cluster['clusterName']}: status {cluster.get('status')}; capacity providers: "
                  f"{', '.join(cluster.get('capacityProviders', [])) or 'none'}; default strategy: {strategy or 'none'}")
        for name in cluster.get("capacityProviders", []):
            _provider(view, name)


def clusters_still_there(clients: Clients, arns: Collection[str]) -> set[str]:
    found = clients("ecs").describe_clusters(clusters=list(arns))["clusters"]
    return {c["clusterArn"] for c in found if c.get("status") == "ACTIVE"}


def providers_still_there(clients: Clients, names: Collection[str]) -> set[str]:
    found = clients("ecs").describe_capacity_providers(capacityProviders=list(names))["capacityProviders"]
    return {p["name"] for p in found}


def _task_definition(view: StackView, arn: str) -> None:
    definition = view.clients("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]
    view.line(f"    task definition {arn.rsplit('/', 1)[-1]}: network mode {definition.get('networkMode', '?')}, "
              f"task role {str(definition.get('taskRoleArn', 'none')).rsplit('/', 1)[-1]}")
    for container in definition.get("containerDefinitions", []):
        _container(view, container)


def _container(view: StackView, container: dict[str, Any]) -> None:
    linux = container.get("linuxParameters", {})
    devices = [d.get("hostPath") for d in linux.get("devices", [])]
    gpus = [r["value"] for r in container.get("resourceRequirements", []) if r.get("type") == "GPU"]
    check = container.get("healthCheck", {})
    view.line(f"      container {container.get('name')} ({'essential' if container.get('essential', True) else 'runs first'}):"
              f" {container.get('image')}")
    view.line(f"        command: {command_text([*container.get('entryPoint', []), *container.get('command', [])])}")
    accelerators = (f"{gpus[0]} GPU(s)" if gpus else "") + (", ".join(devices) if devices else "")
    view.line(f"        memory {container.get('memory', '?')} MiB, shared memory {linux.get('sharedMemorySize', 'default')}"
              f" MiB; accelerators: {accelerators or 'none'}; ports: "
              + (", ".join(f"{p.get('hostPort')}->{p.get('containerPort')}" for p in container.get("portMappings", []))
                 or "none"))
    if check:
        view.line(f"        health check every {check.get('interval')} s, start period {check.get('startPeriod')} s: "
                  f"{' '.join(check.get('command', [])[1:])}")


def describe_services(view: StackView) -> None:
    arns = [c.physical for c in view.of_type("AWS::ECS::Service")]
    for arn in arns:
        cluster = arn.split("/")[-2] if arn.count("/") >= 2 else "default"
        for service in view.clients("ecs").describe_services(cluster=cluster, services=[arn])["services"]:
            view.keep("ecs services", service["serviceArn"], f"ECS service {service['serviceName']}")
            deployment = service.get("deploymentConfiguration", {})
            breaker = deployment.get("deploymentCircuitBreaker", {})
            balancers = ", ".join(f"{b.get('containerName')}:{b.get('containerPort')} -> "
                                  f"{str(b.get('targetGroupArn', '')).split(':')[-1]}"
                                  for b in service.get("loadBalancers", []))
            strategy = ", ".join(s["capacityProvider"] for s in service.get("capacityProviderStrategy", []))
            view.line(f"  ECS service {service['serviceName']} in {service.get('clusterArn', '').rsplit('/', 1)[-1]}: "
                      f"desired {service.get('desiredCount')}, capacity provider {strategy or 'none'}; load balancer: "
                      f"{balancers or 'none'}")
            view.line(f"    deployments: {deployment.get('minimumHealthyPercent', '?')}-"
                      f"{deployment.get('maximumPercent', '?')}%, circuit breaker "
                      f"{'on' if breaker.get('enable') else 'off'}{' with rollback' if breaker.get('rollback') else ''};"
                      f" health-check grace {service.get('healthCheckGracePeriodSeconds', 0)} s")
            _task_definition(view, service["taskDefinition"])


def services_still_there(clients: Clients, arns: Collection[str]) -> set[str]:
    left = set()
    for arn in arns:
        cluster = arn.split("/")[-2] if arn.count("/") >= 2 else "default"
        try:
            found = clients("ecs").describe_services(cluster=cluster, services=[arn])["services"]
        except Exception:  # noqa: BLE001 - the cluster itself is gone: so is the service
            continue
        left |= {s["serviceArn"] for s in found if s.get("status") == "ACTIVE"}
    return left


SECTIONS = (Section("ecs clusters", describe_clusters, clusters_still_there),
            Section("ecs capacity providers", lambda view: None, providers_still_there),
            Section("ecs services", describe_services, services_still_there))
