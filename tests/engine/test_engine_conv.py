"""Convolution, pooling, padding, unfold and fold (autograd_core.conv):
worked examples by hand, gradients against central differences on small
float64 cases (stride, padding, dilation, groups, ceil_mode), forward and
gradients against PyTorch in float64, clear errors, and a convolution seen as
one node with its rule by the drawing and the stepper."""

import numpy as np
import pytest

import autograd_core as ac
from autograd_core import BackpropStepper, Value, gradcheck
from autograd_core.conv import (
    adaptive_avg_pool2d, avg_pool2d, col2im, conv1d, conv2d, fold, im2col, max_pool2d, pad, unfold, _geometry,
)
from autograd_core.errors import ShapeError

RNG = np.random.default_rng(2024)


def _rand(*shape):
    return RNG.standard_normal(shape)


# ---- worked examples --------------------------------------------------------
def test_conv2d_by_hand_on_a_3x3_image():
    # a 2x2 kernel over a 3x3 image: four windows, each sum(window * kernel) + bias
    x = Value(np.array([[[[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [2.0, 1.0, 1.0]]]]))
    w = Value(np.array([[[[1.0, -1.0], [2.0, 0.5]]]]))
    b = Value([0.25])
    y = conv2d(x, w, b)
    # top-left window [[1, 2], [0, 1]]: 1 - 2 + 0 + 0.5 + 0.25 = -0.25; and so on
    np.testing.assert_allclose(y.data[0, 0], [[-0.25, 5.75], [3.75, 0.75]])
    y.sum().backward()
    # dL/dW[i, j] = sum of the pixels under tap (i, j) over the four windows
    np.testing.assert_allclose(w.grad[0, 0], [[1 + 2 + 0 + 1, 2 + 0 + 1 + 3], [0 + 1 + 2 + 1, 1 + 3 + 1 + 1]])
    assert b.grad.tolist() == [4.0]
    # dL/dX: every pixel gets the kernel taps that touched it (the centre all four)
    np.testing.assert_allclose(x.grad[0, 0], [[1.0, 0.0, -1.0], [3.0, 2.5, -0.5], [2.0, 2.5, 0.5]])


def test_im2col_rows_and_col2im_adjoint():
    geo = _geometry("demo", (3, 4), (2, 2), (1, 2), (1, 1), ((1, 0), (0, 1)))
    x = _rand(2, 3, 3, 4)
    rows = im2col(x, geo)
    assert rows.shape == (2 * geo.out_sizes[0] * geo.out_sizes[1], 3 * 4)
    # col2im is the adjoint of im2col: <im2col(x), r> = <x, col2im(r)>
    r = _rand(*rows.shape)
    taps = r.reshape((2,) + geo.out_sizes + geo.kernel + (3,))
    assert np.sum(rows * r) == pytest.approx(np.sum(x * col2im(taps, geo)), rel=1e-12)


def test_max_pool_sends_the_gradient_to_the_first_of_tied_maxima():
    x = Value(np.array([[[[3.0, 3.0], [1.0, 3.0]]]]))
    max_pool2d(x, 2).sum().backward()
    assert x.grad[0, 0].tolist() == [[1.0, 0.0], [0.0, 0.0]]



def test_max_pool_sends_the_gradient_of_a_nan_window_to_its_nan():
    # window 1 holds [1, nan; nan, 2]: its maximum is NaN and its gradient goes to the last NaN
    # (row order), as PyTorch's; window 2 [3, 0; 5, 5] sends its gradient to its first 5
    x = Value(np.array([[[[1.0, np.nan, 3.0, 0.0], [np.nan, 2.0, 5.0, 5.0]]]]))
    y = max_pool2d(x, 2)
    assert np.isnan(y.data[0, 0, 0, 0]) and y.data[0, 0, 0, 1] == 5.0
    (y * np.array([2.0, 3.0])).sum().backward()
    assert x.grad[0, 0].tolist() == [[0.0, 0.0, 0.0, 0.0], [2.0, 0.0, 3.0, 0.0]]
    # overlapping windows (stride 1): each NaN window finds its own last NaN
    x = Value(np.array([[[[1.0, np.nan, 3.0, 0.0], [np.nan, 2.0, 5.0, 5.0]]]]))
    (max_pool2d(x, 2, stride=1) * np.array([1.0, 10.0, 100.0])).sum().backward()
    assert x.grad[0, 0].tolist() == [[0.0, 10.0, 0.0, 0.0], [1.0, 0.0, 100.0, 0.0]]
    # and the same rule when differentiating twice (create_graph)
    x = Value(np.array([[[[1.0, 2.0], [np.nan, 7.0]]]]))
    (g,) = ac.grad(max_pool2d(x, 2).sum(), [x], create_graph=True)
    assert g.data[0, 0].tolist() == [[0.0, 0.0], [1.0, 0.0]]


def test_max_pool2d_with_nan_matches_pytorch():
    torch = pytest.importorskip("torch")
    x = np.round(_rand(2, 3, 7, 8))
    x[RNG.random(x.shape) < 0.15] = np.nan
    ours = Value(x)
    theirs = torch.tensor(x, requires_grad=True)
    y, y_t = max_pool2d(ours, 3, 2, 1), torch.nn.functional.max_pool2d(theirs, 3, 2, 1)
    np.testing.assert_array_equal(y.data, y_t.detach().numpy())
    assert np.isnan(y.data).any()
    upstream = _rand(*y.shape)
    (y * upstream).sum().backward()
    (y_t * torch.from_numpy(upstream)).sum().backward()
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-12)

