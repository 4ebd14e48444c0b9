from acceldoctor.runner.worker import Task, run_task


def test_wrong_fp16_gemm_is_reported_with_dtype_shape_and_element(metric_by_dtype):
    result = run_task(Task("correctness.matmul", "cpu", "quick", fault="matmul-wrong-fp16"))
    assert result["status"] == "fail"
    assert "float16" in result["message"] and "element [" in result["message"] and "ULPs" in result["message"]
    failed = metric_by_dtype(result, "failed_cases")
    assert failed["float16"] > 0 and failed["float32"] == 0 and failed["bfloat16"] == 0


def test_a_zeroed_product_of_tiny_fp16_values_fails():
    import torch

    from acceldoctor.checks.dtypes import FP16
    from acceldoctor.checks.numerics import compare_to_golden
    from acceldoctor.checks.tolerances import tolerance

    gen = torch.Generator().manual_seed(0)
    a = (1e-3 * torch.randn(16, 31, generator=gen, dtype=torch.float64)).half().double()
    b = (1e-3 * torch.randn(31, 8, generator=gen, dtype=torch.float64)).half().double()
    golden = a @ b
    magnitude = a.abs() @ b.abs()
    healthy = compare_to_golden((a.half() @ b.half()), golden, FP16, tolerance("matmul"), 31, magnitude)
    zeroed = compare_to_golden(torch.zeros(16, 8, dtype=torch.float16), golden, FP16, tolerance("matmul"), 31,
                               magnitude)
    assert healthy.ok and not zeroed.ok
