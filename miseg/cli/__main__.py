"""``python -m miseg.cli``: MIScnn's entry point of the command line."""

from miseg.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
