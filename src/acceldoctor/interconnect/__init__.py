"""Interconnect checks: measure collectives inside a torch.distributed process group and verify their results.

`collectives.measure_collective` times one collective at one size on every rank and checks every result
bit-exactly; `stats` holds the nccl-tests bandwidth conventions and the size sweep.
"""
