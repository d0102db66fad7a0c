"""`mlcdk diagram` on the example app: the README's pictures are the app's, every resource is drawn once in the boxes
of its construct path, the engine shows its instance types and counts, and the command reads an assembly without
aws_cdk or runs the real `cdk synth`."""
from __future__ import annotations

import html
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlcdk.cli import app as cli
from mlcdk.diagram import mermaid, read
from tests.harness import ROOT, cdk_modules_loaded_by

runner = CliRunner()
_spec = importlib.util.spec_from_file_location("readme_diagrams", ROOT / "scripts" / "readme_diagrams.py")
readme_diagrams = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(readme_diagrams)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The example app, synthesized in-process as `cdk synth` builds it; (app, assembly folder)."""
    outdir = tmp_path_factory.mktemp("example-assembly")
    return readme_diagrams.synth_example(outdir), outdir


def test_readme_diagrams_are_the_example_apps(example):
    _, outdir = example
    wanted = readme_diagrams.blocks(outdir)
    current = readme_diagrams.readme_blocks((ROOT / "README.md").read_text())
    for stack in readme_diagrams.STACKS:
        assert current.get(stack) == wanted[stack], (
            f"the README's diagram of {stack} no longer matches the example app: run `make diagrams`")


def parse_mermaid(text: str) -> dict[str, dict]:
    """Each node of a Mermaid flowchart: the titles of the subgraphs around it, its label's lines, its class."""
    nodes, boxes = {}, []
    for line in text.splitlines():
        line = line.strip()
        if box := re.fullmatch(r'subgraph b\d+ \["(.*)"\]', line):
            boxes.append(box[1])
        elif line == "end":
            boxes.pop()
        elif node := re.fullmatch(r'r_(\w+)\["(.*)"\]:::(\w+)', line):
            label = [html.unescape(part.replace("#quot;", '"').replace("#lt;", "<").replace("#gt;", ">")
                                   .replace("#35;", "#")) for part in node[2].split("<br/>")]
            assert node[1] not in nodes, f"{node[1]} is drawn twice"
            nodes[node[1]] = {"boxes": list(boxes), "label": label, "class": node[3]}
    assert not boxes, "a subgraph is not closed"
    return nodes


def live_resources(app, stack_name: str) -> dict[str, tuple[str, str]]:
    """Logical ID -> (construct path, CloudFormation type) of every CfnResource in the app's construct tree: an
    oracle apart from the assembly the diagram reads."""
    import aws_cdk as cdk

    stack = app.node.find_child(stack_name)
    found = {}
    for construct in stack.node.find_all():
        if cdk.CfnResource.is_cfn_resource(construct):
            found[stack.get_logical_id(construct)] = (construct.node.path, construct.cfn_resource_type)
    return found


@pytest.mark.parametrize("stack_name", ["TrainingStack", "InferenceStack"])
def test_the_diagram_holds_every_resource_by_construct_path_and_nothing_else(example, stack_name):
    app, outdir = example
    expected = live_resources(app, stack_name)
    nodes = parse_mermaid(mermaid.render(read(outdir, stack_name)))
    assert set(nodes) == set(expected)
    template = json.loads((outdir / f"{stack_name}.template.json").read_text())
    assert set(template["Resources"]) == set(expected)  # the oracle is the whole template too
    for logical_id, (path, resource_type) in expected.items():
        node = nodes[logical_id]
        boxes, (name, shown_type, *_) = node["boxes"], node["label"]
        assert boxes[0] == stack_name
        # its boxes are the constructs its path goes through, and its name the rest of the path ("Resource", the
        # L2's own resource, left out: then the name is the innermost box's)
        segments = path.split("/")
        assert segments[:len(boxes)] == boxes, (logical_id, path, boxes)
        rest = "/".join(segments[len(boxes):])
        assert name in (rest, rest.removesuffix("/Resource")) or (rest == "Resource" and name == boxes[-1]), (
            logical_id, path, name)
        assert shown_type == resource_type.removeprefix("AWS::")


def test_the_engine_shows_its_instance_types_and_counts(example):
    _, outdir = example
    training = {r.type: r.figures for r in read(outdir, "TrainingStack").resources}
    # the default training preset, llm-pretrain-trainium: 2 x trn1.32xlarge, each with 8 EFA interfaces (the trn1
    # page of the EC2 user guide: 8 network cards, EFA on each), 128 vCPUs each, so Batch may run 2 x 128 = 256
    assert training["AWS::EC2::LaunchTemplate"] == ("trn1.32xlarge", "8 EFA interfaces")
    assert training["AWS::Batch::ComputeEnvironment"] == ("trn1.32xlarge", "0-256 vCPUs", "EC2")
    assert training["AWS::Batch::JobDefinition"] == ("2 nodes per job",)
    inference = {r.type: r.figures for r in read(outdir, "InferenceStack").resources}
    # the default serving preset, llm-serving-inferentia2: inf2.xlarge, 1 to 4 servers, and its fallback type
    # inf2.8xlarge, which the stack's region (us-east-1, scripts/readme_diagrams.py) offers in the fleet's AZs; on the
    # ECS engine the group holds one spare node, where a rolling deployment starts the new task beside the old
    assert inference["AWS::AutoScaling::AutoScalingGroup"][:3] == ("inf2.xlarge", "inf2.8xlarge", "1-5 nodes")


def test_diagram_command_reads_an_assembly_without_aws_cdk(example):
    _, outdir = example
    code = ("from typer.testing import CliRunner\nfrom mlcdk.cli import app\n"
            f"result = CliRunner().invoke(app, ['diagram', 'TrainingStack', '--assembly', {str(outdir)!r}])\n"
            "assert result.exit_code == 0 and result.output.startswith('flowchart TB'), result.output\n")
    assert cdk_modules_loaded_by(code) == []


