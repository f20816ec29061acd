"""Training-step throughput of the zoo on small scientific images, on this machine's CPU.

Every model runs forward + backward + SGD step on the same batch, interleaved round by round so
that the machine's background load hits all of them alike; the table gives the median images/s
and the ratio to the fully connected baseline. Also compares NCHW with channels_last for one
ResNet, to back the choice of eager NCHW as the default.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from astrocnn import create_model
from report import write_section

CASES = [
    ("mlp", {"input_size": (32, 32)}),
    ("simple_cnn", {"input_size": (32, 32)}),
    ("resnet18", {"small_input": True, "width": 0.25}),
    ("preact_resnet18", {"small_input": True, "width": 0.25}),
    ("vgg11_bn", {"small_input": True, "width": 0.25}),
    ("googlenet", {"small_input": True, "width": 0.25}),
    ("inception_v3", {"small_input": True, "width": 0.25}),
    ("unet", {"width": 0.25}),
]


def step_fn(model: torch.nn.Module, x: torch.Tensor):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        model(x).float().square().mean().backward()
        opt.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.randn(args.batch_size, 1, 32, 32)
    steps = {}
    for name, options in CASES:
        model = create_model(name, in_channels=1, num_outputs=1 if name == "unet" else 2, **options)
        steps[name] = (step_fn(model, x), sum(p.numel() for p in model.parameters()))
    cl_model = create_model("resnet18", in_channels=1, num_outputs=2, small_input=True, width=0.25)
    steps["resnet18 channels_last"] = (
        step_fn(cl_model.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)),
        sum(p.numel() for p in cl_model.parameters()),
    )
    times: dict[str, list[float]] = {name: [] for name in steps}
    for step, _ in steps.values():
        step()  # warm-up
    for _ in range(args.rounds):
        for name, (step, _) in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    rate = {name: args.batch_size / statistics.median(t) for name, t in times.items()}
    rows = [
        f"| {name} | {steps[name][1]:,} | {rate[name]:,.0f} | {rate[name] / rate['mlp']:.3f} |"
        for name in steps
    ]
    body = (
        f"Training step (forward, backward, SGD) on a batch of {args.batch_size} images of 1 x 32 x 32, "
        f"median of {args.rounds} interleaved rounds. "
        "Small-input stems, width 0.25 where the model has them.\n\n"
        "| model | parameters | images/s | ratio to mlp |\n|---|---:|---:|---:|\n"
        + "\n".join(rows)
        + f"\n\nresnet18 channels_last / NCHW throughput, same run: "
        f"{rate['resnet18 channels_last'] / rate['resnet18']:.2f}"
    )
    write_section(args.out, "models", "Model zoo: training-step throughput", body)
    print(body)


if __name__ == "__main__":
    main()
