"""``fourdhands train CONFIG``: the trainer, one process or N under ``torchrun``.

The config is a YAML file checked against :class:`TrainConfig` (an unknown key is an
error). Training is a pure function of the config and the seed:

- the batch of step ``s`` is drawn from the data mixture by a generator seeded with
  ``(seed, s)`` (dataset by weight, then an item uniformly), and each item's augmentation
  is seeded by ``(seed, s, item)``; under DDP rank ``r`` of ``N`` takes every N-th item of
  that global batch, so N processes see exactly what one process sees;
- checkpoints (``OUT/step-NNNNNNN``, safetensors + optimizer/step state) are written
  atomically every ``ckpt_every`` steps and at the end; an existing ``OUT`` continues
  from the newest one and gives the same weights as a run that was never stopped. Its
  saved config must be this run's (``steps``, ``log_every``, ``ckpt_every`` and
  ``workers`` may differ: :data:`~fourdhands.checkpoint.RESUMABLE_CHANGES`); another model
  or recipe in the same ``OUT`` is a one-line error, not a silent mix.

The optimiser is AdamW with a linear decay of the learning rate to zero (paper: from
1e-5 for ViT-H fine-tuning; the CPU presets train from scratch and start higher, see the
shipped configs), after an optional linear warm-up of ``warmup`` steps.

A run can start from another checkpoint's weights (``init``: modules the other network
lacks, e.g. the temporal decoder after a single-frame run, keep their fresh values, and
the run names them on stderr) and
keep some top-level modules fixed (``freeze``, e.g. ``[backbone, relation, spatial,
hand_decoder]``: the per-frame encoder, whose forward then records no graph, so a T-frame
step costs about T forward passes of it). That is how the shipped ``full`` model is made
on a CPU: the single-frame ``cross_s`` run, then temporal fusion trained on its features.

A non-finite loss or gradient skips the step (after 20 in a row the run stops);
gradients are clipped; ``precision: bf16`` runs the forward under CPU/GPU autocast.
Progress goes to a bar with ETA and to ``OUT/log.csv``.
"""

from __future__ import annotations

import csv
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.distributed as dist
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from torch.utils.data import DataLoader, Dataset, Sampler

from .checkpoint import initialise_from, latest_checkpoint, resume_from, save_checkpoint
from .data.dataset import HandWindows
from .data.sources import KINDS, open_sequences
from .data.sample import MODEL_FIELDS, SampleConfig, model_sample_config, network_inputs
from .errors import UserError
from .losses import LossTerms, LossWeights
from .model.config import model_config
from .model.network import FourDHands
from .objective import loss_terms


@dataclass
class DataSource:
    path: str = MISSING  # a folder written by ``fourdhands synth``, or the dataset's (see kind)
    weight: float = 1.0  # share of each batch, relative to the other sources
    kind: str = "synth"  # a kind of fourdhands.data.sources.KINDS
    skip_missing: bool = False  # InterHand2.6M: leave out (and count) frames whose image is absent
    mano: Optional[str] = None  # MANO files, for datasets whose joints only MANO gives (hic, renderih)

    @property
    def spec(self) -> str:
        """The data spec (:func:`fourdhands.data.sources.parse_spec`): a bare path for synthetic data."""
        return self.path if self.kind == "synth" else f"{self.kind}:{self.path}"


@dataclass
class ModelSection:
    preset: str = "tiny"
    ablation: str = "full"
    image_size: Optional[tuple[int, int]] = None  # default: the preset's
    seq_len: int = 9
    backbone: str = ""  # default: the preset's (a name of model.backbones.BACKBONES)
    hand_model: str = "open"  # or a MANO_RIGHT.pkl path (its left file beside it)

    def config(self):
        """The :class:`~fourdhands.model.config.ModelConfig` this section describes."""
        overrides = {"seq_len": self.seq_len, "hand_model": self.hand_model}
        if self.image_size is not None:
            overrides["image_size"] = tuple(self.image_size)
        if self.backbone:
            overrides["backbone"] = self.backbone
        return model_config(self.preset, self.ablation, **overrides)


