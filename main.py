"""`python main.py [flags]` is `harvit train [flags]`."""

import sys
from pathlib import Path

try:
    from harvit.cli import main
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
    from harvit.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train", *sys.argv[1:]]))
