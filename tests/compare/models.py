"""Small seeded models for the compare tests and benchmarks: each builder returns (model, inputs), `model(*inputs)`
returns one output tensor, and a forward+backward step takes milliseconds on a CPU.

The same seed gives the same weights and inputs on any device, so two recordings differ only by what the device or
dtype does to the numbers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class MLPBlock(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.act(self.fc1(x)))


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int, depth: int, classes: int):
        super().__init__()
        self.blocks = nn.ModuleList(MLPBlock(dim, hidden) for _ in range(depth))
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x)


class ResidualConvBlock(nn.Module):
    """A ResNet basic block, in-place ReLU and in-place residual add included: models written this way must record."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return self.relu(out)


class SmallCNN(nn.Module):
    def __init__(self, channels: int, classes: int):
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.block = ResidualConvBlock(channels)
        self.head = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block(self.pool(F.relu(self.stem(x))))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Attention(nn.Module):
    """Multi-head self-attention written out by hand: the softmax is an explicit `torch.softmax` call, so a fault can
    be injected into it (scaled_dot_product_attention would hide it inside one fused operation)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, dim = x.shape
        q, k, v = self.qkv(x).view(batch, seq, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(dim // self.heads)
        weights = torch.softmax(scores, dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(batch, seq, dim)
        return self.proj(out)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: x + attn(ln1(x)), then + mlp(ln2(x))."""

    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


def _seeded(seed: int) -> torch.Generator:
    torch.manual_seed(seed)  # module constructors draw their initial weights from the global generator
    return torch.Generator().manual_seed(seed)


def build_mlp(seed: int = 0, batch: int = 16, dim: int = 64, hidden: int = 128, depth: int = 2,
              classes: int = 10) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    generator = _seeded(seed)
    return MLP(dim, hidden, depth, classes), (torch.randn(batch, dim, generator=generator),)


def build_cnn(seed: int = 0, batch: int = 4, channels: int = 8, size: int = 16,
              classes: int = 10) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    generator = _seeded(seed)
    return SmallCNN(channels, classes), (torch.randn(batch, 3, size, size, generator=generator),)


def build_transformer_block(seed: int = 0, batch: int = 4, seq: int = 32, dim: int = 64, heads: int = 4,
                            hidden: int = 256) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    generator = _seeded(seed)
    return TransformerBlock(dim, heads, hidden), (torch.randn(batch, seq, dim, generator=generator),)


def build_transformer_block_with_large_logits(seed: int = 0) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The block with inputs a thousand times larger: attention logits past what a softmax without max-subtraction
    survives (the softmax-nan fault)."""
    model, (x,) = build_transformer_block(seed)
    return model, (x * 1000,)


BUILDERS = {"mlp": build_mlp, "cnn": build_cnn, "transformer_block": build_transformer_block}


def to(model: nn.Module, inputs: tuple[torch.Tensor, ...], device: str | torch.device = "cpu",
       dtype: torch.dtype | None = None) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The model and its floating inputs moved to a device and (optionally) a floating dtype."""
    model = model.to(device=device, dtype=dtype) if dtype is not None else model.to(device)
    moved = tuple(t.to(device=device, dtype=dtype) if dtype is not None and t.is_floating_point() else t.to(device)
                  for t in inputs)
    return model, moved


def train_step(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """One forward and backward pass with a simple loss (in the model's dtype: the same operations run whatever the
    dtype, so two recordings at different dtypes have the same keys); returns the loss."""
    loss = model(*inputs).pow(2).mean()
    loss.backward()
    return loss
