# The two commands of the README:
#   make deploy  the main job: `mlcdk emulate` on TrainingStack and InferenceStack (a local AWS emulator),
#                plus a 2-node job there with `mlcdk submit`; it prints what was created and tears it down
#                (TARGET=aws: your AWS account, after a confirmation)
#   make test    the whole test suite, with the cdk-nag, cfn-lint and checkov gates
# Both install what they need first (scripts/bootstrap.sh): a virtualenv with Node 24 and the
# Python dependencies, and the pinned CDK CLI via npm ci; `make test` also installs checkov and
# torch (the distributed-test extra, for the real two-node torchrun test).
# `make run` synthesizes both stacks and summarizes them, without deploying. `make diagrams` redraws the README's
# pictures of them.

SHELL := /bin/bash
# The virtualenv's bin comes first: jsii and the CDK CLI then run on its Node 24.
export PATH := $(CURDIR)/.venv/bin:$(CURDIR)/node_modules/.bin:$(PATH)
CONTEXT ?=

.PHONY: run test setup synth bench catalog images context clean deploy diagrams warnings

setup:
	@bash scripts/bootstrap.sh

run: setup
	cdk synth --quiet $(CONTEXT)
	python scripts/summarize_synth.py cdk.out

test:
	@bash scripts/bootstrap.sh --with-checkov
	python -m pytest -n auto --dist loadfile

# Deploy both stacks to a local moto server with the real CDK CLI (mlcdk emulate), run the job check, print what
# was created, tear it down.
# TARGET=aws deploys to the account of your AWS credentials instead, after you type its account id.
deploy: setup
	python scripts/emulator.py $(if $(TARGET),--target $(TARGET),)

bench: setup
	python benchmarks/synth.py
	python benchmarks/catalog.py
	python benchmarks/advisor.py
	python benchmarks/advisor.py

# Regenerate the bundled catalog snapshot offline (moto's EC2 data + mlcdk/presets/data/supplements.json +
# data/prices), stamped with the price data's date. It also refreshes the packaged gzip copy of data/prices,
# the default price input of `mlcdk catalog refresh --offline` outside the repository.
catalog: setup
	python -c "from pathlib import Path; from mlcdk.fetch import refresh; refresh.package_price_data(Path('data/prices/aws-ml-instance-prices.csv'))"
	mlcdk catalog refresh --offline --prices-csv data/prices/aws-ml-instance-prices.csv --output mlcdk/presets/data

# Refresh the default container images: fetch the DLC lists from GitHub into mlcdk/presets/data/image_lists and
# pick the newest image for every choice of mlcdk/presets/data/image_choices.json (needs the network).
images: setup
	mlcdk images refresh --lists mlcdk/presets/data/image_lists --output mlcdk/presets/data/containers.json

context: setup
	python scripts/generate_context.py

# Redraw the README's diagram of each stack of the example app (mlcdk diagram's Mermaid); tests/test_diagram.py
# fails when they no longer match the app.
diagrams: setup
	python scripts/readme_diagrams.py

# Rewrite the README's list of synth warnings from mlcdk/constructs/warning_registry.py;
# tests/test_warning_registry.py fails when it no longer matches the table.
warnings: setup
	python scripts/readme_warnings.py

clean:
	rm -rf cdk.out .pytest_cache
