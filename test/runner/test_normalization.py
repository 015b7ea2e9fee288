"""llama.cpp's embd_normalize, computed by the runner for the gateway's llama.cpp routes."""

import numpy as np
import pytest

from runner.normalization import embd_normalize

ROWS = np.array([[3.0, -4.0], [0.0, 0.0]], np.float32)


@pytest.mark.parametrize("mode, expected", [
    (-1, [[3.0, -4.0]]),
    (0, [[24570.0, -32760.0]]),
    (1, [[3 / 7, -4 / 7]]),
    (2, [[0.6, -0.8]]),
    (3, [[3 / 91 ** (1 / 3), -4 / 91 ** (1 / 3)]]),
])
def test_each_mode_scales_as_llama_cpp_does_and_a_zero_row_stays_zero(mode, expected):
    out = embd_normalize(ROWS, mode)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[:1], expected, rtol=1e-6)
    assert out[1].tolist() == [0.0, 0.0]
