"""The path registry of a node (mlcdk.presets.paths): mount points are checked for their syntax, for paths the
OS, Docker, ECS, AWS agents and mlcdk own, and for collisions with each other."""
from __future__ import annotations

import pytest

from mlcdk import ConfigurationError
from mlcdk.presets import paths
from mlcdk.presets.paths import Claim, check_claims

PATHS = [
    # (path, None when it may be a mount point, else a fragment of the problem)
    ("/data", None),
    ("/fsx", None),
    ("/scratch/job-1", None),
    ("/mnt/data", None),
    ("/home/ubuntu/data", None),
    ("/opt/ml", None),
    ("/var/lib/mydata", None),
    ("/tmp/cache", None),
    ("/", "must not be / (the root file system)"),
    ("data", "must be an absolute path"),
    ("/data/", "must be an absolute path"),
    ("/my data", "must be an absolute path"),
    ("/data;reboot", "must be an absolute path"),
    ("/data/../etc", "must not contain '.' or '..' components"),
    ("/var/lib/docker", "is owned by Docker (the Docker daemon's data root"),
    ("/var/lib/docker/volumes/x", "lies inside /var/lib/docker, which is owned by Docker"),
    ("/var/lib/ecs", "is owned by Amazon ECS"),
    ("/var/lib/containerd", "is owned by containerd"),
    ("/var/log/ecs", "lies inside /var/log, which is owned by the OS"),
    ("/var/run/docker.sock", "lies inside /var/run"),
    ("/run/containerd", "lies inside /run"),
    ("/etc", "is owned by the OS"),
    ("/etc/ecs", "lies inside /etc"),
    ("/proc/data", "lies inside /proc, which is owned by the kernel"),
    ("/opt/aws/neuron", "lies inside /opt/aws, which is owned by AWS agents"),
    ("/opt/amazon/efa", "lies inside /opt/amazon"),
    ("/opt/dlami/nvme", "lies inside /opt/dlami"),
    ("/opt/mlcdk", "is owned by mlcdk"),
    ("/snap/amazon-ssm-agent", "lies inside /snap"),
    ("/var", "would hide /var/run"),
    ("/var/lib", "would hide /var/lib/docker"),
    ("/opt", "would hide /opt/aws"),
    ("/home", "is owned by the OS (users' home directories"),
    ("/tmp", "is owned by the OS (temporary files"),
    ("/mnt", "is owned by the OS"),
]


@pytest.mark.parametrize(("path", "problem"), PATHS, ids=[p for p, _ in PATHS])
def test_path_problem(path, problem):
    found = paths.path_problem(path)
    assert found is None if problem is None else problem in found, found


def test_every_owned_path_has_an_owner_a_reason_and_a_source():
    owned = paths.owned_paths()
    assert {"/var/lib/docker", "/var/lib/ecs", "/etc", "/opt/mlcdk"} <= set(owned)
    for entry in owned.values():
        assert entry.owner and entry.reason and entry.source.startswith(("https://", "mlcdk/"))
        assert paths.path_problem(entry.path) is not None


COLLISIONS = [
    ([Claim("/data", "storage.data_mount_point", "the data volume"),
      Claim("/data", "shared_storage.mount_point", "the shared file system")],
     "shared_storage.mount_point ('/data') is the same directory as storage.data_mount_point ('/data'), where the "
     "data volume is mounted"),
    ([Claim("/fsx/data", "storage.data_mount_point", "the data volume"),
      Claim("/fsx", "shared_storage.mount_point", "the shared file system")],
     "shared_storage.mount_point ('/fsx') holds storage.data_mount_point ('/fsx/data')"),
    ([Claim("/fsx", "shared_storage.mount_point", "the shared file system"),
      Claim("/fsx/cache", "model.cache_path", "the model cache")],
     "model.cache_path ('/fsx/cache') lies inside shared_storage.mount_point ('/fsx'), where the shared file "
     "system is mounted"),
]


@pytest.mark.parametrize(("claims", "message"), COLLISIONS, ids=["same", "holds", "inside"])
def test_claims_collide(claims, message):
    with pytest.raises(ConfigurationError) as error:
        check_claims(claims)
    assert message in str(error.value)


def test_separate_claims_pass():
    check_claims([Claim("/data", "storage.data_mount_point", "the data volume"),
                  Claim("/fsx", "shared_storage.mount_point", "the shared file system"),
                  Claim("/database", "x", "a directory whose name starts like /data")])
