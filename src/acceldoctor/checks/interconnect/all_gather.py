"""interconnect.all_gather: all-gather bandwidth and exactness across ranks."""

from acceldoctor.checks.interconnect._collective import declare_collective
from acceldoctor.checks.registry import CheckDoc

run = declare_collective("all_gather", __name__, title="All-gather bandwidth and exactness across ranks", doc=CheckDoc(
    verifies=("Every rank's chunk is gathered to every rank (all_gather_into_tensor, or the list form), over a "
              "sweep of sizes; bus bandwidth uses (n-1)/n; every value names the rank it came from, so a "
              "misplaced or wrong chunk is traced to its sender."),
    why="Sharded training (FSDP, ZeRO) gathers parameters before each layer; a slow all-gather stalls every step.",
    failure_means=("A `fail` names the rank whose chunk arrived wrong; a low efficiency means the links are slower "
                   "than the spec sheet says."),
    remedy="As for interconnect.all_reduce: isolate the named rank, then test its links with interconnect.p2p.",
))
