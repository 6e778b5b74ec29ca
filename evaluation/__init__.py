"""JGLUE evaluation: the task registry, readers for JGLUE v1.3 files and the metrics.

Pure Python (no torch): :mod:`evaluation.tasks` holds JGLUE's fine-tuning defaults per
task, :mod:`evaluation.data` reads the files as JGLUE distributes them and
:mod:`evaluation.metrics` scores predictions the way JGLUE's patched scripts do.
"""
