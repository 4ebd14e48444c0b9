"""Training-like loop: a few steps of a small transformer from the same weights and data, again and again, each
loss compared with the trajectory recorded on the first pass.

Forward, backward and optimizer together use attention, layer norm, GELU, embeddings and the optimizer's
elementwise kernels that a GEMM burn never touches. From identical weights and data a device must retrace the
same losses: on the CPU bit for bit; on accelerators within a relative 1e-4, because some backward kernels
(attention, embedding gradients) add in an order that varies run to run even in deterministic mode. A loss that
leaves the trajectory, or turns NaN, is a wrong computation somewhere in the step.
"""

from __future__ import annotations

import math

import torch

from acceldoctor.checks.performance._transformer import TransformerShape, build_model, language_model_loss
from acceldoctor.stress.workloads.base import Tally, Workload

SHAPES = {"cpu": TransformerShape(d_model=128, layers=2, heads=4, seq_len=64, batch=4, vocab=512)}
ACCELERATOR_SHAPE = TransformerShape(d_model=1024, layers=4, heads=16, seq_len=512, batch=8, vocab=8192)
STEPS_PER_PASS = 4
RELATIVE_TOLERANCE = {"cpu": 0.0}
DEFAULT_RELATIVE_TOLERANCE = 1e-4


class TrainLoop(Workload):
    name = "train_loop"
    check = "stability.train_loop"
    unit = "steps/s"
    unit_scale = 1.0
    share = 0.15

    def __init__(self, device: torch.device, *, seed: int = 0, shape: TransformerShape | None = None):
        super().__init__(device)
        self.seed = seed
        self.shape = shape or SHAPES.get(device.type, ACCELERATOR_SHAPE)
        self.tolerance = RELATIVE_TOLERANCE.get(device.type, DEFAULT_RELATIVE_TOLERANCE)
        self.trajectory: list[float] = []
        self.passes = 0

    def sample(self, tally: Tally) -> dict:
        return {**super().sample(tally), "steps_per_pass": STEPS_PER_PASS}

    def describe(self) -> str:
        return f"{STEPS_PER_PASS} training steps of a {self.shape.describe()}"

    def prepare(self) -> None:
        self.model = build_model(self.shape, self.seed).to(self.device)
        self.initial = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        generator = torch.Generator().manual_seed(self.seed + 1)
        tokens = torch.randint(self.shape.vocab, (self.shape.batch, self.shape.seq_len + 1), generator=generator)
        self.tokens, self.targets = tokens[:, :-1].to(self.device), tokens[:, 1:].to(self.device)
        self.trajectory = self._losses()

    def _losses(self) -> list[float]:
        self.model.load_state_dict(self.initial)
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-3)
        losses = []
        for _ in range(STEPS_PER_PASS):
            optimizer.zero_grad(set_to_none=True)
            loss = language_model_loss(self.model, self.tokens, self.targets)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
        return [float(x) for x in torch.stack(losses).cpu()]  # one synchronisation per pass

    def step(self, tally: Tally) -> None:
        losses = self._losses()
        self.passes += 1
        nan = sum(1 for x in losses if not math.isfinite(x))
        wrong = [i for i, (x, want) in enumerate(zip(losses, self.trajectory, strict=False))
                 if not abs(x - want) <= self.tolerance * abs(want)]  # `not <=` also catches NaN
        tally.iterations += 1
        tally.work += STEPS_PER_PASS
        if wrong:
            i = wrong[0]
            tally.add_errors(len(wrong), nan, f"step {i + 1} of pass {self.passes}: loss {losses[i]:.9g} "
                             f"where the recorded trajectory has {self.trajectory[i]:.9g}")
