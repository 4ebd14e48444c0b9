"""A three-rank gloo job whose rank 1 fails first, for the root-cause tests: `python multirank_job.py MODE DIR PORT`.

MODE "oom": rank 1 fails a host allocation, logs the error and then hangs (a stuck rank), so ranks 0 and 2 time out
in the next all_reduce. MODE "silent": rank 1 hangs without logging anything. Each rank logs to DIR/rank-N.log.
"""

import datetime
import logging
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

WORLD = 3
TIMEOUT_S = 3


def rank_main(rank: int, mode: str, folder: str, port: int) -> None:
    log = open(os.path.join(folder, f"rank-{rank}.log"), "w", buffering=1)  # noqa: SIM115  kept open to the end
    sys.stdout = sys.stderr = log
    logging.basicConfig(stream=log, level=logging.INFO,
                        format=f"%(asctime)s [rank{rank}] %(levelname)s %(message)s")
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=TIMEOUT_S))
    x = torch.ones(4)
    for step in range(3):
        dist.all_reduce(x)
        logging.info("step %d done", step)
    if rank == 1:
        if mode == "oom":
            try:
                torch.empty(2**50, dtype=torch.uint8)
            except RuntimeError:
                logging.exception("rank 1 failed to allocate its buffer")
        time.sleep(4 * TIMEOUT_S)  # stuck: never reaches the next collective
        os._exit(1)
    try:
        dist.all_reduce(x)
    except RuntimeError:
        logging.exception("all_reduce failed")
    os._exit(0)


if __name__ == "__main__":
    mode, folder, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.makedirs(folder, exist_ok=True)
    context = mp.get_context("spawn")
    ranks = [context.Process(target=rank_main, args=(r, mode, folder, port)) for r in range(WORLD)]
    for process in ranks:
        process.start()
    for process in ranks:
        process.join(60)
        if process.is_alive():
            process.kill()
