#!/usr/bin/env python3
"""The mlcdk example app: TrainingStack and InferenceStack, configured with `-c key=value` (see README)."""
import sys

import aws_cdk as cdk

from mlcdk import ConfigurationError
from mlcdk.constructs.nag import add_checks
from mlcdk.stacks import add_stacks, settings_from_context

app = cdk.App()
try:
    settings = settings_from_context(app)
    add_stacks(app, settings)
except ConfigurationError as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
# cdk-nag AwsSolutions and NIST 800-53 rev 5, plus HIPAA Security / PCI DSS 3.2.1 with -c compliance_packs=hipaa,pci_dss
add_checks(app, **dict.fromkeys(settings.compliance_packs, True))
app.synth()
