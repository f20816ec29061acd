"""A method trained as an ensemble is scored on the mean of its members' predictions (a deep
ensemble): the mean of the class probabilities for a classifier, the mean values for a
regression; one member is scored as it is."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from astrocnn.engine.config import RunConfig
from astrocnn.engine.results import ensemble_prediction, evaluate_methods
from astrocnn.engine.run import predict_array
from astrocnn.tasks import get_task
from astrocnn.tasks.base import ArraySplit


class Affine(nn.Module):
    """Outputs ``scale * mean(x) + shift`` for each of ``num_outputs`` (a member of a toy ensemble
    whose members disagree by a known amount)."""

    def __init__(self, scale: list[float], shift: list[float]):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(scale))
        self.shift = nn.Parameter(torch.tensor(shift))

    def forward(self, x):  # (B, 1, L, L) -> (B, num_outputs)
        return x.mean(dim=(1, 2, 3))[:, None] * self.scale + self.shift


def temperature_split(n_per_cell: int = 3) -> ArraySplit:
    rng = np.random.default_rng(0)
    sizes, temps = (8, 16), (1.5, 2.5, 3.5)
    xs, t, size, chain = [], [], [], []
    for L in sizes:
        for T in temps:
            for k in range(n_per_cell):
                xs.append(rng.choice(np.array([-1.0, 1.0], np.float32), size=(1, L, L)))
                t.append(T)
                size.append(L)
                chain.append(k)
    meta = {"temperature": np.array(t), "size": np.array(size), "chain": np.array(chain)}
    return ArraySplit(xs, np.array(t, np.float32)[:, None], meta)


def test_a_regression_ensemble_is_scored_on_its_members_mean():
    task = get_task("ising-temperature", {"sizes": "8,16"})
    test = temperature_split()
    nets = [Affine([0.5], [0.1]), Affine([-0.3], [0.7]), Affine([1.0], [-0.2])]
    members_mean = np.mean([predict_array(net, task, test.x) for net in nets], axis=0)
    config = RunConfig(task=task.name, baseline=False)
    results, predictions = evaluate_methods(config, task, test, None, {"cnn": nets, "mlp": nets[:1]})
    assert predictions["cnn"] == pytest.approx(members_mean, abs=1e-6)
    assert results["cnn"]["rmse"] == pytest.approx(task.metrics(members_mean, test)["rmse"], rel=1e-6)
    assert results["cnn"]["ensemble"] == 3
    # beside it, what each network alone scores
    alone = [task.metrics(predict_array(net, task, test.x), test)["rmse"] for net in nets]
    assert results["cnn"]["rmse_members"] == pytest.approx(alone, rel=1e-6)
    # the members disagree, so the mean is not any one member's prediction
    assert not np.allclose(predictions["cnn"], predict_array(nets[0], task, test.x))
    # one member: its own prediction, exactly as before ensembles were averaged
    assert np.array_equal(predictions["mlp"], predict_array(nets[0], task, test.x))
    assert results["mlp"]["ensemble"] == 1 and "rmse_members" not in results["mlp"]


def test_a_classifier_ensemble_averages_probabilities_not_logits():
    task = get_task("ising-phase", {"sizes": "8,16"})
    test = temperature_split()
    # logits far apart: the softmax of the mean logit differs from the mean of the softmaxes
    nets = [Affine([4.0, -4.0], [3.0, 0.0]), Affine([-2.0, 2.0], [-5.0, 1.0])]
    probabilities = [predict_array(net, task, test.x) for net in nets]
    averaged = ensemble_prediction(task, nets, test.x)
    assert averaged == pytest.approx(np.mean(probabilities, axis=0), abs=1e-6)
    assert averaged.sum(axis=1) == pytest.approx(np.ones(len(test)), abs=1e-6)
    with torch.no_grad():
        logits = torch.stack([torch.cat([net(torch.from_numpy(x[None])) for x in test.x]) for net in nets])
    softmax_of_mean = logits.mean(dim=0).softmax(dim=1).numpy()
    assert not np.allclose(averaged, softmax_of_mean, atol=1e-3)
    assert averaged.dtype == probabilities[0].dtype
