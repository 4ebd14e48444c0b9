from acceldoctor.runner.worker import Task, run_task


def test_healthy_cpu_matmul_passes_in_every_dtype():
    result = run_task(Task("correctness.matmul", "cpu", "quick"))
    assert result["status"] == "pass", result["message"]
    dtypes = {m["dtype"] for m in result["metrics"] if m["name"] == "cases"}
    assert {"float32", "bfloat16", "float16"} <= dtypes


def test_wrong_fp16_gemm_is_reported_with_dtype_shape_and_element():
    result = run_task(Task("correctness.matmul", "cpu", "quick", fault="matmul-wrong-fp16"))
    assert result["status"] == "fail"
    assert "float16" in result["message"] and "element [" in result["message"] and "ULPs" in result["message"]
    failed = {m["dtype"]: m["value"] for m in result["metrics"] if m["name"] == "failed_cases"}
    assert failed["float16"] > 0 and failed["float32"] == 0 and failed["bfloat16"] == 0
