"""Disentanglement metrics on plain arrays: a representation ``codes`` ``(N, D)``
(posterior means ``mu``, or any other) against ground-truth factors ``(N, K)`` given as
integer class indices.

Definitions and defaults follow disentanglement_lib (Locatello et al. 2019,
``evaluation/metrics/{mig,dci,sap_score}.py`` with the ``unsupervised_study_v1``
settings): every choice that changes a score (bins, means rather than samples, which
factors count, the classifier) is stated on each function, since implementations that
differ in them report values up to 10× apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

#: disentanglement_lib's defaults: points for training and testing the classifiers
NUM_TRAIN, NUM_TEST = 10_000, 5_000
NUM_BINS = 20


class MetricsStopped(Exception):
    """Raised between factors when ``stopped()`` turned True."""


def check_arrays(codes: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``codes`` as float64 ``(N, D)`` and ``factors`` as int64 ``(N, K)``.

    Raises:
        ValueError: wrong ranks, different N, fewer than 2 points, non-finite codes, or
            factors that are not integer class indices ≥ 0.
    """
    codes = np.asarray(codes)
    factors = np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2:
        raise ValueError(f"codes must be (N, D) and factors (N, K), got {codes.shape} and {factors.shape}")
    if len(codes) != len(factors) or len(codes) < 2:
        raise ValueError(f"codes and factors need the same number N ≥ 2 of rows, got {len(codes)} and {len(factors)}")
    if not np.issubdtype(codes.dtype, np.number) or not np.isfinite(codes).all():
        raise ValueError("codes must be finite numbers")
    if not np.issubdtype(factors.dtype, np.integer):
        if not np.issubdtype(factors.dtype, np.number) or not np.all(np.mod(factors, 1) == 0):
            raise ValueError("factors must be integer class indices (N, K); discretise continuous factors first")
    if (factors < 0).any():
        raise ValueError("factors must be class indices ≥ 0")
    return codes.astype(np.float64), factors.astype(np.int64)


def discretize(codes: np.ndarray, bins: int = NUM_BINS) -> np.ndarray:
    """Each column binned into ``bins`` equal-width bins over its own range (disentanglement_lib's
    ``histogram_discretize``): ``(N, D)`` int64 bin indices."""
    out = np.zeros(codes.shape, dtype=np.int64)
    for j in range(codes.shape[1]):
        edges = np.histogram(codes[:, j], bins)[1]
        out[:, j] = np.digitize(codes[:, j], edges[:-1])
    return out


def _entropy(labels: np.ndarray) -> float:
    """Entropy in nats of a discrete variable's empirical distribution."""
    _, counts = np.unique(labels, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def mutual_information_matrix(codes: np.ndarray, factors: np.ndarray, bins: int = NUM_BINS) -> np.ndarray:
    """``(D, K)`` mutual information in nats between each discretised code (``bins`` bins) and each factor
    (scikit-learn's ``mutual_info_score`` on the contingency table)."""
    from sklearn.metrics import mutual_info_score

    codes, factors = check_arrays(codes, factors)
    disc = discretize(codes, bins)
    return np.array([[mutual_info_score(factors[:, k], disc[:, j]) for k in range(factors.shape[1])]
                     for j in range(disc.shape[1])])


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = NUM_BINS) -> tuple[float, np.ndarray]:
    """Mutual Information Gap (Chen et al. 2018, Eq. 6; disentanglement_lib ``mig.py``).

    Each code is discretised into ``bins`` (20) equal-width bins; for each factor the gap between
    the two largest I(z_j; v_k), divided by H(v_k), averaged over the factors that vary
    (a constant factor, H = 0, is left out). In [0, 1]; needs D ≥ 2. Equal-width bins merge
    values closer than a bin (a code z = v³ of a factor v ∈ {0..4} puts 0 and 1 in one bin and
    scores 0.94, not 1).

    Returns:
        ``(score, mi)`` with ``mi`` the ``(D, K)`` mutual-information matrix in nats.

    Raises:
        ValueError: see :func:`check_arrays`, or D < 2.
    """
    codes, factors = check_arrays(codes, factors)
    if codes.shape[1] < 2:
        raise ValueError("MIG needs at least 2 code dimensions")
    mi = mutual_information_matrix(codes, factors, bins)
    h = np.array([_entropy(factors[:, k]) for k in range(factors.shape[1])])
    top = np.sort(mi, axis=0)[::-1]
    varying = h > 0
    if not varying.any():
        raise ValueError("every factor is constant: MIG is undefined")
    return float(np.mean((top[0, varying] - top[1, varying]) / h[varying])), mi


