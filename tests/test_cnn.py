import gzip
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from utils import cnn
from utils.answers import ch03_cnn

CONFIGS = [  # (B, C_in, H, W, C_out, kh, kw, stride, padding)
    (2, 3, 7, 7, 4, 3, 3, 1, 0),
    (1, 2, 8, 6, 3, 3, 2, 2, 1),  # stride 2 leaves a row uncovered: (8 + 2 - 3) % 2 = 1
    (2, 1, 9, 9, 2, 5, 5, 3, 2),
]


def random_conv(config, seed=0):
    B, C_in, H, W, C_out, kh, kw, stride, padding = config
    rng = np.random.default_rng(seed)
    return rng.normal(size=(B, C_in, H, W)), rng.normal(size=(C_out, C_in, kh, kw)), rng.normal(size=C_out)


def test_output_size_and_receptive_field():
    assert cnn.conv_output_size(32, 5) == 28
    assert cnn.conv_output_size(28, 3, padding=1, stride=2) == 14
    assert cnn.conv_output_size(7, 2, stride=2) == 3  # floor
    with pytest.raises(ValueError, match="larger than the padded input"):
        cnn.conv_output_size(3, 5)
    with pytest.raises(ValueError, match="stride >= 1"):
        cnn.conv_output_size(8, 3, stride=0)
    # receptive field of conv3 -> pool2 -> conv3: which input pixels move one output unit (average pooling,
    # because max pooling passes gradient to one pixel per window and would hide the rest)
    assert cnn.receptive_field([(3, 1), (2, 2), (3, 1)]) == 8
    x = torch.zeros(1, 1, 20, 20, requires_grad=True)
    out = F.conv2d(F.avg_pool2d(F.conv2d(x, torch.ones(1, 1, 3, 3)), 2), torch.ones(1, 1, 3, 3))
    out[0, 0, 3, 3].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    assert rows.max() - rows.min() + 1 == 8


@pytest.mark.parametrize("config", CONFIGS)
def test_conv2d_loop_and_im2col_match_torch(config):
    x, w, b = random_conv(config)
    stride, padding = config[-2:]
    expected = F.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=stride, padding=padding).numpy()
    np.testing.assert_allclose(cnn.conv2d_loop(x, w, b, stride, padding), expected, atol=1e-12)
    np.testing.assert_allclose(cnn.conv2d(x, w, b, stride, padding, fast=True), expected, atol=1e-12)


@pytest.mark.parametrize("config", CONFIGS)
def test_conv2d_backward_matches_autograd(config):
    x, w, b = random_conv(config)
    stride, padding = config[-2:]
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    out = F.conv2d(xt, wt, bt, stride=stride, padding=padding)
    g = torch.randn(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    out.backward(g)
    grad_x, grad_w, grad_b = cnn.conv2d_backward(x, w, g.numpy(), stride, padding)
    for ours, theirs in [(grad_x, xt.grad), (grad_w, wt.grad), (grad_b, bt.grad)]:
        np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-10)


def test_bad_conv_inputs_raise_clear_errors():
    x, w, b = random_conv(CONFIGS[0])
    with pytest.raises(ValueError, match="3 channels but the kernel expects C_in=2"):
        cnn.conv2d(x, w[:, :2], b)
    with pytest.raises(ValueError, match=r"bias must have shape \(C_out,\)"):
        cnn.conv2d(x, w, b[:2])
    with pytest.raises(ValueError, match="x must be"):
        cnn.conv2d(x[0], w, b)
    with pytest.raises(ValueError, match="grad_out must have"):
        cnn.conv2d_backward(x, w, np.zeros((1, 1, 1, 1)))


def test_max_pool_matches_torch():
    x = np.random.default_rng(0).normal(size=(2, 3, 7, 6))
    np.testing.assert_array_equal(cnn.max_pool2d(x), F.max_pool2d(torch.tensor(x), 2).numpy())


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch(training):
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(4, 3, 5, 5))
    bn = nn.BatchNorm2d(3).double()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5), bn.bias.uniform_(-1, 1)
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
    params = [t.detach().numpy().copy() for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var)]
    y, mean, var = cnn.batch_norm(x, *params, training=training)
    bn.train(training)
    with torch.no_grad():
        expected = bn(torch.tensor(x)).numpy()
    np.testing.assert_allclose(y, expected, atol=1e-10)
    np.testing.assert_allclose(mean, bn.running_mean.numpy(), atol=1e-12)
    np.testing.assert_allclose(var, bn.running_var.numpy(), atol=1e-12)


