"""Worked values and behaviour: argmax, one_hot, dropout, entropy and KL, init, utils."""

import math

import numpy as np
import pytest

import nn
from autograd_core import Value
from nn import functional as F


def test_softmax_of_the_lecture_iris_example():
    # the course's scores 1.43, -0.4, 0.23: e^1.43 = 4.179, e^-0.4 = 0.670, e^0.23 = 1.259 (sum 6.108)
    p = F.softmax(np.array([1.43, -0.4, 0.23]), dim=0).data
    np.testing.assert_allclose(p, [4.1787 / 6.1077, 0.6703 / 6.1077, 1.2586 / 6.1077], rtol=1e-3)
    assert p.sum() == pytest.approx(1.0)


def test_argmax_returns_indices_without_a_graph():
    scores = Value(np.array([[1.43, -0.4, 0.23], [0.1, 0.2, 3.0]]))
    picked = F.argmax(scores, dim=1)
    np.testing.assert_array_equal(picked, [0, 2])
    assert picked.dtype.kind == "i" and not picked.requires_grad
    with pytest.raises(RuntimeError, match="argmax has no gradient"):
        picked.backward()
    accuracy = (picked == np.array([0, 1])).mean()
    assert type(accuracy) is np.float64 and accuracy == 0.5  # derived results are plain NumPy
    assert int(F.argmax(scores)) == 5
    assert F.argmax(scores, dim=0, keepdim=True).shape == (1, 3)


def test_one_hot():
    np.testing.assert_array_equal(F.one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        F.one_hot(np.array([3]), 3)


def test_dropout_scales_kept_units_and_is_identity_in_eval():
    x = np.ones((200, 100))
    nn.manual_seed(0)
    layer = nn.Dropout(0.25)
    y = layer(x).data
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.75)
    assert kept.mean() == pytest.approx(0.75, abs=0.01)
    assert y.mean() == pytest.approx(1.0, abs=0.02)  # inverted dropout keeps the expectation
    layer.eval()
    np.testing.assert_array_equal(layer(x).data, x)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dropout_keeps_the_dtype_and_the_keep_rate_in_every_float_dtype(dtype):
    # float32 data is masked from float32 draws; float16 and float64 from float64 draws
    x = Value(np.ones((400, 250), dtype=dtype))
    y = F.dropout(x, p=0.3, generator=1)
    assert y.dtype == dtype
    kept = y.data != 0
    assert kept.mean() == pytest.approx(0.7, abs=0.005)
    np.testing.assert_allclose(y.data[kept].astype(np.float64), 1 / 0.7, rtol=1e-3)
    y.backward(np.ones(y.shape, dtype))  # (a float16 sum of 100,000 elements would overflow)
    assert x.grad.dtype == dtype
    np.testing.assert_array_equal(x.grad, y.data)  # the gradient is the mask itself


def test_dropout_p_one_and_zero_and_reproducibility():
    x = Value(np.ones((3, 4)))
    out = F.dropout(x, p=1.0)
    np.testing.assert_array_equal(out.data, 0)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, 0)
    assert F.dropout(x, p=0.0) is x
    nn.manual_seed(9)
    a = nn.Dropout(0.5)(np.ones(50)).data
    nn.manual_seed(9)
    b = nn.Dropout(0.5)(np.ones(50)).data
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        nn.Dropout(1.5)


def test_gradient_through_dropout_is_the_mask():
    x = Value(np.ones(1000))
    y = F.dropout(x, p=0.4, generator=1)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, y.data)  # d(x * mask)/dx = mask, and x = 1


def test_entropy_textbook_values():
    assert float(F.entropy(np.array([0.5, 0.5]), base=2).data) == pytest.approx(1.0)
    assert float(F.entropy(np.array([1.0, 0.0, 0.0])).data) == 0.0  # 0 log 0 = 0
    assert float(F.entropy(np.full(4, 0.25)).data) == pytest.approx(math.log(4))  # the maximum, log N
    # the course's biased coin: H(0.9, 0.1) = 0.469 bits
    assert float(F.entropy(np.array([0.9, 0.1]), base=2).data) == pytest.approx(0.4690, abs=1e-4)
    rows = F.entropy(np.array([[0.5, 0.5], [1.0, 0.0]]), dim=1)
    np.testing.assert_allclose(rows.data, [math.log(2), 0.0])


def test_kl_divergence_textbook_values():
    p, q = np.array([1.0, 0.0]), np.array([0.7, 0.3])
    assert float(F.kl_divergence(p, q).data) == pytest.approx(-math.log(0.7))  # the course's example
    assert float(F.kl_divergence(q, q).data) == 0.0
    a, b = np.array([0.2, 0.8]), np.array([0.6, 0.4])
    forward = 0.2 * math.log(0.2 / 0.6) + 0.8 * math.log(0.8 / 0.4)
    assert float(F.kl_divergence(a, b).data) == pytest.approx(forward)
    assert float(F.kl_divergence(b, a).data) != pytest.approx(forward)  # not symmetric
    # cross-entropy = entropy + KL
    cross = -(a * np.log(b)).sum()
    assert float((F.entropy(a) + F.kl_divergence(a, b)).data) == pytest.approx(cross)
    with np.errstate(divide="ignore"):
        assert float(F.kl_divergence(np.array([0.5, 0.5]), np.array([1.0, 0.0])).data) == math.inf


