"""tools/hed.py: the Keras-to-PyTorch weight layout and the network's shape rules."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs the tools extra: pip install '.[tools]'")
h5py = pytest.importorskip("h5py", reason="needs the tools extra: pip install '.[tools]'")

from tools.hed import HED, _assign  # noqa: E402


def test_keras_kernel_layout_is_transposed(tmp_path):
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 2, 4)).astype(np.float32)  # (kh, kw, in, out)
    bias = rng.normal(size=4).astype(np.float32)
    with h5py.File(tmp_path / "w.h5", "w") as h5:
        h5["conv/vars/0"] = kernel
        h5["conv/vars/1"] = bias
    conv = torch.nn.Conv2d(2, 4, 3)
    with h5py.File(tmp_path / "w.h5") as h5:
        _assign(conv, h5["conv/vars"])
    x = rng.normal(size=(1, 2, 3, 3)).astype(np.float32)
    got = conv(torch.from_numpy(x)).detach().numpy()[0, :, 0, 0]
    want = np.einsum("hwio,ihw->o", kernel, x[0]) + bias  # Keras: correlate, channels last
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_shape_mismatch_is_an_error(tmp_path):
    with h5py.File(tmp_path / "w.h5", "w") as h5:
        h5["conv/vars/0"] = np.zeros((1, 1, 3, 3), np.float32)
        h5["conv/vars/1"] = np.zeros(3, np.float32)
        with pytest.raises(ValueError, match="shape"):
            _assign(torch.nn.Conv2d(2, 4, 3), h5["conv/vars"])


@pytest.mark.parametrize("size", [(33, 47), (64, 64)])
def test_output_matches_odd_input_sizes(size):
    with torch.no_grad():
        out = HED()(torch.zeros(1, 3, *size))
    assert out.shape == (1, 1, *size)
    assert float(out.min()) >= 0 and float(out.max()) <= 1
