"""moto fixes for Amazon ECS in CloudFormation: an InferenceFleet's capacity provider and what its service and task
definition ask for. Source lines are moto 5.2.5's; ``FIXES`` lists them in the order they apply.
"""
from __future__ import annotations

from typing import Any

from mlcdk.emulator.fixes._patch import Fix, Patcher, fix

#: The two resource types moto's CloudFormation lacks, and the properties the service handler drops.
CAPACITY_PROVIDER = "AWS::ECS::CapacityProvider"
ASSOCIATIONS = "AWS::ECS::ClusterCapacityProviderAssociations"


def _camel(value: Any) -> Any:
    from moto.core.utils import pascal_to_camelcase, remap_nested_keys

    return remap_nested_keys(value, pascal_to_camelcase)


def _backend(account_id: str, region_name: str) -> Any:
    from moto.ecs.models import ecs_backends

    return ecs_backends[account_id][region_name]


def _name_of(value: Any) -> str:
    """A cluster or capacity provider as CloudFormation passes it (a name, an ARN, or moto's resolved object)."""
    name = getattr(value, "name", value)
    return str(name).rsplit("/", 1)[-1]


def _models() -> dict[str, type]:
    """CloudFormation models for the capacity provider and the cluster's association with it, on moto's ECS API
    (``create_capacity_provider``, ``put_cluster_capacity_providers``), which moto has but its CloudFormation
    does not reach. Ref is the provider's name and the association's cluster, as in CloudFormation."""
    from moto.core.common_models import BaseModel

    class Resource(BaseModel):
        """What moto's CloudFormation asks of a created resource, beyond BaseModel."""

        def is_created(self) -> bool:
            return True

    class CapacityProviderResource(Resource):
        def __init__(self, provider: Any) -> None:
            self.provider = provider
            self.physical_resource_id = provider.name

        @classmethod
        def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                            account_id: str, region_name: str, **kwargs: Any) -> Any:
            properties = cloudformation_json["Properties"]
            details = _camel(properties["AutoScalingGroupProvider"])
            tags = _camel(properties.get("Tags", []))
            name = properties.get("Name") or resource_name
            return cls(_backend(account_id, region_name).create_capacity_provider(name, details, tags))

        def delete(self, account_id: str, region_name: str) -> None:
            _backend(account_id, region_name).delete_capacity_provider(self.provider.name)

    class AssociationsResource(Resource):
        def __init__(self, cluster: str) -> None:
            self.physical_resource_id = cluster

        @classmethod
        def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                            account_id: str, region_name: str, **kwargs: Any) -> Any:
            properties = cloudformation_json["Properties"]
            cluster = _name_of(properties["Cluster"])
            strategy = [{**_camel(s), "capacityProvider": _name_of(s["CapacityProvider"])}
                        for s in properties.get("DefaultCapacityProviderStrategy", [])]
            _backend(account_id, region_name).put_cluster_capacity_providers(
                cluster, [_name_of(p) for p in properties.get("CapacityProviders", [])], strategy)
            return cls(cluster)

        def delete(self, account_id: str, region_name: str) -> None:
            _backend(account_id, region_name).put_cluster_capacity_providers(self.physical_resource_id, [], [])

    return {CAPACITY_PROVIDER: CapacityProviderResource, ASSOCIATIONS: AssociationsResource}


@fix("ecs-capacity-providers", patches="moto.cloudformation.parsing.resource_class_from_type",
     why=f"""{CAPACITY_PROVIDER} and {ASSOCIATIONS} are created through moto's ECS API (create_capacity_provider,
     put_cluster_capacity_providers). moto's CloudFormation has no model for either: it skipped both silently, so
     an InferenceFleet's cluster had no capacity provider and DescribeCapacityProviders found none.""",
     source="moto/cloudformation/parsing.py:277 (resource_class_from_type) knows no model for either type")
def ecs_capacity_providers(patch: Patcher) -> None:
    from moto.cloudformation import parsing

    original = parsing.resource_class_from_type
    models = _models()

    def resource_class_from_type(resource_type: str) -> Any:
        return models.get(resource_type) or original(resource_type)
    patch.set(parsing, "resource_class_from_type", resource_class_from_type)


