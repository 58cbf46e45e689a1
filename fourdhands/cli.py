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


def _info(args: argparse.Namespace) -> None:
    from .model.config import PRESETS, model_config
    from .model.profile import profile

    presets = args.preset or list(PRESETS)
    print(f"fourdhands network, ablation {args.ablation!r}, crops {args.height}x{args.width}, "
          "two hands; GFLOPs per frame (multiply-add = 2)")
    header = f"{'preset':<7} {'params':>9} {'backbone':>9} {'single':>8} {'T=9 window':>11} {'T=9 video':>10}"
    print(header)
    print("-" * len(header))
    for name in presets:
        config = model_config(name, args.ablation, image_size=(args.height, args.width))
        p = profile(config)
        print(f"{name:<7} {p.parameters / 1e6:>8.1f}M {p.backbone_parameters / 1e6:>8.1f}M "
              f"{p.flops_single_frame / 1e9:>8.1f} {p.flops_window_per_frame / 1e9:>11.1f} "
              f"{p.flops_video_per_frame / 1e9:>10.1f}")
    print("single: one image; T=9 window: every frame of a 9-frame window encoded, per frame; "
          "T=9 video: each frame encoded once and reused by its windows, per frame")


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

    from .model.config import ABLATIONS, PRESETS

    info = sub.add_parser("info", help="parameter counts and FLOPs of the network presets",
                          description="Print, per preset, parameters and FLOPs per frame for "
                                      "two hands: a single frame, and T=9 windows.")
    info.add_argument("--preset", action="append", choices=list(PRESETS),
                      help="a preset to report (repeatable; default: all)")
    info.add_argument("--ablation", default="full", choices=list(ABLATIONS),
                      help="paper Table 5 row (default: %(default)s)")
    info.add_argument("--height", type=int, default=256, help="crop height (default: %(default)s)")
    info.add_argument("--width", type=int, default=192, help="crop width (default: %(default)s)")
    info.set_defaults(func=_info)
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