def test_keras_conv_with_converted_kernel_matches_torch():
    import keras

    x, w, b = random_conv(CONFIGS[0])
    layer = keras.layers.Conv2D(4, 3)
    layer.build((None, 7, 7, 3))
    layer.set_weights([cnn.torch_kernel_to_keras(w).astype(np.float32), b.astype(np.float32)])
    out = np.asarray(layer(cnn.nchw_to_nhwc(x).astype(np.float32)))
    np.testing.assert_allclose(out.transpose(0, 3, 1, 2), cnn.conv2d(x, w, b), atol=1e-5)
    np.testing.assert_array_equal(cnn.keras_kernel_to_torch(cnn.torch_kernel_to_keras(w)), w)


@pytest.mark.parametrize("size,flat", [(16, 64), (28, 400), (32, 576)])
def test_lenet_shapes_and_wrong_size_error(size, flat):
    cfg = cnn.LeNetConfig(image_size=size)
    assert np.prod(cfg.feature_shape()) == flat
    model = cnn.LeNet(cfg)
    assert model(torch.zeros(2, 1, size, size)).shape == (2, 10)
    with pytest.raises(ValueError, match="LeNet was built for inputs"):
        model(torch.zeros(2, 1, size + 4, size + 4))


@pytest.mark.parametrize("batch_norm", [False, True])
def test_keras_lenet_with_copied_weights_matches_torch(batch_norm):
    torch.manual_seed(0)
    cfg = cnn.LeNetConfig(image_size=16, batch_norm=batch_norm, channels=(3, 5), hidden=(12, 8))
    model = cnn.LeNet(cfg)
    model(torch.randn(8, 1, 16, 16))  # one training step's forward: running statistics move away from 0 / 1
    model.eval()
    keras_model = cnn.build_keras_lenet(cfg)
    cnn.copy_lenet_to_keras(model, keras_model)
    x = torch.randn(4, 1, 16, 16)
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(np.asarray(keras_model(cnn.nchw_to_nhwc(x.numpy()), training=False)), expected,
                               atol=1e-5)
    with pytest.raises(ValueError, match="same LeNetConfig"):
        cnn.copy_lenet_to_keras(model, cnn.build_keras_lenet(cnn.LeNetConfig(batch_norm=not batch_norm)))


def test_dense_after_flatten_reorders_rows():
    C, H, W = 2, 3, 4
    weight = np.arange(5 * C * H * W, dtype=float).reshape(5, C * H * W)
    x = np.random.default_rng(0).normal(size=(C, H, W))
    keras_kernel = cnn.dense_after_flatten_to_keras(weight, (C, H, W))
    np.testing.assert_allclose(x.transpose(1, 2, 0).reshape(-1) @ keras_kernel, weight @ x.reshape(-1))
    with pytest.raises(ValueError, match="C\\*H\\*W"):
        cnn.dense_after_flatten_to_keras(weight, (3, 3, 4))


def test_residual_block_starts_as_identity_when_zero_initialised():
    block = cnn.ResidualBlock(4, zero_init=True)
    x = torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(block(x), F.relu(x))
    assert cnn.ResidualBlock(4)(x).shape == x.shape


