"""Interconnect: collectives, the point-to-point matrix and stragglers, measured inside a torch.distributed group.

- collectives.py: measure_collective (time, algbw/busbw, bit-exact check of every checked call, wrong elements
  traced to the source rank); stats.py: the nccl-tests byte conventions and bus factors.
- p2p.py: bandwidth and latency of every ordered pair of ranks, and the slow links among them.
- stragglers.py: ranks consistently slower than the others (median/MAD), and a local compute timing.
- launch.py: start N local ranks in a group and name those that die or hang.
"""
