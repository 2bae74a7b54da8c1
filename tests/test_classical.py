import numpy as np
import pytest

from dip.core.classical import fill


def test_biharmonic_fills_only_missing_pixels_and_recovers_a_smooth_image():
    h, w = 32, 40
    yy, xx = np.mgrid[0:h, 0:w] / 40.0
    image = np.stack([0.2 + 0.5 * xx * yy, 0.3 + 0.2 * xx]).astype(np.float32)  # smooth, 2 channels
    rng = np.random.default_rng(0)
    known = rng.random((h, w)) < 0.5
    observed = image * known
    out = fill(observed, known)
    assert out.shape == image.shape and out.dtype == image.dtype
    assert np.array_equal(out[:, known], observed[:, known])  # known pixels untouched
    assert np.abs(out - image)[:, ~known].max() < 0.02  # a smooth image is filled almost exactly
    assert np.abs(observed - image)[:, ~known].max() > 0.1  # ... and the zeros really were wrong


def test_unknown_method_refused():
    with pytest.raises(ValueError, match="unknown classical fill"):
        fill(np.zeros((1, 4, 4), np.float32), np.ones((4, 4), bool), method="telea")