def test_cross_entropy_errors_are_clear():
    with pytest.raises(IndexError, match=r"target 3 is not a class index in \[0, 2\]"):
        F.cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"2 rows of scores need 2 class indices"):
        F.cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="class-index targets must be integers"):
        F.cross_entropy(np.zeros((2, 3)), np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        F.binary_cross_entropy(np.array([1.5]), np.array([1.0]))


def test_cross_entropy_with_logits_of_huge_size_is_finite():
    logits = Value(np.array([[1000.0, -1000.0]]))
    loss = F.cross_entropy(logits, np.array([1]))
    assert float(loss.data) == pytest.approx(2000.0)
    loss.backward()
    np.testing.assert_allclose(logits.grad, [[1.0, -1.0]])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_with_a_logit_of_minus_infinity_is_finite(dtype):
    # softmax of [-inf, 0, 1] is [0, 1/(1+e), e/(1+e)]: the loss of class 2 is log(1 + 1/e) = 0.31326,
    # the masked class (a logit of -inf, p = 0) adds nothing to it and gets no gradient
    logits = Value(np.array([[-np.inf, 0.0, 1.0]], dtype=dtype))
    loss = F.cross_entropy(logits, np.array([2]))
    assert loss.dtype == dtype
    assert float(loss.data) == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)  # 0.31326
    loss.backward()
    p1 = 1 / (1 + math.e)
    assert np.isfinite(logits.grad).all()
    np.testing.assert_allclose(logits.grad, [[0.0, p1, -p1]], rtol=1e-6)
    # the same with class probabilities, and per sample; the target on the -inf logit costs inf
    probs = np.array([[0.0, 0.25, 0.75]], dtype=dtype)
    expected = -(0.25 * math.log(p1) + 0.75 * math.log(1 - p1))
    assert float(F.cross_entropy(Value(np.array([[-np.inf, 0.0, 1.0]], dtype=dtype)), probs).data) == \
        pytest.approx(expected, rel=1e-6)
    assert F.cross_entropy(np.array([[-np.inf, 0.0, 1.0]]), np.array([0])).data == np.inf


def test_cross_entropy_with_minus_infinity_matches_pytorch():
    torch = pytest.importorskip("torch")
    logits = np.array([[-np.inf, 0.0, 1.0], [2.0, -np.inf, -np.inf], [0.5, -1.0, 3.0]])
    x = Value(logits)
    loss = F.cross_entropy(x, np.array([2, 0, 1]))
    loss.backward()
    x_t = torch.tensor(logits, requires_grad=True)
    loss_t = torch.nn.functional.cross_entropy(x_t, torch.tensor([2, 0, 1]))
    loss_t.backward()
    np.testing.assert_allclose(float(loss.data), loss_t.item(), rtol=1e-12)
    np.testing.assert_allclose(x.grad, x_t.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_init_functions_distributions():
    w = nn.Parameter(np.empty((200, 300)))
    nn.init.xavier_uniform_(w)
    bound = math.sqrt(6 / 500)
    assert np.abs(w.data).max() <= bound and w.data.var() == pytest.approx(bound**2 / 3, rel=0.03)
    nn.init.xavier_normal_(w, gain=2.0)
    assert w.data.std() == pytest.approx(2 * math.sqrt(2 / 500), rel=0.03)
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert w.data.std() == pytest.approx(math.sqrt(2 / 300), rel=0.03)
    nn.init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu")
    assert np.abs(w.data).max() <= math.sqrt(2) * math.sqrt(3 / 200)
    nn.init.zeros_(w)
    assert not w.data.any()
    nn.init.constant_(w, 0.5)
    assert np.all(w.data == 0.5)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.xavier_uniform_(nn.Parameter(np.zeros(3)))
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        nn.init.calculate_gain("wobbly")


def test_clip_grad_norm_returns_total_norm_and_scales_jointly():
    a, b = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(1))
    a.grad, b.grad = np.array([3.0, 0.0]), np.array([4.0])
    total = nn.utils.clip_grad_norm_([a, b], max_norm=2.5)
    assert total == pytest.approx(5.0)
    np.testing.assert_allclose(a.grad, [1.5, 0.0], rtol=1e-6)
    np.testing.assert_allclose(b.grad, [2.0], rtol=1e-6)
    # below the limit: untouched
    assert nn.utils.clip_grad_norm_([a, b], max_norm=10) == pytest.approx(2.5, rel=1e-6)
    np.testing.assert_allclose(b.grad, [2.0], rtol=1e-6)
    a.grad = np.array([-7.0, 1.0])
    assert nn.utils.clip_grad_norm_([a, b], max_norm=100, norm_type=math.inf) == 7.0
    b.grad = np.array([np.nan])
    with pytest.raises(RuntimeError, match="total norm"):
        nn.utils.clip_grad_norm_([a, b], 1.0, error_if_nonfinite=True)