def _split(n: int, num_train: int, num_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint train and test indices (at most a 2:1 split when N is smaller than asked)."""
    order = np.random.default_rng(seed).permutation(n)
    if num_train + num_test > n:
        num_train = max(1, (2 * n) // 3)
        num_test = n - num_train
    return order[:num_train], order[num_train:num_train + num_test]


def sap(codes: np.ndarray, factors: np.ndarray, num_train: int = NUM_TRAIN, num_test: int = NUM_TEST,
        seed: int = 0, stopped: Callable[[], bool] | None = None,
        split: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[float, np.ndarray]:
    """Separated Attribute Predictability (Kumar et al. 2018, Sec. 3; disentanglement_lib
    ``sap_score.py``, discrete factors).

    For each code j and factor k a linear SVM on z_j alone (``LinearSVC(C=0.01,
    class_weight="balanced")``) predicts v_k; its test accuracy is the score. SAP is the mean
    over factors of the gap between the two best codes. In [0, 1], but its ceiling is below 1:
    the second-best code still scores chance (a two-class factor: at most 0.5). ``split``:
    explicit ``(train, test)`` indices instead of a seeded draw of ``num_train`` / ``num_test``.

    Returns:
        ``(score, matrix)`` with the ``(D, K)`` accuracy matrix.

    Raises:
        ValueError: see :func:`check_arrays`, or D < 2. :class:`MetricsStopped` on ``stopped()``.
    """
    from sklearn.svm import LinearSVC

    codes, factors = check_arrays(codes, factors)
    if codes.shape[1] < 2:
        raise ValueError("SAP needs at least 2 code dimensions")
    train, test = split if split is not None else _split(len(codes), num_train, num_test, seed)
    d, k = codes.shape[1], factors.shape[1]
    matrix = np.zeros((d, k))
    for f in range(k):
        if stopped is not None and stopped():
            raise MetricsStopped
        y_train, y_test = factors[train, f], factors[test, f]
        if len(np.unique(y_train)) < 2:
            continue  # a constant factor: no code can predict more than chance
        for j in range(d):
            clf = LinearSVC(C=0.01, class_weight="balanced")
            clf.fit(codes[train, j : j + 1], y_train)
            matrix[j, f] = float(np.mean(clf.predict(codes[test, j : j + 1]) == y_test))
    top = np.sort(matrix, axis=0)[::-1]
    return float(np.mean(top[0] - top[1])), matrix


@dataclass
class DCI:
    """Disentanglement, completeness and informativeness (Eastwood & Williams 2018).

    Attributes:
        disentanglement, completeness: in [0, 1].
        informativeness: mean test accuracy of the per-factor classifiers (disentanglement_lib's
            "informativeness_test"; the paper uses a prediction error, 1 − this).
        informativeness_train: the same on the training points.
        importance: ``(D, K)`` feature importances (each factor's column sums to 1).
    """

    disentanglement: float
    completeness: float
    informativeness: float
    informativeness_train: float
    importance: np.ndarray = field(repr=False)


def dci(codes: np.ndarray, factors: np.ndarray, num_train: int = NUM_TRAIN, num_test: int = NUM_TEST,
        seed: int = 0, progress: Callable[[float, str], None] | None = None,
        stopped: Callable[[], bool] | None = None, split: tuple[np.ndarray, np.ndarray] | None = None) -> DCI:
    """DCI (Eastwood & Williams 2018; disentanglement_lib ``dci.py``).

    One scikit-learn ``GradientBoostingClassifier`` (default settings, ``random_state=seed``) per
    factor predicts it from all codes; its ``feature_importances_`` fill column k of the
    importance matrix R ``(D, K)``. Disentanglement: Σ_j ρ_j (1 − H_K(P_j·)) with P_j· the row
    of R normalised, H_K the entropy in base K, ρ_j the row's share of R. Completeness:
    Σ_k ρ_k (1 − H_D(P_·k)). Informativeness: the mean test accuracy. ``split``: explicit
    ``(train, test)`` indices instead of a seeded draw. ``stopped`` is checked after every
    boosting stage (scikit-learn's ``monitor``), so a stop ends a fit within one stage.

    Raises:
        ValueError: see :func:`check_arrays`. :class:`MetricsStopped` on ``stopped()``.
    """
    from sklearn.ensemble import GradientBoostingClassifier

    codes, factors = check_arrays(codes, factors)
    train, test = split if split is not None else _split(len(codes), num_train, num_test, seed)
    d, k = codes.shape[1], factors.shape[1]
    importance = np.zeros((d, k))
    acc_train, acc_test = [], []
    for f in range(k):
        if stopped is not None and stopped():
            raise MetricsStopped
        y = factors[:, f]
        if len(np.unique(y[train])) < 2:  # a constant factor: predicted perfectly, by no code
            acc_train.append(1.0)
            acc_test.append(1.0)
            continue
        model = GradientBoostingClassifier(random_state=seed)
        stages = model.n_estimators

        def monitor(i, _est, _locals, f=f):  # after each boosting stage: progress, and a stop ends the fit
            if progress is not None:
                progress((f + (i + 1) / stages) / k, f"DCI: factor {f + 1} of {k}, stage {i + 1} of {stages}")
            return bool(stopped is not None and stopped())

        model.fit(codes[train], y[train], monitor=monitor)
        if stopped is not None and stopped():
            raise MetricsStopped
        importance[:, f] = np.abs(model.feature_importances_)
        acc_train.append(float(np.mean(model.predict(codes[train]) == y[train])))
        acc_test.append(float(np.mean(model.predict(codes[test]) == y[test])))
        if progress is not None:
            progress((f + 1) / k, f"DCI: factor {f + 1} of {k}")
    return DCI(_disentanglement(importance), _completeness(importance), float(np.mean(acc_test)),
               float(np.mean(acc_train)), importance)


def _one_minus_entropy(p: np.ndarray, base: int) -> np.ndarray:
    """1 − H(p) in base ``base`` for each row of ``p`` (rows need not be normalised)."""
    total = p.sum(axis=1, keepdims=True)
    q = np.divide(p, total, out=np.zeros_like(p), where=total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(q > 0, q * np.log(q), 0.0).sum(axis=1) / np.log(base)
    return 1.0 - h


def _disentanglement(r: np.ndarray) -> float:
    if r.shape[1] < 2 or r.sum() == 0:
        return 0.0
    rho = r.sum(axis=1) / r.sum()
    return float((rho * _one_minus_entropy(r, r.shape[1])).sum())


def _completeness(r: np.ndarray) -> float:
    if r.shape[0] < 2 or r.sum() == 0:
        return 0.0
    rho = r.sum(axis=0) / r.sum()
    return float((rho * _one_minus_entropy(r.T, r.shape[0])).sum())


def as_class_indices(values: np.ndarray) -> np.ndarray:
    """Factor values ``(N, K)`` (e.g. positions in [0, 1]) as class indices, one class per distinct
    value of each column (the generated datasets take a finite set of values per factor)."""
    values = np.asarray(values)
    return np.stack([np.unique(values[:, k], return_inverse=True)[1] for k in range(values.shape[1])], axis=1)


def all_scores(codes: np.ndarray, factors: np.ndarray, num_train: int = NUM_TRAIN, num_test: int = NUM_TEST,
               seed: int = 0, progress: Callable[[float, str], None] | None = None,
               stopped: Callable[[], bool] | None = None) -> dict:
    """MIG, DCI and SAP of one representation, under the keys ``mig``, ``dci_disentanglement``,
    ``dci_completeness``, ``dci_informativeness``, ``sap`` (and the matrices ``mi`` (D, K) nats,
    ``dci_importance`` (D, K), ``sap_matrix`` (D, K) as lists).

    Raises:
        ValueError: see :func:`check_arrays`; :class:`MetricsStopped` on ``stopped()``.
    """
    def part(lo: float, width: float):
        return None if progress is None else (lambda f, text: progress(lo + width * f, text))

    if progress is not None:
        progress(0.0, "MIG")
    score_mig, mi = mig(codes, factors)
    d = dci(codes, factors, num_train, num_test, seed, part(0.1, 0.8), stopped)
    if progress is not None:
        progress(0.9, "SAP")
    score_sap, sap_matrix = sap(codes, factors, num_train, num_test, seed, stopped)
    if progress is not None:
        progress(1.0, "done")
    return {"mig": score_mig, "dci_disentanglement": d.disentanglement, "dci_completeness": d.completeness,
            "dci_informativeness": d.informativeness, "sap": score_sap, "mi": mi.tolist(),
            "dci_importance": d.importance.tolist(), "sap_matrix": sap_matrix.tolist()}


# -- scores that need images rendered from chosen factors ------------------------------------------
#: ``encode(factors (B, K) int) -> codes (B, D)``: render the images of those factor values and
#: return their posterior means (for the Shapes renderer, see :func:`shapes_encoder`)
Encode = Callable[[np.ndarray], np.ndarray]


def _random_factors(rng: np.random.Generator, sizes: tuple[int, ...], n: int) -> np.ndarray:
    return np.stack([rng.integers(0, s, n) for s in sizes], axis=1)


def factor_vae_score(encode: Encode, sizes: tuple[int, ...], batch_size: int = 64, num_train: int = 10_000,
                     num_eval: int = 5_000, num_variance_estimate: int = 10_000, prune_threshold: float = 0.05,
                     seed: int = 0, progress: Callable[[float, str], None] | None = None,
                     stopped: Callable[[], bool] | None = None) -> dict:
    """FactorVAE score (Kim & Mnih 2018, Sec. 4; disentanglement_lib ``factor_vae.py``).

    Codes are divided by their standard deviation over ``num_variance_estimate`` random images;
    dimensions whose variance is below ``prune_threshold`` (0.05, disentanglement_lib's value; the
    paper prunes collapsed dimensions without a number) are left out. Each vote fixes one factor
    (chosen uniformly) at a random value in a batch of ``batch_size`` images, and takes the
    dimension of least normalised variance; a majority-vote classifier (each dimension → its most
    frequent factor) is fitted on ``num_train`` votes and scored on ``num_eval`` others.

    Returns:
        ``{"train_accuracy", "eval_accuracy", "active_dims"}``; both accuracies 0 with no active dims.

    Raises:
        :class:`MetricsStopped` on ``stopped()``.
    """
    rng = np.random.default_rng(seed)
    codes = np.asarray(encode(_random_factors(rng, sizes, num_variance_estimate)), dtype=np.float64)
    variances = codes.var(axis=0, ddof=1)
    active = variances > prune_threshold
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "active_dims": 0}
    scale = np.sqrt(variances)
    k, d = len(sizes), codes.shape[1]

    def votes(n: int, offset: float) -> np.ndarray:
        counts = np.zeros((d, k), dtype=np.int64)
        for i in range(n):
            if stopped is not None and stopped():
                raise MetricsStopped
            f = int(rng.integers(k))
            batch = _random_factors(rng, sizes, batch_size)
            batch[:, f] = batch[0, f]
            z = np.asarray(encode(batch), dtype=np.float64) / scale
            v = z.var(axis=0, ddof=1)
            v[~active] = np.inf
            counts[int(np.argmin(v)), f] += 1
            if progress is not None and (i + 1) % 100 == 0:
                progress(offset + 0.5 * (i + 1) / n, f"FactorVAE score: vote {i + 1:,} of {n:,}")
        return counts

    train = votes(num_train, 0.0)
    classifier = np.argmax(train, axis=1)
    held = votes(num_eval, 0.5)
    rows = np.arange(d)
    return {"train_accuracy": float(train[rows, classifier].sum() / train.sum()),
            "eval_accuracy": float(held[rows, classifier].sum() / held.sum()),
            "active_dims": int(active.sum())}


def beta_vae_score(encode: Encode, sizes: tuple[int, ...], batch_size: int = 64, num_train: int = 10_000,
                   num_eval: int = 5_000, seed: int = 0, progress: Callable[[float, str], None] | None = None,
                   stopped: Callable[[], bool] | None = None) -> dict:
    """β-VAE score (Higgins et al. 2017, Sec. 3; disentanglement_lib ``beta_vae.py``).

    Each point fixes one factor (chosen uniformly) to the same value in two batches of
    ``batch_size`` random images; its feature is the mean absolute difference of their codes
    ``(D,)``, its label the factor. A scikit-learn ``LogisticRegression`` is fitted on
    ``num_train`` points and scored on ``num_eval``.

    Returns:
        ``{"train_accuracy", "eval_accuracy"}``.

    Raises:
        :class:`MetricsStopped` on ``stopped()``.
    """
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    k = len(sizes)

    def points(n: int, offset: float) -> tuple[np.ndarray, np.ndarray]:
        feats, labels = [], []
        for i in range(n):
            if stopped is not None and stopped():
                raise MetricsStopped
            f = int(rng.integers(k))
            a, b = _random_factors(rng, sizes, batch_size), _random_factors(rng, sizes, batch_size)
            b[:, f] = a[:, f]
            za, zb = np.asarray(encode(a), dtype=np.float64), np.asarray(encode(b), dtype=np.float64)
            feats.append(np.abs(za - zb).mean(axis=0))
            labels.append(f)
            if progress is not None and (i + 1) % 100 == 0:
                progress(offset + 0.5 * (i + 1) / n, f"β-VAE score: point {i + 1:,} of {n:,}")
        return np.array(feats), np.array(labels)

    x_train, y_train = points(num_train, 0.0)
    x_eval, y_eval = points(num_eval, 0.5)
    model = LogisticRegression(max_iter=1000, random_state=seed)
    model.fit(x_train, y_train)
    return {"train_accuracy": float(model.score(x_train, y_train)), "eval_accuracy": float(model.score(x_eval, y_eval))}


def shapes_encoder(model, device: str = "cpu") -> tuple[Encode, tuple[int, ...]]:
    """``(encode, sizes)`` for the Shapes dataset: factor indices ``(B, 5)`` are rendered
    (:func:`models.shapes.render`) and encoded to posterior means ``mu`` ``(B, D)`` by ``model``
    (a :class:`models.vae.VAE` taking 1×64×64 images in [0, 1])."""
    import torch

    from models import shapes

    def encode(factors: np.ndarray) -> np.ndarray:
        flat = np.ravel_multi_index(tuple(np.asarray(factors).T), shapes.FACTOR_SIZES)
        images = torch.from_numpy(shapes.render_many(flat)).float().to(device)
        with torch.inference_mode():
            return model.encode(images)[0].float().cpu().numpy()

    return encode, shapes.FACTOR_SIZES


# -- scores of a model during training ---------------------------------------------------------------
#: score key → short title (the command line, the plots, the panel)
SCORE_TITLES = {"mig": "MIG", "sap": "SAP", "dci_disentanglement": "DCI disentanglement",
                "dci_completeness": "DCI completeness", "dci_informativeness": "DCI informativeness",
                "factorvae": "FactorVAE score", "betavae": "β-VAE score"}

#: what ``TrainConfig.metrics`` computes at each epoch end
EPOCH_METRICS = {"off": "off", "fast": "MIG + SAP (seconds)", "all": "MIG, SAP + DCI (minutes)"}


def model_codes(model, dataset, points: int, device=None, stopped: Callable[[], bool] | None = None,
                batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means of the first ``points`` images (the test split, then the training split)
    and their factors as class indices: ``(codes (N, D) float64, factors (N, K) int64)``.

    Raises:
        ValueError: when the dataset has no ground-truth factors; :class:`MetricsStopped` on ``stopped()``.
    """
    import torch

    from models.data import as_float

    if dataset.test_factors is None:
        raise ValueError(f"{dataset.title} has no ground-truth factors: the disentanglement scores need a dataset "
                         "that has them (Shapes, or an npz with a 'factors' array)")
    images = [dataset.test_x[:points], dataset.train_x[: max(0, points - len(dataset.test_x))]]
    factors = torch.cat([dataset.test_factors[:points],
                         dataset.train_factors[: max(0, points - len(dataset.test_x))]]).numpy()
    device = device or next(model.parameters()).device
    out = []
    with torch.no_grad():
        for part in images:
            for start in range(0, len(part), batch_size):
                if stopped is not None and stopped():
                    raise MetricsStopped
                out.append(model.encode(as_float(part[start:start + batch_size].to(device)))[0].float().cpu())
    return torch.cat(out).double().numpy(), as_class_indices(factors)


def epoch_scores(model, dataset, which: str = "fast", points: int = 5_000, seed: int = 0,
                 stopped: Callable[[], bool] | None = None,
                 progress: Callable[[float, str], None] | None = None) -> dict:
    """The disentanglement scores of ``model`` on ``dataset`` (posterior means of ``points``
    images, see :func:`model_codes`): ``which`` ``"fast"``: ``mig``, ``sap`` and their matrices
    ``mi`` (D, K) nats and ``sap_matrix``; ``"all"``: also DCI (:func:`all_scores`' keys). The
    classifiers train on 2/3 of the points and are tested on the rest, split with ``seed``.
    ``factor_entropy`` is H(v_k) of each factor in nats (MIG's normalisation), ``seconds``
    the time taken.

    Raises:
        ValueError: on an unknown ``which`` or a dataset without factors; :class:`MetricsStopped`.
    """
    import time

    if which not in ("fast", "all"):
        raise ValueError(f"which must be 'fast' or 'all', got {which!r}")
    t0 = time.perf_counter()
    codes, factors = model_codes(model, dataset, points, stopped=stopped)
    n_train = (2 * len(codes)) // 3
    if which == "all":
        scores = all_scores(codes, factors, n_train, len(codes) - n_train, seed, progress, stopped)
    else:
        score_mig, mi = mig(codes, factors)
        score_sap, matrix = sap(codes, factors, n_train, len(codes) - n_train, seed, stopped)
        scores = {"mig": score_mig, "sap": score_sap, "mi": mi.tolist(), "sap_matrix": matrix.tolist()}
    scores["factor_entropy"] = [_entropy(factors[:, k]) for k in range(factors.shape[1])]
    scores["points"] = len(codes)
    scores["seconds"] = time.perf_counter() - t0
    return scores
