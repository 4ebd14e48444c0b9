"""interconnect.broadcast: broadcast bandwidth and exactness from rank 0."""

from acceldoctor.checks.interconnect._collective import declare_collective
from acceldoctor.checks.registry import CheckDoc

run = declare_collective("broadcast", __name__, title="Broadcast bandwidth and exactness from rank 0", doc=CheckDoc(
    verifies=("Rank 0's buffer is sent to every rank (torch.distributed.broadcast), over a sweep of sizes; bus "
              "bandwidth equals algorithm bandwidth; every received element is checked bit-exactly."),
    why=("Jobs broadcast initial weights and configuration from rank 0; a broken broadcast starts ranks "
         "from different models."),
    failure_means="A `fail` means some rank received something other than rank 0's data.",
    remedy="Re-run with the receiving rank's device replaced; test the links with interconnect.p2p.",
))
