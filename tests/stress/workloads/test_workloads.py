"""Each stress workload, run in-process for a second or two: quiet on a healthy CPU, and it catches the fault it is
meant for, saying where."""

import torch

from acceldoctor.faults import injected
from acceldoctor.stress.verdict import judge_gemm, judge_memory, judge_train
from acceldoctor.stress.workloads import build_workloads, run_workloads
from acceldoctor.stress.workloads.gemm import GemmBurn
from acceldoctor.stress.workloads.memory import MemorySoak, MiB, pattern_block
from acceldoctor.stress.workloads.train_loop import TrainLoop

CPU = torch.device("cpu")


def _run(workloads, seconds=1.5, fault=None):
    with injected(fault):
        return run_workloads(CPU, workloads, seconds, interval_s=0.5)


def test_the_cpu_burns_float32_only_and_every_workload_reports_each_interval():
    workloads = build_workloads(CPU)
    assert [w.name for w in workloads] == ["gemm_fp32", "train_loop", "memory_soak"]  # no fast dtype on a CPU
    samples = run_workloads(CPU, workloads, 1.5, interval_s=0.5)
    assert samples and samples[-1]["t_s"] >= 1.5  # how many intervals that took depends on the host's load
    for sample in samples:
        assert set(sample["workloads"]) == {"gemm_fp32", "train_loop", "memory_soak"}
        assert all(part["iterations"] >= 1 and part["rate"] > 0 for part in sample["workloads"].values())
        assert sample["tflops"] == sample["workloads"]["gemm_fp32"]["rate"]
    assert judge_gemm("cpu", samples, 0.3, 0.5).status == "pass"
    assert judge_memory("cpu", samples).status == "pass"
    assert judge_train("cpu", samples).status == "pass"


def test_a_rare_bit_flip_in_the_gemm_is_counted_with_its_element():
    samples = _run([GemmBurn(CPU, size=128)], fault="bitflip:7")
    outcome = judge_gemm("cpu", samples, 0.3, 0.5)
    assert outcome.status == "fail" and "silent data corruption" in outcome.message
    assert "gemm_fp32" in outcome.message and "element (" in outcome.message
    wrong = sum(s["workloads"]["gemm_fp32"]["wrong_elements"] for s in samples)
    iterations = sum(s["workloads"]["gemm_fp32"]["iterations"] for s in samples)
    assert 0 < wrong <= iterations // 7 + 1  # one element per flipped product, one product in seven


def test_a_stuck_memory_bit_is_found_at_its_offset_in_the_patterns_that_show_it():
    soak = MemorySoak(CPU, nbytes=8 * MiB)
    samples = _run([soak], seconds=1.0, fault="memory-stuck-bit")
    outcome = judge_memory("cpu", samples)
    assert outcome.status == "fail" and "device memory returned words other than those written" in outcome.message
    stuck_offset = (8 * MiB // 4 // 3) * 4  # the fault's word: a third of the way into the buffer
    assert f"byte offset {stuck_offset:#x}" in outcome.message
    # bit 7 stuck at 1 is invisible in the all-ones pattern: not every pass fails
    assert sum(s["workloads"]["memory_soak"]["wrong_elements"] for s in samples) < soak.passes


def test_memory_patterns_cover_both_values_of_every_bit():
    words = [pattern_block(i, CPU)[1][:8] for i in range(6 * 32)]
    for bit in range(32):
        values = {int(w[0]) >> bit & 1 for w in words}
        assert values == {0, 1}, bit


def test_a_corrupted_training_step_leaves_the_recorded_loss_trajectory():
    loop = TrainLoop(CPU)
    samples = _run([loop], seconds=2.0, fault="bitflip:40")
    outcome = judge_train("cpu", samples, loop.tolerance)
    assert outcome.status == "fail" and "recorded trajectory" in outcome.message, outcome.message
    assert "step " in outcome.message and "pass " in outcome.message


def test_a_soak_buffer_that_does_not_fit_is_halved_until_it_does(monkeypatch):
    import acceldoctor.stress.workloads.memory as memory

    real_empty = torch.empty

    def empty_up_to_300_mib(*shape, **kwargs):
        if shape[0] * shape[1] * 4 > 300 * MiB:
            raise memory.OUT_OF_MEMORY("out of memory")
        return real_empty(*shape, **kwargs)

    monkeypatch.setattr(memory.torch, "empty", empty_up_to_300_mib)
    soak = MemorySoak(CPU, nbytes=1000 * MiB)
    soak.prepare()
    assert soak.nbytes == 250 * MiB and soak.buffer.numel() * 4 == 250 * MiB  # 1000 -> 500 -> 250
