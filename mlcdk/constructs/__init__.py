"""CDK constructs. This is the only part of mlcdk (with mlcdk.stacks) that imports aws_cdk."""

from mlcdk.constructs.network import PrivateNetwork

__all__ = ["PrivateNetwork"]
