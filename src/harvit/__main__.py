"""`python -m harvit` runs the command-line interface."""

from harvit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
