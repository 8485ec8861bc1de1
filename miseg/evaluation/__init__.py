"""Evaluation: cross-validation, split validation, leave-one-out, metrics and reports."""
