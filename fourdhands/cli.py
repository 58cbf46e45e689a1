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

    report = run_demo(args.output, hand_model=args.hand_model, ckpt=args.ckpt, detector=args.detector)
    run, m = report["run"], report["metrics"]
    print(f"{report['run']['output']}: {run['frames']} frames, {run['frames_per_second']:.1f} frames/s, "
          f"hands from {report['detector']}; overlay.mp4, side.mp4, frames/, meshes/, summary.json")
    print(f"hands reconstructed: right in {100 * m['found']['right']:.0f} % of its frames, "
          f"left in {100 * m['found']['left']:.0f} %")
    recall = report["mediapipe_recall"]
    if recall is not None and report["detector"] != "mediapipe":
        print(f"MediaPipe on this synthetic clip finds the right hand in {100 * recall['right']:.0f} % of its "
              f"frames and the left in {100 * recall['left']:.0f} % (see `fourdhands demo --help`)")
    print(f"{'':6} {'MPJPE':>7} {'MPVPE':>7} {'PA-MPJPE':>9} {'MPJPE-wrist':>12} {'mean-pose':>10} {'Accel_E':>8} "
          f"{'orient':>7} {'mean-orient':>12}")
    for side in ("right", "left"):
        r = m[side]
        print(f"{side:6} {r['mpjpe']:7.1f} {r['mpvpe']:7.1f} {r['pa_mpjpe']:9.1f} {r['mpjpe_wrist']:12.1f} "
              f"{r['mean_pose_mpjpe']:10.1f} {r['accel']:8.2f} {r['orient']:7.1f} {r['mean_orient']:12.1f}")
    print(f"MRRPE {m['mean']['mrrpe']:.1f} mm (mean-v reference {m['mean']['mean_v_mrrpe']:.1f} mm); "
          f"all in mm (orientations in degrees), protocols as in `fourdhands eval`; "
          f"details in {args.output}/metrics.json")


def _info(args: argparse.Namespace) -> None:
    from .model.backbones import backbone_spec
    from .model.config import PRESETS, model_config
    from .model.profile import profile

    presets = args.preset or list(PRESETS)
    print(f"fourdhands network, ablation {args.ablation!r}, crops {args.height}x{args.width}, "
          "two hands; GFLOPs per frame (multiply-add = 2)")
    header = f"{'preset':<7} {'params':>9} {'backbone':>9} {'single':>8} {'T=9 window':>11} {'T=9 video':>10}"
    print(header)
    print("-" * len(header))
    for name in presets:
        fixed = backbone_spec(PRESETS[name]["backbone"]).input_size  # e.g. MediaPipe's 224x224
        config = model_config(name, args.ablation, image_size=fixed or (args.height, args.width))
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


def _cache(args: argparse.Namespace) -> None:
    from .feature_cache import build_cache
    from .model.network import FourDHands
    from .train import load_config, sample_config

    config = load_config(args.config, args.set)
    if not config.cache:
        raise UserError(f"{args.config}: names no cache folder (cache: PATH)")
    if not config.data:
        raise UserError(f"{args.config}: no data sources to encode (data: [{{path: ...}}])")
    model = config.model.config()
    out = build_cache(FourDHands(model), [d.spec for d in config.data], config.cache,
                      sample_config(config, model), draws=config.cache_draws, seed=config.seed,
                      options={d.spec: {"skip_missing": d.skip_missing, "mano": d.mano} for d in config.data})
    print(f"feature cache: {out}")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (no usage dump), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _eval(args: argparse.Namespace) -> None:
    from .evaluate import evaluate, to_markdown

    results = evaluate(args.ckpt, args.data, args.output, batch_size=args.batch_size,
                       workers=args.workers, skip_missing=args.skip_missing, mano=args.mano)
    print(to_markdown(results))
    print("wrote " + ", ".join(results["written"]))


def _pack(args: argparse.Namespace) -> None:
    from .checkpoint import pack_checkpoint

    dest = pack_checkpoint(args.ckpt, args.dest)
    size = sum(p.stat().st_size for p in dest.iterdir())
    print(f"{dest}: {size / 1e6:.1f} MB (float16 weights and config)")


