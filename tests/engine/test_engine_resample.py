"""Transposed convolutions, interpolation, max pooling's indices and max
unpooling: values and gradients against PyTorch (float64 to 1e-12, float32 to
1e-5) over many drawn settings, PyTorch's conventions at the edges (its
output_padding rule, nearest's shortcuts, repeated unpooling indices), errors
that name the operation and the sizes, sizes refused before anything is
allocated, and indices that a compiled step makes again at every call.
(Every op is also in the registry's cases: gradcheck, second order, compile.)"""

import math

import numpy as np
import pytest

import autograd_core as ac
from autograd_core import Value, conv
from autograd_core.errors import ShapeError
from autograd_core.gradcheck import gradcheck

RNG = np.random.default_rng(20)


def _tolerance(dtype):
    return 1e-12 if dtype == np.float64 else 1e-5


def _compare(ours_fn, torch_fn, arrays, dtype):
    """Value and the gradient of every float input (a random upstream gradient) against PyTorch."""
    torch = pytest.importorskip("torch")
    ours_in = [Value(a) if a is not None else None for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=True) if a is not None else None for a in arrays]
    ours, theirs = ours_fn(*ours_in), torch_fn(*theirs_in)
    assert ours.shape == tuple(theirs.shape) and ours.dtype == dtype
    upstream = RNG.standard_normal(ours.shape).astype(dtype)
    (ours * upstream).sum().backward()
    (theirs * torch.from_numpy(upstream)).sum().backward()
    tol = _tolerance(dtype)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=tol, atol=tol, err_msg="value")
    for k, (a, b) in enumerate(zip(ours_in, theirs_in)):
        if a is not None:
            assert a.grad.dtype == dtype
            np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=tol, atol=tol, err_msg=f"gradient of input {k}")


# ==========================================================================
# conv_transpose2d / conv_transpose1d
# ==========================================================================
def _draw_transposed(rng, nd):
    groups = int(rng.choice([1, 2, 3]))
    kernel = tuple(int(v) for v in rng.integers(1, 5, nd))
    stride = tuple(int(v) for v in rng.integers(1, 4, nd))
    dilation = tuple(int(v) for v in rng.integers(1, 3, nd))
    padding = tuple(int(v) for v in rng.integers(0, 3, nd))
    extra = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
    sizes = tuple(int(v) for v in rng.integers(1, 6, nd))
    out = [(n - 1) * s - 2 * p + d * (k - 1) + e + 1
           for n, s, p, d, k, e in zip(sizes, stride, padding, dilation, kernel, extra)]
    kwargs = dict(stride=stride, padding=padding, output_padding=extra, groups=groups, dilation=dilation)
    shapes = ((int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))) + sizes,
              (None, int(rng.integers(1, 3))) + kernel)
    return kwargs, shapes, min(out) >= 1


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("nd", [1, 2])
def test_conv_transpose_matches_pytorch_over_drawn_settings(nd, dtype):
    torch = pytest.importorskip("torch")
    fn = ac.conv_transpose2d if nd == 2 else ac.conv_transpose1d
    theirs = torch.nn.functional.conv_transpose2d if nd == 2 else torch.nn.functional.conv_transpose1d
    rng = np.random.default_rng(nd)
    compared = 0
    while compared < 60:
        kwargs, (x_shape, w_shape), fits = _draw_transposed(rng, nd)
        if not fits:
            continue
        w_shape = (x_shape[1],) + w_shape[1:]
        x = rng.standard_normal(x_shape).astype(dtype)
        w = rng.standard_normal(w_shape).astype(dtype)
        b = rng.standard_normal(w_shape[1] * kwargs["groups"]).astype(dtype) if compared % 2 else None
        _compare(lambda *a: fn(*a, **kwargs), lambda *a: theirs(*a, **kwargs), [x, w, b], dtype)
        compared += 1


def test_conv_transpose_is_the_gradient_of_conv_with_respect_to_its_input():
    # <conv(x), y> = <x, conv_transpose(y)> for every x and y: each is the other's adjoint
    x = RNG.standard_normal((2, 4, 7, 6))
    w = RNG.standard_normal((6, 2, 3, 2))  # conv2d: 6 out, 4 / 2 in per group
    kwargs = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)
    y = ac.conv2d(x, w, **kwargs)
    g = RNG.standard_normal(y.shape)
    back = ac.conv_transpose2d(g, w, **kwargs, output_padding=(0, 0))
    assert back.shape == x.shape
    assert float((y.data * g).sum()) == pytest.approx(float((x * back.data).sum()), rel=1e-12)


