"""Ranks and times as logs state them."""

import pytest

from acceldoctor.explain.context import rank_of_file, rank_of_line, time_of_line


@pytest.mark.parametrize("line, rank", [
    ("[rank3]:[E1125 10:42:31.123 ProcessGroupNCCL.cpp:616] timeout", 3),
    ("[Rank 12] Watchdog caught collective operation timeout", 12),
    ("NCCL error on rank=5 while connecting", 5),
    ("local_rank: 0 world 8", None),
    ("no rank here", None),
    ("Connection reset by peer (remote rank 5)", None),
    ("config: lora rank: 16, error budget", None),
])
def test_rank_in_a_line(line, rank):
    assert rank_of_line(line) == rank


def test_the_file_rank_beats_a_mention_and_a_tag_beats_both():
    assert rank_of_line("NCCL error on rank=5 while connecting", file_rank=3) == 3
    assert rank_of_line("[rank2]: NCCL error on rank=5", file_rank=3) == 2


@pytest.mark.parametrize("name, rank", [("rank-3.log", 3), ("train_rank_07.txt", 7), ("rank12.log.gz", 12),
                                        ("node-3.log", None)])
def test_rank_in_a_file_name(name, rank):
    assert rank_of_file(name) == rank


@pytest.mark.parametrize("line, kind", [
    ("2024-05-10T11:22:33.444 ERROR x", "wall"),
    ("2024-05-10 11:22:33,444 - ERROR - x", "wall"),
    ("[ERROR] RUNTIME(3171,python):2024-05-10-11:22:33.444.555 [stream.cc:1054] x", "wall"),
    ("[rank0]:[E0510 11:22:33.444000 ProcessGroupNCCL.cpp:616] x", "wall"),
    ("May 10 11:22:33 host kernel: NVRM: Xid (PCI:0000:3b:00): 79", "wall"),
    ("[12345.678901] NVRM: Xid (PCI:0000:3b:00): 79", "boot"),
])
def test_times_in_the_usual_formats_agree(line, kind):
    found = time_of_line(line, default_year=2024)
    assert found is not None and found.kind == kind
    if kind == "wall":
        reference = time_of_line("2024-05-10T11:22:33 x", 2024)
        assert abs(found.seconds - reference.seconds) < 1


def test_no_time():
    assert time_of_line("just a message", 2024) is None
