"""How a TrainingCluster on AWS Batch says what it is, so that the job commands find it in any stack.

Pure Python: the constructs write these tags and ``mlcdk.aws.jobs`` reads them back with boto3.

The mechanism is tags on the cluster's own Batch job queue, because the queue is what jobs go to and:

- tags travel with the resource, not with a stack: a TrainingCluster in any stack, under any construct ID, in any
  account, is found by one ``DescribeJobQueues`` call, which returns each queue's tags (Batch API reference,
  "JobQueueDetail": ``tags``). No stack output, stack name or CloudFormation permission is needed;
- the values that can change (the job definition's ARN, which gets a new revision whenever it changes, and the
  log group's name) are references that CloudFormation resolves at every deploy, and a job queue's tags are
  updated in place: its registry schema lists only ``JobQueueName`` and ``JobQueueType`` as create-only and marks
  its tags ``tagUpdatable`` (cfn-lint's bundled ``AWS::Batch::JobQueue`` schema). A renamed or replaced
  definition or log group is picked up on the next deploy, without replacing the queue;
- the job definition carries the cluster's name too, so a revision made by ``mlcdk submit --image`` (a copy of
  it) still says which cluster it belongs to.

Batch tag values take letters, numbers, spaces and ``_ . : / = + - @``, up to 256 characters (Batch API
reference, "TagResource"): :func:`cluster_name` keeps the name within that.
"""

from __future__ import annotations

import re

#: On the job queue and the job definition: the cluster's name (``mlcdk clusters``, ``--cluster``).
CLUSTER_TAG = "mlcdk:cluster"
#: On the job queue: the job definition's ARN (with its revision), the job log group's name, the most nodes one job
#: may use, and the checkpoint bucket (where ``--workdir`` uploads go).
DEFINITION_TAG = "mlcdk:job-definition"
LOG_GROUP_TAG = "mlcdk:log-group"
MAX_NODES_TAG = "mlcdk:max-nodes"
BUCKET_TAG = "mlcdk:bucket"
QUEUE_TAGS = (CLUSTER_TAG, DEFINITION_TAG, LOG_GROUP_TAG, MAX_NODES_TAG, BUCKET_TAG)

#: Longest tag value Batch takes (API reference, "TagResource": tag values up to 256 characters).
MAX_TAG_VALUE = 256
_NOT_TAG_CHARACTER = re.compile(r"[^\w .:/=+\-@]")


def cluster_name(stack_name: str, path_in_stack: str) -> str:
    """The name a cluster is listed and selected by: its stack's name and its construct path inside the stack,
    e.g. ``TrainingStack/Cluster`` or ``MyTeamStack/Research/Pretrain``. A character that a Batch tag value cannot
    hold becomes ``-``. Raises ValueError when the name would be longer than a tag value may be."""
    name = _NOT_TAG_CHARACTER.sub("-", f"{stack_name}/{path_in_stack}")
    if len(name) > MAX_TAG_VALUE:
        raise ValueError(f"the cluster's name {name[:60]!r}... ({len(name)} characters, its stack's name and "
                         f"construct path) is longer than the {MAX_TAG_VALUE} characters of a Batch tag value; "
                         "use a shorter stack name or construct ID")
    return name
