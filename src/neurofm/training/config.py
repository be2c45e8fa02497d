"""The sections of a ``neurofm fit`` config and their validation.

A fit config is a YAML mapping with the sections ``data``, ``tokenizer``, ``model``,
``objective``, ``optim``, ``trainer`` and ``output``. ``model``, ``objective`` and a tokenizer to
fit name registry entries (``{name: ..., preset: ..., <fields>}``) and are validated by the
entry's config dataclass; the other sections are the dataclasses below. :func:`validate_fit_config`
checks every section, the rules between sections and the hardware settings
(:mod:`neurofm.training.preflight`) and raises one :class:`~neurofm.errors.ConfigError` listing
every problem, each with its key path, before anything is built or trained (R12, R18).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from neurofm.config import build_config, to_dict
from neurofm.errors import ConfigError
from neurofm.registry import MODELS, OBJECTIVES, TOKENIZERS, Registry, unknown_name_message

SECTIONS = ("data", "tokenizer", "model", "objective", "optim", "trainer", "output")
STRATEGIES = (
    "auto",
    "ddp",
    "ddp_spawn",
    "ddp_find_unused_parameters_true",
    "fsdp",
    "single_device",
)
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "bf16-true", "64-true")


@dataclass
class DataConfig:
    """Windows of a prepared store (see ``neurofm.data.windows.WindowDataset``), the samples
    of a next-band ``.npz`` folder (``format: band_npz``, see ``neurofm.tokenizers.band_data``),
    or (MEG segment, text) pairs of a BIDS tree with word events (``format: text_segments``, see
    ``neurofm.training.text_data``), or windows of spike events of a spike-times file cut in
    time blocks (``format: spike_events``, see ``neurofm.data.event_source``)."""

    store: str  # prepared store, folder of .npz samples, BIDS root, or a spike-times file
    format: Literal["store", "band_npz", "text_segments", "spike_events"] = "store"  # how to read
    window_length: int | None = None  # window length in samples (or use event_window)
    stride: int | None = None  # step between window starts (samples); default window_length
    target_length: int = 0  # samples in a forecasting target (0: none)
    horizon: int | None = None  # offset of the target's first sample from the window start
    labels: dict[str, int] | None = None  # event description -> class id (window labels)
    event_window: tuple[float, float] | None = None  # (tmin, tmax) s: event-locked windows
    condition: dict[str, int] | None = None  # event description -> id >= 1 (per-sample condition)
    channels: list[str] | None = None  # channels to read, by name, in this order
    channel_policy: Literal["raise", "drop_extra", "intersect"] = "drop_extra"  # channel matching
    normalize: bool = False  # apply the store's robust scaler (fitted on train)
    preload: bool = False  # read the split into memory first
    train_split: str = "train"  # split trained on
    val_split: str | None = "val"  # split validated on (null: no validation)
    batch_size: int = 32  # windows per batch (per device)
    num_workers: int = 0  # DataLoader worker processes
    shuffle: bool = True  # shuffle training windows (seeded, reproducible)
    drop_last: bool = False  # drop the last incomplete training batch of each epoch
    bands: list[list[float]] | None = None  # [low, high] Hz: x becomes cumulative bands (L, C, T)
    band_taps: int | None = None  # FIR length of the band filters (odd); None: from the bands
    max_train_windows: int | None = None  # train on the first N windows only (None: all)
    max_val_windows: int | None = None  # validate on the first N windows only (None: all)
    layout: Literal["channels", "counts", "spikes"] = "channels"  # x (C, T), (T, units), events
    behaviour: list[str] | None = None  # counts layout: channels moved into target (T, K)
    bin_size: float | None = None  # spike_events: s per bin (window_length and stride in bins)
    reader: dict[str, Any] | None = None  # spike_events: read_recording options (time_unit)
    behaviour_file: str | None = None  # spike_events: signal averaged per bin into target (T, K)
    time_splits: dict[str, float] | None = None  # spike_events: split -> fraction, in time order
    segment_mode: Literal["words", "sentences"] = (
        "words"  # text_segments: word windows or sentences
    )
    words_per_segment: int = 8  # text_segments: words per window (mode words)
    window_seconds: float | None = None  # text_segments: fixed segment length (s)
    split_by: Literal["subject", "story", "passage", "subject_story", "subject_passage"] = "subject"
    val_groups: float = 1  # text_segments: held-out groups for val (count, or fraction < 1)
    test_groups: float = 1  # text_segments: held-out groups for test (count, or fraction < 1)
    split_seed: int = 0  # text_segments: which groups are held out
    PRESETS: ClassVar[dict[str, dict]] = {}

    def __post_init__(self) -> None:
        if self.format == "text_segments":
            if self.window_seconds is None or not self.window_seconds > 0:
                raise ValueError(
                    "format text_segments: give window_seconds > 0 (segments of one length stack)"
                )
            if self.words_per_segment < 1:
                raise ValueError(f"words_per_segment must be >= 1, got {self.words_per_segment}")
            for name in ("val_groups", "test_groups"):
                value = getattr(self, name)
                if value < 0 or (value >= 1 and value != int(value)):
                    raise ValueError(f"{name}: a count or a fraction in [0, 1), got {value}")
                if value >= 1:
                    setattr(self, name, int(value))
            return
        if self.layout == "spikes" and self.format != "spike_events":
            raise ValueError(
                "layout spikes goes with format spike_events (a spike-times file), and only it"
            )
        if self.format == "spike_events" and self.layout == "channels":
            raise ValueError(
                "format spike_events gives layout spikes (events) or counts (the binned events)"
            )
        if self.format == "spike_events":
            self._check_events()
        elif any(
            getattr(self, k) is not None
            for k in ("bin_size", "reader", "behaviour_file", "time_splits")
        ):
            raise ValueError(
                "bin_size, reader, behaviour_file, time_splits: options of format spike_events"
            )
        if self.format == "store" and self.window_length is None and self.event_window is None:
            raise ValueError("give window_length (samples) or event_window (tmin, tmax)")
        if self.format == "band_npz" and self.bands is not None:
            raise ValueError("format band_npz: the .npz samples hold their bands; remove bands")
        if self.bands is not None and any(len(b) != 2 for b in self.bands):
            raise ValueError(f"bands: each band is [low, high] Hz, got {self.bands}")
        if self.band_taps is not None and (self.band_taps < 1 or self.band_taps % 2 == 0):
            raise ValueError(f"band_taps must be a positive odd number, got {self.band_taps}")
        for name in ("max_train_windows", "max_val_windows"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 or null, got {getattr(self, name)}")
        if self.window_length is not None and self.window_length < 2:
            raise ValueError(f"window_length must be >= 2 samples, got {self.window_length}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.behaviour and self.layout != "counts":
            raise ValueError("behaviour: behaviour channels are targets of layout: counts only")
        if self.layout == "counts" and (
            self.bands is not None or self.format not in ("store", "spike_events")
        ):
            raise ValueError(
                "layout counts reads windows of a prepared store or spike events; remove bands"
            )
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")

    def _check_events(self) -> None:
        """The options of ``format: spike_events`` (windows and blocks in bins)."""
        if self.bin_size is None or not self.bin_size > 0:
            raise ValueError(f"bin_size: format spike_events needs bins > 0 s, got {self.bin_size}")
        if self.window_length is None:
            raise ValueError("window_length: format spike_events needs windows (bins)")
        if self.behaviour or self.bands is not None or self.event_window is not None:
            raise ValueError(
                "format spike_events: behaviour comes from behaviour_file; remove behaviour, "
                "bands, event_window"
            )
        splits = self.time_splits or {}
        if not splits or any(not (0 < f < 1) for f in splits.values()):
            raise ValueError(
                f"time_splits: give each split's fraction of the recording in (0, 1), in time "
                f"order (e.g. {{train: 0.7, val: 0.1, test: 0.2}}), got {self.time_splits}"
            )
        if sum(splits.values()) > 1 + 1e-9:
            raise ValueError(f"time_splits: fractions sum to {sum(splits.values())} > 1")
        if self.train_split not in splits:
            raise ValueError(f"time_splits: no block for train_split {self.train_split!r}")
        if self.val_split is not None and self.val_split not in splits:
            raise ValueError(
                f"time_splits: no block for val_split {self.val_split!r} (or set val_split: null)"
            )


@dataclass
class OptimConfig:
    """AdamW with linear warm-up and cosine decay (per optimizer step)."""

    lr: float = 3e-4  # peak learning rate
    weight_decay: float = 0.01  # decoupled weight decay (matrices only; not biases, norms)
    betas: tuple[float, float] = (0.9, 0.95)  # Adam betas
    eps: float = 1e-8  # Adam epsilon
    warmup_steps: int = 0  # linear warm-up steps from 0 to lr
    schedule: Literal["cosine", "constant"] = "cosine"  # decay after warm-up
    min_lr_ratio: float = 0.1  # final lr / peak lr of the cosine decay
    PRESETS: ClassVar[dict[str, dict]] = {}

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.weight_decay < 0 or self.warmup_steps < 0:
            raise ValueError("weight_decay and warmup_steps must be >= 0")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")


@dataclass
class EarlyStoppingConfig:
    """Stop when a validation metric stops improving."""

    monitor: str = "val/loss"  # logged metric to watch
    patience: int = 3  # validation checks without improvement before stopping
    mode: Literal["min", "max"] = "min"  # whether lower or higher is better
    min_delta: float = 0.0  # smallest change that counts as an improvement


@dataclass
class TrainerConfig:
    """What the Lightning Trainer is given (Lightning owns devices, precision, strategies)."""

    max_steps: int = -1  # optimizer steps (-1: bounded by max_epochs)
    max_epochs: int | None = None  # epochs (None with max_steps=-1 means 1 epoch)
    precision: Literal["32-true", "bf16-mixed", "16-mixed", "bf16-true", "64-true"] = "32-true"
    accelerator: str = "auto"  # "cpu", "gpu", "auto", ...
    devices: int | str = "auto"  # number of devices or "auto"
    num_nodes: int = 1  # machines
    strategy: Literal[
        "auto", "ddp", "ddp_spawn", "ddp_find_unused_parameters_true", "fsdp", "single_device"
    ] = "auto"  # distribution strategy
    accumulate_grad_batches: int = 1  # batches per optimizer step
    gradient_clip_val: float | None = None  # clip the gradient norm to this value
    val_check_interval: int | float | None = (
        None  # training batches between validations (int, counted across epochs) or epoch fraction
    )
    limit_val_batches: int | float | None = None  # validation batches (int) or fraction per check
    log_every_n_steps: int = 50  # train metrics logging interval (steps)
    early_stopping: EarlyStoppingConfig | None = None  # stop on a plateau of a val metric
    seed: int = 0  # seed of model init, shuffling, dropout
    deterministic: bool = False  # ask torch for deterministic kernels
    enable_progress_bar: bool = True  # show Lightning's progress bar
    PRESETS: ClassVar[dict[str, dict]] = {}

    def __post_init__(self) -> None:
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"max_steps must be -1 or >= 1, got {self.max_steps}")
        if self.max_epochs is not None and self.max_epochs < 1:
            raise ValueError(f"max_epochs must be >= 1, got {self.max_epochs}")
        if self.accumulate_grad_batches < 1 or self.log_every_n_steps < 1:
            raise ValueError("accumulate_grad_batches and log_every_n_steps must be >= 1")
        if self.gradient_clip_val is not None and not self.gradient_clip_val > 0:
            raise ValueError(f"gradient_clip_val must be > 0, got {self.gradient_clip_val}")


@dataclass
class OutputConfig:
    """Where the run folder goes and how often it is checkpointed."""

    dir: str  # the run folder (config.yaml, model/, tokenizer/, checkpoints/, metrics.csv)
    checkpoint_every_n_steps: int = 100  # optimizer steps between checkpoints
    keep_checkpoints: int = 2  # newest complete checkpoints kept
    tensorboard: bool = False  # also write TensorBoard logs under <dir>/tensorboard
    PRESETS: ClassVar[dict[str, dict]] = {}

    def __post_init__(self) -> None:
        if self.checkpoint_every_n_steps < 1 or self.keep_checkpoints < 1:
            raise ValueError("checkpoint_every_n_steps and keep_checkpoints must be >= 1")


@dataclass
class FitConfig:
    """A validated fit config: dataclass sections plus the registry-entry sections as dicts."""

    data: DataConfig
    model: dict[str, Any]
    objective: dict[str, Any]
    optim: OptimConfig
    trainer: TrainerConfig
    output: OutputConfig
    tokenizer: dict[str, Any] | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The resolved config (all sections) as plain YAML-safe data."""
        return {
            "data": to_dict(self.data),
            "tokenizer": self.tokenizer,
            "model": self.model,
            "objective": self.objective,
            "optim": to_dict(self.optim),
            "trainer": to_dict(self.trainer),
            "output": to_dict(self.output),
        }


