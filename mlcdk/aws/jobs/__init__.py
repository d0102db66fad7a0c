"""Jobs on a deployed TrainingCluster (AWS Batch), for ``mlcdk clusters|submit|jobs|logs|cancel|shell``.

The library half of the job commands: it finds clusters by the tags they carry (mlcdk.presets.discovery), builds
and sends Batch requests, packs and uploads work directories, and reads jobs and their logs. It returns data or
raises :class:`JobsError`; ``mlcdk.cli.jobs`` only formats. boto3 is imported inside the functions that call AWS,
so importing this package stays cheap.

Modules: ``aws`` (sessions and AWS errors), ``clusters`` (discovery), ``inputs`` (checks of command-line values,
made before any AWS client exists), ``workdir`` (packing and upload), ``submit``, ``follow`` (job state, logs,
exit codes), ``shell`` (ECS Exec into a running job).
"""

from mlcdk.aws.jobs.aws import AwsError, JobsError

__all__ = ["AwsError", "JobsError"]
