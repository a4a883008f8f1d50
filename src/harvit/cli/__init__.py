"""Command-line interface. Every training flag and its default come from :class:`harvit.config.Config`.

Subcommands: train, cv, data info, evaluate, report, baseline, profile, predict, export; each adds its
parser and runs from the module of its group (:mod:`.training`, :mod:`.data`, :mod:`.runs`), on the
shared flags of :mod:`.flags`. Every heavy import waits inside the command, so ``--help`` starts at once.
Bad input prints one line ``harvit: error: ...`` and exits with code 2. Under torchrun (``harvit train``
as every rank) rank 0 speaks for all: it prints, and writes the report after training.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

from harvit.cli import data, runs, training
from harvit.cli.flags import (
    Parser,
    add_config_flags,
    check_registered,
    config_from_args,
    expand_help,
    resolve_checked,
    torchrun_rank,
)
from harvit.cli.training import done_line
from harvit.utils.errors import HarvitError
from harvit.utils.logging import setup_logging

__all__ = ["add_config_flags", "build_parser", "check_registered", "config_from_args", "done_line", "expand_help",
           "main", "resolve_checked", "print_exit_line", "torchrun_rank"]

#: The subcommands in the order of ``--help``: name -> (adds its parser, runs it and returns the exit code).
COMMANDS: dict[str, tuple[Callable[[argparse._SubParsersAction], None], Callable[[argparse.Namespace], int]]] = {
    "train": (training.add_train, training.cmd_train),
    "cv": (training.add_cv, training.cmd_cv),
    "data": (data.add_data, data.cmd_data),
    "evaluate": (runs.add_evaluate, runs.cmd_evaluate),
    "report": (runs.add_report, runs.cmd_report),
    "baseline": (data.add_baseline, data.cmd_baseline),
    "profile": (training.add_profile, training.cmd_profile),
    "predict": (runs.add_predict, runs.cmd_predict),
    "export": (runs.add_export, runs.cmd_export),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``harvit`` parser with every subcommand's."""
    p = Parser(prog="harvit", description="Human activity recognition from wearable-sensor windows: a model that "
                                          "reads their images (GASF, GADF, MTF, ...), statistics and convolution "
                                          "features, trained and scored subject-wise against baselines.",
               epilog="`harvit COMMAND --help` lists a command's flags; QUICK_REFERENCE.md lists them all.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for add, _ in COMMANDS.values():
        add(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input, 130/143 interrupted)."""
    t_start = time.perf_counter()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        ns = parser.parse_args(argv)
        ns.t_start = t_start
        if not ns.command:
            parser.print_help()
            return 2
        setup_logging()
        return COMMANDS[ns.command][1](ns)
    except HarvitError as e:
        return print_exit_line(f"harvit: error: {e}", 2)
    except KeyboardInterrupt:
        print("harvit: interrupted", file=sys.stderr, flush=True)
        return 130
    except Exception as e:  # noqa: BLE001 - turn known runtime exits into codes
        from harvit.training.interrupts import Interrupted

        if isinstance(e, Interrupted):
            return print_exit_line(str(e), e.code, wait=False)
        raise


#: Seconds a rank other than 0 waits, after an error, for rank 0 to end (torchrun then stops it).
QUIET_WAIT_S = 10.0


def print_exit_line(line: str, code: int, wait: bool = True) -> int:
    """Print the closing line on stderr and return ``code``; under torchrun only rank 0 prints.

    The ranks agree on errors and on stopping (every rank raises the same one), so rank 0 has the line
    too. For an error another rank first waits for rank 0 to print and end (torchrun then stops the
    others); it prints the line itself, with its rank, only when rank 0 is still running after
    :data:`QUIET_WAIT_S` (an error of its own). An interrupted rank leaves at once (``wait=False``).
    """
    rank = torchrun_rank()
    if rank != 0:
        if not wait:
            return code
        time.sleep(QUIET_WAIT_S)
        line = f"[rank {rank}] {line}"
    print(line, file=sys.stderr, flush=True)
    return code
