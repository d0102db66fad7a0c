#!/usr/bin/env python3
"""Synth cost of mlcdk against the jsii floor for the same content, in CPU time and peak memory.

The floor is the app's own templates replayed through ``aws_cdk.cloudformation_include.CfnInclude`` and
synthesized again: the same resources go through jsii and the same synthesizer, without mlcdk's logic (the
catalog, rules, constructs, property overrides) and without the nag packs. What the stack synthesizer adds
itself (the ``BootstrapVersion`` parameter, the ``CheckBootstrapVersion`` rule, ``CDKMetadata`` and its
condition) is dropped before the replay, which adds it back, and the benchmark checks that the replayed
templates equal the originals.

Each figure is the median of ``runs`` interleaved subprocess runs (CPU = user + system of the process and
the jsii Node process it waits for; memory = the largest resident set among them), and every ratio is
against the replay measured in this same run: the machine is shared, so absolute times drift.

Targets (issue 17): the example app, nag packs included, and 50 training stacks at most 1.20x their replay
in CPU; peak memory at most 1.20x the replay's. A bare app with one empty stack is printed as a reference.

Every case runs twice: as is, and with aws-cdk-lib's built-in CloudFormation validation off
(``CDK_VALIDATION=false``, what ``cdk synth --no-validation`` sets; aws-cdk-lib's ``AppProps``). That
validation costs the app and its replay alike (issue 26: about 3.7 s of a 6.4 s profile), so the second set
of ratios shows mlcdk's own share: the ratio the constructs and the packs can still move.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import ROOT, environment  # noqa: E402

TARGET = 1.20
#: The suffix of a case run with aws-cdk-lib's built-in CloudFormation validation off.
NO_VALIDATION = ", no validation"
SYNTHESIZER_PARTS = {"Parameters": ["BootstrapVersion"], "Rules": ["CheckBootstrapVersion"],
                     "Resources": ["CDKMetadata"], "Conditions": ["CDKMetadataAvailable"]}

BARE = """
import aws_cdk as cdk
app = cdk.App()
cdk.CfnWaitConditionHandle(cdk.Stack(app, "Empty"), "Nothing")
app.synth()
"""

#: app.py without the nag packs.
NO_NAG = """
import aws_cdk as cdk
from mlcdk.stacks import add_stacks, settings_from_context
app = cdk.App()
add_stacks(app, settings_from_context(app))
app.synth()
"""

MANY = """
import sys
import aws_cdk as cdk
from mlcdk.constructs.nag import add_checks
from mlcdk.stacks import TrainingStack, settings_from_context
app = cdk.App()
settings = settings_from_context(app, environ={"CDK_DEFAULT_REGION": "us-east-1"})
for index in range(int(sys.argv[1])):
    TrainingStack(app, f"Training{index}", workload=settings.training, engine=settings.engine)
if sys.argv[2] == "nag":
    add_checks(app)
app.synth()
"""

#: Each template of a directory, replayed into a stack of the same name.
REPLAY = """
import sys
from pathlib import Path
import aws_cdk as cdk
from aws_cdk import cloudformation_include as cfn_inc
app = cdk.App()
for path in sorted(Path(sys.argv[1]).glob("*.json")):
    cfn_inc.CfnInclude(cdk.Stack(app, path.stem), "Template", template_file=str(path))
