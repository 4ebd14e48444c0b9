from acceldoctor.checks.unsupported import is_unsupported


def test_missing_kernels_are_unsupported():
    assert is_unsupported(NotImplementedError("whatever"))
    assert is_unsupported(RuntimeError('"addmm_impl_cpu_" not implemented for \'Half\''))
    assert is_unsupported(RuntimeError("Could not run 'aten::foo' with arguments from the 'XPU' backend."))


def test_device_runtime_errors_are_failures_not_gaps():
    assert not is_unsupported(RuntimeError("CUDA error: an illegal memory access was encountered"))
    assert not is_unsupported(RuntimeError("CUDA error: operation not supported"))
    assert not is_unsupported(RuntimeError("HIP error: hipErrorNotSupported: operation not supported"))
    assert not is_unsupported(ValueError("expected 2D input"))