def test_avg_pool_divisors_with_padding_and_ceil_mode():
    x = Value(np.ones((1, 1, 3, 3)))
    # kernel 2, stride 2, padding 1: windows over the zero-padded 5x5 image
    counted = avg_pool2d(x, 2, 2, 1).data[0, 0]
    np.testing.assert_allclose(counted, [[0.25, 0.5], [0.5, 1.0]])
    exact = avg_pool2d(x, 2, 2, 1, count_include_pad=False).data[0, 0]
    np.testing.assert_allclose(exact, np.ones((2, 2)))
    # ceil_mode adds a window past the end; it averages over its part inside
    assert avg_pool2d(x, 2, 2, ceil_mode=True).data[0, 0].tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_unfold_then_matmul_is_conv2d():
    x, w = _rand(2, 3, 5, 4), _rand(4, 3, 2, 3)
    cols = unfold(Value(x), (2, 3), padding=1, stride=(2, 1))
    by_hand = (w.reshape(4, -1) @ cols.data).reshape(2, 4, 3, 4)
    np.testing.assert_allclose(conv2d(x, w, padding=1, stride=(2, 1)).data, by_hand, rtol=1e-12, atol=1e-12)


def test_conv1d_equals_conv2d_on_a_one_pixel_high_image():
    x, w, b = _rand(2, 4, 9), _rand(6, 2, 3), _rand(6)
    one = conv1d(x, w, b, stride=2, padding=1, dilation=2, groups=2).data
    two = conv2d(x[:, :, None], w[:, :, None], b, stride=(1, 2), padding=(0, 1), dilation=(1, 2), groups=2).data
    np.testing.assert_allclose(one, two[:, :, 0], rtol=1e-12)


def test_float32_stays_float32():
    x, w = Value(_rand(2, 1, 6, 6).astype(np.float32)), Value(_rand(3, 1, 3, 3).astype(np.float32))
    y = max_pool2d(conv2d(x, w, padding="same").relu(), 2)
    y.sum().backward()
    assert y.dtype == np.float32 and w.grad.dtype == np.float32 and x.grad.dtype == np.float32


