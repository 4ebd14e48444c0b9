"""The stress verdicts on synthetic timelines: what a person reads for corruption, drift, memory and training."""

from acceldoctor.stress.verdict import drift_limits, judge_gemm, judge_memory, judge_train


def _sample(t, tflops=1.0, **workloads):
    parts = {"gemm_fp32": {"iterations": 10, "wrong_elements": 0, "nan_elements": 0, "rate": tflops,
                           "unit": "TFLOP/s"}}
    for name, errors in workloads.items():
        wrong, nan, where = errors
        parts[name] = {"iterations": 2, "wrong_elements": wrong, "nan_elements": nan, "rate": 1.0, "unit": "x",
                       "where": where}
    return {"t_s": float(t), "tflops": tflops, "workloads": parts}


def test_a_clean_steady_burn_passes_with_its_rate():
    outcome = judge_gemm("cuda:0", [_sample(t) for t in range(1, 21)], *drift_limits("cuda"))
    assert outcome.status == "pass" and "bit-identical" in outcome.message and "200 fp32 products" in outcome.message


def test_corruption_in_the_fast_dtype_names_the_dtype_time_and_element():
    samples = [_sample(t) for t in range(1, 11)]
    samples[6] = _sample(7, gemm_bf16=(3, 0, "gemm_bf16 element (5, 9)"))
    outcome = judge_gemm("cuda:1", samples, *drift_limits("cuda"))
    assert outcome.status == "fail"
    assert "gemm_bf16: 3 wrong element(s)" in outcome.message and "first at 7 s" in outcome.message
    assert "(5, 9)" in outcome.message and "cuda:1" in outcome.message


def test_a_slowdown_warns_then_fails_by_the_device_types_limits():
    def run(end_tflops):
        return [_sample(t, 1.0 if t <= 10 else end_tflops) for t in range(1, 41)]

    assert judge_gemm("cuda:0", run(0.95), *drift_limits("cuda")).status == "pass"
    assert judge_gemm("cuda:0", run(0.85), *drift_limits("cuda")).status == "warn"
    assert judge_gemm("cuda:0", run(0.7), *drift_limits("cuda")).status == "fail"
    assert judge_gemm("cpu", run(0.85), *drift_limits("cpu")).status == "pass"  # a shared CPU moves that much


def test_memory_errors_give_the_offset_and_pattern():
    samples = [_sample(t) for t in range(1, 5)]
    samples[2] = _sample(3, memory_soak=(1, 0, "byte offset 0x2aaaa8 of the soak buffer, pattern zeros"))
    outcome = judge_memory("npu:0", samples)
    assert outcome.status == "fail" and "0x2aaaa8" in outcome.message and "pattern zeros" in outcome.message
    assert judge_memory("npu:0", [_sample(t, memory_soak=(0, 0, "")) for t in range(1, 5)]).status == "pass"


def test_a_nan_loss_fails_the_training_loop():
    samples = [_sample(t, train_loop=(0, 0, "")) for t in range(1, 5)]
    samples[1] = _sample(2, train_loop=(1, 1, "step 2 of pass 3: loss nan where the recorded trajectory has 6.9"))
    outcome = judge_train("xpu:0", samples, 1e-4)
    assert outcome.status == "fail" and "1 NaN" in outcome.message and "step 2 of pass 3" in outcome.message
    assert "within a relative 0.0001" in judge_train("xpu:0", samples[2:], 1e-4).message
