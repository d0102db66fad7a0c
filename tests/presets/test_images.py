"""Default container images: picked from the saved DLC lists, with provenance, and the rule that decides whether an
image can drive an accelerator. Expected images and versions are read off the lists themselves (the DLC repository's
docs/src/data/*.yml and the Neuron DLC README, at the commits in data/image_lists/), never computed by the code."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlcdk import ConfigurationError
from mlcdk.cli import app
from mlcdk.fetch import image_fetch, image_lists
from mlcdk.fetch.image_lists import Choice
from mlcdk.fetch.refresh import canonical_json
from mlcdk.presets import catalog, images
from mlcdk.presets.images import ContainerImage

CUDA_13_3 = "public.ecr.aws/deep-learning-containers/pytorch:2.13.0-cu133-amzn2023"
NEURON_2_30 = "public.ecr.aws/neuron/pytorch-training-neuronx:2.9.0-neuronx-py312-sdk2.30.0-ubuntu24.04"
CPU = "public.ecr.aws/deep-learning-containers/pytorch:2.13.0-cpu-amzn2023"
DLC_COMMIT = "e0ecedea6a1c56d6b5914f9cfb2fec5c548e67e0"
NEURON_COMMIT = "2be9ed1d5da9d7c8e15d7abac1eb7f550ed3a723"
#: The training defaults before this change (issue #21: CUDA 12.4 has no Blackwell, SDK 2.18 no Trn2).
OLD_CUDA = "public.ecr.aws/deep-learning-containers/pytorch-training:2.5.1-gpu-py311-cu124-ubuntu22.04-ec2"
OLD_NEURON = "public.ecr.aws/neuron/pytorch-training-neuronx:2.1.2-neuronx-py310-sdk2.18.2-ubuntu20.04"


def test_bundled_images_are_exactly_what_the_saved_lists_give():
    """containers.json is generated: rebuilding it from the choices and the saved lists gives the same bytes."""
    rebuilt = canonical_json(image_lists.build(image_lists.load_choices(), image_lists.load_copies()))
    assert rebuilt == image_lists.CONTAINERS.read_text()


def test_default_training_images_with_their_provenance():
    found = {i.name: i for i in images.book().images}
    assert [(i.name, i.role, i.kind, i.uri) for i in images.book().images if i.role == "training"] == [
        ("pytorch-cuda", "training", "gpu", CUDA_13_3),
        ("pytorch-neuronx", "training", "neuron", NEURON_2_30),
        ("pytorch-cpu", "training", "none", CPU),
    ]
    cuda = found["pytorch-cuda"]  # docs/src/data/pytorch/2.13-cuda-ec2.yml
    assert (cuda.framework, cuda.framework_version, cuda.cuda, cuda.released, cuda.end_of_patch) == (
        "PyTorch", "2.13", "13.3", "2026-07-20", "2027-07-20")
    assert cuda.source == (f"https://github.com/aws/deep-learning-containers/blob/{DLC_COMMIT}/docs/src/data/pytorch/"
                           "2.13-cuda-ec2.yml")
    neuron = found["pytorch-neuronx"]  # the README's newest pytorch-training-neuronx row
    assert (neuron.framework_version, neuron.neuron_sdk, neuron.neuron_instances, neuron.neuron_flavor) == (
        "2.9.0", "2.30.0", ("inf2", "trn1", "trn2", "trn3"), "neuronx")
    assert neuron.source == (f"https://github.com/aws-neuron/deep-learning-containers/blob/{NEURON_COMMIT}/README.md "
                             "(pytorch-training-neuronx)")
    assert images.book().lists == {
        "dlc": {"repository": "aws/deep-learning-containers", "commit": DLC_COMMIT, "committed": "2026-08-21"},
        "neuron-dlc": {"repository": "aws-neuron/deep-learning-containers", "commit": NEURON_COMMIT,
                       "committed": "2026-08-17"}}


def given(uri: str) -> ContainerImage:
    image = images.inspect_reference(uri)
    assert image is not None, uri
    return image


# (image, instance type, None or what the refusal must say)
RULE = [
    (given(OLD_CUDA), "p6-b200.48xlarge", "it has CUDA 12.4, and the B200 (Blackwell, compute capability 10.0) needs "
                                         "CUDA 12.8 or later"),
    (given(OLD_CUDA), "p5.48xlarge", None),
    (given("repo/x:2.7.0-gpu-py312-cu128-ubuntu22.04-ec2"), "p6-b200.48xlarge", None),
    (given("repo/x:2.7.0-gpu-py312-cu128-ubuntu22.04-ec2"), "p6-b300.48xlarge",
     "the B300 (Blackwell Ultra, compute capability 10.3) needs CUDA 12.9 or later"),
    (given("repo/x:2.8.0-gpu-py312-cu129-ubuntu22.04-ec2"), "p6-b300.48xlarge", None),
    (given(CUDA_13_3), "p3.16xlarge", "it has CUDA 13.3, and PyTorch builds for CUDA above 12.6 no longer carry the "
                                     "V100 (Volta, compute capability 7.0)"),
    (given("repo/x:2.6.0-gpu-py312-cu126-ubuntu22.04-ec2"), "p3.16xlarge", None),
    (given(CUDA_13_3), "g3.4xlarge", "no longer carry the M60 (Maxwell, compute capability 5.2)"),
    (given(CUDA_13_3), "g4dn.xlarge", None),  # Turing is the oldest architecture CUDA 13 keeps
    (given(CUDA_13_3), "g4ad.4xlarge", "it is a CUDA image, and g4ad.4xlarge has AMD Radeon Pro V520 GPUs"),
    (given(OLD_NEURON), "trn2.48xlarge", "it has Neuron SDK 2.18.2, and Trainium2 (trn2) needs Neuron SDK 2.21.0"),
    (given(OLD_NEURON), "trn1.32xlarge", None),
    (given(OLD_NEURON), "inf1.xlarge", "it is a neuronx image, and Inferentia (inf1) needs neuron"),
    (given("repo/x:2.1.2-neuronx-py310-sdk2.7.0-ubuntu20.04"), "inf2.xlarge",
     "Inferentia2 (inf2) needs Neuron SDK 2.8.0"),
    (given("repo/x:1.13.1-neuron-py310-sdk2.20.2-ubuntu20.04"), "inf1.xlarge", None),
    (given(CUDA_13_3), "trn1.32xlarge", "it is for gpu instances, and trn1.32xlarge is neuron"),
    (ContainerImage("arm", "repo/x:1", kind="none", architecture="x86_64"), "c7g.16xlarge",
     "it is built for x86_64, and c7g.16xlarge is arm64"),
    (ContainerImage("t4g", "repo/x:1", kind="gpu", architecture="x86_64", cuda="13.3"), "g5g.xlarge",
     "it is built for x86_64, and g5g.xlarge is arm64"),
    (ContainerImage("vllm-trn2", "repo/x:1", kind="neuron", neuron_sdk="2.32.0", neuron_flavor="neuronx",
                    neuron_instances=("trn2", "trn3")), "inf2.48xlarge",
     "the Neuron DLC list supports it on trn2, trn3 only, not inf2 (Inferentia2)"),
]


@pytest.mark.parametrize(("image", "instance_type", "says"), RULE, ids=[f"{r[0].uri}@{r[1]}" for r in RULE])
def test_image_rule(image, instance_type, says):
    problem = images.image_problem(image, catalog.get(instance_type))
    if says is None:
        assert problem is None
    else:
        assert problem is not None and says in problem


def test_a_cuda_12_4_default_cannot_drive_p6_b200(tmp_path, monkeypatch):
    """The synth rule: were the default GPU image still CUDA 12.4, p6-b200.48xlarge would be refused."""
    document = json.loads(image_lists.CONTAINERS.read_text())
    document["images"][0].update(uri=OLD_CUDA, cuda="12.4")
    path = tmp_path / "containers.json"
    path.write_text(json.dumps(document))
    monkeypatch.setenv(images.IMAGES_ENV, str(path))
    with pytest.raises(ConfigurationError, match=re.escape(
            f"instance_type: no default training image drives p6-b200.48xlarge: {OLD_CUDA} cannot drive "
            "p6-b200.48xlarge: it has CUDA 12.4, and the B200 (Blackwell, compute capability 10.0) needs CUDA 12.8 "
            "or later. Pass job.image")):
        images.default_image([catalog.get("p6-b200.48xlarge")])
    assert images.default_image([catalog.get("p5.48xlarge")]).uri == OLD_CUDA


def test_the_default_gpu_images_cuda_runs_on_the_driver_of_the_ecs_gpu_ami():
    """The container uses the host's driver. aws/amazon-ecs-ami pins the AL2023 GPU AMI to driver major 580
    (variables.pkr.hcl, nvidia_driver_major_al2023); NVIDIA's minor version compatibility table runs CUDA 13.x
    on r580 or newer, 12.x on r525, 11.x on r450. The default image is CUDA 13.3: it runs."""
    facts = images.software_facts()
    assert (facts.host_driver, dict(facts.cuda_driver)) == (580, {"11": 450, "12": 525, "13": 580})
    default = images.default_image([catalog.get("p5.48xlarge")])
    assert (default.cuda, images.image_problem(default, catalog.get("p5.48xlarge"))) == ("13.3", None)


def test_an_image_whose_cuda_needs_a_newer_driver_than_the_ami_has_is_refused(monkeypatch):
    facts = images.software_facts()
    monkeypatch.setattr(images, "software_facts", lambda: dataclasses.replace(facts, host_driver=570))
    assert images.image_problem(given(CUDA_13_3), catalog.get("p5.48xlarge")) == (
        "it has CUDA 13.3, which needs NVIDIA driver r580 or newer, and the ECS GPU AMI the containers run on "
        "installs driver r570 (data/accelerator_software.json)")
    monkeypatch.undo()
    # a CUDA major the facts do not know (a future cu140 tag) is refused, never assumed to run
    assert images.given_image_problem("repo/x:2.20.0-gpu-py313-cu140-ubuntu24.04", [catalog.get("p5.48xlarge")]) == (
        True, "p5.48xlarge: it has CUDA 14.0, mlcdk knows no NVIDIA driver release that runs CUDA 14, and the ECS GPU "
        "AMI the containers run on installs driver r580 (data/accelerator_software.json)")


#: Families with no default training image, and why: hand-written from the facts, not from the rule.
NO_DEFAULT = {
    "p3": "V100", "p3dn": "V100", "g3": "M60", "g3s": "M60",  # CUDA 13 and PyTorch's CUDA 12.8+ wheels dropped them
    "g5g": "arm64", "c7g": "arm64", "c7gn": "arm64",  # Graviton: every default image is x86_64
    "g4ad": "AMD", "dl1": "Habana",  # no CUDA
    "inf1": "neuron",  # NeuronCore v1: torch-neuron, not neuronx
    "f2": "other", "vt1": "other", "dl2q": "other",  # FPGA, media and Qualcomm accelerators: no image
}


@pytest.mark.parametrize("spec", list(catalog.default_catalog()), ids=lambda s: s.instance_type)
def test_every_catalog_type_gets_an_image_that_drives_it_or_a_refusal(spec):
    kind = spec.accelerator.kind if spec.accelerator else "none"
    if spec.family in NO_DEFAULT:
        with pytest.raises(ConfigurationError, match=f"no default training image drives {spec.instance_type}") as refused:
            images.default_image([spec])
        assert NO_DEFAULT[spec.family] in str(refused.value) or NO_DEFAULT[spec.family] == "other"
        return
    image = images.default_image([spec])
    assert image.uri == {"gpu": CUDA_13_3, "neuron": NEURON_2_30, "none": CPU}[kind]
    assert images.image_problem(image, spec) is None


def test_every_nvidia_and_neuron_accelerator_of_the_catalog_has_software_facts():
    facts = images.software_facts()
    names = {(s.accelerator.kind, s.accelerator.manufacturer, s.accelerator.name) for s in catalog.default_catalog()
             if s.accelerator is not None}
    assert {name for kind, maker, name in names if maker == "NVIDIA"} == set(facts.cuda)
    assert {name for kind, maker, name in names if kind == "neuron"} == set(facts.neuron)


def test_neuron_minimum_sdks_agree_with_the_neuron_dlc_lists_own_instance_column():
    """An oracle apart from the rule: for every PyTorch NeuronX image the Neuron list names, its "Supported EC2
    Instance Types" column holds a generation exactly when the image's SDK reaches the generation's minimum."""
    facts = images.software_facts().neuron
    rows = [i for i in image_lists.neuron_images(image_lists.load_copies()["neuron-dlc"])
            if i.repository in ("pytorch-training-neuronx", "pytorch-inference-neuronx")]
    assert len(rows) == 24  # 13 inference and 11 training rows in the README
    for row in rows:
        for generation in ("Inferentia2", "Trainium", "Trainium2"):
            needs = facts[generation]
            supported = images.version_key(row.neuron_sdk) >= images.version_key(needs.minimum_sdk)
            assert supported == (needs.instances in row.neuron_instances), (row.uri, generation)
        assert "inf1" not in row.neuron_instances