def _run(args: argparse.Namespace) -> None:
    from .run import RunSettings, run

    settings = RunSettings(ckpt=args.ckpt, hand_model=args.hand_model, focal=args.focal, boxes=args.boxes,
                           principal_point=args.principal_point, device=args.device, render=not args.no_render, resume=args.resume,
                           translation=args.translation, gap=args.gap, independent=args.independent,
                           refine=args.refine, smooth=args.smooth, animation=not args.no_animation)
    s = run(args.input, args.output, settings)
    print(f"{s['output']}: {s['frames_written']} frames written ({s['frames_already_done']} already done) "
          f"of {s['frames']}: both hands in {s['frames_with_both_hands']}, right only "
          f"{s['frames_with_right_only']}, left only {s['frames_with_left_only']}, none "
          f"{s['frames_without_hands']}; {s['frames_per_second']:.2f} frames/s")
    if s["frames_without_hands"] == s["frames"]:
        print("no hands were found in the input; the results are empty")
    if s["extra_hands_dropped"]:
        print(f"{s['extra_hands_dropped']} detections beyond two hands per frame were dropped "
              "(the two most confident are kept)")
    if s["files_skipped"]:
        print(f"{s['files_skipped']} unreadable files were skipped (listed in summary.json)")
        if args.strict:
            raise UserError(f"{args.input}: {s['files_skipped']} unreadable files were skipped (--strict)")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text!r}")
    return value


