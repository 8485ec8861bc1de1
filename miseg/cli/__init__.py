"""The ``miseg`` command line (``miseg``, ``python -m miseg`` or MIScnn's ``python -m miseg.cli``).

Commands: ``explore``, ``train``, ``predict``, ``evaluate``, and MIScnn's ``verify``,
``data_exp`` (an alias of ``explore``) and ``cleanup``. See ``miseg --help`` and
:func:`miseg.cli.main.main`. Importing this package parses nothing and starts nothing.
"""

from miseg.cli.main import main

__all__ = ["main"]
