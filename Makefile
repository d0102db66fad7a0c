# The two commands of the README:
#   make deploy  the main job: deploy TrainingStack and InferenceStack to a local AWS emulator, run a
#                2-node job there with `mlcdk submit`, print
#                what was created, tear it down (TARGET=aws: your AWS account, after a confirmation)
#   make test    the whole test suite, with the cdk-nag, cfn-lint and checkov gates
# Both install what they need first (scripts/bootstrap.sh): a virtualenv with Node 24 and the
# Python dependencies, and the pinned CDK CLI via npm ci; `make test` also installs checkov and
# torch (the distributed-test extra, for the real two-node torchrun test).
# `make run` synthesizes both stacks and summarizes them, without deploying.

SHELL := /bin/bash
# The virtualenv's bin comes first: jsii and the CDK CLI then run on its Node 24.
export PATH := $(CURDIR)/.venv/bin:$(CURDIR)/node_modules/.bin:$(PATH)
CONTEXT ?=

.PHONY: run test setup synth bench catalog context clean deploy

setup:
	@bash scripts/bootstrap.sh

run: setup
	cdk synth --quiet $(CONTEXT)
	python scripts/summarize_synth.py cdk.out

test:
	@bash scripts/bootstrap.sh --with-checkov
	python -m pytest

# Deploy both stacks to a local moto server with the real CDK CLI, print what was created, tear it down.
# TARGET=aws deploys to the account of your AWS credentials instead, after you type its account id.
deploy: setup
	python scripts/emulator.py $(if $(TARGET),--target $(TARGET),)

bench: setup
	python benchmarks/synth.py
	python benchmarks/catalog.py

# Regenerate the bundled catalog snapshot offline (moto's EC2 data + data/prices), and cdk.context.json.
catalog: setup
	mlcdk catalog refresh --offline --as-of $$(python -c "import json;print(json.load(open('mlcdk/presets/data/instance_types.json'))['as_of'])")

context: setup
	python scripts/generate_context.py

clean:
	rm -rf cdk.out .pytest_cache
