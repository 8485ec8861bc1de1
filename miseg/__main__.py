"""``python -m miseg``: the ``miseg`` command line."""

from miseg.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