@pytest.mark.parametrize(("uri", "cuda", "sdk", "flavor"), [
    (OLD_CUDA, "12.4", None, None),
    (CUDA_13_3, "13.3", None, None),
    ("763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-training:2.10.0-gpu-py313-cu130-ubuntu22.04-ec2",
     "13.0", None, None),
    (OLD_NEURON, None, "2.18.2", "neuronx"),
    ("public.ecr.aws/neuron/pytorch-inference-neuron:1.13.1-neuron-py310-sdk2.20.2-ubuntu20.04", None, "2.20.2",
     "neuron"),
])
def test_dlc_tags_tell_cuda_and_neuron_sdk(uri, cuda, sdk, flavor):
    image = given(uri)
    assert (image.cuda, image.neuron_sdk, image.neuron_flavor, image.architecture) == (cuda, sdk, flavor, None)


@pytest.mark.parametrize("uri", ["nvcr.io/nvidia/pytorch:25.01-py3", "my/trainer:latest", "my/trainer",
                                 "public.ecr.aws/acme/trainer@sha256:" + "ab" * 32, "localhost:5000/cuda-tools"])
def test_references_without_a_dlc_tag_cannot_be_inspected(uri):
    assert images.inspect_reference(uri) is None
    assert images.given_image_problem(uri, [catalog.get("p5.48xlarge")]) == (False, None)


