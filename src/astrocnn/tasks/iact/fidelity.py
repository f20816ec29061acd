"""How close generated Cherenkov images are to simulated ones: the measures of Elflein et al.
(a generative surrogate for H.E.S.S. judged by its Hillas-parameter distributions and their
correlations) and a classifier two-sample test (Lopez-Paz & Oquab 2017: if no classifier tells the
two samples apart better than chance, its test AUC is 0.5).

Every 1-D distance is put on the scale of the simulation's own sampling noise: the Wasserstein
distance between generated and simulated, divided by the same distance between two independent
simulated samples of the same size (1 means indistinguishable at this sample size).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import wasserstein_distance
from sklearn.metrics import roc_auc_score
from torch import nn

from astrocnn.models import create_model
from astrocnn.tasks.iact import hillas
from astrocnn.tasks.iact.camera import Camera

#: The Hillas parameters compared, under the names the issue gives them, and their column in
#: :data:`hillas.FEATURES` ("distance" is the centroid's distance from the camera centre, r).
PARAMETERS = {
    "size": "size",
    "width": "width",
    "length": "length",
    "distance": "r",
    "skewness": "skewness",
    "kurtosis": "kurtosis",
}


def hillas_table(camera: Camera, charge: np.ndarray) -> np.ndarray:
    """(n, 6) the :data:`PARAMETERS` of each event (NaN where cleaning left too little)."""
    features = hillas.hillas_features(camera, charge)
    return features[:, [hillas.FEATURES.index(c) for c in PARAMETERS.values()]]


def wasserstein_ratio(generated: np.ndarray, simulated: np.ndarray, reference: np.ndarray) -> float:
    """W1(generated, simulated) / W1(reference, simulated), NaNs dropped: ``reference`` is a second,
    independent simulated sample of ``generated``'s size, so 1 is the simulation's own noise."""
    a, b, c = (np.asarray(v, float) for v in (generated, simulated, reference))
    a, b, c = a[np.isfinite(a)], b[np.isfinite(b)], c[np.isfinite(c)]
    if min(len(a), len(b), len(c)) < 2:
        return float("nan")
    noise = wasserstein_distance(c, b)
    return float(wasserstein_distance(a, b) / noise) if noise > 0 else float("nan")


def wasserstein_ratios(generated: np.ndarray, simulated: np.ndarray, reference: np.ndarray) -> dict:
    """``wasserstein_ratio_<parameter>`` for the (n, 6) Hillas tables of :func:`hillas_table`."""
    return {
        f"wasserstein_ratio_{name}": wasserstein_ratio(generated[:, k], simulated[:, k], reference[:, k])
        for k, name in enumerate(PARAMETERS)
    }


def correlation(table: np.ndarray) -> np.ndarray:
    """(6, 6) Pearson correlations of the Hillas parameters over the events where all are finite
    (size as log10, as its spread covers decades)."""
    t = np.asarray(table, float).copy()
    t[:, 0] = np.log10(np.maximum(t[:, 0], 1e-3))
    t = t[np.all(np.isfinite(t), axis=1)]
    return np.corrcoef(t, rowvar=False)


def two_sample_auc(
    generated: np.ndarray, simulated: np.ndarray, *, seed: int = 0, epochs: int = 30, batch_size: int = 64
) -> float:
    """Test AUC of a small CNN trained to tell ``generated`` from ``simulated`` images (N, C, H, W)
    in network units: each sample split in halves, trained on one, scored on the other.
    0.5: the classifier finds nothing; 1: the samples are told apart every time. A few hundred
    images make few steps an epoch, hence many epochs (with 6 it told images that fail the size
    cut half the time from simulated ones that all pass it no better than chance)."""
    n = min(len(generated), len(simulated))
    x = np.concatenate([generated[:n], simulated[:n]]).astype(np.float32)
    y = np.concatenate([np.ones(n), np.zeros(n)]).astype(np.int64)
    rng = np.random.default_rng(seed)
    order = rng.permutation(2 * n)
    train, test = order[:n], order[n:]
    torch.manual_seed(seed)
    net = create_model(
        "simple_cnn", spatial_dims=2, in_channels=x.shape[1], num_outputs=2, input_size=x.shape[2:]
    )
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    net.train()
    for _ in range(epochs):
        shuffled = train[rng.permutation(len(train))]
        for start in range(0, len(shuffled), batch_size):
            idx = torch.from_numpy(shuffled[start : start + batch_size])
            loss = nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        score = net(xt[torch.from_numpy(test)]).softmax(dim=1)[:, 1].numpy()
    return _auc(y[test], score)


def _auc(labels: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC; NaN where the test half holds one sample kind only (a handful of events)."""
    return float(roc_auc_score(labels, score)) if 0 < labels.sum() < len(labels) else float("nan")


def two_sample_auc_hillas(generated: np.ndarray, simulated: np.ndarray, *, seed: int = 0) -> float:
    """The same test on the (n, 6) Hillas tables with gradient-boosted trees (NaN: missing): the
    classical analysis as the judge, which sees what it was built to see (dim, truncated images)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    n = min(len(generated), len(simulated))
    x = np.concatenate([generated[:n], simulated[:n]])
    y = np.concatenate([np.ones(n), np.zeros(n)])
    order = np.random.default_rng(seed).permutation(2 * n)
    train, test = order[:n], order[n:]
    if not 0 < y[train].sum() < len(train):
        return float("nan")
    model = HistGradientBoostingClassifier(max_iter=100, random_state=seed).fit(x[train], y[train])
    return _auc(y[test], model.predict_proba(x[test])[:, 1])
