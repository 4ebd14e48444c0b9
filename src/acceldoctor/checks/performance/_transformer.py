"""The small decoder-only transformer that performance.train_step trains, built in code, and its FLOP count."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class TransformerShape:
    d_model: int
    layers: int
    heads: int
    seq_len: int
    batch: int
    vocab: int

    def __post_init__(self) -> None:
        for name in ("d_model", "layers", "heads", "seq_len", "batch", "vocab"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.d_model % self.heads:
            raise ValueError(f"heads={self.heads} does not divide d_model={self.d_model}")

    @property
    def tokens(self) -> int:
        """Tokens per training step."""
        return self.batch * self.seq_len

    @property
    def matmul_params(self) -> int:
        """Weights that take part in matrix products: 12·L·d² in the blocks plus d·V in the output projection.

        Embeddings (looked up, not multiplied), norms and biases are left out, as in the usual MFU accounting.
        """
        d = self.d_model
        return 12 * self.layers * d * d + d * self.vocab

    @property
    def flops_per_step(self) -> int:
        """Model FLOPs of one training step: 6·N·T + 12·L·s·d·T (N = matmul_params, T = tokens).

        6·N·T is the forward (2 FLOPs per weight per token) and the backward (twice the forward) of every
        weight matrix; 12·L·s·d·T the same for the attention products Q·Kᵀ and P·V (2·s·d each per token and
        layer), counted over the full s×s score matrix although the mask is causal, as MFU figures usually are.
        This equals the sum over every matrix product of the step, forward and backward.
        """
        return 6 * self.matmul_params * self.tokens + 12 * self.layers * self.seq_len * self.d_model * self.tokens

    def describe(self) -> str:
        return (f"{self.layers}-layer transformer (d_model {self.d_model}, {self.heads} heads, seq {self.seq_len}, "
                f"batch {self.batch}, vocab {self.vocab})")


class Block(nn.Module):
    """Pre-norm block: x + attention(LayerNorm(x)), then x + MLP(LayerNorm(x)) with a 4x GELU hidden layer."""

    def __init__(self, d_model: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.fc1 = nn.Linear(d_model, 4 * d_model)
        self.fc2 = nn.Linear(4 * d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(attended.transpose(1, 2).reshape(b, s, d))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class TinyTransformer(nn.Module):
    """Token and learned position embeddings, `layers` blocks, a final LayerNorm and a projection to the vocab."""

    def __init__(self, shape: TransformerShape):
        super().__init__()
        self.embed = nn.Embedding(shape.vocab, shape.d_model)
        self.position = nn.Embedding(shape.seq_len, shape.d_model)
        self.blocks = nn.ModuleList(Block(shape.d_model, shape.heads) for _ in range(shape.layers))
        self.norm = nn.LayerNorm(shape.d_model)
        self.head = nn.Linear(shape.d_model, shape.vocab, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.position.weight[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def build_model(shape: TransformerShape, seed: int) -> TinyTransformer:
    """The model with weights drawn from `seed` on the CPU (the same on every device), in float32."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TinyTransformer(shape)


def language_model_loss(model: nn.Module, tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the next-token logits against `targets`, computed in float32."""
    logits = model(tokens)
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
