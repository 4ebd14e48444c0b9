"""Performance checks: throughput and latency as distributions, judged against spec sheets and baselines."""