app.synth()
"""


def measure(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """CPU seconds (user + system, the process and its waited-for children) and peak RSS in MiB of one run."""
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read().decode()[-2000:]}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def synth_templates(script: Path, args: list[str], env: dict[str, str], out: Path) -> dict[str, dict]:
    subprocess.run([sys.executable, str(script), *args], cwd=ROOT, env=dict(env, CDK_OUTDIR=str(out)), check=True,
                   capture_output=True)
    return {p.name.removesuffix(".template.json"): json.loads(p.read_text()) for p in out.glob("*.template.json")}


def strip_synthesizer(template: dict) -> dict:
    template = json.loads(json.dumps(template))
    for section, names in SYNTHESIZER_PARTS.items():
        for name in names:
            template.get(section, {}).pop(name, None)
        if section in template and not template[section]:
            del template[section]
    return template


def write_replay_input(templates: dict[str, dict], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, template in templates.items():
        (directory / f"{name}.json").write_text(json.dumps(strip_synthesizer(template)))
    return directory


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    work = Path(tempfile.mkdtemp(prefix="mlcdk-bench-"))
    scripts = {}
    for name, code in {"bare": BARE, "nonag": NO_NAG, "many": MANY, "replay": REPLAY}.items():
        scripts[name] = work / f"{name}.py"
        scripts[name].write_text(code)
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context.update(json.loads((ROOT / "cdk.context.json").read_text()))
    env = environment()
    env.update(CDK_CONTEXT_JSON=json.dumps(context), CDK_OUTDIR=str(work / "out"))
    env.pop("CDK_DEFAULT_ACCOUNT", None)
    env["CDK_DEFAULT_REGION"] = "us-east-1"  # what the CDK CLI sets without an AWS configuration: the app needs a region

    # The floors: each app's templates, replayed. The replay must reproduce them exactly.
    app_templates = synth_templates(ROOT / "app.py", [], env, work / "app-out")
    many_templates = synth_templates(scripts["many"], ["50", "nag"], env, work / "many-out")
    floors = {"app": write_replay_input(app_templates, work / "app-in"),
              "many": write_replay_input(many_templates, work / "many-in")}
    for name, templates in (("app", app_templates), ("many", many_templates)):
        replayed = synth_templates(scripts["replay"], [str(floors[name])], env, work / f"{name}-replayed")
        differing = sorted(k for k in templates if replayed.get(k) != templates[k])
        if differing:
            raise SystemExit(f"the replay of {name} differs from the original in {', '.join(differing)}")
    resources = sum(len(t["Resources"]) for t in app_templates.values())

    commands = {
        "bare": [sys.executable, str(scripts["bare"])],
        "app replay": [sys.executable, str(scripts["replay"]), str(floors["app"])],
        "app": [sys.executable, "app.py"],
        "app, no nag": [sys.executable, str(scripts["nonag"])],
        "50 replay": [sys.executable, str(scripts["replay"]), str(floors["many"])],
        "50 stacks": [sys.executable, str(scripts["many"]), "50", "nag"],
        "50 stacks, no nag": [sys.executable, str(scripts["many"]), "50", "none"],
    }
    cases = {name: (command, env) for name, command in commands.items()}
    unvalidated = dict(env, CDK_VALIDATION="false")
    cases.update({f"{name}{NO_VALIDATION}": (command, unvalidated) for name, command in commands.items() if name != "bare"})
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(runs):  # interleaved, so drift hits every case alike
        for name, (command, case_env) in cases.items():
            samples[name].append(measure(command, case_env))
    cpu = {n: statistics.median(s[0] for s in v) for n, v in samples.items()}
    rss = {n: statistics.median(s[1] for s in v) for n, v in samples.items()}

    print(f"median of {runs} interleaved runs; CPU seconds (user + system) and peak RSS; ratios against the "
          f"replay of the same templates in this run ({len(app_templates)} app stacks, {resources} resources)")

    def line(label: str, name: str, floor: str | None, target: float | None = None) -> None:
        cpu_ratio, rss_ratio = (cpu[name] / cpu[floor], rss[name] / rss[floor]) if floor else (1.0, 1.0)
        verdict = ""
        if target is not None:
            ok = cpu_ratio <= target and rss_ratio <= target
            verdict = "  OK" if ok else f"  OVER target {target}x"
        print(f"{label:<50} {cpu[name]:6.2f} s {cpu_ratio:5.2f}x   {rss[name]:6.0f} MiB {rss_ratio:5.2f}x{verdict}")

    line("bare app, one empty stack (reference)", "bare", "app replay")
    line("example app replayed through CfnInclude", "app replay", None)
    line("example app (python app.py, nag packs)", "app", "app replay", TARGET)
    line("example app without the nag packs", "app, no nag", "app replay")
    line("50 training stacks replayed", "50 replay", None)
    line("50 training stacks (nag packs)", "50 stacks", "50 replay", TARGET)
    line("50 training stacks without the nag packs", "50 stacks, no nag", "50 replay")
    print("\nthe same with aws-cdk-lib's built-in CloudFormation validation off (CDK_VALIDATION=false), against the "
          "replay without it")
    line("example app replayed, no validation", f"app replay{NO_VALIDATION}", None)
    line("example app (nag packs), no validation", f"app{NO_VALIDATION}", f"app replay{NO_VALIDATION}")
    line("example app without the nag packs, no validation", f"app, no nag{NO_VALIDATION}", f"app replay{NO_VALIDATION}")
    line("50 training stacks replayed, no validation", f"50 replay{NO_VALIDATION}", None)
    line("50 training stacks (nag packs), no validation", f"50 stacks{NO_VALIDATION}", f"50 replay{NO_VALIDATION}")
    line("50 stacks without the nag packs, no validation", f"50 stacks, no nag{NO_VALIDATION}",
         f"50 replay{NO_VALIDATION}")
    print("\nthe built-in validation's own cost (CPU with it minus without): "
          + ", ".join(f"{name} {cpu[name] - cpu[name + NO_VALIDATION]:.2f} s"
                      for name in ("app replay", "app", "50 replay", "50 stacks")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
