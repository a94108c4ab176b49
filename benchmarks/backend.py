"""Back-end size, MACs and CPU latency: the package's Nes2NetBackend, run eagerly, through ONNX Runtime and
(`--compile`) compiled by torch.compile, against a literal transcription of the paper, in one run.

    python benchmarks/backend.py [--threads 2] [--repeats 20] [--quick] [--compile] [--device cuda] [--output FILE]

Every path holds the same weights (the transcription's state dict converted with the checkpoint converter's key
mapping) in eval mode, with autograd off, 2 intra-op threads, and starts from the same front-end output: (batch, 201,
1024) features, which the transcription receives permuted to (batch, 1024, 201) as a view, as the authors' model
passes its SSL features to its back-end. The eager path is therefore the package's CPU inference path
(`modeling_nes2net.backend_inference`: GEMM convolutions with batch norm folded in). The ONNX Runtime path is the module
itself exported by `modeling_nes2net.onnx_export.export_module`, with ONNX Runtime's default graph optimisations
(constant folding, operator fusion); torch.compile is inductor (C++ code generation with gcc).
Prints one row per variant and batch size: parameters, MACs (ptflops rules), the median wall-clock latency of each
path, its speed-up over the paper's loop in wall-clock time and in this process's CPU time (medians of the same runs;
CPU time moves less with other processes' load) and its max |logit difference| from it, then (without `--quick`) the
share of CPU time by operator; writes the rows, the machine and its load to `--output` (default: `backend.json` next to this script,
which `benchmarks/render.py` renders into the README). `--device cuda` runs the torch paths on the GPU (ONNX Runtime
stays on the CPU and is left out); on a machine without CUDA it prints one line and exits.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from modeling_nes2net import Nes2NetConfig
from modeling_nes2net.complexity import backend_complexity
from modeling_nes2net.onnx_export import export_module, inference_session
from benchmarks.results import add_device_argument, alternating_medians, cuda_missing, machine_record, write_results
from tests.oracles.nes2net import ReferenceNes2Net
from tests.oracles.backend_with_head import BackendWithHead

BASELINE = ("our transcription of the authors' Nes2Net loop (tests/oracles/nes2net.py), given the (batch, frames, D) "
            "features permuted to (batch, D, frames) as a view, as the authors' model feeds its back-end")

VARIANTS = {
    "Nes2Net-X (2 logits)": (dict(num_labels=2), dict(n_logits=2)),
    "Nes2Net-X (1 logit)": (dict(num_labels=1, loss="focal_bce"), dict(n_logits=1)),
    "Nes2Net (1 logit)": (dict(num_labels=1, backend_variant="nes2net"), dict(n_logits=1, variant="nes2net")),
    "Nes2Net-X SeLU ASTP": (
        dict(activation="selu", pooling="astp", se_min_channels=2),
        dict(activation="selu", pooling="astp", se_min_channels=2),
    ),
}


def paired_models(config_kwargs: dict, reference_kwargs: dict) -> tuple[BackendWithHead, ReferenceNes2Net]:
    torch.manual_seed(0)
    reference = ReferenceNes2Net(**reference_kwargs)
    with torch.no_grad():  # non-trivial normalisation statistics, so the comparison exercises them
        for name, buffer in reference.named_buffers():
            if name.endswith("running_var"):
                buffer.uniform_(0.5, 2.0)
            elif name.endswith("running_mean"):
                buffer.normal_(0.0, 0.1)
    ours = BackendWithHead(Nes2NetConfig(**config_kwargs))
    ours.load_original(reference.state_dict())
    return ours.eval(), reference.eval()


class OnnxRuntimeBackend:
    """`module` exported to ONNX and run by ONNX Runtime: `(batch, frames, D)` features -> logits tensor."""

    def __init__(self, module: BackendWithHead, folder: str, threads: int):
        path = export_module(module, (torch.randn(2, 201, 1024),), ("features",), Path(folder) / "backend.onnx")
        self.session = inference_session(path, threads)

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        (logits,) = self.session.run(["logits"], {"features": features.contiguous().numpy()})
        return torch.from_numpy(logits)


def time_by_operator(module: torch.nn.Module, features: torch.Tensor, top: int = 6) -> list[tuple[str, float]]:
    """The `top` operators by share of self CPU time over 5 forwards."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        module(features)
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            for _ in range(5):
                module(features)
    events = profiler.key_averages()
    total = sum(event.self_cpu_time_total for event in events)
    ranked = sorted(events, key=lambda event: event.self_cpu_time_total, reverse=True)[:top]
    return [(event.key, event.self_cpu_time_total / total) for event in ranked]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="5 repeats and no operator profile (about a minute)")
    parser.add_argument("--frames", type=int, default=201)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (minutes of compilation)")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("backend.json"))
    add_device_argument(parser)
    args = parser.parse_args()
    if cuda_missing(args.device):
        return
    torch.set_num_threads(args.threads)
    repeats = 5 if args.quick else args.repeats
    machine = machine_record(args.device, args.threads)

    paths = ["eager"] + (["onnxruntime"] if args.device == "cpu" else []) + (["compiled"] if args.compile else [])
    header = f"{'variant':<22} {'batch':>5} {'params':>9} {'MACs':>9} {'paper loop ms':>14}" + "".join(
        f" {path + ' ms':>15} {'wall x':>9} {'CPU x':>9} {'max |diff|':>10}" for path in paths
    )
    print(f"{args.device}, {args.threads} threads, T = {args.frames} frames, median of {repeats} runs, "
          f"load {machine['load_before']}")
    print(header)
    print("-" * len(header))
    folder = tempfile.mkdtemp(prefix="nes2net-backend-")
    rows = []
    for name, (config_kwargs, reference_kwargs) in VARIANTS.items():
        complexity = backend_complexity(Nes2NetConfig(**config_kwargs), frames=args.frames)
        ours, reference = (module.to(args.device) for module in paired_models(config_kwargs, reference_kwargs))
        modules = {"eager": ours}
        if "onnxruntime" in paths:
            modules["onnxruntime"] = OnnxRuntimeBackend(ours, folder, args.threads)
        if args.compile:
            modules["compiled"] = torch.compile(ours)
        for batch_size in (1, 16):
            ours_input = torch.randn(batch_size, args.frames, 1024, device=args.device)
            features = ours_input.permute(0, 2, 1)
            with torch.inference_mode():
                expected = reference(features)
                differences = {path: (module(ours_input) - expected).abs().max().item()
                               for path, module in modules.items()}
            runs = {"reference": (reference, features)} | {path: (module, ours_input) for path, module in modules.items()}
            timings = alternating_medians(runs, repeats, args.device)
            paper = timings["reference"]
            speedups = {path: (paper.wall / timings[path].wall, paper.cpu / timings[path].cpu) for path in paths}
            cells = "".join(
                f" {timings[path].wall * 1e3:>15.2f} {speedups[path][0]:>8.2f}x {speedups[path][1]:>8.2f}x"
                f" {differences[path]:>10.1e}" for path in paths
            )
            print(f"{name:<22} {batch_size:>5} {complexity['parameters']:>9,} {complexity['macs'] / 1e6:>8.2f}M "
                  f"{paper.wall * 1e3:>14.2f}{cells}")
            rows.append({
                "variant": name, "batch": batch_size, "frames": args.frames, "repeats": repeats,
                "parameters": complexity["parameters"], "macs": complexity["macs"], "baseline": BASELINE,
                "baseline_ms": paper.wall * 1e3, "baseline_cpu_ms": paper.cpu * 1e3,
                "paths": {path: {"ms": timings[path].wall * 1e3, "speedup": speedups[path][0],
                                 "cpu_ms": timings[path].cpu * 1e3, "cpu_speedup": speedups[path][1],
                                 "max_abs_diff": differences[path]} for path in paths},
            })
    write_results(args.output, "backend", machine, rows)
    if args.quick or args.device != "cpu":
        return
    ours, reference = paired_models(*VARIANTS["Nes2Net-X (2 logits)"])
    features = torch.randn(16, args.frames, 1024)
    print("\nwhere the time goes (Nes2Net-X, batch 16, share of CPU time by operator)")
    for name, module, inputs in (("paper loop", reference, features.permute(0, 2, 1)), ("ours", ours, features)):
        shares = ", ".join(f"{key} {share:.0%}" for key, share in time_by_operator(module, inputs))
        print(f"  {name:<10} {shares}")


if __name__ == "__main__":
    main()