def test_conv_transpose_second_order_matches_pytorch():
    torch = pytest.importorskip("torch")
    x, w = RNG.standard_normal((2, 2, 3, 3)), RNG.standard_normal((2, 3, 3, 3))
    kwargs = dict(stride=2, padding=1, output_padding=1)
    xv, wv = Value(x), Value(w)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    gx, gw = ac.grad((ac.conv_transpose2d(xv, wv, **kwargs) ** 2).sum(), [xv, wv], create_graph=True)
    gxt, gwt = torch.autograd.grad((torch.nn.functional.conv_transpose2d(xt, wt, **kwargs) ** 2).sum(), [xt, wt],
                                   create_graph=True)
    ours = ac.grad((gx * gx).sum() + (gw ** 3).sum(), [xv, wv])
    theirs = torch.autograd.grad((gxt * gxt).sum() + (gwt ** 3).sum(), [xt, wt])
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-11, atol=1e-11)


def test_conv_transpose_takes_one_image_without_a_batch_axis_and_an_empty_batch():
    torch = pytest.importorskip("torch")
    x, w = RNG.standard_normal((2, 3, 4)), RNG.standard_normal((2, 3, 2, 2))
    np.testing.assert_allclose(ac.conv_transpose2d(x, w, stride=2).data,
                               torch.nn.functional.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w),
                                                                    stride=2).numpy(), rtol=1e-12)
    empty = Value(np.zeros((0, 2, 3, 4)))
    wv = Value(w)
    y = ac.conv_transpose2d(empty, wv, stride=2)
    assert y.shape == (0, 3, 6, 8)
    y.sum().backward()
    assert empty.grad.shape == (0, 2, 3, 4) and np.all(wv.grad == 0)


def test_conv_transpose_output_padding_past_every_window_is_zero_plus_the_bias():
    # padding 0, output_padding 2 (below the dilation 3): the last two rows get no window
    x, w, b = RNG.standard_normal((1, 1, 2)), RNG.standard_normal((1, 1, 2)), np.array([0.5])
    y = ac.conv_transpose1d(x, w, b, dilation=3, output_padding=2)
    assert y.shape == (1, 1, 1 + 3 + 1 + 2)
    np.testing.assert_array_equal(y.data[0, 0, -2:], [0.5, 0.5])
    assert gradcheck(lambda a, k: (ac.conv_transpose1d(a, k, dilation=3, output_padding=2) ** 2).sum(), [x, w])


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(stride=1, output_padding=1), ValueError, r"output_padding \(1, 1\) must be smaller than the stride \(1, 1\) "
                                                   r"or the dilation \(1, 1\)"),
    (dict(stride=2, dilation=2, output_padding=2), ValueError, "must be smaller than the stride"),
    (dict(padding=-1), ValueError, r"padding must be an int >= 0"),
    (dict(stride=0), ValueError, r"stride must be an int >= 1"),
    (dict(stride=True), ValueError, r"stride must be an int >= 1"),
    (dict(groups=0), ValueError, "groups must be a positive int"),
    (dict(groups=4), ValueError, r"groups=4 must divide the weight's in_channels \(2\)"),
    (dict(padding=3), ShapeError, r"gives an output of size \(-1, -1\), which is empty"),
])
def test_conv_transpose_refuses_bad_arguments_as_pytorch_does(kwargs, error, match):
    with pytest.raises(error, match=match):
        ac.conv_transpose2d(np.zeros((1, 2, 3, 3)), np.zeros((2, 3, 3, 3)), **kwargs)


def test_conv_transpose_refuses_bad_shapes_naming_the_layout():
    with pytest.raises(ShapeError, match=r"conv_transpose2d: weight must have shape \(in_channels, out_channels / "
                                         r"groups, kH, kW\), got \(2, 3, 3\)"):
        ac.conv_transpose2d(np.zeros((1, 2, 3, 3)), np.zeros((2, 3, 3)))
    with pytest.raises(ShapeError, match=r"conv_transpose2d: the input has 4 channels .* weight \(2, 3, 3, 3\) "
                                         r"expects 2 \(its first axis"):
        ac.conv_transpose2d(np.zeros((1, 4, 3, 3)), np.zeros((2, 3, 3, 3)))
    with pytest.raises(ShapeError, match=r"conv_transpose1d: expects input of shape \(N, C, L\)"):
        ac.conv_transpose1d(np.zeros((2,)), np.zeros((2, 3, 3)))
    with pytest.raises(ShapeError, match=r"bias must have shape \(6,\) \(out_channels\)"):
        ac.conv_transpose2d(np.zeros((1, 2, 3, 3)), np.zeros((2, 3, 3, 3)), np.zeros(3), groups=2)


