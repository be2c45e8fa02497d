"""Range and option checks shared by every config's ``__post_init__``.

Each function checks named fields of a config object and raises one ``ValueError`` that lists
every field breaking the rule, each with its value (``build_config`` turns it into a
``ConfigError`` naming the section's key path)::

    def __post_init__(self) -> None:
        positive(self, "vocab_size", "d_model", "n_layers", "n_heads")
        non_negative(self, "n_subjects", "n_conditions")
        fraction(self, "dropout")
        divides(self, "n_heads", "d_model")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _check(cfg: Any, names: tuple[str, ...], ok: Callable[[Any], bool], rule: str) -> None:
    bad = [
        f"{name} must be {rule}, got {getattr(cfg, name)!r}"
        for name in names
        if not ok(getattr(cfg, name))
    ]
    if bad:
        raise ValueError("; ".join(bad))


def positive(cfg: Any, *names: str) -> None:
    """Every field in ``names`` is > 0."""
    _check(cfg, names, lambda v: v > 0, "positive")


def non_negative(cfg: Any, *names: str, note: str = "0 disables it") -> None:
    """Every field in ``names`` is >= 0 (``note`` says what 0 means)."""
    _check(cfg, names, lambda v: v >= 0, f">= 0 ({note})" if note else ">= 0")


def at_least(cfg: Any, minimum: float, *names: str) -> None:
    """Every field in ``names`` is >= ``minimum``."""
    _check(cfg, names, lambda v: v >= minimum, f">= {minimum}")


def fraction(cfg: Any, *names: str) -> None:
    """Every field in ``names`` lies in [0, 1) (dropout rates, probabilities of dropping)."""
    _check(cfg, names, lambda v: 0.0 <= v < 1.0, "in [0, 1)")


def probability(cfg: Any, *names: str) -> None:
    """Every field in ``names`` lies in (0, 1] or is None (nucleus masses, quantiles)."""
    _check(cfg, names, lambda v: v is None or 0.0 < v <= 1.0, "in (0, 1] or null")


def optional_positive(cfg: Any, *names: str) -> None:
    """Every field in ``names`` is None or > 0."""
    _check(cfg, names, lambda v: v is None or v > 0, "positive or null")


def divides(cfg: Any, divisor: str, total: str) -> None:
    """Field ``divisor`` divides field ``total`` (e.g. ``n_heads`` divides ``d_model``)."""
    d, t = getattr(cfg, divisor), getattr(cfg, total)
    if d > 0 and t % d:
        raise ValueError(f"{divisor}={d} must divide {total}={t}")


def even_head_size(cfg: Any) -> None:
    """``d_model / n_heads`` is even (rotary position embeddings rotate pairs)."""
    size = cfg.d_model // cfg.n_heads
    if size % 2:
        raise ValueError(f"head size d_model/n_heads={size} must be even (RoPE)")


def needs(cfg: Any, option: str, required: str, why: str) -> None:
    """Raise when field ``option`` is set (truthy) while field ``required`` is not."""
    if getattr(cfg, option) and not getattr(cfg, required):
        raise ValueError(f"{option}={getattr(cfg, option)!r} needs {required}=True ({why})")
