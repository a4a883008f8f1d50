"""The ten example scenarios: ``python examples.py`` lists them, ``python examples.py N`` runs one.

Each scenario is a shell script in ``examples/`` (read it, copy its commands); this file finds them,
prints their one-line summaries, and runs one with bash from the repository root. Environment
variables (``HARVIT_DATA_DIR``, ``OUT``, ``RUN``, ...) pass through to the script.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent / "examples"


def scenarios() -> dict[int, Path]:
    """Scenario number -> script, from the ``NN_name.sh`` files in ``examples/``."""
    out = {}
    for path in sorted(EXAMPLES.glob("[0-9][0-9]_*.sh")):
        out[int(path.name[:2])] = path
    return out


def summary(path: Path) -> str:
    """The script's first comment line after the shebang, without the ``# NN - `` prefix."""
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        if line.startswith("#"):
            text = line.lstrip("# ").strip()
            return text.split(" - ", 1)[1] if " - " in text[:6] else text
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python examples.py", description=__doc__.splitlines()[0])
    parser.add_argument("number", nargs="?", type=int, help="scenario to run (1-10); none: list them")
    parser.add_argument("--show", action="store_true", help="print the scenario's script instead of running it")
    ns = parser.parse_args(argv)
    found = scenarios()
    if ns.number is None:
        for n, path in found.items():
            print(f"{n:2d}  {path.name:34s} {summary(path)}")
        print("\nrun one: python examples.py N   (see examples/README.md for times and what each needs)")
        return 0
    if ns.number not in found:
        print(f"examples.py: error: no scenario {ns.number}; expected one of {', '.join(map(str, found))}",
              file=sys.stderr)
        return 2
    path = found[ns.number]
    if ns.show:
        print(path.read_text(encoding="utf-8"), end="")
        return 0
    print(f"running {path.relative_to(EXAMPLES.parent)}: {summary(path)}", flush=True)
    return subprocess.call(["bash", str(path)], cwd=EXAMPLES.parent)


if __name__ == "__main__":
    raise SystemExit(main())