def _entry_section(registry: Registry, raw: Any, key: str, problems: list[str]) -> dict[str, Any]:
    """Validate a ``{name, preset, <fields>}`` section; return it resolved (preset expanded)."""
    if not isinstance(raw, dict):
        problems.append(f"{key}: expected a mapping with 'name', got {raw!r}")
        return {}
    spec = dict(raw)
    name = spec.pop("name", None)
    if name is None:
        problems.append(
            f"{key}.name: required key is missing; allowed: {', '.join(registry.names())}"
        )
        return {}
    if name not in registry:
        problems.append(unknown_name_message(registry.kind, name, registry.names(), f"{key}.name"))
        return {}
    entry = registry.get(name)
    if entry.config_cls is None:
        if spec:
            problems.append(f"{key}: {registry.kind} {name!r} takes no options, got {sorted(spec)}")
        return {"name": name}
    try:  # an alias's values first (e.g. neurofm_x_spikes: modality spikes), as create does
        cfg = build_config(entry.config_cls, {**entry.defaults, **spec}, prefix=key)
    except ConfigError as err:
        problems.extend(err.problems)
        return {}
    return {"name": name, **to_dict(cfg)}


def _tokenizer_section(raw: Any, problems: list[str]) -> dict[str, Any] | None:
    if raw is None:
        return None
    if isinstance(raw, dict) and "dir" in raw:
        extra = sorted(set(raw) - {"dir"})
        if extra:
            problems.append(
                f"tokenizer: a saved tokenizer is given by 'dir' alone; unexpected keys {extra}"
            )
        elif not (Path(str(raw["dir"])) / "tokenizer.json").is_file():
            problems.append(
                f"tokenizer.dir: {raw['dir']!r} holds no saved tokenizer (tokenizer.json)"
            )
        return {"dir": str(raw["dir"])}
    return _entry_section(TOKENIZERS, raw, "tokenizer", problems)


