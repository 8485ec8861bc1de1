"""Evaluation: cross-validation, split validation, leave-one-out, metrics and reports.

As in MIScnn, ``from miseg.evaluation import *`` gives the driver *functions*
``cross_validation``, ``split_validation`` and ``leave_one_out``; these names shadow the
submodules of the same name in the package namespace (import helpers such as
``split_folds`` with ``from miseg.evaluation.cross_validation import split_folds``).
``detailed_validation`` is exported as the function too (MIScnn bound the module here).

Importing this package does not import TensorFlow.
"""

from miseg.evaluation.cross_validation import cross_validation
from miseg.evaluation.detailed_validation import detailed_validation
from miseg.evaluation.leave_one_out import leave_one_out
from miseg.evaluation.split_validation import split_validation

__all__ = ["cross_validation", "split_validation", "leave_one_out", "detailed_validation"]