@dataclass
class TrainConfig:
    out: str = "runs/train"
    seed: int = 0
    steps: int = 1000
    batch_size: int = 8  # global, over all processes
    lr: float = 1e-4
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    precision: str = "fp32"  # or "bf16"
    workers: int = 2
    log_every: int = 10
    ckpt_every: int = 200
    warmup: int = 0  # steps of linear warm-up before the linear decay
    init: str = ""  # checkpoint folder whose weights start the run (not a resume)
    freeze: list[str] = field(default_factory=list)  # top-level modules kept fixed
    backbone_weights: str = ""  # pre-trained ViT weights (HaMeR / ViTPose file) loaded at the start
    cache: str = ""  # a feature cache (`fourdhands cache`) to train on instead of the crops
    caches: list[DataSource] = field(default_factory=list)  # or several, each with a weight (paths of caches)
    cache_draws: int = 1  # augmentations per sequence when `fourdhands cache` builds it
    model: ModelSection = field(default_factory=ModelSection)
    data: list[DataSource] = field(default_factory=list)
    # fields of data.sample.SampleConfig (gap, augment, jitters); crop size, T, upright and
    # box expansion come from the model
    sample: dict = field(default_factory=lambda: {"augment": True})
    loss: dict = field(default_factory=lambda: asdict(LossWeights()))


def load_config(path: str | os.PathLike, overrides: list[str] | None = None) -> TrainConfig:
    """Read and check a YAML config (plus ``key=value`` overrides)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such config file")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(TrainConfig), OmegaConf.load(path),
                                 OmegaConf.from_dotlist(overrides or []))
        config: TrainConfig = OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        raise UserError(f"{path}: {str(e).splitlines()[0]}") from None
    if config.cache and config.caches:
        raise UserError(f"{path}: give cache or caches, not both")
    if not config.data and not config.cache and not config.caches:
        raise UserError(f"{path}: no data sources (data: [{{path: ...}}])")
    for section, known in (("loss", set(asdict(LossWeights()))),
                           ("sample", {f.name for f in fields(SampleConfig)} - set(MODEL_FIELDS))):
        unknown = set(getattr(config, section)) - known
        if unknown:
            raise UserError(f"{path}: unknown {section} key {sorted(unknown)[0]!r}")
    unknown_kind = next((s.kind for s in config.data if s.kind not in KINDS), None)
    if unknown_kind is not None:
        raise UserError(f"{path}: unknown data kind {unknown_kind!r} (known: {', '.join(KINDS)})")
    if config.precision not in ("fp32", "bf16"):
        raise UserError(f"{path}: precision must be fp32 or bf16, not {config.precision!r}")
    return config


class _Mixture(Dataset):
    """Items addressed by ``(dataset, index, draw)`` keys."""

    def __init__(self, datasets: list[HandWindows]):
        self.datasets = datasets

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)

    def __getitem__(self, key):
        d, i, draw = key
        return self.datasets[d].sample(i, draw)


class _StepBatches(Sampler):
    """This rank's share of each step's global batch, from ``start`` to ``steps``."""

    def __init__(self, sizes, weights, batch_size, seed, start, steps, rank, world):
        self.sizes, self.seed = np.asarray(sizes), seed
        self.p = np.asarray(weights, float) / np.sum(weights)
        self.batch_size, self.start, self.steps, self.rank, self.world = batch_size, start, steps, rank, world

    def __len__(self) -> int:
        return self.steps - self.start

    def __iter__(self):
        for step in range(self.start, self.steps):
            rng = np.random.default_rng((self.seed, step))
            which = rng.choice(len(self.sizes), size=self.batch_size, p=self.p)
            items = (rng.random(self.batch_size) * self.sizes[which]).astype(np.int64)
            keys = [(int(d), int(i), step) for d, i in zip(which, items)]
            yield keys[self.rank::self.world]


def learning_rate_factor(step: int, steps: int, warmup: int) -> float:
    """Multiplier of ``lr`` at ``step``: linear from 0 to 1 over ``warmup`` steps, then
    linear to 0 at ``steps``."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, 1.0 - (step - warmup) / max(1, steps - warmup))


