"""The ``fourdhands`` command line.

Every user mistake (a missing file, a bad argument) ends as one line on stderr and exit
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

from .errors import UserError


def _demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    summary = run_demo(args.output, hand_model=args.hand_model)
    print(f"wrote {len(summary['files'])} files to {summary['out_dir']}/ "
          f"({', '.join(summary['files'])}) in {summary['seconds_total']:.1f} s "
          f"with the {summary['hand_model']!r} hand model")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fourdhands",
        description="Reconstruct interacting hands in 4D (4DHands).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo", help="pose two hands in an interaction; write meshes, parameters and pictures",
        description="Build the hand model, pose both hands with interlocked fingers, and write "
                    "meshes (OBJ, PLY), parameters (JSON, NPZ) and pictures (PNG) into a folder.")
    demo.add_argument("-o", "--output", default="fourdhands_demo",
                      help="output folder (default: %(default)s)")
    demo.add_argument("--hand-model", default="open",
                      help="'open' (built in) or a MANO_RIGHT.pkl/.npz path; the left file "
                           "is taken from beside it (default: %(default)s)")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        args.func(args)
    except UserError as e:
        print(f"fourdhands {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
