"""Shared test set-up. The jsii kernel must run on the virtualenv's Node 24, so PATH is fixed first."""
from __future__ import annotations

import os
import sys
from pathlib import Path

_BIN = Path(sys.executable).parent
if (_BIN / "node").exists():
    os.environ["PATH"] = f"{_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
# Tests never use real AWS credentials.
for _var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
    os.environ.pop(_var, None)
# Tests read the bundled catalog snapshot, never a refreshed one a developer exported.
os.environ.pop("MLCDK_CATALOG", None)
os.environ.setdefault("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/mlcdk-tests")
os.environ.setdefault("AWS_CONFIG_FILE", "/nonexistent/mlcdk-tests")
