"""performance.train_step: tokens/s and model TFLOP/s of a small transformer's training step, per dtype."""

from __future__ import annotations

import copy
import math
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from acceldoctor.checks.context import CheckContext, CheckOutcome
from acceldoctor.checks.dtypes import FP32, DtypeVariant
from acceldoctor.checks.performance._spec import device_name, judge_throughput, spec_for
from acceldoctor.checks.performance._timing import measure
from acceldoctor.checks.performance._transformer import TransformerShape, build_model, language_model_loss
from acceldoctor.checks.registry import CheckDoc, Param, register_check
from acceldoctor.checks.unsupported import is_unsupported
from acceldoctor.report.model import Metric, Status

# The model when its shape parameters are left at 0, by device kind and level.
CPU_SHAPES = {"standard": TransformerShape(d_model=256, layers=2, heads=4, seq_len=128, batch=4, vocab=1024),
              "full": TransformerShape(d_model=384, layers=4, heads=6, seq_len=256, batch=2, vocab=2048)}
ACCELERATOR_SHAPES = {
    "standard": TransformerShape(d_model=1024, layers=4, heads=16, seq_len=1024, batch=8, vocab=8192),
    "full": TransformerShape(d_model=2048, layers=6, heads=16, seq_len=2048, batch=4, vocab=16384),
}
SHAPE_PARAMS = ("d_model", "layers", "heads", "seq_len", "batch", "vocab")
AUTOCAST_DTYPES = (torch.bfloat16, torch.float16)
# The slowdown probe starts at this many rows and doubles them until its float32 call lasts PROBE_MIN_S seconds:
# compute-bound, so that launch overhead does not hide how much slower a dtype computes.
PROBE_MIN_ROWS, PROBE_MIN_S = 64, 2e-3


@dataclass
class _Run:
    dtype: str
    step_s: float
    spread: float
    loss: float
    steps: int


def _shape(ctx: CheckContext) -> TransformerShape:
    table = CPU_SHAPES if ctx.device.type == "cpu" else ACCELERATOR_SHAPES
    default = table.get(ctx.level, table["standard"])
    chosen = {name: int(ctx.params.get(name) or 0) or getattr(default, name) for name in SHAPE_PARAMS}
    return TransformerShape(**chosen)


def _autocast(device: torch.device, dtype: torch.dtype | None):
    """Autocast to `dtype`; plain float32 (no autocast at all) for None."""
    return nullcontext() if dtype is None else torch.autocast(device_type=device.type, dtype=dtype)


class _Slowdown:
    """How many times longer the forward and backward of the model's largest matrix product (the MLP's first) take
    under autocast to a dtype than in float32; None when autocast does not compute in that dtype on the device."""

    def __init__(self, ctx: CheckContext, shape: TransformerShape):
        self.device = ctx.device
        gen = ctx.generator(salt=7)
        self.weight = torch.randn(4 * shape.d_model, shape.d_model, generator=gen).to(ctx.device).requires_grad_()
        x = torch.randn(shape.tokens, shape.d_model, generator=gen).to(ctx.device)
        rows = min(PROBE_MIN_ROWS, shape.tokens)
        while True:
            self.x = x[:rows].clone().requires_grad_()
            self._call(None)
            ctx.synchronize()
            begin = time.perf_counter()
            self._call(None)
            ctx.synchronize()
            if time.perf_counter() - begin >= PROBE_MIN_S or rows >= shape.tokens:
                break
            rows = min(2 * rows, shape.tokens)
        self.reference = measure(lambda: self._call(None), ctx.device, warmup=1, repeats=3).median

    def _call(self, dtype: torch.dtype | None) -> torch.dtype:
        """Forward and backward (input and weight gradients, as in training) of the product; its output dtype."""
        with _autocast(self.device, dtype):
            out = F.linear(self.x, self.weight)
        torch.autograd.grad(out, (self.x, self.weight), torch.ones_like(out))
        return out.dtype

    def __call__(self, dtype: torch.dtype) -> float | None:
        with warnings.catch_warnings():  # autocast warns, then disables itself, for a dtype it lacks
            warnings.simplefilter("ignore")
            try:
                if self._call(dtype) != dtype:
                    return None
            except (RuntimeError, NotImplementedError) as exc:
                if is_unsupported(exc):  # a missing kernel or autocast device type; a device error propagates
                    return None
                raise
            return measure(lambda: self._call(dtype), self.device, warmup=0, repeats=3).median / self.reference


