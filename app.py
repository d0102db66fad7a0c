#!/usr/bin/env python3
"""The mlcdk example app: TrainingStack and InferenceStack, configured with `-c key=value` (see README)."""
import sys

import aws_cdk as cdk

from mlcdk import ConfigurationError
from mlcdk.constructs.nag import add_checks
from mlcdk.stacks import add_stacks, settings_from_context

app = cdk.App()
try:
    add_stacks(app, settings_from_context(app))
except ConfigurationError as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
add_checks(app)  # cdk-nag AwsSolutions and NIST 800-53 rev 5
app.synth()