def test_clip_grad_norm_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=(3, 4)), rng.normal(size=5)]
    for norm_type in (2.0, 1.0, math.inf):
        ours = [nn.Parameter(np.zeros_like(g)) for g in grads]
        theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
        for p, t, g in zip(ours, theirs, grads):
            p.grad, t.grad = g.copy(), torch.tensor(g)
        total = nn.utils.clip_grad_norm_(ours, 0.5, norm_type=norm_type)
        expected = torch.nn.utils.clip_grad_norm_(theirs, 0.5, norm_type=norm_type)
        assert total == pytest.approx(float(expected), rel=1e-12)
        for p, t in zip(ours, theirs):
            np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12)


def test_clip_grad_value():
    p = nn.Parameter(np.zeros(3))
    p.grad = np.array([-2.0, 0.5, 3.0])
    nn.utils.clip_grad_value_([p], 1.0)
    np.testing.assert_array_equal(p.grad, [-1.0, 0.5, 1.0])


@pytest.mark.parametrize("make", [nn.CrossEntropyLoss, nn.NLLLoss, nn.MSELoss, nn.BCELoss, nn.KLDivLoss])
def test_loss_layers_refuse_an_unknown_reduction_when_built(make):
    with pytest.raises(ValueError, match=rf"{make.__name__}: reduction must be one of 'mean', 'sum', 'none'.*got 'avg'"):
        make(reduction="avg")
    assert make(reduction="sum").reduction == "sum"


def test_activation_options_that_cannot_work_are_refused():
    with pytest.raises(ValueError, match="Softplus: beta must not be 0"):
        nn.Softplus(beta=0)
    with pytest.raises(ValueError, match="softplus: beta must not be 0"):
        F.softplus(np.ones(2), beta=0.0)
    with pytest.raises(ValueError, match="PReLU: num_parameters is 1 or the number of channels"):
        nn.PReLU(0)


def test_only_kl_div_takes_batchmean():
    assert nn.KLDivLoss(reduction="batchmean").reduction == "batchmean"
    with pytest.raises(ValueError, match="MSELoss: reduction must be"):
        nn.MSELoss(reduction="batchmean")


@pytest.mark.parametrize("clip", [
    lambda params: nn.utils.clip_grad_norm_(params, -1.0),
    lambda params: nn.utils.clip_grad_norm_(params, float("nan")),
    lambda params: nn.utils.clip_grad_value_(params, -1.0),
    lambda params: nn.utils.max_norm_(params, -1.0),
])
def test_negative_bounds_are_refused_before_touching_anything(clip):
    p = nn.Parameter(np.array([[3.0, 4.0]]))
    p.grad = np.array([[3.0, 4.0]])
    with pytest.raises(ValueError, match=r"(max_norm|clip_value) must be a number >= 0"):
        clip([p])
    np.testing.assert_array_equal(p.grad, [[3.0, 4.0]])  # not flipped to -0.6, -0.8
    np.testing.assert_array_equal(p.data, [[3.0, 4.0]])


def test_max_norm_rescales_only_rows_over_the_limit():
    model = nn.Sequential(nn.Linear(2, 2))
    model[0].weight.data = np.array([[3.0, 4.0], [0.3, 0.4]])
    model[0].bias.data = np.array([10.0, 10.0])
    norms = nn.utils.max_norm_(model, 2.0)
    np.testing.assert_allclose(norms[0], [5.0, 0.5])
    np.testing.assert_allclose(model[0].weight.data, [[1.2, 1.6], [0.3, 0.4]], rtol=1e-6)
    np.testing.assert_array_equal(model[0].bias.data, [10.0, 10.0])  # biases are left alone


def test_penalties_add_to_a_loss_with_the_right_gradient():
    w = nn.Parameter(np.array([[1.0, -2.0]]))
    b = nn.Parameter(np.array([3.0]))
    l2 = nn.utils.l2_penalty([w, b], 0.1)
    assert float(l2.data) == pytest.approx(0.1 * (1 + 4 + 9))
    l2.backward()
    np.testing.assert_allclose(w.grad, 0.2 * w.data)
    l1 = nn.utils.l1_penalty([w], 0.5)
    assert float(l1.data) == pytest.approx(1.5)
    w.grad = None
    l1.backward()
    np.testing.assert_allclose(w.grad, [[0.5, -0.5]])


def test_cross_entropy_mean_over_a_zero_total_weight_divides_by_it_as_pytorch():
    logits = Value([[1.0, 2.0], [3.0, 0.0]])
    # weights that cancel: a finite sum of losses over 0, -inf here (PyTorch gives the same)
    cancelled = F.cross_entropy(logits, np.array([0, 1]), weight=np.array([1.0, -1.0]))
    assert float(cancelled.data) == -np.inf
    # every target ignored: 0 / 0
    assert np.isnan(float(F.cross_entropy(logits, np.array([-100, -100])).data))