def _point(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must look like 320.5,240, not {text!r}") from None
    return x, y


def _add_demo(sub) -> None:
    """``fourdhands demo``."""
    demo = sub.add_parser(
        "demo", help="the whole pipeline on a synthetic two-hand clip, scored against its ground truth",
        description="Make a synthetic two-hand clip with known ground truth, run `fourdhands run` on it "
                    "with the shipped checkpoint, write the outputs and print the metrics.")
    demo.add_argument("-o", "--output", default="fourdhands_demo",
                      help="output folder (default: %(default)s)")
    demo.add_argument("--hand-model", default=None,
                      help="'open' (built in) or a MANO_RIGHT.pkl/.npz path; the left file "
                           "is taken from beside it (default: the checkpoint's, 'open')")
    demo.add_argument("--ckpt", default=None, help="checkpoint folder (default: the shipped model)")
    demo.add_argument("--detector", default="boxes", choices=["boxes", "mediapipe"],
                      help="hands to reconstruct: the clip's true boxes (default; MediaPipe finds the "
                           "synthetic hands in few frames, its recall is printed) or MediaPipe's")
    demo.set_defaults(func=_demo)


def _add_info(sub) -> None:
    """``fourdhands info``."""
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


def _add_synth(sub) -> None:
    """``fourdhands synth``."""
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
    synth.add_argument("--backgrounds", default=None,
                       help="optional folder of background photos, or 'scikit-image' for the public-domain / "
                            "CC0 photographs bundled in scikit-image (pip install scikit-image)")
    synth.set_defaults(func=_synth)


def _add_train(sub) -> None:
    """``fourdhands train``."""
    train = sub.add_parser("train", help="train the network (one process, or N under torchrun)",
                           description="Train from a YAML config; an existing output folder resumes.")
    train.add_argument("config", help="YAML config (see configs/)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config entry, e.g. --set steps=100 (repeatable)")
    train.set_defaults(func=_train)


def _add_cache(sub) -> None:
    """``fourdhands cache``."""
    cache = sub.add_parser("cache", help="encode a config's data once with its frozen backbone trunk (resumable)",
                           description="Build the feature cache named by a training config's `cache` entry: "
                                       "every sequence of its data, `cache_draws` augmentations each, through "
                                       "the backbone's frozen trunk.")
    cache.add_argument("config", help="training config (YAML)")
    cache.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override an entry")
    cache.set_defaults(func=_cache)


def _add_eval(sub) -> None:
    """``fourdhands eval``."""
    ev = sub.add_parser("eval", help="evaluate a checkpoint: the paper's table columns per split and hand",
                        description="Write eval.json and eval.md with MPJPE, MPVPE, MRRPE, Accel_E and "
                                    "DexYCB-style root-relative / Procrustes errors and AUC.")
    ev.add_argument("--ckpt", required=True, help="checkpoint folder (step-NNNNNNN)")
    ev.add_argument("--data", required=True, action="append", metavar="[KIND:]PATH",
                    help="one split (repeatable): a `fourdhands synth` folder, or KIND:PATH with KIND "
                         "interhand2.6m, reinterhand, freihand, dexycb, ho3d, hic, arctic or renderih, "
                         "a split after @ (e.g. interhand2.6m:/data/IH26M/annotations/test, "
                         "dexycb:/data/DexYCB@s0-test; README, Real datasets)")
    ev.add_argument("-o", "--out", "--output", dest="output", default=None,
                    help="output folder (default: eval/<checkpoint name> in the working directory)")
    ev.add_argument("--batch-size", type=int, default=4)
    ev.add_argument("--workers", type=int, default=0)
    ev.add_argument("--skip-missing", action="store_true",
                    help="leave out (and count) real frames whose image is absent, instead of stopping")
    ev.add_argument("--mano", default=None, metavar="DIR",
                    help="your MANO files (MANO_RIGHT / MANO_LEFT .pkl or .npz), for datasets whose 3D "
                         "joints only MANO gives (hic, renderih)")
    ev.set_defaults(func=_eval)


def _add_pack(sub) -> None:
    """``fourdhands pack``."""
    pack = sub.add_parser("pack", help="store a checkpoint as the package ships it (float16, no optimizer state)",
                          description="Copy a checkpoint's weights in float16 with its config, without the "
                                      "optimizer state: how fourdhands/checkpoints/mediapipe_full was made.")
    pack.add_argument("ckpt", help="checkpoint folder (step-NNNNNNN)")
    pack.add_argument("dest", help="destination folder (replaced)")
    pack.set_defaults(func=_pack)


def _add_run(sub) -> None:
    """``fourdhands run``."""
    from .pipeline import TRANSLATIONS

    run = sub.add_parser(
        "run", help="reconstruct both hands in 4D from an image, a folder of images or a video",
        description="Detect and track both hands, reconstruct them with the network, and write per-frame "
                    "parameters (JSON, NPZ), meshes (GLB), overlays and side views, videos of them "
                    "(video input) and summary.json into OUT.")
    run.add_argument("input", help="an image, a folder of images, or a video (mp4, mov, avi, webm)")
    run.add_argument("-o", "--output", required=True, help="output folder")
    run.add_argument("--ckpt", default=None, help="checkpoint folder (default: the shipped mediapipe_full model)")
    run.add_argument("--hand-model", default=None,
                     help="'open' or a MANO_RIGHT.pkl/.npz path (default: the checkpoint's, the open hand model)")
    run.add_argument("--focal", type=_positive, default=None,
                     help="focal length in pixels (default: from EXIF, else 5000/256 x the longer image side)")
    run.add_argument("--principal-point", type=_point, default=None, metavar="CX,CY",
                     help="principal point in pixels (default: the image centre)")
    run.add_argument("--boxes", default=None, help="JSON or CSV file of hand boxes per frame, instead of the detector")
    run.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    run.add_argument("--no-render", action="store_true", help="skip overlays, side views and videos")
    run.add_argument("--resume", action="store_true", help="continue an interrupted run in OUT")
    run.add_argument("--translation", default="crop", choices=list(TRANSLATIONS),
                     help="each hand's translation from its crop camera or by PnP (default: %(default)s)")
    run.add_argument("--gap", type=int, default=None,
                     help="frames between a temporal window's frames (default: the checkpoint's training gap)")
    run.add_argument("--independent", action="store_true",
                     help="treat a folder's images as unrelated pictures, not frames of one video "
                          "(an unreadable one is skipped with a warning)")
    run.add_argument("--refine", action="store_true",
                     help="after the network, optimise the whole clip (2D evidence, smoothness on SO(3), "
                          "no hand-hand interpenetration, joint limits), in windows")
    run.add_argument("--smooth", action="store_true",
                     help="the online One-Euro filter on keypoints and rotations (live use: no look-ahead)")
    run.add_argument("--no-animation", action="store_true",
                     help="skip animation.glb, the sequence as one animated, skinned glTF")
    run.add_argument("--strict", action="store_true",
                     help="with --independent, exit with an error at the end if any file was skipped")
    run.set_defaults(func=_run)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fourdhands",
        description="Reconstruct interacting hands in 4D (4DHands).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_demo, _add_info, _add_synth, _add_train, _add_cache, _add_eval, _add_pack, _add_run):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, or a usage mistake already reported in one line
        return int(e.code or 0)
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
