"""astrocnn's ResNet-18 against independent implementations, the machine's peak, and ONNX Runtime.

Three measurements, each with its ratios taken in the same run:

1. Networks: astrocnn's ``resnet18`` against MONAI's ``monai.networks.nets.ResNet`` configured to
   the same network (stem, widths, blocks, batch norm, shortcuts: :func:`monai_resnet18`; the
   parameter counts are printed and must agree) and against a plain ResNet-18 written out here in
   a few lines of PyTorch (:class:`PlainResNet18`), 2-D and 3-D. Every network runs the same
   hand-written loop (no Lightning): forward, cross-entropy, backward, SGD step; then inference
   in eval mode under ``torch.no_grad`` (what ``astrocnn predict`` uses) and under
   ``torch.inference_mode``. The networks run in turn every round, so that the machine's
   background load hits all of them alike; the tables give the median images/s.
2. Peak: the FLOPs of the default network's training step (forward and backward, counted by
   ``torch.utils.flop_counter.FlopCounterMode``) over its measured time, against the FLOP/s of a
   large float32 matrix product (``torch.mm``) in the same run and the same threads.
3. ONNX: a small ``sky-shapes`` run is trained and exported with astrocnn's own exporter
   (:func:`astrocnn.engine.export.export_run`, as ``astrocnn export --format onnx``); the file
   runs under onnxruntime against the same module (preprocessing, network, postprocessing) in
   eager torch, and against ``astrocnn predict``'s path, same batch, same threads.

Section "peers" of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval

from astrocnn import create_model
from astrocnn.layers.blocks import scaled
from report import write_section

BEFORE = "astrocnn before: ReLU and shortcut add out of place"
#: Operator groups of the profile, by a piece of the operator's name (first match wins).
OP_GROUPS = [
    ("convolution", ("conv",)),
    ("batch norm", ("batch_norm",)),
    ("ReLU", ("relu", "clamp_min", "threshold_backward")),
    ("add (shortcut, SGD)", ("aten::add",)),
]
#: The default network of the image-classification tasks (sky-shapes, ising, iact).
DEFAULT_OPTIONS = {"small_input": True, "width": 0.25}
#: (label, spatial dims, image size, batch): 1 x 64 x 64 and its 3-D counterpart with as many
#: voxels per image (16^3 = 64^2).
CONFIGS = [
    ("2-D", 2, (64, 64), 64),
    ("3-D", 3, (16, 16, 16), 32),
]
BLOCKS = (2, 2, 2, 2)


def stage_widths(width: float) -> list[int]:
    """Channels of the four stages of a ResNet-18 under astrocnn's width multiplier."""
    return [scaled(64 * 2**i, width) for i in range(4)]


def monai_resnet18(
    spatial_dims: int, in_channels: int, num_outputs: int, *, width: float = 1.0, small_input: bool = False
) -> nn.Module:
    """MONAI's ResNet configured as astrocnn's ``resnet18`` with these options: basic blocks
    (2, 2, 2, 2), stage widths 64 * width * (1, 2, 4, 8), batch norm, 1 x 1 projection shortcuts
    without bias (type "B"), and the stem: one 3 x 3 stride-1 convolution without max pooling
    (``small_input``) or the 7 x 7 stride-2 convolution and 3 x 3 stride-2 max pooling."""
    from monai.networks.nets import ResNet

    return ResNet(
        block="basic",
        layers=list(BLOCKS),
        block_inplanes=stage_widths(width),
        spatial_dims=spatial_dims,
        n_input_channels=in_channels,
        conv1_t_size=3 if small_input else 7,
        conv1_t_stride=1 if small_input else 2,
        no_max_pool=small_input,
        shortcut_type="B",
        bias_downsample=False,
        num_classes=num_outputs,
    )


