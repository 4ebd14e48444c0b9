import torch

from acceldoctor.checks.dtypes import FP32, TF32, float32_math, supported_variants
from acceldoctor.faults import injected


def _precisions():
    backends = torch.backends
    if hasattr(backends.cuda.matmul, "fp32_precision"):
        return backends.cuda.matmul.fp32_precision, backends.cudnn.conv.fp32_precision
    return backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32


def test_fp32_is_ieee_inside_checks_even_where_cudnn_defaults_to_tf32_and_is_restored_after():
    before = _precisions()
    with float32_math(reduced=False):
        assert set(_precisions()) <= {"ieee", False}
        with TF32.math_mode():
            assert set(_precisions()) <= {"tf32", True}
        with FP32.math_mode():
            assert set(_precisions()) <= {"ieee", False}
    assert _precisions() == before


def test_dtype_support_is_probed_without_faults_and_cpu_has_all_three():
    with injected("matmul-wrong-fp16"):
        names = [v.name for v in supported_variants(torch.device("cpu"))]
    assert names == ["float32", "bfloat16", "float16"]