def test_conv_transpose_refuses_an_output_too_large_before_allocating(monkeypatch):
    monkeypatch.setattr(conv, "MAX_WORKSPACE_BYTES", 1 << 20)
    with pytest.raises(MemoryError, match=r"conv_transpose2d: input \(1, 1, 4, 4\) with kernel \(3, 3\), "
                                          r"stride \(1000, 1000\).*more than the 1.0 MiB allowed"):
        ac.conv_transpose2d(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 3)), stride=1000)
    with pytest.raises(ValueError, match="past 2\\*\\*63 - 1"):
        ac.conv_transpose2d(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 3)), stride=2**70)


# ==========================================================================
# interpolate
# ==========================================================================
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode, align_corners", [("nearest", None), ("bilinear", False), ("bilinear", True),
                                                 ("linear", False), ("linear", True)])
def test_interpolate_matches_pytorch_by_size_and_by_scale_factor(mode, align_corners, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    nd = 1 if mode == "linear" else 2
    nds = [1, 2] if mode == "nearest" else [nd]
    compared = 0
    while compared < 80:
        nd = int(rng.choice(nds))
        sizes = tuple(int(v) for v in rng.integers(1, 9, nd))
        x = rng.standard_normal((2, 3) + sizes).astype(dtype)
        if compared % 2:
            kwargs = dict(size=tuple(int(v) for v in rng.integers(1, 17, nd)))
        else:
            factors = tuple(float(rng.choice([0.4, 0.5, 0.75, 1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 1 / 3, 7 / 3]))
                            for _ in range(nd))
            out = [math.floor(n * f) for n, f in zip(sizes, factors)]
            if min(out) < 1 or (nd == 1 and mode == "nearest" and out[0] in (sizes[0], 2 * sizes[0])
                                and factors[0] not in (1.0, 2.0)):
                continue  # (PyTorch's 1-d nearest quirk: the test below)
            kwargs = dict(scale_factor=factors, recompute_scale_factor=bool(rng.integers(0, 2)))
        _compare(lambda a: ac.interpolate(a, mode=mode, align_corners=align_corners, **kwargs),
                 lambda a: torch.nn.functional.interpolate(a, mode=mode, align_corners=align_corners, **kwargs),
                 [x], dtype)
        compared += 1


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_nearest_reads_floor_of_j_times_in_over_out_and_an_infinity_stays_where_it_is_read():
    torch = pytest.importorskip("torch")
    x = np.array([[[1.0, np.inf, 2.0, 4.0, 5.0]]])
    y = ac.interpolate(x, size=3)  # j * 5 / 3 -> 0, 1.67, 3.33
    assert y.data.tolist() == [[[1.0, np.inf, 4.0]]]
    y = ac.interpolate(x, size=8, mode="linear")  # read pixel by pixel: the far outputs stay finite (not NaN)
    theirs = torch.nn.functional.interpolate(torch.from_numpy(x), size=8, mode="linear").numpy()
    np.testing.assert_array_equal(y.data, theirs)
    assert np.isfinite(y.data[0, 0, 4:]).all() and np.isnan(y.data[0, 0, 0])  # 0 * inf where a weight is 0


def test_pytorchs_1d_nearest_takes_no_shortcut_forwards_but_does_backwards():
    # 2 pixels by a factor 1.3: floor(2.6) = 2 outputs, read at floor(j / 1.3) = 0, 0. PyTorch's forward
    # reads that; its backward takes the "same size: a copy" shortcut and sends the gradient to 0 and 1.
    # The engine gives PyTorch's values, and the gradient of those values.
    torch = pytest.importorskip("torch")
    x = np.array([[[3.0, 7.0]]])
    ours = Value(x)
    y = ac.interpolate(ours, scale_factor=1.3)
    theirs = torch.tensor(x, requires_grad=True)
    y_t = torch.nn.functional.interpolate(theirs, scale_factor=1.3)
    assert y.data.tolist() == y_t.tolist() == [[[3.0, 3.0]]]
    y.sum().backward()
    y_t.sum().backward()
    assert ours.grad.tolist() == [[[2.0, 0.0]]]  # both outputs read pixel 0
    assert theirs.grad.tolist() == [[[1.0, 1.0]]]  # PyTorch's shortcut
    assert gradcheck(lambda a: (ac.interpolate(a, scale_factor=1.3) * np.array([1.0, 2.0])).sum(), [x])


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((np.zeros((1, 1, 2, 2)),), dict(size=3, mode="bicubic"), ValueError, "mode must be 'nearest', 'linear' or"),
    ((np.zeros((1, 1, 2, 2)),), dict(size=3, mode="linear"), ShapeError, r"mode 'linear' takes an input of shape "
                                                                         r"\(N, C, L\), got \(1, 1, 2, 2\)"),
    ((np.zeros((1, 2)),), dict(size=3), ShapeError, r"mode 'nearest' takes an input of shape \(N, C, L\) or"),
    ((np.zeros((1, 1, 2)),), dict(size=3, align_corners=True), ValueError, "align_corners only applies"),
    ((np.zeros((1, 1, 2)),), {}, ValueError, "give either size or scale_factor"),
    ((np.zeros((1, 1, 2)),), dict(size=3, scale_factor=2), ValueError, "give either size or scale_factor"),
    ((np.zeros((1, 1, 2)),), dict(size=0), ValueError, "size must be an int >= 1"),
    ((np.zeros((1, 1, 2, 2)),), dict(size=(2, 2, 2)), ValueError, "size must be an int >= 1 or 2 of them"),
    ((np.zeros((1, 1, 2)),), dict(scale_factor=-2), ValueError, "scale_factor must be a positive number"),
    ((np.zeros((1, 1, 2)),), dict(scale_factor=float("nan")), ValueError, "scale_factor must be a positive number"),
    ((np.zeros((1, 1, 2)),), dict(scale_factor=0.25), ShapeError, r"an output of size \(0,\), which is empty"),
    ((np.zeros((1, 1, 0)),), dict(size=3), ShapeError, "has an empty spatial axis"),
])
def test_interpolate_refuses_bad_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        ac.interpolate(*args, **kwargs)