@fix("ecs-service-properties", patches="moto.ecs.models.Service.create_from_cloudformation_json",
     why="""AWS::ECS::Service's LoadBalancers, CapacityProviderStrategy, DeploymentConfiguration (circuit breaker,
     minimum and maximum percent), HealthCheckGracePeriodSeconds and PlacementConstraints reach the service, and
     a service created without DesiredCount starts with 1 task, as CloudFormation's does. moto kept only the
     cluster, the task definition and the desired count ('TODO: LoadBalancers'), defaulting the count to 0, so
     DescribeServices showed none of them and a scaled service (no DesiredCount) asked for no task.""",
     source="moto/ecs/models.py:614 (Service.create_from_cloudformation_json) passes three properties")
def ecs_service_properties(patch: Patcher) -> None:
    from moto.ecs.models import Service

    current = Service.__dict__["create_from_cloudformation_json"]
    keep = {"LoadBalancers": "load_balancers", "CapacityProviderStrategy": "capacity_provider_strategy",
            "DeploymentConfiguration": "deployment_configuration", "PlacementConstraints": "placement_constraints",
            "HealthCheckGracePeriodSeconds": "health_check_grace_period_seconds", "PropagateTags": "propagate_tags"}

    def create(cls: type, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
               region_name: str, **kwargs: Any) -> Any:
        service = current.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        properties = cloudformation_json.get("Properties", {})
        if properties.get("DesiredCount") is None and properties.get("SchedulingStrategy") != "DAEMON":
            service.desired_count = 1
        for prop, attribute in keep.items():
            if prop in properties:
                value = _camel(properties[prop])
                if prop == "CapacityProviderStrategy":
                    value = [{**s, "capacityProvider": _name_of(s["capacityProvider"])} if "capacityProvider" in s
                             else s for s in value]
                setattr(service, attribute, value)
        return service
    patch.set(Service, "create_from_cloudformation_json", classmethod(create))


@fix("ecs-task-definition-properties", patches="moto.ecs.models.TaskDefinition.create_from_cloudformation_json",
     why="""AWS::ECS::TaskDefinition's NetworkMode, TaskRoleArn, ExecutionRoleArn, RequiresCompatibilities and
     PlacementConstraints reach the task definition. moto passed only the family, the containers, the volumes and
     the memory, so DescribeTaskDefinition showed no task role and no execution role (bridge mode is moto's
     default, so the network mode read back right only by chance).""",
     source="moto/ecs/models.py:252 (TaskDefinition.create_from_cloudformation_json) calls "
            "register_task_definition with four arguments")
def ecs_task_definition_properties(patch: Patcher) -> None:
    from moto.ecs.models import TaskDefinition

    current = TaskDefinition.__dict__["create_from_cloudformation_json"]
    keep = {"NetworkMode": "network_mode", "TaskRoleArn": "task_role_arn", "ExecutionRoleArn": "execution_role_arn",
            "RequiresCompatibilities": "requires_compatibilities", "PlacementConstraints": "placement_constraints"}

    def create(cls: type, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
               region_name: str, **kwargs: Any) -> Any:
        definition = current.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        properties = cloudformation_json.get("Properties", {})
        for prop, attribute in keep.items():
            if prop in properties:
                setattr(definition, attribute, _camel(properties[prop]))
        return definition
    patch.set(TaskDefinition, "create_from_cloudformation_json", classmethod(create))


@fix("ecs-delete-with-stack", patches="moto.ecs.models.Cluster/Service/TaskDefinition.delete",
     why="""A stack's ECS service, cluster and task definition are deleted with it, as CloudFormation does: the
     service scaled to 0 and deleted, the cluster deleted (both INACTIVE, as the ECS API leaves them), the task
     definition deregistered. moto kept all three ACTIVE, so cdk destroy left the cluster and the service behind.""",
     source="moto/ecs/models.py: Cluster, Service and TaskDefinition define no delete() and no "
            "delete_from_cloudformation_json")
def ecs_delete_with_stack(patch: Patcher) -> None:
    from moto.ecs.models import Cluster, Service, TaskDefinition

    def delete_cluster(self: Any, account_id: str, region_name: str) -> None:
        _backend(account_id, region_name).delete_cluster(self.name)

    def delete_service(self: Any, account_id: str, region_name: str) -> None:
        _backend(account_id, region_name).delete_service(self.cluster_name, self.name, force=True)

    def deregister(self: Any, account_id: str, region_name: str) -> None:
        _backend(account_id, region_name).deregister_task_definition(self.arn)
    patch.set_if_missing(Cluster, "delete", delete_cluster)
    patch.set_if_missing(Service, "delete", delete_service)
    patch.set_if_missing(TaskDefinition, "delete", deregister)


FIXES: tuple[Fix, ...] = (ecs_capacity_providers, ecs_service_properties, ecs_task_definition_properties,
                          ecs_delete_with_stack)