def _freeze(net: FourDHands, modules: list[str]) -> None:
    """Keep the named modules (dotted paths, e.g. ``backbone.encoder.top``) fixed."""
    for name in modules:
        try:
            module = net.get_submodule(name)
        except AttributeError:
            raise UserError(f"freeze: the model has no module {name!r}") from None
        module.requires_grad_(False)


def sample_config(config: TrainConfig, model) -> SampleConfig:
    """How the run's samples are cut: the config's ``sample`` section with the crop size,
    window length, upright rule and box expansion of the model."""
    return model_sample_config(model, **config.sample)


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _datasets(config: TrainConfig, sample: SampleConfig, net: FourDHands, say) -> tuple[list, list[DataSource]]:
    """The run's datasets (a feature cache made for ``net``'s backbone and crops, or the
    ``data`` folders) and their sources; ``net``'s hand model gives the joints that flips
    and rotations move."""
    hand_model = net.config.hand_model
    if config.cache or config.caches:
        from .feature_cache import CachedWindows

        sources = config.caches or [DataSource(path=config.cache)]
        datasets = [CachedWindows(s.path, sample.seq_len, sample.gap) for s in sources]
        for cache in datasets:
            cache.check_made_for(net.config.backbone, sample)
    else:
        datasets = [HandWindows(open_sequences(s.spec, s.skip_missing, s.mano), sample, seed=config.seed,
                                hand_model=hand_model) for s in config.data]
        sources = config.data
        for s, d in zip(sources, datasets):
            if getattr(d.source, "missing_images", 0):
                say(f"data {s.spec}: {d.source.missing_images} frames left out, their images are missing")
            note = _supervision(d.source[0].gt, hand_model) if len(d) else None
            if note:
                say(f"data {s.spec}: {note}")
    empty = next((s.path for s, d in zip(sources, datasets) if len(d) == 0), None)
    if empty is not None:
        raise UserError(f"{empty}: dataset is empty")
    return datasets, sources


def _supervision(gt: dict, hand_model: str) -> str | None:
    """What supervises a real dataset (from its first sequence), for the log; None for
    data whose MANO parameters are ground truth (synthetic)."""
    if bool(gt.get("has_mano", True)):
        return None
    fits = bool(np.any(gt.get("fit_valid", False)))
    if fits and hand_model != "open":
        return f"its MANO fits become {hand_model}'s parameters, so all the losses supervise it where a hand has a fit"
    why = "its MANO fits mean nothing to the open hand model" if fits else "no MANO ground truth read"
    return f"{why}, so only the keypoint terms supervise it (L_3D on the annotated joints, L_2D, L_jrel and v)"


def _network(config: TrainConfig, say) -> FourDHands:
    """The network at the start of the run: built, its backbone's pre-trained weights,
    then ``init``'s weights (``say`` reports the modules that start fresh), then frozen."""
    net = FourDHands(config.model.config())
    if config.backbone_weights:
        from .model.weights import load_backbone_weights

        load_backbone_weights(net.backbone, config.backbone_weights)
    if config.init:
        fresh = initialise_from(net, config.init)
        if fresh:
            shown = ", ".join(fresh[:8]) + (f" and {len(fresh) - 8} more" if len(fresh) > 8 else "")
            say(f"init: {config.init}: these modules start fresh: {shown}")
    _freeze(net, config.freeze)
    return net


def _optimiser(net: FourDHands, config: TrainConfig):
    """AdamW over the trainable parameters and the warm-up + linear-decay schedule."""
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, fused=True)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: learning_rate_factor(s, config.steps, config.warmup))
    return params, optimizer, schedule