def test_interpolate_refuses_a_size_too_large_before_allocating(monkeypatch):
    monkeypatch.setattr(conv, "MAX_WORKSPACE_BYTES", 1 << 20)
    with pytest.raises(MemoryError, match=r"interpolate: resizing the input \(1, 1, 4, 4\) to \(4000, 4000\) needs"):
        ac.interpolate(np.zeros((1, 1, 4, 4)), scale_factor=1000)


# ==========================================================================
# max_pool2d(..., return_indices=True) and max_unpool2d
# ==========================================================================
@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=(2, 3), stride=1, dilation=2),
    dict(kernel_size=3, stride=2, ceil_mode=True), dict(kernel_size=2, stride=(1, 3), padding=1, ceil_mode=True),
])
def test_max_pool2d_indices_are_pytorchs(kwargs):
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((2, 3, 7, 8))
    x[0, 0, :3, :3] = 1.0  # ties: the first maximum of the window
    x[1, 2, 2, 2] = x[1, 2, 4, 5] = np.nan  # NaN: the last NaN of the window
    values, indices = ac.max_pool2d(Value(x), return_indices=True, **kwargs)
    their_values, their_indices = torch.nn.functional.max_pool2d(torch.from_numpy(x), return_indices=True, **kwargs)
    np.testing.assert_array_equal(values.data, their_values.numpy())
    assert indices.dtype == np.int64
    np.testing.assert_array_equal(indices, their_indices.numpy())
    one_values, one_indices = ac.max_pool2d(x[0], return_indices=True, **kwargs)  # (C, H, W)
    np.testing.assert_array_equal(one_indices, their_indices.numpy()[0])
    np.testing.assert_array_equal(one_values.data, values.data[0])


@pytest.mark.parametrize("kernel, stride, padding, ceil_mode", [(2, 2, 1, False), (3, 2, 1, True), (2, 3, 0, True),
                                                              (3, 1, 1, False)])
def test_a_window_of_minus_infinities_picks_its_first_element_inside_the_input_as_pytorch(kernel, stride, padding,
                                                                                          ceil_mode):
    # the padding counts as -inf too, but it never wins: index and gradient go to the first element of the input
    torch = pytest.importorskip("torch")
    x = np.full((1, 2, 4, 5), -np.inf)
    x[0, 0, 2, 2] = 1.0
    ours = Value(x)
    values, indices = ac.max_pool2d(ours, kernel, stride, padding, ceil_mode=ceil_mode, return_indices=True)
    theirs = torch.tensor(x, requires_grad=True)
    their_values, their_indices = torch.nn.functional.max_pool2d(theirs, kernel, stride, padding, ceil_mode=ceil_mode,
                                                                 return_indices=True)
    np.testing.assert_array_equal(indices, their_indices.numpy())
    assert indices.min() >= 0
    values.sum().backward()
    their_values.sum().backward()
    np.testing.assert_array_equal(ours.grad, theirs.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kernel, stride, padding, size", [
    (2, None, 0, None), (3, 2, 1, None), ((2, 3), (2, 3), 0, (7, 8)),
])
def test_max_unpool2d_matches_pytorch_after_max_pool2d(kernel, stride, padding, size, dtype):
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((2, 3, 7, 8)).astype(dtype)
    values, indices = ac.max_pool2d(x, kernel, stride, padding, return_indices=True)
    output_size = size or x.shape[2:]
    _compare(lambda v: ac.max_unpool2d(v, indices, kernel, stride, padding, output_size),
             lambda v: torch.nn.functional.max_unpool2d(v, torch.from_numpy(indices), kernel, stride, padding,
                                                         output_size), [values.data], dtype)