def test_needs_of_says_what_an_image_must_carry():
    assert images.needs_of(catalog.get("p6-b200.48xlarge")) == (
        "CUDA 12.8 or later (B200, compute capability 10.0)")
    assert images.needs_of(catalog.get("p3.16xlarge")) == (
        "CUDA 9.0 or later and at most 12.6 (V100, compute capability 7.0)")
    assert images.needs_of(catalog.get("trn2.48xlarge")) == "torch-neuronx from Neuron SDK 2.21.0 (Trainium2, trn2)"


# ------------------------------------------------------------------------------------------------
# The refresh path: fetch (network, here served from the saved copies), parse, pick
# ------------------------------------------------------------------------------------------------


def serve_saved_copies(requested: list[str]):
    """A getter answering GitHub's API and raw URLs from the saved copies, recording what was asked."""
    copies = image_lists.load_copies()

    def get(url: str) -> bytes:
        requested.append(url)
        for copy in copies.values():
            repo, commit = copy["repository"], copy["commit"]
            if url == f"https://api.github.com/repos/{repo}/commits/main":
                return json.dumps({"sha": commit, "commit": {"committer": {"date": copy["committed"] + "T12:00:00Z"}}}
                                  ).encode()
            prefix = f"https://api.github.com/repos/{repo}/contents/"
            if url.startswith(prefix):
                folder = url[len(prefix):].split("?ref=")[0]
                assert url.endswith(f"?ref={commit}")
                return json.dumps([{"type": "file", "path": p} for p in copy["files"] if p.startswith(folder + "/")]
                                  + [{"type": "dir", "path": folder + "/sub"}]).encode()
            raw = f"https://raw.githubusercontent.com/{repo}/{commit}/"
            if url.startswith(raw):
                return copy["files"][url[len(raw):]].encode()
        raise AssertionError(f"unexpected URL {url}")

    return get, copies


