"""The ``shelfcast`` command line.

Each subcommand lives in the module that owns the work and exposes two functions,
``add_arguments(parser)`` and ``run(args) -> int``. Only the chosen subcommand's module is
imported, so ``shelfcast serve`` on a gateway never touches training libraries, and a
module keeps its heavy imports inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping
from typing import NoReturn

from configuration.data_dir import DEFAULT_DATA_DIR, ENV_VAR
from edge_runtime.heap import pause_collector, resume_collector
from shelfcast import __version__

# name -> (module, one-line help). A module is listed here once its command works.
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("shelfcast.data_command", "show where the real data is read from and what is there"),
    "train": ("training.train", "backtest, train, export to ONNX, track in MLflow, write a bundle"),
    "keygen": ("training.signing_key", "create the Ed25519 key pair that signs model bundles"),
    "run": ("edge_runtime.run_command", "run the store gateway: ledger, decisions, MQTT, outbox"),
    "simulate": (
        "twin.simulate",
        "digital twin: replay held-out real demand, compare replenishment policies",
    ),
    "demo": (
        "shelfcast.demo",
        "the whole product on real data: train, twin, edge replay over MQTT, HTML report",
    ),
    "serve": ("api.serve_command", "serve the HTTP API with the gateway runtime (or --attach)"),
    "sensors": (
        "twin.sensors",
        "add shelf-weight and RFID readings with labelled thefts/phantoms/mis-scans to a replay",
    ),
    "replay": ("twin.replay", "write a store's real data as a timestamped edge event stream"),
    "config": (
        "shelfcast.config_command",
        "check a settings file (config check FILE) or write the configuration reference",
    ),
    "hub": ("hub.command", "the central hub: JetStream workers and the omnichannel API"),
    "forecast": (
        "training.forecast_command",
        "forecast any horizon for every store x SKU of a sales file from a bundle's ONNX model",
    ),
}

# The optional extra each command needs beyond the edge image's (which has only `edge`).
EXTRA_OF = {"hub": "hub"} | dict.fromkeys(
    ("train", "keygen", "forecast", "simulate", "demo", "sensors", "replay"), "train"
)


def missing_part(command: str, err: ModuleNotFoundError) -> str:
    """The one line for a command whose code or libraries this installation leaves out (the
    edge image carries the gateway only), instead of a traceback.

    >>> missing_part("train", ModuleNotFoundError("No module named 'training'", name="training"))
    "shelfcast train: not in this installation (no module 'training'); it needs the train extra: pip install 'shelfcast[train]' (the edge image has only the gateway)"
    """
    extra = EXTRA_OF.get(command, "edge")
    return (
        f"shelfcast {command}: not in this installation (no module {err.name!r}); it needs the "
        f"{extra} extra: pip install 'shelfcast[{extra}]' (the edge image has only the gateway)"
    )


# Commands that read a settings model check its variables themselves (config only reads them
# on request); the others have the environment checked here, so a misspelled SHELFCAST_DATA_DIR
# is named instead of silently falling back to the default.
CHECK_THEIR_OWN_VARIABLES = {"run", "serve", "hub", "config"}


def misspelled_variables(env: Mapping[str, str]) -> list[str]:
    """One line per ``SHELFCAST_*`` variable no process reads, with the nearest valid name."""
    from configuration.layered_settings import unknown_variable
    from configuration.variables import ENV_PREFIX
    from shelfcast.config_command import every_variable

    known = every_variable()
    return [
        unknown_variable(name, known)
        for name in env
        if name.upper().startswith(ENV_PREFIX) and name.upper() not in known
    ]


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit code 2: what was wrong
    with which option and where to look, without the usage block that buries it.

    >>> OneLineParser(prog="shelfcast x").error("argument --folds: expected an integer >= 1, got 0")
    Traceback (most recent call last):
    ...
    SystemExit: 2
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _top_parser() -> argparse.ArgumentParser:
    lines = "\n".join(f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items())
    parser = OneLineParser(
        prog="shelfcast",
        description="Edge-AI demand forecasting and replenishment for retail stores.",
        epilog=f"commands:\n{lines}\n\nRun `shelfcast COMMAND --help` for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"shelfcast {__version__}")
    parser.add_argument("command", nargs="?", help="one of: " + ", ".join(COMMANDS))
    return parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        default=None,
        help=f"real data directory (env {ENV_VAR}; default {DEFAULT_DATA_DIR})",
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        _top_parser().parse_args(argv)  # handles --help/--version, errors on unknown flags
        _top_parser().print_help()
        return 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(
            f"shelfcast: unknown command {name!r}; choose one of: {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return 2
    module_name, text = COMMANDS[name]
    if name not in CHECK_THEIR_OWN_VARIABLES and (typos := misspelled_variables(os.environ)):
        for line in typos:
            print(f"shelfcast {name}: {line}", file=sys.stderr)
        return 2
    # Why the collector waits: what a command imports lives as long as the process, so a
    # collection while importing walks survivors only (edge_runtime/heap.py).
    pause_collector()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        print(missing_part(name, err), file=sys.stderr)
        return 2
    finally:
        resume_collector()
    parser = OneLineParser(prog=f"shelfcast {name}", description=text)
    _add_common(parser)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    if args.data_dir:
        os.environ[ENV_VAR] = args.data_dir  # one setting: the option just sets the variable
    try:
        return int(module.run(args) or 0)
    except ModuleNotFoundError as err:  # a library a command imports only when it runs
        print(missing_part(name, err), file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
