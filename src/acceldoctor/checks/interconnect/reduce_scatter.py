"""interconnect.reduce_scatter: reduce-scatter bandwidth and exactness across ranks."""

from acceldoctor.checks.interconnect._collective import declare_collective
from acceldoctor.checks.registry import CheckDoc

run = declare_collective("reduce_scatter", __name__,
    title="Reduce-scatter bandwidth and exactness across ranks",
    doc=CheckDoc(
    verifies=("Every rank's buffer is summed and each rank receives its own chunk of the sum "
              "(reduce_scatter_tensor, or the list form); bus bandwidth uses (n-1)/n; each rank's contribution "
              "is coded so a missing or doubled one is traced to it."),
    why=("Sharded training reduces and scatters gradients at every step; it is half of every all-reduce in"
         " ring algorithms."),
    failure_means=("A `fail` names the rank(s) whose contribution was wrong or missing; a low efficiency means slow "
                   "links."),
    remedy=("Take the named rank's device out of service and test its links with interconnect.p2p; for low "
            "bandwidth, check that the fast chip-to-chip links are up and used (see interconnect.all_reduce)."),
))
