"""`mlcdk submit --workdir` (issue #23, point 2): the pack, its upload, and the launcher's fetch (exit code 4).

The fetch runs against a moto server with IAM authentication on: moto recomputes each request's Signature Version 4
with botocore's own S3 signer and checks the caller's IAM policy, so the launcher's standard-library signing is
checked against botocore's. The job role's credentials come as on ECS, from a container credentials endpoint; the
endpoint here is a small local HTTP server answering the ECS agent's documented JSON, and botocore's own container
credential provider reads the same endpoint as the oracle. The last test is the 2-node gloo torchrun of
tests/test_launch_torchrun.py, run from a packed workdir whose script is nowhere else.
"""
from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import boto3
import pytest

from mlcdk import launch
from mlcdk.aws.jobs import JobsError, workdir
from tests.jobs_cloud import BUCKET, REGION

ROLE_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/mlcdk/workdirs/*"}]}


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def members(packed: workdir.Pack) -> dict[str, tuple[int, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(packed.data), mode="r:gz") as archive:
        return {m.name: (m.mode, archive.extractfile(m).read()) for m in archive}


def git(directory: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(directory), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"})


# --------------------------------------------------------------------------------------------
# Packing
# --------------------------------------------------------------------------------------------


def test_a_plain_directory_is_packed_without_caches_and_keeps_executables(tmp_path):
    write(tmp_path, {"train.py": "print('train')\n", "conf/model.yaml": "layers: 2\n", "run.sh": "#!/bin/sh\n",
                     "__pycache__/train.cpython-311.pyc": b"\0", "lib/util.pyc": b"\0", ".venv/bin/python": "x",
                     ".git/HEAD": "ref", ".DS_Store": "x", "node_modules/a/index.js": "x"})
    (tmp_path / "run.sh").chmod(0o755)
    packed = workdir.pack(str(tmp_path))
    assert (packed.source, packed.files, packed.left_out) == ("directory", 3, ())
    assert members(packed) == {"conf/model.yaml": (0o644, b"layers: 2\n"), "run.sh": (0o755, b"#!/bin/sh\n"),
                               "train.py": (0o644, b"print('train')\n")}
    assert packed.size == len("print('train')\n") + len("layers: 2\n") + len("#!/bin/sh\n")
    assert packed.digest == hashlib.sha256(packed.data).hexdigest()
    assert packed.key == f"mlcdk/workdirs/{packed.digest}.tar.gz"


def test_the_same_files_give_the_same_pack_whatever_their_times(tmp_path):
    write(tmp_path, {"train.py": "print('train')\n", "b/c.txt": "c"})
    first = workdir.pack(str(tmp_path))
    os.utime(tmp_path / "train.py", (1, 1))
    assert workdir.pack(str(tmp_path)).digest == first.digest
    (tmp_path / "train.py").write_text("print('changed')\n")
    assert workdir.pack(str(tmp_path)).digest != first.digest


def test_a_git_work_tree_sends_the_files_git_tracks_as_they_are_on_disk(tmp_path):
    repo = write(tmp_path / "repo", {"train/train.py": "v1\n", "train/data.py": "d\n", "README.md": "r\n",
                                     ".gitignore": "*.ckpt\n"})
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    write(repo, {"train/train.py": "v2, not committed\n", "train/notes.txt": "untracked\n", "train/x.ckpt": "ignored"})
    packed = workdir.pack(str(repo / "train"))
    assert packed.source == "git"
    assert members(packed) == {"data.py": (0o644, b"d\n"), "train.py": (0o644, b"v2, not committed\n")}
    assert packed.left_out == ("1 untracked file(s) (git add them to send them)",)


def test_a_link_to_a_file_is_sent_as_the_file_and_a_link_to_a_folder_is_left_out_and_said(tmp_path):
    write(tmp_path, {"real/config.yaml": "a: 1\n", "train.py": "x\n"})
    (tmp_path / "config.yaml").symlink_to(tmp_path / "real" / "config.yaml")
    (tmp_path / "data").symlink_to(tmp_path / "real")  # os.walk does not follow it: listed as a name
    packed = workdir.pack(str(tmp_path))
    assert set(members(packed)) == {"config.yaml", "real/config.yaml", "train.py"}
    assert members(packed)["config.yaml"] == (0o644, b"a: 1\n")
    assert packed.left_out == ("data (a link to a folder or to nothing)",)


def test_a_workdir_over_100_mib_is_refused_with_its_size_before_it_is_read(tmp_path):
    write(tmp_path, {"train.py": "x\n"})
    with open(tmp_path / "weights.bin", "wb") as big:  # sparse: 101 MiB on paper, nothing on disk
        big.truncate(101 * 1024 * 1024)
    with pytest.raises(JobsError) as refused:
        workdir.pack(str(tmp_path))
    assert str(refused.value) == (
        f"--workdir {tmp_path} is over the 100.0 MiB limit (at least 101.0 MiB; largest: weights.bin, 101.0 MiB): a "
        "workdir is code and configuration; put data in S3 or on the shared file system")
    assert launch.WORKDIR_MAX_BYTES == 100 * 1024 * 1024 == workdir.WORKDIR_MAX_BYTES  # one limit, both ends


def test_too_many_files_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(workdir, "MAX_FILES", 3)
    write(tmp_path, {f"f{i}.py": "x" for i in range(4)})
    with pytest.raises(JobsError, match="holds more than 3 files: a workdir is code"):
        workdir.pack(str(tmp_path))


@pytest.mark.parametrize(("make", "says"), [
    (lambda root: "", "--workdir '' is empty: give a directory, e.g. --workdir ."),
    (lambda root: str(root / "nope"), "--workdir {root}/nope: no such directory"),
    (lambda root: str(write(root, {"f.py": "x"}) / "f.py"), "--workdir {root}/f.py: not a directory"),
    (lambda root: str(root), "--workdir {root}: it holds no file (after the excludes); there is nothing to send"),
    (lambda root: str(write(root, {"__pycache__/a.pyc": b"\0", ".venv/x": "y"})),
     "--workdir {root}: it holds no file (after the excludes); there is nothing to send"),
])
def test_an_empty_or_missing_workdir_is_one_line(tmp_path, make, says):
    with pytest.raises(JobsError) as refused:
        workdir.pack(make(tmp_path))
    assert str(refused.value) == says.format(root=tmp_path)


def test_a_git_folder_with_no_tracked_file_is_refused(tmp_path):
    repo = write(tmp_path, {"scratch/a.py": "x"})
    git(repo, "init", "-q")
    with pytest.raises(JobsError, match="git tracks no file under it; there is nothing to send"):
        workdir.pack(str(repo / "scratch"))


# --------------------------------------------------------------------------------------------
# The launcher's fetch, against a moto server that checks signatures and IAM policies
# --------------------------------------------------------------------------------------------

TOKEN = "ecs-agent-token-for-this-test"


@pytest.fixture
def s3_server():
    """A moto server on loopback (its own thread), emptied afterwards; IAM authentication is off until a test turns
    it on with moto's enable_iam_authentication()."""
    import requests
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    requests.post(f"http://{host}:{port}/moto-api/reset", timeout=10)
    server.stop()


def aws(service: str, endpoint: str, **credentials: str):
    keys = credentials or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, **keys)


def job_role_credentials(endpoint: str, policy: dict = ROLE_POLICY) -> dict[str, str]:
    """Temporary credentials of a job role that may read the workdir packs (AssumeRole, as ECS does for a task)."""
    iam = aws("iam", endpoint)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]}
    role = iam.create_role(RoleName="job", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName="job", PolicyName="workdirs", PolicyDocument=json.dumps(policy))
    found = aws("sts", endpoint).assume_role(RoleArn=role, RoleSessionName="job")["Credentials"]
    return {"AccessKeyId": found["AccessKeyId"], "SecretAccessKey": found["SecretAccessKey"],
            "Token": found["SessionToken"], "Expiration": "2099-01-01T00:00:00Z", "RoleArn": role}


@pytest.fixture
def credentials_endpoint():
    """Serves ``served["credentials"]`` as the ECS agent does (ECS Developer Guide, "Task IAM role": the JSON of
    AccessKeyId, SecretAccessKey, Token, Expiration, RoleArn), to a request carrying the authorization token."""
    served: dict = {}

    class Endpoint(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            allowed = self.path == "/v2/credentials/job" and self.headers.get("Authorization") == TOKEN
            body = json.dumps(served["credentials"]).encode() if allowed else b"{}"
            self.send_response(200 if allowed else 401)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served["url"] = f"http://127.0.0.1:{server.server_address[1]}/v2/credentials/job"
    yield served
    server.shutdown()
    thread.join()


def uploaded(endpoint: str, directory: Path) -> tuple[workdir.Pack, dict[str, str]]:
    """Pack ``directory``, upload it as `mlcdk submit --workdir` does, and return the launcher's variables."""
    s3 = aws("s3", endpoint)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    packed = workdir.pack(str(directory))
    assert workdir.upload(s3, BUCKET, packed) is True
    assert workdir.upload(s3, BUCKET, packed) is False  # content-addressed: the same pack is not sent twice
    return packed, workdir.environment(BUCKET, REGION, packed)


def test_the_launcher_reads_the_credentials_botocore_reads_from_the_container_endpoint(s3_server, credentials_endpoint):
    from botocore.credentials import ContainerProvider

    credentials_endpoint["credentials"] = job_role_credentials(s3_server)
    environ = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": credentials_endpoint["url"],
               "AWS_CONTAINER_AUTHORIZATION_TOKEN": TOKEN}
    oracle = ContainerProvider(environ=environ).load().get_frozen_credentials()
    assert launch._credentials(environ) == (oracle.access_key, oracle.secret_key, oracle.token)
    assert oracle.access_key.startswith("ASIA")  # temporary credentials: the token is sent and signed too


def test_the_launcher_fetches_verifies_and_unpacks_with_the_job_role(tmp_path, s3_server, credentials_endpoint):
    from moto.core.authorization import enable_iam_authentication

    packed, variables = uploaded(s3_server, write(tmp_path / "src", {"train.py": "print(1)\n", "conf/a.yaml": "a"}))
    credentials_endpoint["credentials"] = job_role_credentials(s3_server)
    environ = {**variables, "AWS_ENDPOINT_URL_S3": s3_server, "AWS_CONTAINER_AUTHORIZATION_TOKEN": TOKEN,
               "AWS_CONTAINER_CREDENTIALS_FULL_URI": credentials_endpoint["url"]}
    node = tmp_path / "node0"
    node.mkdir()
    with enable_iam_authentication():  # moto now checks every request's signature and the role's policy
        said = launch.fetch_workdir(environ, str(node))
    assert said == f"s3://{BUCKET}/{packed.key}: 2 file(s) into {node}"
    assert (node / "train.py").read_text() == "print(1)\n" and (node / "conf" / "a.yaml").read_text() == "a"


@pytest.mark.parametrize(("spoil", "says"), [
    ({"MLCDK_WORKDIR_SHA256": "0" * 64}, f"does not have the SHA-256 {'0' * 64} it was uploaded with"),
    ({"AWS_CONTAINER_AUTHORIZATION_TOKEN": "wrong"}, "cannot fetch the container credentials endpoint: HTTP 401"),
    ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": ""}, "cannot fetch no credentials: no job role"),
    ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://203.0.113.9/creds"}, "cannot fetch no credentials: no job role"),
    ({"MLCDK_WORKDIR_URI": "s3://trainingstack-checkpoints/mlcdk/workdirs/missing.tar.gz"},
     "cannot fetch s3://trainingstack-checkpoints/mlcdk/workdirs/missing.tar.gz: HTTP 404"),  # S3 says 403 without ListBucket
    ({"MLCDK_WORKDIR_URI": "http://example.com/x"}, "'http://example.com/x', SHA-256"),
    ({"MLCDK_WORKDIR_REGION": "us-west-2\n"}, "not an S3 URI, a digest and a region"),
])
def test_a_failed_fetch_exits_4_with_one_line(tmp_path, s3_server, credentials_endpoint, spoil, says):
    from moto.core.authorization import enable_iam_authentication

    _, variables = uploaded(s3_server, write(tmp_path / "src", {"train.py": "print(1)\n"}))
    credentials_endpoint["credentials"] = job_role_credentials(s3_server)
    environ = {**clean_environment(), **variables, "AWS_ENDPOINT_URL_S3": s3_server,
               "AWS_CONTAINER_CREDENTIALS_FULL_URI": credentials_endpoint["url"],
               "AWS_CONTAINER_AUTHORIZATION_TOKEN": TOKEN, **spoil}
    node = tmp_path / "node"
    node.mkdir()
    with enable_iam_authentication():
        result = subprocess.run([sys.executable, "-m", "mlcdk.launch", "--", "true"], cwd=node, env=environ,
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 4, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("mlcdk.launch: error: --workdir: ") and says in line, line
    assert list(node.iterdir()) == []


def test_a_signature_made_with_the_wrong_secret_is_refused_by_moto(tmp_path, s3_server, credentials_endpoint):
    """The check above is real: moto recomputes the signature with botocore and refuses a wrong one."""
    from moto.core.authorization import enable_iam_authentication

    _, variables = uploaded(s3_server, write(tmp_path / "src", {"train.py": "print(1)\n"}))
    good = job_role_credentials(s3_server)
    credentials_endpoint["credentials"] = {**good, "SecretAccessKey": good["SecretAccessKey"][:-1] + "x"}
    environ = {**variables, "AWS_ENDPOINT_URL_S3": s3_server, "AWS_CONTAINER_AUTHORIZATION_TOKEN": TOKEN,
               "AWS_CONTAINER_CREDENTIALS_FULL_URI": credentials_endpoint["url"]}
    with enable_iam_authentication(), pytest.raises(launch.WorkdirError, match="HTTP 403"):
        launch.fetch_workdir(environ, str(tmp_path))


def test_a_role_without_read_access_is_refused(tmp_path, s3_server, credentials_endpoint):
    from moto.core.authorization import enable_iam_authentication

    _, variables = uploaded(s3_server, write(tmp_path / "src", {"train.py": "print(1)\n"}))
    denied = {**ROLE_POLICY, "Statement": [{**ROLE_POLICY["Statement"][0], "Resource": "arn:aws:s3:::other/*"}]}
    credentials_endpoint["credentials"] = job_role_credentials(s3_server, denied)
    environ = {**variables, "AWS_ENDPOINT_URL_S3": s3_server, "AWS_CONTAINER_AUTHORIZATION_TOKEN": TOKEN,
               "AWS_CONTAINER_CREDENTIALS_FULL_URI": credentials_endpoint["url"]}
    with enable_iam_authentication(), pytest.raises(launch.WorkdirError, match="HTTP 403"):
        launch.fetch_workdir(environ, str(tmp_path))


@pytest.mark.parametrize("name", ["../escape.py", "/etc/cron.d/job", "a/../../escape.py"])
def test_a_pack_reaching_outside_the_workdir_is_refused(tmp_path, name):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo(name)
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(launch.WorkdirError, match="not a file or folder inside the workdir"):
        launch._unpack(buffer.getvalue(), str(tmp_path / "node"))
    assert not (tmp_path / "escape.py").exists()


def test_a_link_in_a_pack_is_refused(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(info)
    with pytest.raises(launch.WorkdirError, match="'link', not a file or folder inside the workdir"):
        launch._unpack(buffer.getvalue(), str(tmp_path))


def test_object_urls_are_regional_virtual_hosted_or_the_sdk_endpoint():
    assert launch._object_url({}, "my-bucket", "k/p.tar.gz", "us-west-2") == (
        "https://my-bucket.s3.us-west-2.amazonaws.com/k/p.tar.gz")
    assert launch._object_url({}, "my.bucket", "k", "eu-west-1") == "https://s3.eu-west-1.amazonaws.com/my.bucket/k"
    assert launch._object_url({}, "b", "k", "cn-north-1") == "https://b.s3.cn-north-1.amazonaws.com.cn/k"
    assert launch._object_url({"AWS_ENDPOINT_URL": "http://localhost:5000/"}, "b", "k", "us-east-1") == (
        "http://localhost:5000/b/k")


def clean_environment() -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG", "SYSTEMROOT", "TMPDIR"}
    return {k: v for k, v in os.environ.items() if k in keep} | {"PYTHONPATH": str(Path(launch.__file__).parents[1])}


def test_two_batch_nodes_run_torchrun_from_a_packed_workdir(tmp_path, s3_server, credentials_endpoint):
    """tests/test_launch_torchrun.py's 2-node gloo all-reduce, with the script only in the pack: each node starts in an
    empty directory, as a container of an image without it, runs the launcher from MLCDK_LAUNCHER as the job
    definition does, fetches the pack with the job role's credentials, and runs `python allreduce.py` in it."""
    from moto.core.authorization import enable_iam_authentication

    from tests.test_launch_torchrun import SCRIPT, batch_node_environments, expected_processes, run_nodes

    packed, variables = uploaded(s3_server, write(tmp_path / "src", {"allreduce.py": SCRIPT}))
    credentials_endpoint["credentials"] = job_role_credentials(s3_server)
    nodes = batch_node_environments(**variables, AWS_ENDPOINT_URL_S3=s3_server, AWS_CONTAINER_AUTHORIZATION_TOKEN=TOKEN,
                                    AWS_CONTAINER_CREDENTIALS_FULL_URI=credentials_endpoint["url"],
                                    **{launch.LAUNCHER_ENV: launch.encoded_source()})
    cwds = [tmp_path / "node-0-workdir", tmp_path / "node-1-workdir"]
    out = tmp_path / "out"
    for folder in (*cwds, out):
        folder.mkdir()
    command = launch.inline_command(["--", "python", "allreduce.py", str(out)])
    with enable_iam_authentication():
        codes, output = run_nodes(tmp_path, command, nodes, cwds)
    assert codes == [0, 0], output
    # The whole logs: `output` holds each log's last 3,000 characters, and torch's exit barrier may log a long
    # traceback after a clean exit (node 1 finishing after node 0's store closed), pushing the first line out.
    logs = [(tmp_path / f"node-{i}.log").read_text() for i in range(2)]
    assert [log.count(f"mlcdk.launch: workdir s3://{BUCKET}/{packed.key}: 1 file(s) into") for log in logs] == [1, 1], \
        output
    assert json.loads((out / "result.json").read_text()) == {"world_size": 4, "sum": 0 + 1 + 2 + 3}
    assert {rank: json.loads((out / f"process-{rank}.json").read_text()) for rank in range(4)} == expected_processes()
    assert [(cwd / "allreduce.py").read_text() for cwd in cwds] == [SCRIPT, SCRIPT]