def test_fetcher_reads_each_list_at_one_commit():
    requested: list[str] = []
    get, copies = serve_saved_copies(requested)
    assert image_fetch.fetch_lists(get=get) == copies
    assert requested[:2] == ["https://api.github.com/repos/aws/deep-learning-containers/commits/main",
                             "https://api.github.com/repos/aws/deep-learning-containers/contents/docs/src/data/pytorch"
                             f"?ref={DLC_COMMIT}"]
    assert requested[-2:] == [
        "https://api.github.com/repos/aws-neuron/deep-learning-containers/commits/main",
        f"https://raw.githubusercontent.com/aws-neuron/deep-learning-containers/{NEURON_COMMIT}/README.md"]
    assert sorted({p.split("/")[3] for p in copies["dlc"]["files"]}) == ["pytorch", "pytorch-training", "vllm",
                                                                         "vllm-server"]


def choice(name: str, **fields) -> Choice:
    values = dict(name=name, role="serving", kind="gpu", architecture="x86_64", list="dlc", repository="vllm",
                  match={}, source="test", reason="test")
    return Choice(**{**values, **fields})


def test_the_refresh_path_covers_serving_images_too():
    """vLLM on GPU from the DLC list; Neuron's vLLM images from the Neuron list, which names a newer one for
    Trn2/Trn3 and a legacy one that still runs on Trn1 and Inf2."""
    copies = image_lists.load_copies()
    document = image_lists.build([
        choice("vllm-cuda", match={"platform": "ec2"}),
        choice("vllm-neuron", kind="neuron", list="neuron-dlc", repository="vllm-inference-neuronx"),
        choice("vllm-neuron-legacy", kind="neuron", list="neuron-dlc", repository="vllm-inference-neuronx",
               match={"neuron_instances": ["inf2", "trn1"]}),
    ], copies)
    assert [(i["uri"], i["cuda"], i["neuron_sdk"], i["neuron_instances"]) for i in document["images"]] == [
        ("public.ecr.aws/deep-learning-containers/vllm:0.27.1-gpu-py312-cu130-ubuntu22.04-ec2", "13.0", None, []),
        ("public.ecr.aws/neuron/pytorch-inference-vllm-neuronx:0.24.0.1.1.0-neuronx-py313-sdk2.32.0-ubuntu24.04",
         None, "2.32.0", ["trn2", "trn3"]),
        ("public.ecr.aws/neuron/pytorch-inference-vllm-neuronx:0.16.0-neuronx-py312-sdk2.31.1-ubuntu24.04",
         None, "2.31.1", ["inf2", "trn1", "trn2", "trn3"]),
    ]
    server = image_lists.build([choice("server", repository="vllm-server", match={"platform": "ec2"})], copies)
    assert server["images"][0]["uri"] == "public.ecr.aws/deep-learning-containers/vllm:server-cuda-v2.3"


