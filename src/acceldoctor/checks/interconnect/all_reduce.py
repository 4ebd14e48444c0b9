"""interconnect.all_reduce: all-reduce bandwidth and exactness across ranks."""

from acceldoctor.checks.interconnect._collective import declare_collective
from acceldoctor.checks.registry import CheckDoc

run = declare_collective("all_reduce", __name__, title="All-reduce bandwidth and exactness across ranks", doc=CheckDoc(
    verifies=("Every rank's buffer is summed and the sum returned to every rank (torch.distributed.all_reduce),"
              " over a sweep of message sizes; bus bandwidth uses nccl-tests' factor 2(n-1)/n, and every "
              "checked result is compared bit-exactly with the known sum."),
    why=("Data-parallel training averages gradients with all-reduce at every step: it is the collective a "
         "cluster lives on, and the first to show a slow or corrupting link."),
    failure_means=("A `fail` with wrong elements means a rank's contribution arrived wrong or not at all; the "
                   "message names the rank(s) it is traced to. A low efficiency means the chips talk far below their"
                   " link's speed."),
    remedy=("For wrong data: take the named rank's device out of service and run `acceldoctor check --nproc N"
            " --select interconnect.p2p` to find the link. For low bandwidth: check that the fast links "
            "(NVLink, xGMI, HCCS) are used and up (`nvidia-smi topo -m`, `rocm-smi --showtopo`, `npu-smi info"
            " -t topo`), the collective library's version, and its environment variables (NCCL_P2P_DISABLE, "
            "NCCL_IB_*, HCCL_*)."),
))