def test_diagram_command_formats(example, tmp_path):
    _, outdir = example
    markdown = runner.invoke(cli, ["diagram", "InferenceStack", "-a", str(outdir), "--format", "markdown"])
    assert markdown.exit_code == 0
    assert markdown.output == f"```mermaid\n{mermaid.render(read(outdir, 'InferenceStack'))}```\n"
    document = json.loads(runner.invoke(cli, ["diagram", "InferenceStack", "-a", str(outdir), "-f", "json"]).output)
    assert document["stack"] == "InferenceStack" and document["root"]["name"] == "InferenceStack"
    assert [b["name"] for b in document["root"]["boxes"]] == ["Network", "Fleet"]
    svg_file = tmp_path / "training.svg"
    written = runner.invoke(cli, ["diagram", "TrainingStack", "-a", str(outdir), "-o", str(svg_file)])
    assert written.exit_code == 0 and written.output == ""
    svg = svg_file.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "trn1.32xlarge · 8 EFA interfaces" in svg


@pytest.mark.parametrize("args, message", [
    (["TrainingStack", "-a", "/nonexistent"], r"no cloud assembly at /nonexistent \(no manifest.json\)"),
    (["TrainingStak"], r"STACK: unknown stack 'TrainingStak'; did you mean 'TrainingStack'\?"),
    (["TrainingStack", "--format", "png"], r"--format \('png'\) must be one of mermaid, markdown, svg, json"),
    (["TrainingStack", "-c", "nodes=4"], "--context is for --synth"),
    (["TrainingStack", "--synth", "-c", "nodes"], r"--context \('nodes'\) must be key=value"),
    (["TrainingStack", "-o", "/nonexistent/x.md"], r"--output \('/nonexistent/x.md'\) cannot be written"),
])
def test_diagram_usage_errors_are_one_line_and_exit_2(example, args, message):
    _, outdir = example
    if "-a" not in args:
        args = [*args, "-a", str(outdir)]
    result = runner.invoke(cli, ["diagram", *args])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and re.search(message, lines[0]), result.output


def test_synth_runs_the_real_cdk_cli_and_draws_what_the_readme_shows(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("CDK_DISABLE_CLI_TELEMETRY", "true")  # no network here
    monkeypatch.setenv("CDK_DISABLE_VERSION_CHECK", "true")
    assembly = tmp_path / "cdk.out"
    result = runner.invoke(cli, ["diagram", "TrainingStack", "--synth", "--assembly", str(assembly),
                                 "--format", "markdown"])
    assert result.exit_code == 0, result.output
    assert (assembly / "manifest.json").is_file()
    readme = readme_diagrams.readme_blocks((ROOT / "README.md").read_text())["TrainingStack"]
    assert result.stdout in readme, "`cdk synth` and the in-process synth of scripts/readme_diagrams.py differ"


def test_mermaid_itself_parses_the_diagrams(example, tmp_path):
    """Mermaid's own parser (package.json pins it; GitHub renders with Mermaid) accepts both stacks' diagrams and one
    whose names need every escape, and rejects a broken one, so a pass means something."""
    from mlcdk.diagram.model import Box, Resource, StackDiagram

    _, outdir = example
    files = []
    for stack in readme_diagrams.STACKS:
        files.append(tmp_path / f"{stack}.mmd")
        files[-1].write_text(mermaid.render(read(outdir, stack)))
    odd = Resource("Odd", "AWS::EC2::SecurityGroupIngress", 'S/from "x"<y>:443 #1\nend', 'from "x"<y>:443 #1\nend',
                   "security", ("a · b",))
    files.append(tmp_path / "odd.mmd")
    files[-1].write_text(mermaid.render(StackDiagram('S"<>#', "t", Box("S", 'S "q" <b> #2 end', (odd,)), ())))
    broken = tmp_path / "broken.mmd"
    broken.write_text('flowchart TB\n  r_A["a"] --> r_B[\n')
    node = [str(Path(sys.executable).parent / "node"), str(ROOT / "tests" / "mermaid_parse.mjs")]
    result = subprocess.run([*node, *map(str, files), str(broken)], capture_output=True, text=True, timeout=120)
    lines = result.stdout.splitlines()
    assert lines[:3] == [f"ok {file} flowchart-v2" for file in files], result.stdout + result.stderr
    assert lines[3].startswith(f"FAIL {broken} ") and result.returncode == 1


def test_synth_needs_a_cdk_app_and_reports_a_failed_synth_with_exit_1(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CDK_DISABLE_CLI_TELEMETRY", "true")
    monkeypatch.setenv("CDK_DISABLE_VERSION_CHECK", "true")
    missing = runner.invoke(cli, ["diagram", "TrainingStack", "--synth"])
    assert missing.exit_code == 2 and "has no cdk.json; run it in your CDK app's folder" in missing.output
    (tmp_path / "cdk.json").write_text(json.dumps({"app": f"{sys.executable} -c \"raise SystemExit('app broke')\""}))
    monkeypatch.setenv("PATH", f"{ROOT / 'node_modules' / '.bin'}:{Path(sys.executable).parent}:/usr/bin:/bin")
    failed = runner.invoke(cli, ["diagram", "TrainingStack", "--synth"])
    assert failed.exit_code == 1, failed.output
    assert "app broke" in failed.output  # the CLI's own report, relayed
    assert failed.output.rstrip().splitlines()[-1] == "error: `cdk synth` failed (exit 1); its output is above"