def validate_fit_config(
    raw: dict[str, Any], *, source: str | None = None, hardware: bool = True
) -> FitConfig:
    """Check every section of a fit config; raise one ConfigError listing every problem.

    Parameters
    ----------
    raw : dict
        The config mapping (YAML plus command-line overrides).
    source : str, optional
        The config file, named in the error.
    hardware : bool
        Also check the trainer's accelerator, devices and precision against this machine
        (False checks the file alone, e.g. a GPU config on a CPU machine).
    """
    problems: list[str] = []
    unknown = sorted(set(raw) - set(SECTIONS))
    for key in unknown:
        problems.append(unknown_name_message("section", key, list(SECTIONS), key))
    for key in ("data", "model", "objective", "output"):
        if raw.get(key) is None:
            problems.append(f"{key}: required section is missing")
    built: dict[str, Any] = {}
    for key, cls in (
        ("data", DataConfig),
        ("optim", OptimConfig),
        ("trainer", TrainerConfig),
        ("output", OutputConfig),
    ):
        section = raw.get(key)
        if section is None and key in ("data", "output"):
            continue
        if section is not None and not isinstance(section, dict):
            problems.append(f"{key}: expected a mapping, got {section!r}")
            continue
        try:
            built[key] = build_config(cls, section or {}, prefix=key)
        except ConfigError as err:
            problems.extend(err.problems)
    model = _entry_section(MODELS, raw["model"], "model", problems) if raw.get("model") else {}
    objective = (
        _entry_section(OBJECTIVES, raw["objective"], "objective", problems)
        if raw.get("objective")
        else {}
    )
    tokenizer = _tokenizer_section(raw.get("tokenizer"), problems)
    from neurofm.training.preflight import cross_section_problems, hardware_problems

    if "trainer" in built:
        problems.extend(hardware_problems(built["trainer"], machine=hardware))
    problems.extend(cross_section_problems(built.get("data"), model, objective, tokenizer))
    if problems:
        raise ConfigError(problems, source=source)
    return FitConfig(
        data=built["data"],
        model=model,
        objective=objective,
        optim=built["optim"],
        trainer=built["trainer"],
        output=built["output"],
        tokenizer=tokenizer,
        source=source,
    )