def test_unbatched_input_as_in_pytorch():
    x, w = _rand(2, 5, 5), _rand(3, 2, 3, 3)
    np.testing.assert_allclose(conv2d(x, w).data, conv2d(x[None], w).data[0])
    np.testing.assert_allclose(max_pool2d(Value(x), 2).data, max_pool2d(Value(x[None]), 2).data[0])


# ---- gradients against central differences ------------------------------------
CONV_CASES = [
    dict(stride=1, padding=0, dilation=1, groups=1),
    dict(stride=2, padding=1, dilation=1, groups=1),
    dict(stride=(1, 2), padding=(2, 0), dilation=(2, 1), groups=1),
    dict(stride=1, padding="same", dilation=2, groups=2),
    dict(stride=2, padding=1, dilation=1, groups=4),
]


@pytest.mark.parametrize("kwargs", CONV_CASES, ids=str)
def test_conv2d_gradcheck(kwargs):
    x, w, b = _rand(2, 4, 6, 5), _rand(4, 4 // kwargs["groups"], 3, 2), _rand(4)
    assert gradcheck(lambda x, w, b: conv2d(x, w, b, **kwargs), [x, w, b])


def test_conv1d_gradcheck():
    assert gradcheck(lambda x, w, b: conv1d(x, w, b, stride=2, padding=2, dilation=2, groups=2),
                     [_rand(2, 4, 9), _rand(2, 2, 3), _rand(2)])


POOL_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=(2, 3), stride=(1, 2), ceil_mode=True),
]


@pytest.mark.parametrize("kwargs", POOL_CASES + [dict(kernel_size=2, stride=1, dilation=2, padding=1)], ids=str)
def test_max_pool2d_gradcheck(kwargs):
    x = RNG.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) * 0.1  # distinct values: no ties
    assert gradcheck(lambda x: max_pool2d(x, **kwargs), [x])


@pytest.mark.parametrize("kwargs", POOL_CASES + [dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                                                      count_include_pad=False)], ids=str)
def test_avg_pool2d_gradcheck(kwargs):
    assert gradcheck(lambda x: avg_pool2d(x, **kwargs), [_rand(2, 3, 7, 6)])


@pytest.mark.parametrize("size", [1, (2, 3), (5, 4)], ids=str)
def test_adaptive_avg_pool2d_gradcheck(size):
    assert gradcheck(lambda x: adaptive_avg_pool2d(x, size), [_rand(2, 3, 5, 4)])


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_gradcheck(mode):
    assert gradcheck(lambda x: pad(x, (2, 1, 0, 2), mode=mode), [_rand(2, 3, 4, 3)])


def test_unfold_and_fold_gradcheck():
    assert gradcheck(lambda x: unfold(x, (2, 3), dilation=(2, 1), padding=1, stride=(1, 2)), [_rand(2, 2, 5, 6)])
    assert gradcheck(lambda c: fold(c, (4, 5), 2, padding=1, stride=2), [_rand(2, 8, 9)])


def test_second_derivative_of_conv2d_through_create_graph():
    # d/dW of (dL/dx . v) for L = sum(conv(x, W)^2): checked against differences of first derivatives
    x, w, v = _rand(1, 2, 5, 5), _rand(2, 2, 3, 3), _rand(1, 2, 5, 5)

    def first_along(w_data):
        xv, wv = Value(x), Value(w_data)
        (gx,) = ac.grad((conv2d(xv, wv, padding=1, stride=2) ** 2).sum(), [xv])
        return float(np.sum(gx * v))

    xv, wv = Value(x), Value(w)
    (gx,) = ac.grad((conv2d(xv, wv, padding=1, stride=2) ** 2).sum(), [xv], create_graph=True)
    (gw,) = ac.grad((gx * v).sum(), [wv])
    eps = 1e-6
    for index in [(0, 0, 0, 0), (1, 0, 2, 1), (0, 1, 1, 2)]:
        up, down = w.copy(), w.copy()
        up[index] += eps
        down[index] -= eps
        assert gw[index] == pytest.approx((first_along(up) - first_along(down)) / (2 * eps), rel=1e-5, abs=1e-7)


