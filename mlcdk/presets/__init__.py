"""Facts and choices: the instance catalog, workload presets, sizing and the advisor.

Pure Python: nothing under ``mlcdk.presets`` imports aws_cdk.
"""
