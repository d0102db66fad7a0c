"""Advice: which instance types, how many nodes, how long and at what cost (pure Python, no aws_cdk).

Built on the facts of :mod:`mlcdk.presets`; the entry point is :func:`mlcdk.advice.advisor.advise`. The layers and
their rules are in docs/design.md.
"""