class PlainBlock(nn.Module):
    """conv-bn-relu-conv-bn plus the shortcut, then relu: the basic block as usually written."""

    def __init__(self, conv, norm, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = conv(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = norm(c_out)
        self.conv2 = conv(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = norm(c_out)
        self.down = None
        if stride != 1 or c_in != c_out:
            self.down = nn.Sequential(conv(c_in, c_out, 1, stride=stride, bias=False), norm(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        out += x if self.down is None else self.down(x)
        return F.relu(out, inplace=True)


class PlainResNet18(nn.Module):
    """A ResNet-18 in plain PyTorch, 2-D or 3-D, with astrocnn's stem and width options."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        num_outputs: int,
        *,
        width: float = 1.0,
        small_input: bool = False,
    ):
        super().__init__()
        conv = (nn.Conv2d, nn.Conv3d)[spatial_dims - 2]
        norm = (nn.BatchNorm2d, nn.BatchNorm3d)[spatial_dims - 2]
        widths = stage_widths(width)
        if small_input:
            stem = [conv(in_channels, widths[0], 3, padding=1, bias=False)]
        else:
            stem = [conv(in_channels, widths[0], 7, stride=2, padding=3, bias=False)]
        stem += [norm(widths[0]), nn.ReLU(inplace=True)]
        if not small_input:
            stem.append((nn.MaxPool2d, nn.MaxPool3d)[spatial_dims - 2](3, stride=2, padding=1))
        layers = []
        c_in = widths[0]
        for i, (c, n) in enumerate(zip(widths, BLOCKS, strict=True)):
            for j in range(n):
                layers.append(PlainBlock(conv, norm, c_in, c, 2 if i > 0 and j == 0 else 1))
                c_in = c
        self.features = nn.Sequential(*stem, *layers)
        self.fc = nn.Linear(c_in, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(2).mean(2))


def out_of_place_variant(model: nn.Module) -> nn.Module:
    """A copy of an astrocnn ResNet as it was before its ReLUs and its shortcut add became in
    place (``layers.blocks.inplace_activation``, ``ResidualBlock.inplace_add``): the same
    function, a fresh tensor for every ReLU and every shortcut sum. The before of the change's
    before/after ratio, measured in the same run."""
    from astrocnn.models.resnet import ResidualBlock

    model = copy.deepcopy(model)
    for module in model.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
        if isinstance(module, ResidualBlock):
            module.inplace_add = False
    return model


def fold_batch_norm(model: nn.Module) -> nn.Module:
    """A copy in eval mode with each batch norm folded into the convolution before it (every
    astrocnn ``ConvNormAct``), as onnxruntime folds them: the same function in inference."""
    from astrocnn.layers.blocks import ConvNormAct

    model = copy.deepcopy(model).eval()
    for module in model.modules():
        if isinstance(module, ConvNormAct) and isinstance(getattr(module, "norm", None), _BatchNorm):
            module.conv = fuse_conv_bn_eval(module.conv, module.norm)
            module.norm = nn.Identity()
    return model


def networks(spatial_dims: int, options: dict) -> dict[str, nn.Module]:
    """The three implementations of one configuration (1 input channel, 2 outputs)."""
    return {
        "astrocnn": create_model(
            "resnet18", spatial_dims=spatial_dims, in_channels=1, num_outputs=2, **options
        ),
        "MONAI": monai_resnet18(spatial_dims, 1, 2, **options),
        "plain PyTorch": PlainResNet18(spatial_dims, 1, 2, **options),
    }


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """The plain training loop's body: forward, cross-entropy, backward, SGD step."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step() -> None:
        model.train()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def infer_step(model: nn.Module, x: torch.Tensor, mode: Callable) -> Callable[[], None]:
    def step() -> None:
        model.eval()
        with mode():
            model(x)

    return step


def step_flops(model: nn.Module, x: torch.Tensor, *, backward: bool = True) -> int:
    """FLOPs of one forward (and backward) pass of ``model`` on ``x``, cross-entropy on class 0,
    as ``torch.utils.flop_counter.FlopCounterMode`` counts them (convolutions and matrix
    products; the elementwise operations and norms count nothing)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.train(backward)
    with FlopCounterMode(display=False) as counter:
        if backward:
            out = model(x)
            F.cross_entropy(out, torch.zeros(len(x), dtype=torch.long)).backward()
        else:
            with torch.no_grad():
                model(x)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return counter.get_total_flops()


def interleaved(steps: dict[str, Callable[[], None]], rounds: int) -> dict[str, float]:
    """Median seconds per call of each entry, the entries run in turn every round."""
    for step in steps.values():  # warm-up
        step()
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def matmul_flops(n: int = 4096, rounds: int = 5) -> float:
    """FLOP/s of an n x n float32 matrix product (2 n^3 FLOPs), median of ``rounds``."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    seconds = interleaved({"mm": lambda: torch.mm(a, b, out=out)}, rounds)["mm"]
    return 2 * n**3 / seconds


def op_group(name: str) -> str:
    for group, pieces in OP_GROUPS:
        if any(piece in name for piece in pieces):
            return group
    return "other"


def profile_groups(steps: dict[str, Callable[[], None]], rounds: int) -> dict[str, dict[str, float]]:
    """Self CPU milliseconds per call of each step, by operator group; the steps profiled in turn
    every round, one call each, so that the background load hits them alike."""
    from torch.profiler import ProfilerActivity, profile

    totals: dict[str, dict[str, float]] = {name: {} for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                step()
            for event in prof.key_averages():
                group = op_group(event.key)
                ms = event.self_cpu_time_total / 1e3 / rounds
                totals[name][group] = totals[name].get(group, 0.0) + ms
    return totals


def profile_text(steps: dict[str, Callable[[], None]], rounds: int, what: str) -> str:
    totals = profile_groups(steps, rounds)
    names = list(steps)
    groups = [g for g, _ in OP_GROUPS] + ["other"]
    rows = []
    for group in [*groups, "total"]:
        cells = [sum(totals[n].values()) if group == "total" else totals[n].get(group, 0.0) for n in names]
        rows.append(f"| {group} | " + " | ".join(f"{c:,.0f}" for c in cells) + " |")
    return (
        f"Where the time of {what} goes: self CPU time per step (ms) by operator group "
        f"(`torch.profiler`, {rounds} steps each, profiled in turn).\n\n"
        "| operators | " + " | ".join(names) + " |\n|---|" + "---:|" * len(names) + "\n" + "\n".join(rows)
    )


def peer_table(args) -> tuple[str, dict]:
    blocks = []
    default = {}
    for label, sd, size, batch in CONFIGS:
        if args.only and label not in args.only.split(","):
            continue
        torch.manual_seed(0)
        x = torch.randn(batch, 1, *size)
        y = torch.randint(0, 2, (batch,))
        models = networks(sd, DEFAULT_OPTIONS)
        models[BEFORE] = out_of_place_variant(models["astrocnn"])
        counts = {name: params(m) for name, m in models.items()}
        print(f"{label}: parameters {counts}", flush=True)
        if len(set(counts.values())) != 1:
            raise SystemExit(f"{label}: the networks differ in size: {counts}")
        steps = {}
        for name, model in models.items():
            steps[f"{name} train"] = train_step(model, x, y)
            steps[f"{name} no_grad"] = infer_step(model, x, torch.no_grad)
            steps[f"{name} inference_mode"] = infer_step(model, x, torch.inference_mode)
        seconds = interleaved(steps, args.rounds)
        rate = {k: batch / s for k, s in seconds.items()}
        rows = []
        for name in models:
            cells = []
            for kind in ("train", "no_grad", "inference_mode"):
                r = rate[f"{name} {kind}"] / rate[f"astrocnn {kind}"]
                ratio = "" if name == "astrocnn" else f" ({1 / r:.3f})"
                cells.append(f"{rate[f'{name} {kind}']:,.0f}{ratio}")
            rows.append(f"| {name} | {counts[name]:,} | " + " | ".join(cells) + " |")
        shape = " x ".join(str(s) for s in (1, *size))
        blocks.append(
            f"**{label}**: {shape}, batch {batch}, {args.rounds} rounds.\n\n"
            "| implementation | parameters | train img/s | inference img/s, no_grad | "
            "inference img/s, inference_mode |\n|---|---:|---:|---:|---:|\n" + "\n".join(rows)
        )
        print(blocks[-1], flush=True)
        if label == "2-D":
            blocks.append(
                profile_text(
                    {k: steps[f"{k} train"] for k in ("astrocnn", BEFORE, "plain PyTorch")},
                    max(2, args.rounds // 2),
                    f"the {label} training step",
                )
            )
        print(blocks[-1], flush=True)
        flops = step_flops(models["astrocnn"], x)
        forward_flops = step_flops(models["astrocnn"], x, backward=False)
        default[label] = {
            "train": flops / seconds["astrocnn train"],
            "infer": forward_flops / seconds["astrocnn no_grad"],
            "flops": flops,
            "forward_flops": forward_flops,
            "batch": batch,
            "shape": shape,
        }
        del models, steps
    body = (
        f"`resnet18` {DEFAULT_OPTIONS} (the default network of sky-shapes, ising and the "
        "Cherenkov-telescope tasks) against MONAI's `ResNet` configured to the same network "
        "(`block_inplanes` = the stage widths, `conv1_t_size=3`, `conv1_t_stride=1`, "
        "`no_max_pool=True`, `shortcut_type='B'`, `bias_downsample=False`) and a plain ResNet-18 "
        "written in the benchmark (in-place ReLUs, `out += shortcut`). Same parameter count, same "
        "batch, same threads; one hand-written loop for all (forward, cross-entropy, backward, "
        "SGD with momentum, no Lightning), then inference in eval mode. Median of interleaved "
        "rounds; in brackets: astrocnn's throughput over the row's (1.0: as fast). astrocnn's ReLUs "
        "and shortcut add are computed in place, as the two peers write them; the last row is a "
        "copy of astrocnn's network with both out of place, as it was before that change (same "
        "function): its bracket is the change's before/after ratio.\n\n" + "\n\n".join(blocks)
    )
    return body, default


def peak_text(args, default: dict) -> str:
    peak = matmul_flops(args.matmul_size, args.rounds)
    lines = [
        f"{args.matmul_size} x {args.matmul_size} float32 `torch.mm`: **{peak / 1e9:,.1f} GFLOP/s** "
        f"(threads: {torch.get_num_threads()}), measured after the networks in the same run.\n",
        "| network, input, batch | FLOPs / step (fwd + bwd) | training GFLOP/s | fraction of mm | "
        "inference GFLOP/s | fraction of mm |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, d in default.items():
        lines.append(
            f"| resnet18 {label}, {d['shape']}, {d['batch']} | {d['flops'] / 1e9:,.1f} G | "
            f"{d['train'] / 1e9:,.1f} | **{d['train'] / peak:.2f}** | {d['infer'] / 1e9:,.1f} | "
            f"**{d['infer'] / peak:.2f}** |"
        )
    return (
        "FLOPs counted by `torch.utils.flop_counter.FlopCounterMode` (convolutions and matrix "
        "products; norms, activations and the optimiser count nothing), divided by the median "
        "step time of the table above.\n\n" + "\n".join(lines)
    )


def onnx_text(args) -> str:
    import onnxruntime as ort

    import astrocnn
    from astrocnn.engine.export import RawImageModel, export_run
    from astrocnn.engine.run import predict_array

    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        run = astrocnn.train(
            "sky-shapes",
            out=str(Path(tmp) / "run"),
            seed=0,
            n_train=256,
            n_val=64,
            n_test=64,
            epochs=1,
            progress_bar=False,
            train_mlp=False,
            baseline=False,
        )
        path = export_run(run, "onnx", out=Path(tmp) / "export")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        members, task = run.predictor("cnn"), run.task
        wrapped = RawImageModel(members, task).eval()
        rng = np.random.default_rng(0)
        raw = rng.poisson(20.0, size=(args.onnx_batch, task.in_channels, *task.input_size)).astype(np.float32)
        x = torch.from_numpy(raw)
        ours = wrapped(x)[0].detach().numpy()
        theirs = session.run(None, {"image": raw})[0]
        differ = float(np.abs(ours - theirs).max())

        folded = RawImageModel([fold_batch_norm(m) for m in members], task).eval()
        folded_last = RawImageModel(
            [fold_batch_norm(m).to(memory_format=torch.channels_last) for m in members], task
        ).eval()
        x_last = x.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            differ_folded = float((folded(x)[0] - wrapped(x)[0]).abs().max())

        def eager(module, mode, inputs=x):
            def step():
                with mode():
                    module(inputs)

            return step

        steps = {
            "onnxruntime": lambda: session.run(None, {"image": raw}),
            "eager, no_grad": eager(wrapped, torch.no_grad),
            "eager, inference_mode": eager(wrapped, torch.inference_mode),
            "astrocnn predict path": lambda: predict_array(members, task, raw, batch_size=args.onnx_batch),
            "eager, batch norm folded, inference_mode": eager(folded, torch.inference_mode),
            "eager, batch norm folded, channels_last, inference_mode": eager(
                folded_last, torch.inference_mode, x_last
            ),
        }
        seconds = interleaved(steps, args.rounds * 4)
    rate = {k: args.onnx_batch / s for k, s in seconds.items()}
    rows = [f"| {name} | {rate[name]:,.0f} | {rate['onnxruntime'] / rate[name]:.3f} |" for name in steps]
    shape = " x ".join(str(s) for s in (task.in_channels, *task.input_size))
    return (
        f"The `sky-shapes` default network (`resnet18` {DEFAULT_OPTIONS}), trained for one epoch "
        "and exported by `export_run` (the code of `astrocnn export --format onnx`): raw images "
        f"in, class probabilities out, preprocessing and postprocessing in the graph. Batch of "
        f"{args.onnx_batch} raw images of {shape}; onnxruntime {ort.__version__}, CPU provider, "
        f"intra-op threads: {threads}, sequential; eager: the same module (`RawImageModel`) in "
        f"torch, threads: {threads}; astrocnn predict path: `predict_array` (NumPy "
        "preprocessing, `torch.no_grad`). Median of "
        f"{args.rounds * 4} interleaved rounds. Largest difference between the ONNX and eager "
        f"probabilities: {differ:.1e}. The last two rows are not astrocnn's path but what it could "
        "do: each batch norm folded into its convolution (`torch.nn.utils.fusion.fuse_conv_bn_eval`"
        f", as onnxruntime does; largest difference {differ_folded:.1e}), and the channels_last "
        "layout.\n\n"
        "| path | images/s | onnxruntime / this |\n|---|---:|---:|\n" + "\n".join(rows)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", help="configurations of the network table: 2-D,3-D")
    parser.add_argument("--matmul-size", type=int, default=4096)
    parser.add_argument("--onnx-batch", type=int, default=64)
    parser.add_argument("--skip-onnx", action="store_true")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch's and onnxruntime's threads (default: torch's default, one per core); on a "
        "machine other jobs share, no more than the cores left free",
    )
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    parts = []
    table, default = peer_table(args)
    parts.append(table)
    parts.append("### Fraction of the machine's peak\n\n" + peak_text(args, default))
    print(parts[-1], flush=True)
    if not args.skip_onnx:
        parts.append("### Inference through the ONNX export\n\n" + onnx_text(args))
        print(parts[-1], flush=True)
    if args.threads and args.threads < (os.cpu_count() or 1):
        parts.insert(
            0,
            f"{args.threads} thread(s) on {os.cpu_count()} cores (`--threads`): other jobs kept the "
            "cores busy during this run, and torch's threads on cores that are not free wait on "
            "one another at every operator (several times slower); every ratio below compares "
            "runs at the same thread count.",
        )
    body = "\n\n".join(parts)
    write_section(args.out, "peers", "ResNet-18 against MONAI and plain PyTorch; peak; ONNX Runtime", body)


if __name__ == "__main__":
    main()
