"""Training-step throughput of the zoo, eager and compiled, on the CPU or a GPU.

Every model runs forward + backward + SGD step on the same batch, interleaved round by round so
that the machine's background load hits all of them alike; the tables give the median images/s.

- Default (``--device cpu``): small scientific images (1 x 32 x 32, batch 32, small-input stems,
  width 0.25), with the ratio to the fully connected baseline, and NCHW against channels_last for
  one ResNet, to back the choice of eager NCHW as the CPU default. Section "models".
- ``--canonical`` (the default on ``--device cuda``): the papers' configurations (3 x 224 x 224,
  299 for Inception v3; batch 128; bf16 autocast and channels_last on a GPU) against
  torchvision's and timm's implementations where they are installed, at identical settings.
  Section "models-canonical" (with the device in its title).
- ``--compile``: each astrocnn model also under ``torch.compile`` (mode from ``--compile-mode``,
  default: astrocnn's choice for the network, see ``astrocnn.engine.train.compile_mode``), with
  the compilation time and the compiled / eager ratio. Section "models-compile".
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from pathlib import Path

import torch

from astrocnn import create_model
from report import write_section

SMALL = [
    ("mlp", {"input_size": (32, 32)}),
    ("simple_cnn", {"input_size": (32, 32)}),
    ("resnet18", {"small_input": True, "width": 0.25}),
    ("preact_resnet18", {"small_input": True, "width": 0.25}),
    ("vgg11_bn", {"small_input": True, "width": 0.25}),
    ("googlenet", {"small_input": True, "width": 0.25}),
    ("inception_v3", {"small_input": True, "width": 0.25}),
    ("unet", {"width": 0.25}),
]
#: (astrocnn name, image side, torchvision name, timm name)
CANONICAL = [
    ("resnet18", 224, "resnet18", "resnet18"),
    ("resnet50", 224, "resnet50", "resnet50"),
    ("vgg16", 224, "vgg16", "vgg16"),
    ("googlenet", 224, "googlenet", None),
    ("inception_v3", 299, "inception_v3", "inception_v3"),
]


def step_fn(model: torch.nn.Module, x: torch.Tensor, autocast):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast():
            out = model(x)
        out = out[0] if isinstance(out, tuple) else getattr(out, "logits", out)
        out.float().square().mean().backward()
        opt.step()

    return step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def interleaved(steps: dict, rounds: int, device: torch.device) -> dict[str, float]:
    """Median seconds per step of each entry, the entries run in turn every round."""
    for step in steps.values():  # warm-up (and, compiled, the compilation)
        step()
        step()
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            _sync(device)
            t0 = time.perf_counter()
            step()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def small_table(args, device: torch.device) -> str:
    x = torch.randn(args.batch_size or 32, 1, 32, 32, device=device)
    models = {}
    for name, options in SMALL:
        models[name] = create_model(name, in_channels=1, num_outputs=1 if name == "unet" else 2, **options)
    models["resnet18 channels_last"] = create_model(
        "resnet18", in_channels=1, num_outputs=2, small_input=True, width=0.25
    ).to(memory_format=torch.channels_last)
    steps = {}
    for name, model in models.items():
        model.to(device)
        xx = x.to(memory_format=torch.channels_last) if "channels_last" in name else x
        steps[name] = step_fn(model, xx, contextlib.nullcontext)
    seconds = interleaved(steps, args.rounds, device)
    rate = {name: len(x) / s for name, s in seconds.items()}
    rows = [
        f"| {name} | {params(models[name]):,} | {rate[name]:,.0f} | {rate[name] / rate['mlp']:.3f} |"
        for name in steps
    ]
    return (
        f"Training step (forward, backward, SGD) on a batch of {len(x)} images of 1 x 32 x 32, "
        f"median of {args.rounds} interleaved rounds, {device.type}. "
        "Small-input stems, width 0.25 where the model has them.\n\n"
        "| model | parameters | images/s | ratio to mlp |\n|---|---:|---:|---:|\n"
        + "\n".join(rows)
        + "\n\nresnet18 channels_last / NCHW throughput, same run: "
        f"{rate['resnet18 channels_last'] / rate['resnet18']:.2f}"
    )


def _peer(library: str, name: str | None):
    if name is None:
        return None
    try:
        if library == "torchvision":
            import torchvision

            inception = name in ("googlenet", "inception_v3")
            kwargs = {"aux_logits": False, "init_weights": False} if inception else {}
            return getattr(torchvision.models, name)(weights=None, num_classes=1000, **kwargs)
        import timm

        return timm.create_model(name, pretrained=False, num_classes=1000)
    except Exception:  # not installed, or it will not build beside this torch
        return None


def canonical_table(args, device: torch.device) -> str:
    on_gpu = device.type == "cuda"
    batch = args.batch_size or (128 if on_gpu else 8)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if on_gpu else contextlib.nullcontext
    layout = torch.channels_last if on_gpu else torch.contiguous_format
    rows = []
    for name, side, tv_name, timm_name in CANONICAL:
        if args.only and name not in args.only.split(","):
            continue
        x = torch.randn(batch, 3, side, side, device=device).to(memory_format=layout)
        models = {"astrocnn": create_model(name, in_channels=3, num_outputs=1000)}
        for library, peer in (("torchvision", tv_name), ("timm", timm_name)):
            model = _peer(library, peer)
            if model is not None:
                models[library] = model
        steps = {k: step_fn(m.to(device).to(memory_format=layout), x, autocast) for k, m in models.items()}
        seconds = interleaved(steps, args.rounds, device)
        best_peer = min((s for k, s in seconds.items() if k != "astrocnn"), default=None)
        cells = " | ".join(
            f"{batch / seconds[k]:,.0f}" if k in seconds else "not installed"
            for k in ("astrocnn", "torchvision", "timm")
        )
        ratio = f"{best_peer / seconds['astrocnn']:.3f}" if best_peer else "n/a"
        rows.append(f"| {name} | {side} | {params(models['astrocnn']):,} | {cells} | {ratio} |")
        print(rows[-1], flush=True)
        del models, steps
        if on_gpu:
            torch.cuda.empty_cache()
    settings = "bf16 autocast, channels_last" if on_gpu else "float32, NCHW"
    return (
        f"Training step (forward, backward, SGD) at the papers' input sizes, batch {batch}, {settings}, "
        f"{device.type}; median of {args.rounds} interleaved rounds. Ratio: astrocnn's throughput over "
        "the best of the peers installed (1.0: as fast).\n\n"
        "| model | input | parameters | astrocnn img/s | torchvision img/s | timm img/s | ratio |\n"
        "|---|---:|---:|---:|---:|---:|---:|\n" + "\n".join(rows)
    )


def compile_table(args, device: torch.device) -> str:
    from astrocnn.engine.train import choose_compile_mode

    on_gpu = device.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if on_gpu else contextlib.nullcontext
    layout = torch.channels_last if on_gpu else torch.contiguous_format
    cases = [
        ("resnet18", {"small_input": True, "width": 0.25}, 1, 32, 256 if on_gpu else 32),
        ("simple_cnn", {"input_size": (32, 32)}, 1, 32, 256 if on_gpu else 32),
        ("resnet50", {}, 3, 224, 128 if on_gpu else 4),
    ]
    rows = []
    for name, options, channels, side, batch in cases:
        if args.only and name not in args.only.split(","):
            continue
        x = torch.randn(batch, channels, side, side, device=device).to(memory_format=layout)
        torch.manual_seed(0)
        eager = create_model(name, in_channels=channels, num_outputs=2, **options).to(device)
        eager = eager.to(memory_format=layout)
        mode = args.compile_mode or choose_compile_mode(eager, device.type)
        twin = create_model(name, in_channels=channels, num_outputs=2, **options).to(device)
        twin = twin.to(memory_format=layout)
        compiled = torch.compile(twin, mode=None if mode == "default" else mode)
        step = step_fn(compiled, x, autocast)
        t0 = time.perf_counter()
        step()
        _sync(device)
        compile_s = time.perf_counter() - t0
        seconds = interleaved({"eager": step_fn(eager, x, autocast), "compiled": step}, args.rounds, device)
        rows.append(
            f"| {name} | {channels} x {side} x {side} | {batch} | {mode} | {compile_s:.0f} | "
            f"{batch / seconds['eager']:,.0f} | {batch / seconds['compiled']:,.0f} | "
            f"**{seconds['eager'] / seconds['compiled']:.2f}** |"
        )
        print(rows[-1], flush=True)
    settings = "bf16 autocast, channels_last" if on_gpu else "float32, NCHW"
    return (
        f"`torch.compile` against eager, training step (forward, backward, SGD), {settings}, "
        f"{device.type}; median of {args.rounds} interleaved rounds after the compilation. Mode: "
        "astrocnn's choice for the network and device unless --compile-mode says otherwise.\n\n"
        "| model | input | batch | mode | compile (s) | eager img/s | compiled img/s | compiled / eager |\n"
        "|---|---|---:|---|---:|---:|---:|---:|\n" + "\n".join(rows)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--canonical", action="store_true", help="the papers' configurations, against peers")
    parser.add_argument("--compile", action="store_true", help="compiled against eager")
    parser.add_argument("--compile-mode", help="default, reduce-overhead, max-autotune, ...")
    parser.add_argument("--only", help="models of the canonical or compile tables, comma separated")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    if args.compile:
        body = compile_table(args, device)
        write_section(args.out, f"models-compile-{device.type}", f"Compiled networks ({device.type})", body)
    elif args.canonical or device.type == "cuda":
        body = canonical_table(args, device)
        title = f"Model zoo against torchvision and timm ({device.type})"
        write_section(args.out, f"models-canonical-{device.type}", title, body)
    else:
        body = small_table(args, device)
        write_section(args.out, "models", "Model zoo: training-step throughput", body)
    print(body)


if __name__ == "__main__":
    main()
