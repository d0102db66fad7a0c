"""Facts: the instance catalog, images and AMIs, workload presets and rules, precision, sizing inputs, bounds,
paths, identifiers, models and the model server's facts, read through one loader (:mod:`mlcdk.presets.datafile`).

The bottom layer above mlcdk.errors (docs/design.md): pure Python, nothing here imports aws_cdk, boto3, or any
other mlcdk package. The advisor is in :mod:`mlcdk.advice`, the fetchers that write these data files in
:mod:`mlcdk.fetch`.
"""