# ---- against PyTorch -------------------------------------------------------------
def _against_torch(ours_fn, torch_fn, arrays):
    torch = pytest.importorskip("torch")
    ours_in = [Value(a) for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    ours, theirs = ours_fn(*ours_in), torch_fn(*theirs_in)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    upstream = _rand(*ours.shape)
    (ours * upstream).sum().backward()
    (theirs * torch.from_numpy(upstream)).sum().backward()
    for k, (a, b) in enumerate(zip(ours_in, theirs_in)):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=f"input {k}")


@pytest.mark.parametrize("kwargs", CONV_CASES + [dict(stride=1, padding="valid", dilation=1, groups=1)], ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_matches_pytorch(kwargs, bias):
    torch = pytest.importorskip("torch")
    arrays = [_rand(2, 4, 7, 6), _rand(8, 4 // kwargs["groups"], 3, 2)] + ([_rand(8)] if bias else [])
    _against_torch(lambda *a: conv2d(*a, **kwargs), lambda *a: torch.nn.functional.conv2d(*a, **kwargs), arrays)


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # PyTorch's note on its own padded copy
@pytest.mark.parametrize("kwargs", [dict(stride=2, padding=1, dilation=2, groups=2), dict(padding="same")], ids=str)
def test_conv1d_matches_pytorch(kwargs):
    torch = pytest.importorskip("torch")
    arrays = [_rand(2, 4, 11), _rand(6, 4 // kwargs.get("groups", 1), 4), _rand(6)]
    _against_torch(lambda *a: conv1d(*a, **kwargs), lambda *a: torch.nn.functional.conv1d(*a, **kwargs), arrays)


@pytest.mark.parametrize("kwargs", POOL_CASES + [dict(kernel_size=3, dilation=2, padding=1, stride=1)], ids=str)
def test_max_pool2d_matches_pytorch(kwargs):
    torch = pytest.importorskip("torch")
    _against_torch(lambda x: max_pool2d(x, **kwargs), lambda x: torch.nn.functional.max_pool2d(x, **kwargs),
                   [_rand(2, 3, 7, 8)])


def test_max_pool2d_ties_match_pytorch():
    torch = pytest.importorskip("torch")
    x = np.round(_rand(2, 3, 6, 6))  # many equal values, as in flat regions of an image
    _against_torch(lambda x: max_pool2d(x, 3, 2, 1), lambda x: torch.nn.functional.max_pool2d(x, 3, 2, 1), [x])


@pytest.mark.parametrize("kwargs", POOL_CASES + [
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=3, stride=1, padding=1, divisor_override=4),
], ids=str)
def test_avg_pool2d_matches_pytorch(kwargs):
    torch = pytest.importorskip("torch")
    _against_torch(lambda x: avg_pool2d(x, **kwargs), lambda x: torch.nn.functional.avg_pool2d(x, **kwargs),
                   [_rand(2, 3, 7, 8)])


@pytest.mark.parametrize("size", [1, (3, 5), (None, 2), (7, 8)], ids=str)
def test_adaptive_avg_pool2d_matches_pytorch(size):
    torch = pytest.importorskip("torch")
    _against_torch(lambda x: adaptive_avg_pool2d(x, size),
                   lambda x: torch.nn.functional.adaptive_avg_pool2d(x, size), [_rand(2, 3, 7, 8)])


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_matches_pytorch(mode):
    torch = pytest.importorskip("torch")
    _against_torch(lambda x: pad(x, (2, 1, 3, 0), mode), lambda x: torch.nn.functional.pad(x, (2, 1, 3, 0), mode),
                   [_rand(2, 3, 5, 6)])



def test_replicate_padding_wider_than_the_axis_repeats_the_edge():
    # (0, 7) on 5 elements: the last one copied 7 more times, so its gradient is 4 + 5 + ... + 11 = 60
    x = Value(np.arange(5.0).reshape(1, 5))
    y = pad(x, (0, 7), mode="replicate")
    assert y.data.tolist() == [[0.0, 1.0, 2.0, 3.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]]
    (y * np.arange(12.0)).sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0, 2.0, 3.0, 60.0]]
    np.testing.assert_array_equal(y.data, np.pad(x.data, ((0, 0), (0, 7)), mode="edge"))
    with pytest.raises(ShapeError, match=r"pad: replicate padding of \(1, 1\) copies from an axis of size 0"):
        pad(np.zeros((1, 0)), (1, 1), mode="replicate")


@pytest.mark.parametrize("mode, widest", [("replicate", None), ("reflect", 4), ("circular", 5)])
def test_pad_width_limits_are_pytorchs(mode, widest):
    torch = pytest.importorskip("torch")
    x = _rand(2, 3, 5)  # padding the last axis, of 5 elements
    for width in (4, 5, 7):
        if widest is None or width <= widest:
            _against_torch(lambda v: pad(v, (width, 1), mode), lambda t: torch.nn.functional.pad(t, (width, 1), mode), [x])
            _against_torch(lambda v: pad(v, (0, width), mode), lambda t: torch.nn.functional.pad(t, (0, width), mode), [x])
        else:
            with pytest.raises(RuntimeError):
                torch.nn.functional.pad(torch.tensor(x), (0, width), mode)
            with pytest.raises(ShapeError, match=rf"pad: {mode} padding of \(0, {width}\) on an axis of size 5 "
                                                 rf"\(input \(2, 3, 5\)\) needs widths at most {widest}"):
                pad(x, (0, width), mode)

def test_constant_pad_value_matches_pytorch():
    torch = pytest.importorskip("torch")
    _against_torch(lambda x: pad(x, (1, 2), value=-1.5), lambda x: torch.nn.functional.pad(x, (1, 2), value=-1.5),
                   [_rand(3, 4)])


def test_unfold_and_fold_match_pytorch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    args = dict(dilation=(1, 2), padding=1, stride=2)
    _against_torch(lambda x: unfold(x, (2, 3), **args), lambda x: F.unfold(x, (2, 3), **args), [_rand(2, 3, 7, 8)])
    _against_torch(lambda c: fold(c, (7, 8), (2, 3), **args), lambda c: F.fold(c, (7, 8), (2, 3), **args),
                   [_rand(2, 18, 12)])


# ---- errors that name the operation and the shapes ---------------------------
def test_kernel_larger_than_the_padded_input():
    with pytest.raises(ShapeError, match=r"conv2d: the kernel \(5, 5\).*larger than the padded input.*\(3, 3\)"):
        conv2d(_rand(1, 1, 3, 3), _rand(1, 1, 5, 5), padding=0)
    with pytest.raises(ShapeError, match=r"max_pool2d: the kernel \(4, 4\).*larger"):
        max_pool2d(_rand(1, 1, 3, 3), 4)


def test_channels_that_do_not_match_the_weight():
    with pytest.raises(ShapeError, match=r"conv2d: the input has 3 channels \(shape \(2, 3, 8, 8\)\) but the weight "
                                         r"\(4, 2, 3, 3\) expects 2"):
        conv2d(_rand(2, 3, 8, 8), _rand(4, 2, 3, 3))


def test_groups_that_do_not_divide_the_channels():
    with pytest.raises(ValueError, match=r"conv2d: groups=2 must divide both the input channels \(3\)"):
        conv2d(_rand(2, 3, 8, 8), _rand(4, 1, 3, 3), groups=2)


def test_other_bad_arguments():
    with pytest.raises(ShapeError, match=r"conv2d: expects input of shape \(N, C, H, W\).*got \(8, 8\)"):
        conv2d(_rand(8, 8), _rand(1, 1, 3, 3))
    with pytest.raises(ShapeError, match=r"conv2d: bias must have shape \(4,\)"):
        conv2d(_rand(1, 1, 5, 5), _rand(4, 1, 3, 3), _rand(3))
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        conv2d(_rand(1, 1, 5, 5), _rand(1, 1, 3, 3), stride=2, padding="same")
    with pytest.raises(ValueError, match=r"conv2d: stride must be an int >= 1"):
        conv2d(_rand(1, 1, 5, 5), _rand(1, 1, 3, 3), stride=0)
    with pytest.raises(ValueError, match=r"max_pool2d: padding \(2, 2\) must be at most half the kernel size"):
        max_pool2d(_rand(1, 1, 5, 5), 2, padding=2)
    with pytest.raises(ShapeError, match=r"pad: reflect padding of \(3, 0\) on an axis of size 3"):
        pad(_rand(1, 3), (3, 0), mode="reflect")
    with pytest.raises(ValueError, match=r"pad: mode must be"):
        pad(_rand(1, 3), (1, 1), mode="mirror")



# ---- sizes at the edges: an empty batch, huge padding or strides, bools ----------
EMPTY_BATCH_CASES = {
    "conv2d": (lambda x, w, b: conv2d(x, w, b, padding=1), "conv2d", [(0, 2, 5, 5), (4, 2, 3, 3), (4,)], dict(padding=1)),
    "conv2d groups": (lambda x, w, b: conv2d(x, w, b, stride=2, groups=2), "conv2d", [(0, 2, 5, 5), (4, 1, 3, 3), (4,)],
                      dict(stride=2, groups=2)),
    "conv2d one channel": (lambda x, w: conv2d(x, w), "conv2d", [(0, 1, 5, 5), (3, 1, 3, 3)], {}),
    "conv1d": (lambda x, w: conv1d(x, w, padding=2), "conv1d", [(0, 2, 7), (3, 2, 3)], dict(padding=2)),
    "max_pool2d": (lambda x: max_pool2d(x, 3, 1, 1), "max_pool2d", [(0, 2, 4, 4)], dict(kernel_size=3, stride=1, padding=1)),
    "avg_pool2d": (lambda x: avg_pool2d(x, 2), "avg_pool2d", [(0, 2, 4, 4)], dict(kernel_size=2)),
}


@pytest.mark.parametrize("case", EMPTY_BATCH_CASES, ids=str)
def test_an_empty_batch_gives_an_empty_output_and_zero_gradients(case):
    ours, torch_name, shapes, kwargs = EMPTY_BATCH_CASES[case]
    inputs = [Value(_rand(*shape)) for shape in shapes]
    y = ours(*inputs)
    expected = {"conv2d": (0, 4, 5, 5), "conv2d groups": (0, 4, 2, 2), "conv2d one channel": (0, 3, 3, 3),
                "conv1d": (0, 3, 9), "max_pool2d": (0, 2, 4, 4), "avg_pool2d": (0, 2, 2, 2)}[case]
    assert y.shape == expected
    y.sum().backward()
    for v in inputs:
        assert v.grad.shape == v.shape and not v.grad.any()  # nothing flowed: zeros, as in PyTorch
    (g,) = ac.grad(ours(*inputs).sum(), inputs[-1:], create_graph=True)  # the rules built from fold / unfold
    assert g.shape == shapes[-1] and not g.data.any()
    torch = pytest.importorskip("torch")
    theirs = getattr(torch.nn.functional, torch_name)(*[torch.tensor(v.data) for v in inputs], **kwargs)
    assert tuple(theirs.shape) == expected


def test_a_cnn_runs_on_a_batch_of_zero_images():
    nn = pytest.importorskip("nn")
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 3))
    y = model(Value(np.zeros((0, 1, 8, 8)), requires_grad=False))
    assert y.shape == (0, 3)
    y.sum().backward()
    for name, p in model.named_parameters():
        assert p.grad.shape == p.shape and not p.grad.any(), name


