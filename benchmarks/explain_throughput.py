"""Scan throughput of `acceldoctor explain` on a large synthetic multi-rank log, against the drain3 template miner.

Generates (once, then reused) a log of --size-gb gigabytes: the interleaved output of 8 ranks, mostly benign
training lines (progress, NCCL INFO, warnings), with knowledge-base example errors and unknown error lines
sprinkled through it. Then, on one core:
- acceldoctor: the full explain scan (prefilter, matching, unrecognized-error grouping), MB/s over the whole file;
- drain3: its TemplateMiner over the first --miner-mb megabytes of the same file (it is far too slow for all of
  it), MB/s, and the ratio.

    pip install drain3 && python benchmarks/explain_throughput.py [--size-gb 1] [--miner-mb 32] [--path /tmp/x.log]

Target: acceldoctor at least 50 MB/s and at least 20x drain3.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

from acceldoctor.explain.knowledge import load_knowledge_base
from acceldoctor.explain.scan import scan

# The line mix: 1% warnings, 0.02% known errors, 0.03% unknown error lines, the rest progress and INFO lines.
BENIGN = (
    "{ts} [rank{r}] INFO train.py:212 step {n} loss={f:.4f} lr=3.0e-04 grad_norm={g:.3f} tokens/s={t}",
    "{ts} [rank{r}] INFO data.py:88 loaded shard {n} ({t} samples) in {g:.2f}s",
    "host{r}:{n}:{t} [{r}] NCCL INFO Channel {c:02d}/32 : 0[{r}] -> 1[{c}] via P2P/IPC/read",
    "{ts} [rank{r}] INFO checkpoint.py:51 saved step {n} to /ckpt/run-{t}/step_{n}.pt",
    "Epoch {c}: {n}it [{t}s, {g:.2f}it/s, loss={f:.3f}]",
)
WARNINGS = ("{ts} [rank{r}] WARNING optimizer.py:77 gradient clipping applied, norm {g:.3f} > 1.0",
            "{ts} [rank{r}] WARNING data.py:140 sample {n} is longer than {t} tokens; truncated")
UNKNOWN = ("{ts} [rank{r}] ERROR feeder.py:{n} FeederError: queue {t} stalled for {c}s",
           "RuntimeError: custom op mylib::fused_thing failed with status {c} at step {n}")


def generate(path: Path, size_bytes: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    errors = [e for entry in load_knowledge_base() for e in entry.examples]
    with path.open("w", encoding="utf-8") as out:
        written = 0
        while written < size_bytes:
            lines = []
            for _ in range(20_000):
                roll = rng.random()
                stamp = f"2026-11-25 10:{rng.randrange(60):02d}:{rng.randrange(60):02d},{rng.randrange(1000):03d}"
                values = dict(ts=stamp,
                              r=rng.randrange(8), n=rng.randrange(10**6), f=rng.random() * 4, g=rng.random() * 3,
                              t=rng.randrange(10**5), c=rng.randrange(32))
                if roll < 0.0002 and errors:
                    lines.append(rng.choice(errors))
                elif roll < 0.0005:
                    lines.append(rng.choice(UNKNOWN).format(**values))
                elif roll < 0.0105:
                    lines.append(rng.choice(WARNINGS).format(**values))
                else:
                    lines.append(rng.choice(BENIGN).format(**values))
            chunk = "\n".join(lines) + "\n"
            out.write(chunk)
            written += len(chunk)


def measure_acceldoctor(path: Path) -> tuple[float, int, int]:
    entries = load_knowledge_base()
    begin = time.perf_counter()
    result = scan([path], entries)
    seconds = time.perf_counter() - begin
    return result.bytes_scanned / seconds / 1e6, len(result.findings), len(result.unrecognized.templates)


def measure_drain3(path: Path, limit_bytes: int) -> float:
    from drain3 import TemplateMiner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    # drain3 as its documentation configures it: numbers, hex and IPs masked before clustering (without masking,
    # every distinct number makes a new cluster and it is slower still).
    config = TemplateMinerConfig()
    config.masking_instructions = [
        MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"),
        MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)(0x[a-f0-9A-F]+)((?=[^A-Za-z0-9])|$)", "HEX"),
        MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
    ]
    config.profiling_enabled = False
    miner = TemplateMiner(config=config)
    done = 0
    begin = time.perf_counter()
    with path.open("r", encoding="utf-8", errors="replace") as lines:
        for line in lines:
            miner.add_log_message(line.rstrip("\n"))
            done += len(line)
            if done >= limit_bytes:
                break
    return done / (time.perf_counter() - begin) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--miner-mb", type=float, default=32.0)
    parser.add_argument("--path", type=Path, default=Path("/tmp/acceldoctor-explain-bench.log"))
    args = parser.parse_args()
    size = int(args.size_gb * 1e9)
    if not args.path.exists() or args.path.stat().st_size < size:
        print(f"generating {args.size_gb:g} GB at {args.path} ...", flush=True)
        generate(args.path, size)
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    rate, findings, templates = measure_acceldoctor(args.path)
    print(f"acceldoctor explain: {rate:.1f} MB/s over {args.path.stat().st_size / 1e9:.2f} GB "
          f"({findings} findings, {templates} unrecognized templates)")
    try:
        miner_rate = measure_drain3(args.path, int(args.miner_mb * 1e6))
    except ImportError:
        print("drain3 is not installed (pip install drain3): no miner to compare with")
        return
    print(f"drain3 TemplateMiner: {miner_rate:.2f} MB/s over the first {args.miner_mb:g} MB")
    print(f"ratio acceldoctor / drain3: {rate / miner_rate:.0f}x (target >= 20x); acceldoctor target >= 50 MB/s")


if __name__ == "__main__":
    main()
