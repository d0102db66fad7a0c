"""The README's Python examples run as written."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

from tests.harness import ROOT

MARKER = "<!-- README example: executed by tests/test_readme.py -->"


def readme_examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    # an example inside a list item is indented with it
    return [textwrap.dedent(code) for code in re.findall(re.escape(MARKER) + r"\s*```python\n(.*?)```", text, flags=re.S)]


def test_readme_examples_run(tmp_path):
    examples = readme_examples()
    assert examples, "the README has no marked example"
    for index, code in enumerate(examples):
        script = tmp_path / f"example{index}.py"
        script.write_text(code)
        env = dict(os.environ, CDK_OUTDIR=str(tmp_path / f"out{index}"))
        result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        assert (tmp_path / f"out{index}" / "manifest.json").exists()
        # A `print(...)   # expected output` line in the README must print exactly that.
        expected = [line.split("#", 1)[1].strip() for line in code.splitlines() if line.startswith("print(") and "#" in line]
        printed = [line.strip() for line in result.stdout.splitlines() if line.strip()]
        assert printed[-len(expected):] == expected if expected else True