def test_random_shift():
    g = torch.Generator().manual_seed(0)
    images = torch.zeros(16, 1, 8, 8)
    images[:, :, 3:5, 3:5] = 1.0  # a blob far enough from the border to survive a shift of 2
    shifted = cnn.random_shift(images, 2, g)
    assert shifted.shape == images.shape
    torch.testing.assert_close(shifted.sum((1, 2, 3)), images.sum((1, 2, 3)))
    assert not torch.equal(shifted, images)
    assert cnn.random_shift(images, 0) is images
    with pytest.raises(ValueError, match="max_shift must be a non-negative int"):
        cnn.random_shift(images, -1)
    data = cnn.ShiftedImages(images, torch.arange(16), 1)
    assert len(data) == 16 and data[3][0].shape == (1, 8, 8) and data[3][1] == 3


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_read_idx_round_trip_and_errors(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "images.gz", images)
    np.testing.assert_array_equal(cnn.read_idx(tmp_path / "images.gz"), images)
    (tmp_path / "plain").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 9]))
    np.testing.assert_array_equal(cnn.read_idx(tmp_path / "plain"), [7, 9])
    (tmp_path / "bad").write_bytes(b"PK\x03\x04rest")
    with pytest.raises(ValueError, match="not an unsigned-byte IDX file"):
        cnn.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 9]))
    with pytest.raises(ValueError, match="header says shape"):
        cnn.read_idx(tmp_path / "short")


def test_load_fashion_mnist_reads_what_download_returns(tmp_path, monkeypatch):
    """The full-profile path without the network: a stand-in ``utils.data.download`` serves tiny files."""
    rng = np.random.default_rng(0)
    made, calls = {}, []
    for name in cnn.FASHION_MNIST_FILES:
        shape = (5, 28, 28) if "images" in name else (5,)
        made[name] = rng.integers(0, 10 if "labels" in name else 256, size=shape)
        write_idx(tmp_path / name, made[name])

    def fake_download(name, urls, sha256, filename=None, cache_dir=None, progress=True):
        calls.append((name, urls, sha256, filename))
        return tmp_path / filename

    monkeypatch.setitem(sys.modules, "utils.data", types.SimpleNamespace(download=fake_download))
    X_train, y_train, X_test, y_test = cnn.load_fashion_mnist()
    np.testing.assert_array_equal(X_train, made["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(y_test, made["t10k-labels-idx1-ubyte.gz"])
    assert y_train.dtype == np.int64 and X_test.shape == (5, 28, 28)
    assert len(calls) == 4 and all(len(sha) == 64 and len(urls) >= 2 for _, urls, sha, _ in calls)
    assert all(url.endswith(filename) for _, urls, _, filename in calls for url in urls)


def test_exercise_references_match_the_formulas_and_reject_plausible_wrong_answers():
    from utils.check import check_answer

    n = cnn.conv_output_size(cnn.conv_output_size(cnn.conv_output_size(28, 3), 2, stride=2), 3, padding=1, stride=2)
    check_answer((16, n, n), ch03_cnn.exercise_reference("output_shape"))
    with pytest.raises(AssertionError):  # the padding of the last convolution forgotten
        check_answer((16, 6, 6), ch03_cnn.exercise_reference("output_shape"))
    counts = ch03_cnn.exercise_reference("parameter_counts")
    check_answer([5 * 5 * 3 * 32 + 32, 32 * 32 * 3 * 28 * 28 * 32 + 28 * 28 * 32], counts)
    with pytest.raises(AssertionError):  # the biases forgotten
        check_answer([5 * 5 * 3 * 32, 32 * 32 * 3 * 28 * 28 * 32], counts)
    x = np.random.default_rng(3).normal(size=(2, 3, 9, 8))
    windows = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(2, 3))
    pooled = ch03_cnn.exercise_reference("overlapping_pool", x=x)
    check_answer(windows[:, :, ::2, ::2].max(axis=(-2, -1)), pooled)
    with pytest.raises(AssertionError, match="shape"):  # non-overlapping 3x3 windows (stride 3)
        check_answer(windows[:, :, ::3, ::3].max(axis=(-2, -1)), pooled)
    check_answer([7, 3 * 9 * 16 * 16, 49 * 16 * 16], ch03_cnn.exercise_reference("vgg_stack"))
    with pytest.raises(AssertionError):  # receptive fields multiplied instead of grown by k - 1 per layer
        check_answer([27, 3 * 9 * 16 * 16, 49 * 16 * 16], ch03_cnn.exercise_reference("vgg_stack"))
    with pytest.raises(ValueError, match="name must be one of"):
        ch03_cnn.exercise_reference("alexnet")
    with pytest.raises(TypeError, match="overlapping_pool"):
        ch03_cnn.exercise_reference("overlapping_pool")
