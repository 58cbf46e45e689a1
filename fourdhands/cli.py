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


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 320x240, not {text!r}") from None
    return w, h


def _synth(args: argparse.Namespace) -> None:
    from .synth.generate import generate
    from .synth.motion import SPLIT_SEEDS

    seed = SPLIT_SEEDS.get(args.split, 0) if args.seed is None else args.seed
    s = generate(args.output, sequences=args.sequences, frames=args.frames, seed=seed,
                 split=args.split, image_size=args.size, backgrounds=args.backgrounds)
    print(f"{args.output}: generated {s['sequences']} sequences ({s['frames']} frames) of split "
          f"{args.split!r} into {len(s['written'])} shards ({len(s['skipped'])} already complete), "
          f"{s['frames_per_second']:.0f} frames/s with the {s['backend']} renderer")


def _train(args: argparse.Namespace) -> None:
    from .train import load_config, train

    config = load_config(args.config, args.set)
    last = train(config)
    print(f"checkpoint: {last}")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (no usage dump), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _eval(args: argparse.Namespace) -> None:
    from .evaluate import evaluate, to_markdown

    results = evaluate(args.ckpt, args.data, args.output, batch_size=args.batch_size,
                       workers=args.workers)
    print(to_markdown(results))
    print("wrote " + ", ".join(results["written"]))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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

    synth = sub.add_parser("synth", help="generate synthetic two-hand video with exact ground truth",
                           description="Render seeded two-hand sequences into resumable tar shards.")
    synth.add_argument("output", help="output folder (an existing one is resumed)")
    synth.add_argument("--sequences", type=int, default=10, help="number of sequences (default: %(default)s)")
    synth.add_argument("--frames", type=int, default=32, help="frames per sequence (default: %(default)s)")
    synth.add_argument("--seed", type=int, default=None,
                       help="random seed (default: the split's fixed seed: train 0, interacting 1001, "
                            "far_and_scaled 1002, single_hand 1003, occluded 1004)")
    synth.add_argument("--split", default="train",
                       help="train, interacting, far_and_scaled, single_hand or occluded (default: %(default)s)")
    synth.add_argument("--size", type=_size, default=(320, 240), help="WxH (default: 320x240)")
    synth.add_argument("--backgrounds", default=None, help="optional folder of background images")
    synth.set_defaults(func=_synth)

    train = sub.add_parser("train", help="train the network (one process, or N under torchrun)",
                           description="Train from a YAML config; an existing output folder resumes.")
    train.add_argument("config", help="YAML config (see configs/)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config entry, e.g. --set steps=100 (repeatable)")
    train.set_defaults(func=_train)

    ev = sub.add_parser("eval", help="evaluate a checkpoint: the paper's table columns per split and hand",
                        description="Write eval.json and eval.md with MPJPE, MPVPE, MRRPE, Accel_E and "
                                    "DexYCB-style root-relative / Procrustes errors and AUC.")
    ev.add_argument("--ckpt", required=True, help="checkpoint folder (step-NNNNNNN)")
    ev.add_argument("--data", required=True, action="append", help="data folder, one split (repeatable)")
    ev.add_argument("-o", "--output", default=None, help="output folder (default: CKPT/eval)")
    ev.add_argument("--batch-size", type=int, default=4)
    ev.add_argument("--workers", type=int, default=0)
    ev.set_defaults(func=_eval)
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