def _grad_scaler(device: torch.device, dtype: torch.dtype | None):
    if dtype != torch.float16:
        return None
    try:
        return torch.amp.GradScaler(device.type)
    except (RuntimeError, AttributeError, TypeError):
        return None


def _train(ctx: CheckContext, variant: DtypeVariant, base: torch.nn.Module, tokens, targets) -> _Run:
    warmup, repeats = int(ctx.params["warmup"]), int(ctx.params["repeats"])
    dtype = None if variant.dtype == torch.float32 else variant.dtype
    model = copy.deepcopy(base).to(ctx.device)  # every dtype starts from the same weights
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)  # torch picks foreach kernels where it has them
    scaler = _grad_scaler(ctx.device, dtype)
    last: list[torch.Tensor] = []

    def step():
        optimizer.zero_grad(set_to_none=True)
        with _autocast(ctx.device, dtype):
            loss = language_model_loss(model, tokens, targets)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        last[:] = [loss.detach()]

    with variant.math_mode():
        m = measure(step, ctx.device, warmup=warmup, repeats=repeats)
    loss = float(last[0])
    return _Run(variant.name, m.median, m.relative_spread, loss, warmup + repeats * m.calls_per_repeat)


@register_check(
    id="performance.train_step",
    title="A small transformer's training step runs at a plausible share of the device's peak, with a finite loss",
    levels=("standard", "full"),
    timeout_s=300.0,
    params=(
        Param("d_model", 0, "Model width. 0 = chosen by device kind: 256 on the CPU (384 at full), 1024 on "
              "accelerators (2048 at full).", minimum=0),
        Param("layers", 0, "Transformer blocks. 0 = 2 on the CPU (4 at full), 4 on accelerators (6 at full).",
              minimum=0),
        Param("heads", 0, "Attention heads; must divide d_model. 0 = 4 on the CPU (6 at full), 16 on "
              "accelerators.", minimum=0),
        Param("seq_len", 0, "Tokens per sequence. 0 = 128 on the CPU (256 at full), 1024 on accelerators (2048 at "
              "full).", minimum=0),
        Param("batch", 0, "Sequences per step. 0 = 4 on the CPU (2 at full), 8 on accelerators (4 at full).",
              minimum=0),
        Param("vocab", 0, "Vocabulary size. 0 = 1024 on the CPU (2048 at full), 8192 on accelerators (16384 at "
              "full).", minimum=0),
        Param("warmup", 2, "Untimed training steps before each dtype is measured.", {"full": 3}, minimum=0),
        Param("repeats", 7, "Timed training steps per dtype; the median is reported, the interquartile range as "
              "spread.", {"full": 15}, minimum=5),
        Param("max_dtype_s", 3.0, "bfloat16 or float16 is skipped when its predicted measuring time (float32's "
              "step time times how much slower its matrix products run, times warmup + repeats) exceeds this many "
              "seconds: most CPUs emulate them tens of times slower. float32, and a dtype no slower than float32, "
              "are always measured.", {"full": 10.0}, minimum=0),
        Param("warn_efficiency", 0.10, "Warn when a dtype's model FLOPs utilization (achieved TFLOP/s over the spec "
              "sheet's dense peak for it) is below this.", minimum=0, maximum=1),
        Param("fail_efficiency", 0.03, "Fail when a dtype's model FLOPs utilization is below this.", minimum=0,
              maximum=1),
    ),
    doc=CheckDoc(
        verifies="Trains a small decoder-only transformer built in code (no downloaded weights; weights and tokens "
                 "drawn from the run's seed): token and learned position embeddings, pre-norm blocks of LayerNorm, "
                 "causal multi-head self-attention (`scaled_dot_product_attention`) and a 4x-wide GELU MLP with "
                 "residuals, a final LayerNorm and a projection to the vocabulary, with cross-entropy against "
                 "random target tokens and AdamW (foreach kernels where torch has them). One timed call is one full "
                 "step: zero the gradients, forward, loss, backward, optimizer step. It runs in float32 and, with "
                 "float32 master weights under `torch.autocast`, in bfloat16 and float16 (float16 with a "
                 "`GradScaler` where torch offers one for the device); each dtype starts from the same weights, is "
                 "warmed up, then timed over repeated steps (device events on accelerators). The model is 2 layers "
                 "of width 256 at sequence length 128 and batch 4 on the CPU, 4 layers of width 1024 at sequence "
                 "length 1024 and batch 8 on accelerators (larger at full level). Model FLOPs per step are "
                 "6·N·T + 12·L·s·d·T, where T = batch·seq tokens, N = 12·L·d² + d·V the weights of the matrix "
                 "products (attention projections, MLP, output projection; embeddings, norms and biases left out), "
                 "L layers, s the sequence length, d the width and V the vocabulary: forward plus twice-as-costly "
                 "backward of every matrix product, attention scores counted over the full s×s matrix as MFU "
                 "figures usually are. Reports per dtype `tokens_per_s` (T over the median step time), `tflops` "
                 "(model FLOPs over the median step time), `step_time`, its relative interquartile range "
                 "(`step_spread`), the final `loss` and, when the device's spec sheet lists a peak for the dtype, "
                 "`efficiency`: achieved TFLOP/s over the dense peak, the model FLOPs utilization (MFU). bfloat16 "
                 "or float16 is skipped, and named in the message, when its predicted measuring time exceeds "
                 "`max_dtype_s` (on most CPUs, which emulate them).",
        why="GEMM and bandwidth figures can look right while real training is slow: a training step mixes matrix "
            "products with attention, normalization, activations, autocast casts, the backward pass and the "
            "optimizer, and any of them can fall back to a slow kernel (an attention or LayerNorm kernel missing "
            "for a dtype, an operator silently running on the host, an optimizer without fused or foreach "
            "kernels). Tokens per second of a real step is the number a user compares between chips. A training "
            "step that produces a NaN or Inf loss on random data is broken device math, the failure users "
            "otherwise meet hours into a job.",
        failure_means="`fail` when the loss is not finite (NaN or Inf) after the steps in some dtype: the message "
                      "names the dtype; the device's arithmetic or one of its kernels (attention, normalization, "
                      "the loss, the optimizer) produced NaN or Inf where a healthy device computes a loss near "
                      "ln(vocab). Otherwise, against the spec sheet: `warn` when a dtype's MFU is below "
                      "`warn_efficiency` (10%), `fail` below `fail_efficiency` (3%); the message names the dtype, "
                      "the achieved and the advertised TFLOP/s. The limits are low on purpose: large-model "
                      "training reaches 30-50% MFU, but a small block in eager mode spends much of its step in "
                      "kernel launches, normalization and the optimizer and reaches far less, so only an "
                      "order-of-magnitude loss is judged — a CPU fallback, a kernel without tensor cores, a "
                      "throttled chip. On the CPU (and devices without a spec sheet entry) throughput is reported "
                      "without a verdict.",
        remedy="For a non-finite loss: run `acceldoctor check --select 'correctness.*'` on the device to find the "
               "operator that computes wrongly (if the message names only bfloat16 or float16, their kernels are at "
               "fault: float32 trained the same model with a finite loss), update the driver and vendor stack, and "
               "report the dtype and model shape to the vendor. For low MFU: re-run with the device otherwise idle; "
               "compare with `performance.gemm` — if GEMMs reach the spec sheet but this step does not, profile one "
               "step (torch.profiler) for operators running on the host or slow attention, normalization or optimizer "
               "kernels; if GEMMs are slow too, check clocks, power limit and throttle reasons in the vendor tool "
               "(nvidia-smi, rocm-smi, npu-smi). Compare with another device of the same model using `acceldoctor "
               "check --baseline`.",
    ),
)
def check_train_step(ctx: CheckContext) -> CheckOutcome:
    shape = _shape(ctx)
    warmup, repeats = int(ctx.params["warmup"]), int(ctx.params["repeats"])
    budget = float(ctx.params["max_dtype_s"])
    variants = [FP32] + [v for v in ctx.variants() if v.dtype in AUTOCAST_DTYPES]
    base = build_model(shape, seed=ctx.seed)
    gen = ctx.generator(salt=11)
    tokens = torch.randint(shape.vocab, (shape.batch, shape.seq_len), generator=gen).to(ctx.device)
    targets = torch.randint(shape.vocab, (shape.batch, shape.seq_len), generator=gen).to(ctx.device)
    runs: list[_Run] = []
    skipped: list[str] = []
    too_slow: list[str] = []
    slowdown: _Slowdown | None = None
    for i, variant in enumerate(variants):
        ctx.progress(i, len(variants), variant.name)
        if variant.dtype != torch.float32:
            slowdown = slowdown or _Slowdown(ctx, shape)
            ratio = slowdown(variant.dtype)
            if ratio is None:
                skipped.append(f"{variant.name}, which autocast does not compute in on this device")
                continue
            predicted = runs[0].step_s * ratio * (warmup + repeats)
            if ratio > 1 and predicted > budget:
                too_slow.append(f"{variant.name} (about {predicted:.0f} s predicted, its matrix products "
                                f"{ratio:.{0 if ratio >= 10 else 1}f}x slower than float32's)")
                continue
        runs.append(_train(ctx, variant, base, tokens, targets))
    ctx.progress(len(variants), len(variants), "done")
    flops = shape.flops_per_step
    metrics = [Metric(name="tokens_per_step", value=shape.tokens, unit="tokens"),
               Metric(name="flops_per_step", value=flops, unit="FLOP")]
    for r in runs:
        metrics += [
            Metric(name="tokens_per_s", value=shape.tokens / r.step_s, unit="tokens/s", dtype=r.dtype),
            Metric(name="tflops", value=flops / r.step_s / 1e12, unit="TFLOP/s", dtype=r.dtype),
            Metric(name="step_time", value=r.step_s * 1e3, unit="ms", dtype=r.dtype),
            Metric(name="step_spread", value=r.spread, unit="ratio", dtype=r.dtype),
            Metric(name="loss", value=r.loss if math.isfinite(r.loss) else None, unit="nats", dtype=r.dtype),
        ]
    if too_slow:
        skipped.append(f"as too slow to measure within max_dtype_s={budget:g} s: {', '.join(too_slow)}")
    skip_note = f"; skipped {'; '.join(skipped)}" if skipped else ""
    broken = [r for r in runs if not math.isfinite(r.loss)]
    if broken:
        which = ", ".join(f"{r.dtype} ({r.loss})" for r in broken)
        return CheckOutcome(Status.FAIL, f"The training loss of the {shape.describe()} is not finite after "
                                         f"{broken[0].steps} steps in {which}: the device computed NaN or Inf where "
                                         f"a healthy one gives about {math.log(shape.vocab):.1f} (ln of the "
                                         f"vocabulary size, the loss on random targets){skip_note}.",
                            metrics)
    warn_at, fail_at = float(ctx.params["warn_efficiency"]), float(ctx.params["fail_efficiency"])
    spec = spec_for(ctx.device)
    verdict = judge_throughput(spec, [(r.dtype, flops / r.step_s / 1e12, "TFLOP/s") for r in runs], warn_at, fail_at,
                               metrics, what="efficiency (MFU)")
    status, problems, judged = verdict.status, verdict.problems, verdict.judged
    if problems:
        more = f" ({len(problems) - 1} more dtype(s) below par)" if len(problems) > 1 else ""
        return CheckOutcome(status, f"Training throughput of the {shape.describe()} is low: {problems[0]}{more}"
                                    f"{skip_note}.", metrics)
    summary = ", ".join(f"{shape.tokens / r.step_s:,.0f} tokens/s ({flops / r.step_s / 1e12:.3g} TFLOP/s) in "
                        f"{r.dtype}" for r in runs)
    subject = device_name(ctx.device) or ("the CPU" if ctx.device.type == "cpu" else str(ctx.device))
    against = " (no spec sheet to compare with)" if spec is None else \
        " (the spec sheet lists no peak for these dtypes)" if not judged else " (within the spec sheet's expectations)"
    return CheckOutcome(Status.PASS, f"Training a {shape.describe()} on {subject}: {summary}{against}{skip_note}.",
                        metrics)