def test_an_image_past_its_end_of_patch_is_never_picked():
    listed = image_lists.dlc_images(image_lists.load_copies()["dlc"])
    training = choice("old", role="training", repository="pytorch-training", match={"platform": "ec2"})
    assert image_lists.pick(training, listed, "2026-08-21").framework_version == "2.10"
    with pytest.raises(ConfigurationError, match="no image of dlc repository pytorch-training .* in patch support on "
                                                 "2027-01-22"):
        image_lists.pick(training, listed, "2027-01-22")  # 2.10's end of patch is 2027-01-21


@pytest.mark.parametrize(("change", "says"), [
    ({"role": "inference"}, "role 'inference' is not one of training, serving"),
    ({"list": "ngc"}, "list 'ngc' is not one of dlc, neuron-dlc"),
    ({"match": {"python": "py312"}}, "match may name only platform, operating_system, neuron_instances"),
    ({"extra": 1}, "expected exactly the fields"),
])
def test_bad_choices_are_refused_with_the_entry_named(tmp_path, change, says):
    entries = json.loads(image_lists.CHOICES.read_text())
    entries["choices"][1].update(change)
    path = tmp_path / "choices.json"
    path.write_text(json.dumps(entries))
    with pytest.raises(ConfigurationError, match=re.escape(f"{path}: choices[1]: ") + ".*" + re.escape(says)):
        image_lists.load_choices(path)


def test_cli_refresh_offline_rebuilds_the_bundled_file(tmp_path):
    output = tmp_path / "containers.json"
    result = CliRunner().invoke(app, ["images", "refresh", "--offline", "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert output.read_bytes() == image_lists.CONTAINERS.read_bytes()
    assert f"pytorch-cuda: {CUDA_13_3}" in result.output


def test_cli_list_names_each_image_and_what_it_drives():
    result = CliRunner().invoke(app, ["images", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)["images"]}
    assert rows["pytorch-cuda"]["built_with"] == "PyTorch 2.13 with CUDA 13.3"
    assert rows["pytorch-cuda"]["families"] == ["g4dn", "g5", "g6", "g6e", "g6f", "g7", "g7e", "gr6", "gr6f", "p4d",
                                                "p4de", "p5", "p5e", "p5en", "p6-b200", "p6-b300"]
    assert rows["pytorch-neuronx"]["families"] == ["inf2", "trn1", "trn1n", "trn2", "trn2u"]
    assert rows["pytorch-cpu"]["families"] == ["c6i", "c7i", "m5a"]


def test_package_data_ships_the_saved_lists():
    text = (Path(image_lists.__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"presets/data/image_lists/*.json"' in text


def test_a_damaged_saved_list_is_refused_naming_the_file_and_the_fix(tmp_path):
    for name in ("dlc", "neuron-dlc"):
        (tmp_path / f"{name}.json").write_text(image_lists.LISTS_DIR.joinpath(f"{name}.json").read_text())
    (tmp_path / "neuron-dlc.json").write_text('{"list": "neuron-dlc", "files": {}}')
    with pytest.raises(ConfigurationError, match=r"neuron-dlc.json: not a saved neuron-dlc list: it lacks repository, "
                                                 r"branch, commit, committed; fetch it again with `mlcdk images refresh`"):
        image_lists.load_copies(tmp_path)
