"""interconnect.all_to_all: all-to-all bandwidth and exactness across ranks."""

from acceldoctor.checks.interconnect._collective import declare_collective
from acceldoctor.checks.registry import CheckDoc

run = declare_collective("all_to_all", __name__, title="All-to-all bandwidth and exactness across ranks", doc=CheckDoc(
    verifies=("Each rank sends a distinct chunk to every other rank (all_to_all_single, or the list form), over"
              " a sweep of sizes; bus bandwidth uses (n-1)/n; each chunk names its sender and destination."),
    why=("Mixture-of-experts models exchange tokens with all-to-all at every layer; it stresses every pair"
         " of links at once."),
    failure_means=("A `fail` names the rank whose chunk arrived wrong; a low efficiency means some links are slower "
                   "than the others or than the spec."),
    remedy="Run interconnect.p2p to find which pair is slow or corrupting.",
))