@pytest.mark.parametrize("stride", [10**18, 2**63 - 1])
def test_a_stride_larger_than_the_input_gives_one_window(stride):
    # PyTorch returns the top-left window alone; the stride is never taken, so it must not overflow anything
    x, w = _rand(2, 3, 5, 5), _rand(4, 3, 3, 3)
    y = conv2d(x, w, stride=stride)
    np.testing.assert_allclose(y.data, conv2d(x, w, stride=5).data, rtol=1e-15)
    assert y.shape == (2, 4, 1, 1)
    assert max_pool2d(x, 2, stride=stride).data.tolist() == max_pool2d(x[:, :, :2, :2], 2).data.tolist()
    np.testing.assert_allclose(avg_pool2d(x, 2, stride=stride).data, x[:, :, :2, :2].mean(axis=(2, 3), keepdims=True))
    assert conv1d(_rand(2, 3, 5), _rand(4, 3, 3), stride=stride).shape == (2, 4, 1)
    xv = Value(x)
    max_pool2d(xv, 2, stride=stride).sum().backward()
    assert xv.grad.sum() == 6.0  # one winner per window: 2 images x 3 channels
    with pytest.raises(ValueError, match=r"conv2d: stride 9223372036854775808 is past 2\*\*63 - 1, the largest size"):
        conv2d(x, w, stride=2**63)  # PyTorch refuses it too
    with pytest.raises(ValueError, match=r"max_pool2d: stride \(1, 10{30}\) is past 2\*\*63 - 1"):
        max_pool2d(x, 2, stride=(1, 10**30))
    with pytest.raises(ValueError, match=r"conv2d: padding \(a number too long to print\) is past 2\*\*63 - 1"):
        conv2d(x, w, padding=10**5000)
    torch = pytest.importorskip("torch")
    _against_torch(lambda a, b: conv2d(a, b, stride=stride),
                   lambda a, b: torch.nn.functional.conv2d(a, b, stride=stride), [x, w])


