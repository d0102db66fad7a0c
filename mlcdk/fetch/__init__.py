"""Fetching: the code that calls out (EC2, the Pricing API, the DLC image lists) and writes data files.

Kept apart from reading: :mod:`mlcdk.presets` only reads what these write (docs/design.md).
"""
