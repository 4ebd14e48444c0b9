"""What recording costs: a forward+backward step of the test models unrecorded vs recorded by acceldoctor.record.

For each model — the transformer block and the MLP of tests/compare/models.py, at the tests' sizes and at a larger,
more typical size — runs training steps unrecorded, recorded with statistics at module level, and recorded with
statistics at op level, interleaved round by round so that a slow moment of the machine hits every variant alike.
A recorded round is one `with acceldoctor.record(...)` block of --steps steps; its step time runs from the end of
entering to the end of writing every record (Recorder.flush), so it holds all per-record work; entering and
closing the recording (files, meta.json, the writer thread) are reported apart, once per recording. Prints, per
variant, the median step time over --repeats rounds, its spread (median absolute deviation) and the ratio to the
unrecorded step. Target: module level at most 1.5x.

    python benchmarks/record_overhead.py [--repeats 11] [--steps 10] [--sizes test large] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "compare"))
from models import build_mlp, build_transformer_block, to  # noqa: E402

import acceldoctor  # noqa: E402

TARGET_MODULE_RATIO = 1.5
VARIANTS = (None, "module", "op")
MODELS = {
    "test": [("transformer block", build_transformer_block, {}), ("MLP", build_mlp, {})],
    "large": [("transformer block", build_transformer_block, {"batch": 8, "seq": 128, "dim": 256, "hidden": 1024}),
              ("MLP", build_mlp, {"batch": 256, "dim": 512, "hidden": 2048, "depth": 4})],
}


def synchronize(device: torch.device) -> None:
    if device.type != "cpu":
        getattr(torch, device.type).synchronize()


def step(model, inputs) -> None:
    model(*inputs).pow(2).mean().backward()


def one_round(model, inputs, steps: int, device: torch.device, level: str | None,
              folder: Path) -> tuple[float, float]:
    """(seconds per step, seconds of entering + closing the recording)."""
    synchronize(device)
    if level is None:
        begin = time.perf_counter()
        for _ in range(steps):
            step(model, inputs)
        synchronize(device)
        return (time.perf_counter() - begin) / steps, 0.0
    recording = acceldoctor.record(model, folder / level, level=level)
    begin = time.perf_counter()
    recording.__enter__()
    entered = time.perf_counter()
    for _ in range(steps):
        step(model, inputs)
    recording.flush()
    synchronize(device)
    stepped = time.perf_counter()
    recording.__exit__(None, None, None)
    return (stepped - entered) / steps, (entered - begin) + (time.perf_counter() - stepped)


def median_and_spread(values: list[float]) -> tuple[float, float]:
    middle = statistics.median(values)
    return middle, statistics.median(abs(v - middle) for v in values)


def measure(name: str, model, inputs, args, device: torch.device) -> dict[str | None, float]:
    times: dict[str | None, list[float]] = {v: [] for v in VARIANTS}
    fixed: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for level in VARIANTS:  # warm-up: allocator, kernels, first-call caches
            one_round(model, inputs, 2, device, level, folder)
        for _ in range(args.repeats):
            for level in VARIANTS:
                per_step, setup = one_round(model, inputs, args.steps, device, level, folder)
                times[level].append(per_step)
                if level is not None:
                    fixed.append(setup)
    base = statistics.median(times[None])
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters, input {list(inputs[0].shape)}, "
          f"on {device}")
    for level in VARIANTS:
        middle, spread = median_and_spread(times[level])
        label = "unrecorded" if level is None else f"recorded, {level} level"
        print(f"  {label:24s} {middle * 1e3:9.3f} ms/step  (MAD {spread * 1e3:.3f})  ratio {middle / base:5.2f}")
    middle, spread = median_and_spread(fixed)
    print(f"  entering + closing a recording: {middle * 1e3:.2f} ms (MAD {spread * 1e3:.2f}), once per `with` block")
    return {level: statistics.median(times[level]) / base for level in VARIANTS}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--sizes", nargs="+", choices=sorted(MODELS), default=["test", "large"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; {args.repeats} rounds of {args.steps} "
          f"steps per variant, interleaved")
    worst: dict[str, float] = {}
    for size in args.sizes:
        for name, build, options in MODELS[size]:
            model, inputs = to(*build(0, **options), device)
            ratios = measure(f"{name} ({size} size)", model, inputs, args, device)
            worst[size] = max(worst.get(size, 0.0), ratios["module"])
    for size, ratio in worst.items():
        verdict = "within" if ratio <= TARGET_MODULE_RATIO else "ABOVE"
        print(f"module level, {size} size: worst ratio {ratio:.2f}, {verdict} the {TARGET_MODULE_RATIO}x target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
