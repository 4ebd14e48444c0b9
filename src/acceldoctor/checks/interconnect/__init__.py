"""Distributed checks: they run on every rank of a torch.distributed group at once (runner/ranks.py)."""
