"""Can the tests fail? Apply small deliberate mistakes to the package, one at a time, in a
scratch copy of the repository, run the tests that guard that code, and report whether
each mistake fails at least one of them.

    python benchmarks/mutation_check.py [--out benchmarks/results/mutation_check.md] [--only NAME ...]

Each mutation replaces one exact snippet of one file (the script stops if the snippet is
no longer there: the list must follow the code). The copy is a fresh folder with
``fourdhands/``, ``tests/`` and ``pyproject.toml``; pytest runs there with the copy first on
``sys.path`` (the editable install of the working tree is bypassed), so the working tree
is never touched. A mutation is *caught* when pytest exits non-zero with at least one
failed test, not an error of collection.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    why: str  # the real bug it stands for
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTATIONS = (
    Mutation("swapped left/right", "v added to the right hand instead of the left in the objective",
             "fourdhands/objective.py",
             'shift_p = pred.v[..., None, :] if h == 1 else 0.0', 'shift_p = pred.v[..., None, :] if h == 0 else 0.0',
             ("tests/test_objective.py",)),
    Mutation("swapped hands in the flip", "a horizontal flip that mirrors the image but keeps the hands' slots",
             "fourdhands/data/augment.py",
             "out[k] = out[k][:, ::-1].copy()", "out[k] = out[k].copy()",
             ("tests/test_augment.py", "tests/test_dataset.py")),
    Mutation("dropped loss term", "the 2D keypoint term never added to the total",
             "fourdhands/losses.py",
             'add("keypoints_2d", keypoint_2d_loss(', 'dict(keypoints_2d=keypoint_2d_loss(',
             ("tests/test_losses.py", "tests/test_objective.py")),
    Mutation("wrong normalisation constant", "the MediaPipe backbone's crops shifted by 0.5 before the network",
             "fourdhands/model/backbones.py",
             "mean=(0.0, 0.0, 0.0),", "mean=(0.5, 0.5, 0.5),",
             ("tests/test_backbones.py", "tests/test_shipped_model.py")),
    Mutation("wrong ImageNet constant", "a ViT backbone normalised with a wrong mean",
             "fourdhands/model/backbones.py",
             "IMAGENET_MEAN = (0.485, 0.456, 0.406)", "IMAGENET_MEAN = (0.406, 0.456, 0.485)",
             ("tests/test_backbones.py",)),
    Mutation("unmirrored left crop", "the left hand's crop fed as it is, not mirrored to look like a right hand",
             "fourdhands/model/network.py",
             "views[..., 1, :, :, :].flip(-1)], dim=-4)", "views[..., 1, :, :, :]], dim=-4)",
             ("tests/test_shipped_model.py",)),
    Mutation("off-by-one window gap", "temporal windows cut gap + 1 frames apart",
             "fourdhands/data/sample.py",
             "offsets = gap * (np.arange(seq_len) - seq_len // 2)", "offsets = (gap + 1) * (np.arange(seq_len) - seq_len // 2)",
             ("tests/test_dataset.py", "tests/test_pipeline.py")),
    Mutation("transposed rotation", "axis-angle turned into the inverse rotation",
             "fourdhands/geometry/rotations.py",
             "    return quaternion_to_matrix(axis_angle_to_quaternion(axis_angle))",
             "    return quaternion_to_matrix(axis_angle_to_quaternion(axis_angle)).transpose(-1, -2)",
             ("tests/test_rotations.py",)),
    Mutation("crop expansion drift", "inference crops a tighter box than training did",
             "fourdhands/pipeline.py",
             "tuple(self.net.config.image_size), self.net.config.box_expand,",
             "tuple(self.net.config.image_size), 1.1,",
             ("tests/test_pipeline.py",)),
)

# Run pytest with the scratch copy first on sys.path and the editable install's finder gone.
_LAUNCH = """
import sys
sys.meta_path = [f for f in sys.meta_path if "editable" not in (getattr(f, "__module__", "") + repr(f)).lower()]
sys.path.insert(0, sys.argv[1])
import fourdhands, pytest
assert fourdhands.__file__.startswith(sys.argv[1]), fourdhands.__file__
sys.exit(pytest.main(["-q", "-x", "-p", "no:cacheprovider", *sys.argv[2:]]))
"""


def _copy(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "fourdhands", dest / "fourdhands", ignore=ignore)
    shutil.copytree(ROOT / "tests", dest / "tests", ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")


def run_one(m: Mutation, scratch: Path) -> tuple[bool, str, float]:
    """(caught, pytest's last line, seconds) for mutation ``m`` in a fresh copy."""
    work = scratch / m.name.replace(" ", "_").replace("/", "_")
    _copy(work)
    target = work / m.file
    text = target.read_text()
    if text.count(m.old) != 1:
        raise SystemExit(f"mutation {m.name!r}: the snippet occurs {text.count(m.old)} times in {m.file}; "
                         "update the list")
    target.write_text(text.replace(m.old, m.new))
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", _LAUNCH, str(work), *m.tests], cwd=work,
                         capture_output=True, text=True)
    lines = [line for line in res.stdout.splitlines() if line.strip()]
    last = lines[-1] if lines else res.stderr.strip().splitlines()[-1]
    caught = res.returncode == 1 and "failed" in last
    return caught, last.strip("= "), time.perf_counter() - t0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "mutation_check.md")
    parser.add_argument("--only", nargs="+", help="names of the mutations to apply (default: all)")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    rows = ["| mutation | the bug it stands for | tests run | caught | pytest says |", "|---|---|---|---|---|"]
    caught_all = True
    with tempfile.TemporaryDirectory() as scratch:
        for m in chosen:
            caught, last, seconds = run_one(m, Path(scratch))
            caught_all &= caught
            rows.append(f"| {m.name} | {m.why} (`{m.file}`) | {', '.join(Path(t).name for t in m.tests)} | "
                        f"{'yes' if caught else '**no**'} | {last} ({seconds:.0f} s) |")
            print(rows[-1], flush=True)
    text = "\n".join(rows)
    verdict = "Every mutation fails at least one test." if caught_all else "Some mutations pass every test run."
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text(f"# Mutation check: can the tests fail?\n\n`python benchmarks/mutation_check.py`\n\n"
                   f"{text}\n\n{verdict}\n")
    tmp.replace(args.out)
    print(verdict)
    return 0 if caught_all else 1


if __name__ == "__main__":
    sys.exit(main())
