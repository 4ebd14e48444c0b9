"""interconnect.send_recv: send/receive around a ring of ranks (the measurement is interconnect/collectives.py)."""

from acceldoctor.checks.interconnect._collective import declare_collective
from acceldoctor.checks.registry import CheckDoc

run = declare_collective("send_recv", __name__, title="Send/receive around a ring of ranks", doc=CheckDoc(
    verifies=("Each rank sends to the next rank and receives from the previous one at once (batch_isend_irecv),"
              " over a sweep of sizes; bus bandwidth equals algorithm bandwidth; every received element names "
              "its sender."),
    why="Pipeline parallelism passes activations between neighbouring ranks with send and receive.",
    failure_means="A `fail` names the sender whose data arrived wrong. Needs at least 2 ranks.",
    remedy="Test every pair with interconnect.p2p to find the link at fault.",
))