def test_max_unpool2d_to_a_smaller_size_than_the_default_matches_pytorch():
    torch = pytest.importorskip("torch")
    values = RNG.standard_normal((2, 3, 3, 3))  # default output (3 - 1) * 2 + 3 = 7; 6 is within a stride
    indices = np.stack([RNG.permutation(6 * 8)[:9] for _ in range(6)]).reshape(2, 3, 3, 3)
    _compare(lambda v: ac.max_unpool2d(v, indices, 3, 2, output_size=(1, 1, 6, 8)),
             lambda v: torch.nn.functional.max_unpool2d(v, torch.from_numpy(indices), 3, 2, output_size=(1, 1, 6, 8)),
             [values], np.float64)


def test_max_unpool2d_keeps_the_last_of_repeated_indices_and_reads_each_gradient_as_pytorch():
    torch = pytest.importorskip("torch")
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    indices = np.array([[[[0, 0], [3, 3]]]])
    ours = Value(x)
    y = ac.max_unpool2d(ours, indices, 2)
    theirs = torch.tensor(x, requires_grad=True)
    y_t = torch.nn.functional.max_unpool2d(theirs, torch.from_numpy(indices), 2)
    np.testing.assert_array_equal(y.data, y_t.detach().numpy())
    assert y.data[0, 0, 0].tolist() == [2.0, 0.0, 0.0, 4.0]
    upstream = np.arange(16.0).reshape(1, 1, 4, 4)
    (y * upstream).sum().backward()
    (y_t * torch.from_numpy(upstream)).sum().backward()
    np.testing.assert_array_equal(ours.grad, theirs.grad.numpy())  # both values read the gradient at their index


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((np.zeros((1, 1, 2, 2)), np.array([[[[0, 1], [2, 16]]]]), 2), {}, ValueError,
     r"the index 16 is outside an output plane of 4 x 4 = 16 places"),
    ((np.zeros((1, 1, 2, 2)), np.array([[[[0, 1], [2, -1]]]]), 2), {}, ValueError, "the index -1 is outside"),
    ((np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2)), 2), {}, TypeError, "indices must be an integer array"),
    ((np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 3), dtype=int), 2), {}, ShapeError,
     r"indices must have the input's shape \(1, 1, 2, 2\), got \(1, 1, 2, 3\)"),
    ((np.zeros((2, 2)), np.zeros((2, 2), dtype=int), 2), {}, ShapeError, r"expects input of shape \(N, C, H, W\)"),
    ((np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), dtype=int), 2), dict(output_size=(6, 4)), ValueError,
     r"output_size \(6, 4\) must lie strictly between 2 and 6 along axis 0"),
    ((np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), dtype=int), 0), {}, ValueError, "kernel_size must be an int >= 1"),
])
def test_max_unpool2d_refuses_bad_input_as_pytorch_does(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        ac.max_unpool2d(*args, **kwargs)


def test_max_unpool2d_refuses_an_output_too_large_before_allocating(monkeypatch):
    monkeypatch.setattr(conv, "MAX_WORKSPACE_BYTES", 1 << 20)
    with pytest.raises(MemoryError, match=r"max_unpool2d: an output of size \(1000, 1000\)"):
        ac.max_unpool2d(np.zeros((1, 1, 1, 1)), np.zeros((1, 1, 1, 1), dtype=int), 1000)


def test_a_compiled_step_makes_the_pooling_indices_again_at_every_call():
    def autoencode(x):
        values, indices = ac.max_pool2d(x, 2, return_indices=True)
        return (ac.max_unpool2d(values * 2.0, indices, 2) ** 2).sum()

    step = ac.compile(autoencode)
    for seed in range(3):  # the first call traces; the others replay with new maxima in new places
        x = np.random.default_rng(seed).standard_normal((2, 3, 4, 6))
        compiled, eager = Value(x), Value(x)
        step(compiled).backward()
        autoencode(eager).backward()
        np.testing.assert_array_equal(compiled.grad, eager.grad)
    assert step.cache_info().replays == 2