def test_sizes_past_the_memory_limit_are_refused_before_anything_is_allocated(monkeypatch):
    import tracemalloc

    from autograd_core import conv as conv_module

    x, w = _rand(1, 1, 5, 5), _rand(1, 1, 3, 3)
    tracemalloc.start()
    try:
        # 10**9 of padding: 2e9 x 2e9 pixels, more than any machine holds (NumPy said "array is too big")
        with pytest.raises(MemoryError, match=r"conv2d: input \(1, 1, 5, 5\) with kernel \(3, 3\) and padding "
                                              r"\(1000000000, 1000000000\) needs .* EiB for its arrays \(padded copy "
                                              r"\(1, 1, 2000000005, 2000000005\): .*im2col rows.*output.*\), more than"):
            conv2d(x, w, padding=10**9)
        with pytest.raises(MemoryError, match=r"conv1d: input \(1, 1, 5\) with kernel \(3,\) and padding "
                                              r"\(1000000000000000000,\) needs"):
            conv1d(x[:, :, 0], w[:, :, 0], padding=10**18)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    # against a limit set for the test: 10**5 of padding takes 3.2 TiB (NumPy's MemoryError said 298 GiB
    # for the first of the arrays only); what fits the limit runs
    monkeypatch.setattr(conv_module, "MAX_WORKSPACE_BYTES", 4 << 30)
    monkeypatch.setattr(conv_module, "_GEOMETRY_CACHE", {})
    with pytest.raises(MemoryError, match=r"conv2d: .* needs 3\.2 TiB for its arrays .* more than the 4\.0 GiB allowed "
                                          r"\(autograd_core\.conv\.MAX_WORKSPACE_BYTES.*use less padding"):
        conv2d(x, w, padding=10**5)
    monkeypatch.setattr(conv_module, "MAX_WORKSPACE_BYTES", 4000)
    # 8 images of 2 x 8 x 8 float64 under a 3x3 kernel: 8 x 64 rows of 18 values = 73,728 bytes of rows alone
    with pytest.raises(MemoryError, match=r"conv2d: input \(8, 2, 8, 8\) .*im2col rows \(512, 18\): 72\.0 KiB"):
        conv2d(_rand(8, 2, 8, 8), _rand(4, 2, 3, 3), padding=1)
    assert conv2d(_rand(1, 2, 3, 3), _rand(1, 2, 3, 3)).shape == (1, 1, 1, 1)  # 144 + 8 bytes
    with pytest.raises(MemoryError, match=r"max_pool2d: input \(8, 2, 8, 8\) with kernel \(2, 2\) and padding "
                                          r"\(1, 1\) needs 15\.6 KiB"):
        max_pool2d(_rand(8, 2, 8, 8), 2, padding=1)  # padded copy 8 x 2 x 10 x 10 and output 8 x 2 x 5 x 5
    with pytest.raises(MemoryError, match=r"avg_pool2d: input \(8, 2, 8, 8\)"):
        avg_pool2d(_rand(8, 2, 8, 8), 2, padding=1)
    with pytest.raises(MemoryError, match=r"unfold: input \(8, 2, 8, 8\)"):
        unfold(_rand(8, 2, 8, 8), 3)
    with pytest.raises(MemoryError, match=r"fold: output_size \(100, 100\)"):
        fold(_rand(1, 1, 1), (100, 100), 1, stride=100)
    with pytest.raises(MemoryError, match=r"pad: replicate padding \(0, 600\) of the input \(1, 5\) needs 4\.7 KiB"):
        pad(_rand(1, 5), (0, 600), mode="replicate")