def _resume(out: Path, net: FourDHands, optimizer, schedule, saved_config: dict) -> int:
    """Continue from the newest checkpoint in ``out`` (its config must match); the step
    to start from (0 without one)."""
    last = latest_checkpoint(out)
    if last is None:
        return 0
    state = resume_from(net, last, saved_config["train"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"])


class _Steps:
    """One optimisation step at a time: forward, losses, a step skipped when the loss or
    the gradient is not finite (all ranks agree), gradient clipping."""

    def __init__(self, net, model, params, optimizer, schedule, config: TrainConfig, world: int):
        self.net, self.model, self.params = net, model, params
        self.optimizer, self.schedule, self.config, self.world = optimizer, schedule, config, world
        self.weights = LossWeights(**config.loss)
        self.bad_in_a_row = 0

    def __call__(self, step: int, batch: dict) -> tuple[dict, float]:
        """The loss terms and the gradient norm (NaN when the step was skipped)."""
        with torch.autocast("cuda" if torch.cuda.is_available() else "cpu", dtype=torch.bfloat16,
                            enabled=self.config.precision == "bf16"):
            pred = self.model(**network_inputs(batch))
        terms = loss_terms(pred, batch, (self.net.right_model, self.net.left_model), self.weights)
        loss = terms.total
        self.optimizer.zero_grad(set_to_none=True)
        finite = torch.isfinite(loss.detach()).to(torch.int32)
        if self.world > 1:  # every rank must agree, or the skipping one leaves the others waiting
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        grad_norm = torch.tensor(float("nan"))
        if finite:
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip)
            if torch.isfinite(grad_norm):
                self.optimizer.step()
        self.schedule.step()
        self.bad_in_a_row = 0 if torch.isfinite(grad_norm) else self.bad_in_a_row + 1
        if self.bad_in_a_row >= 20:
            raise RuntimeError(f"step {step + 1}: 20 non-finite losses or gradients in a row; stopping")
        return terms, float(grad_norm)


def _save(out: Path, done: int, steps: _Steps, saved_config: dict) -> None:
    state = {"optimizer": steps.optimizer.state_dict(), "schedule": steps.schedule.state_dict(),
             "step": done, "torch_rng": torch.get_rng_state()}
    save_checkpoint(out / f"step-{done:07d}", steps.net, saved_config, state)


def train(config: TrainConfig, progress: bool = True) -> Path:
    """Run (or resume) the training described by ``config``; return the last checkpoint."""
    rank, world = _distributed()
    if config.batch_size % world:
        raise UserError(f"batch_size {config.batch_size} is not divisible by {world} processes")
    out = Path(config.out)
    torch.manual_seed(config.seed)
    saved_config = {"train": OmegaConf.to_container(OmegaConf.structured(config))}
    say = (lambda line: print(line, file=sys.stderr)) if rank == 0 else (lambda line: None)
    net = _network(config, say)
    datasets, sources = _datasets(config, sample_config(config, net.config), net, say)
    params, optimizer, schedule = _optimiser(net, config)
    start = _resume(out, net, optimizer, schedule, saved_config)
    model = torch.nn.parallel.DistributedDataParallel(net) if world > 1 else net
    steps = _Steps(net, model, params, optimizer, schedule, config, world)
    loader = DataLoader(
        _Mixture(datasets),
        batch_sampler=_StepBatches([len(d) for d in datasets], [s.weight for s in sources],
                                   config.batch_size, config.seed, start, config.steps, rank, world),
        num_workers=config.workers, persistent_workers=False)
    bar = None
    if progress and rank == 0:
        from .progress import progress_bar

        bar = progress_bar(total=config.steps, initial=start, unit="step")
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    net.train()
    t0 = time.perf_counter()
    for step, batch in enumerate(loader, start=start):
        terms, grad_norm = steps(step, batch)
        done = step + 1
        if rank == 0:
            if done % config.log_every == 0 or done == config.steps:
                _log(out / "log.csv", done, terms, grad_norm, schedule.get_last_lr()[0], time.perf_counter() - t0)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(terms.total):.3g}")
            if done % config.ckpt_every == 0 or done == config.steps:
                _save(out, done, steps, saved_config)
        if world > 1:
            dist.barrier()
    if bar is not None:
        bar.close()
    return latest_checkpoint(out)


def _log(path: Path, step: int, terms: LossTerms, grad_norm: float, lr: float, seconds: float) -> None:
    """One CSV row: step, seconds, lr, grad_norm, each term and the total."""
    values = {**terms.computed(), "total": terms.total}
    row = {"step": step, "seconds": round(seconds, 2), "lr": lr, "grad_norm": grad_norm,
           **{k: float(values[k].detach()) for k in (*LossTerms.WEIGHT_OF, "total")}}
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
