import numpy as np
import pytest

from meanfield.kernels.blas import gemm_into


@pytest.mark.parametrize("dtype", (np.float64, np.float32))
@pytest.mark.parametrize("shape", [(5, 3, 4), (1, 7, 2), (6, 1, 3), (33, 20, 17)])
def test_gemm_into_accumulates_in_place_for_all_layouts(dtype, shape):
    m, k, n = shape
    rng = np.random.default_rng(0)
    A, B, C = (rng.standard_normal(s).astype(dtype) for s in ((m, k), (k, n), (m, n)))
    tol = 1e-5 if dtype == np.float32 else 1e-13
    for a in (A, np.ascontiguousarray(A.T).T):
        for b in (B, np.ascontiguousarray(B.T).T):
            out = C.copy()
            address = out.ctypes.data
            gemm_into(-2.0, a, b, 0.5, out)
            assert out.ctypes.data == address
            np.testing.assert_allclose(out, -2.0 * A.astype(float) @ B + 0.5 * C, rtol=tol, atol=tol * 10)


def test_gemm_into_refuses_mismatched_shapes_and_dtypes():
    with pytest.raises(ValueError, match="do not fit"):
        gemm_into(1.0, np.ones((2, 3)), np.ones((2, 3)), 0.0, np.ones((2, 3)))
    with pytest.raises(TypeError):
        gemm_into(1.0, np.ones((2, 2)), np.ones((2, 2), dtype=np.float32), 0.0, np.ones((2, 2)))
