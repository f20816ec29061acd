"""Training transformations are drawn per step from (seed, step, process): a resumed run draws
what the uninterrupted one drew, DDP processes draw differently, and torch's global generator is
left as it was."""

from __future__ import annotations

import torch

from astrocnn.engine.module import TaskModule
from astrocnn.models import create_model
from astrocnn.tasks import get_task


def _module(seed: int) -> TaskModule:
    task = get_task("iact-generate")
    model = create_model("mlp", spatial_dims=2, in_channels=8, num_outputs=2, input_size=task.input_size)
    return TaskModule(model, task, lr=1e-3, weight_decay=0.0, epochs=1, seed=seed)


def _batch(task) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn((4, 8, *task.input_size), generator=g)
    x[:, 2] = 0.5  # the time plane
    return x, torch.randn((4, 2, *task.input_size), generator=g)


def test_draws_depend_on_seed_step_and_process_only(monkeypatch):
    module = _module(seed=3)
    x, y = _batch(module.task)
    steps = {"step": 0, "rank": 0}
    monkeypatch.setattr(TaskModule, "global_step", property(lambda self: steps["step"]))
    monkeypatch.setattr(TaskModule, "global_rank", property(lambda self: steps["rank"]))
    first = module._augment_pair(x, y)[1]
    torch.rand(100)  # whatever else draws in between (a resumed run's other history)
    state = torch.get_rng_state()
    again = module._augment_pair(x, y)[1]
    assert torch.equal(first, again)
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is put back
    steps["step"] = 1
    assert not torch.equal(module._augment_pair(x, y)[1], first)
    steps["step"], steps["rank"] = 0, 1
    assert not torch.equal(module._augment_pair(x, y)[1], first)
    steps["rank"] = 0
    assert not torch.equal(_module(seed=4)._augment_pair(x, y)[1], first)


def test_a_task_without_transformations_draws_nothing():
    task = get_task("sky-shapes")
    model = create_model("mlp", spatial_dims=2, in_channels=1, num_outputs=2, input_size=(8, 8))
    module = TaskModule(model, task, lr=1e-3, weight_decay=0.0, epochs=1)
    x, y = torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long)
    out = module._augment_pair(x, y)
    assert out[0] is x and out[1] is y
