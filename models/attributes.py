"""Attribute vectors: the direction in z from one group of images to another
(White 2016, "Sampling Generative Networks", §2.3; Liu, Jun, Li & Heer 2019, "Latent
Space Cartography", §4), applied to an image as z + t·a and used as a 1-D axis.

Groups are boolean masks over an encoded split; :func:`parse_condition` builds one
from text such as ``pos_x < 0.3``, ``label == 7`` or ``scale >= 0.8 and shape == 1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*([-+0-9.eE]+)\s*$")
_OPS = {
    "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.isclose,
    "!=": lambda a, b: ~np.isclose(a, b),
}


def parse_condition(text: str, columns: dict[str, np.ndarray]) -> np.ndarray:
    """A boolean mask ``(N,)`` from a condition on named per-point columns.

    The grammar: ``NAME OP NUMBER`` joined by ``and``, with OP one of ``< <= > >= == !=``
    and NAME a key of ``columns`` (``label``, a factor such as ``pos_x``, ``kl``,
    ``neg_elbo``, ``z3``). ``==`` compares with a tolerance (``np.isclose``).

    Raises:
        ValueError: on a malformed condition or an unknown name (the message lists the known ones).
    """
    parts = [p for p in re.split(r"\band\b", text.strip()) if p.strip()]
    if not parts:
        raise ValueError("Write a condition such as 'label == 3' or 'pos_x < 0.3'.")
    n = len(next(iter(columns.values())))
    mask = np.ones(n, dtype=bool)
    for part in parts:
        m = _CONDITION.match(part)
        if m is None:
            raise ValueError(f"'{part.strip()}' is not NAME OP NUMBER (OP one of < <= > >= == !=), e.g. 'pos_x < 0.3'.")
        name, op, number = m.groups()
        if name not in columns:
            known = ", ".join(k for k in columns if not re.fullmatch(r"z\d+", k))
            raise ValueError(f"No column '{name}': use {known} or z0, z1, ….")
        try:
            value = float(number)
        except ValueError:
            raise ValueError(f"'{number}' is not a number.") from None
        mask &= _OPS[op](np.asarray(columns[name], dtype=np.float64), value)
    return mask


@dataclass
class AttributeVector:
    """A named direction in z.

    Attributes:
        name: shown in the list and used in exports.
        vector: ``(D,)`` float32, a = mean(mu | B) − mean(mu | A).
        group_a, group_b: how the groups were chosen (a condition or "selection of N points").
        n_a, n_b: the groups' sizes.
    """

    name: str
    vector: np.ndarray
    group_a: str
    group_b: str
    n_a: int
    n_b: int

    def to_json(self) -> dict:
        """A JSON-ready dict (the vector as a list of floats)."""
        return {"name": self.name, "vector": [float(v) for v in self.vector], "group_a": self.group_a,
                "group_b": self.group_b, "n_a": self.n_a, "n_b": self.n_b}

    @classmethod
    def from_json(cls, data: dict) -> AttributeVector:
        """The inverse of :meth:`to_json`; raises ValueError on a malformed entry."""
        try:
            vec = np.asarray(data["vector"], dtype=np.float32)
            if vec.ndim != 1 or not np.isfinite(vec).all():
                raise ValueError("the vector must be a finite list of numbers")
            return cls(str(data["name"]), vec, str(data.get("group_a", "")), str(data.get("group_b", "")),
                       int(data.get("n_a", 0)), int(data.get("n_b", 0)))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an attribute vector: {exc}") from None


def attribute_vector(mu: np.ndarray, in_a: np.ndarray, in_b: np.ndarray) -> np.ndarray:
    """a = mean(mu | B) − mean(mu | A), ``(D,)`` float32, from posterior means ``(N, D)``
    and two boolean masks ``(N,)`` (White 2016, §2.3).

    Raises:
        ValueError: when a group is empty or the masks do not match ``mu``.
    """
    mu = np.asarray(mu, dtype=np.float64)
    in_a, in_b = np.asarray(in_a, dtype=bool), np.asarray(in_b, dtype=bool)
    if in_a.shape != (len(mu),) or in_b.shape != (len(mu),):
        raise ValueError(f"the groups must be masks of shape ({len(mu)},)")
    if not in_a.any() or not in_b.any():
        raise ValueError(f"both groups need points: A has {int(in_a.sum())}, B has {int(in_b.sum())}")
    return (mu[in_b].mean(axis=0) - mu[in_a].mean(axis=0)).astype(np.float32)


def apply_attribute(z: torch.Tensor, vector: np.ndarray, ts) -> torch.Tensor:
    """Latents z + t·a for each t: ``(len(ts), D)`` from ``z`` ``(D,)``."""
    a = torch.as_tensor(np.asarray(vector, dtype=np.float32))
    t = torch.as_tensor(np.asarray(ts, dtype=np.float32))[:, None]
    return z.float()[None] + t * a[None]


def project_on(mu: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Each point's coordinate along a: (mu − mean(mu)) · a / ‖a‖, ``(N,)``.

    Raises:
        ValueError: for a zero vector.
    """
    a = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(a))
    if norm == 0:
        raise ValueError("the attribute vector is zero: the two groups have the same mean")
    mu = np.asarray(mu, dtype=np.float64)
    return ((mu - mu.mean(axis=0)) @ (a / norm)).astype(np.float32)


def separation(along: np.ndarray, in_a: np.ndarray, in_b: np.ndarray) -> float:
    """How well the axis separates the groups: the ROC AUC of "B scores higher than A"
    (scikit-learn's ``roc_auc_score``; 0.5 is chance, 1.0 a perfect split)."""
    from sklearn.metrics import roc_auc_score

    in_a, in_b = np.asarray(in_a, dtype=bool), np.asarray(in_b, dtype=bool)
    both = in_a | in_b
    truth = in_b[both] & ~in_a[both]
    if truth.all() or not truth.any():
        return float("nan")
    return float(roc_auc_score(truth, along[both]))