@pytest.mark.parametrize("name", ["stride", "padding", "dilation"])
def test_bools_are_refused_as_sizes_even_after_the_int_was_seen(name):
    # True == 1 and hash(True) == hash(1): stride=True used to find stride=1's checked geometry
    x = _rand(1, 2, 6, 6)
    calls = {
        "conv2d": lambda **a: conv2d(x, _rand(3, 2, 3, 3), **a),
        "conv1d": lambda **a: conv1d(x[:, :, 0], _rand(3, 2, 3), **a),
        "max_pool2d": lambda **a: max_pool2d(x, 2, **a),
        "avg_pool2d": lambda **a: avg_pool2d(x, 2, **a),
        "unfold": lambda **a: unfold(x, 2, **a),
    }
    for op, call in calls.items():
        if op == "avg_pool2d" and name == "dilation":
            continue  # avg_pool2d has no dilation
        if op.endswith("pool2d") and name == "padding":
            call(padding=0)
        else:
            call(**{name: 1})  # the int is fine, and its geometry is kept
        pair = (1, True) if op != "conv1d" else (True,)
        for value in (True, pair):
            with pytest.raises(ValueError, match=rf"{op}: {name} must be an int >= \d or \d of them, got "):
                call(**{name: value})

# ---- one node in the drawing and in the stepper --------------------------------
def test_a_convolution_is_one_node_with_its_rule_in_the_drawing_and_the_stepper():
    x = Value(_rand(1, 1, 4, 4), requires_grad=False, label="X")
    w = Value(_rand(2, 1, 3, 3), label="W")
    y = conv2d(x, w, padding=1)
    y.label = "Y"
    loss = y.sum()
    ops = [node._op.name for node in ac.topological_order([loss]) if node._op is not None]
    assert ops.count("conv2d") == 1 and len(ops) == 2  # the sum and one convolution
    source = ac.draw_graph(loss, show_local_gradients=True).source
    assert "label=conv2d" in source and "im2col(X)^T @ dL/dY" in source
    steps = [step for step in BackpropStepper(loss) if step.node is y]
    assert len(steps) == 1
    assert "im2col(X)^T @ dL/dY" in steps[0].node._op.formula
    (weight_share,) = [product for inp, _, product in steps[0].contributions if inp is w]
    assert weight_share.shape == w.shape
