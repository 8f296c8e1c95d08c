"""Each optimizer's update, checked by hand on a 2-parameter problem.

The loss is f(w) = 2 w0^2 + 0.5 w1^2 (gradient (4 w0, w1)); the expected
numbers are computed here from the lecture formulas, one Python float at a
time, independently of the optimizer code.
"""

import math

import numpy as np
import pytest

import optim
from autograd_core import Value

START = (1.0, -2.0)


def grad_f(w):
    return [4 * w[0], w[1]]


def run(make_optimizer, steps, scalar_params=False):
    """Take `steps` optimizer steps on f; return the parameters as a list of floats."""
    if scalar_params:
        params = [Value(START[0]), Value(START[1])]
        loss_of = lambda: 2 * params[0] ** 2 + 0.5 * params[1] ** 2
    else:
        params = [Value(np.array(START))]
        loss_of = lambda: (Value(np.array([2.0, 0.5]), requires_grad=False) * params[0] ** 2).sum()
    opt = make_optimizer(params)
    for _ in range(steps):
        opt.zero_grad()
        loss_of().backward()
        opt.step()
    return [float(x) for p in params for x in np.ravel(p.data)]


def check(make_optimizer, expected, steps):
    for scalar in (False, True):  # one array parameter, and two 0-d Values
        np.testing.assert_allclose(run(make_optimizer, steps, scalar), expected, rtol=1e-12, atol=1e-15)


def test_sgd_is_w_minus_lr_g():
    w = list(START)
    for _ in range(3):
        w = [wi - 0.1 * gi for wi, gi in zip(w, grad_f(w))]
    check(lambda ps: optim.SGD(ps, lr=0.1), w, 3)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_keeps_a_velocity(nesterov):
    lr, mu, wd = 0.1, 0.9, 0.01
    w, v = list(START), None
    for _ in range(3):
        g = [gi + wd * wi for gi, wi in zip(grad_f(w), w)]
        v = list(g) if v is None else [mu * vi + gi for vi, gi in zip(v, g)]
        step = [gi + mu * vi for gi, vi in zip(g, v)] if nesterov else v
        w = [wi - lr * si for wi, si in zip(w, step)]
    check(lambda ps: optim.SGD(ps, lr=lr, momentum=mu, weight_decay=wd, nesterov=nesterov), w, 3)


def test_sgd_dampening_scales_new_gradients_after_the_first():
    lr, mu, damp = 0.1, 0.5, 0.3
    w, v = list(START), None
    for _ in range(3):
        g = grad_f(w)
        v = list(g) if v is None else [mu * vi + (1 - damp) * gi for vi, gi in zip(v, g)]
        w = [wi - lr * vi for wi, vi in zip(w, v)]
    check(lambda ps: optim.SGD(ps, lr=lr, momentum=mu, dampening=damp), w, 3)


def test_adagrad_divides_by_root_of_summed_squares():
    lr, decay, start, eps = 0.5, 0.1, 0.2, 1e-10
    w, G = list(START), [start, start]
    for t in range(1, 4):
        g = grad_f(w)
        G = [Gi + gi * gi for Gi, gi in zip(G, g)]
        lr_t = lr / (1 + (t - 1) * decay)
        w = [wi - lr_t * gi / (math.sqrt(Gi) + eps) for wi, gi, Gi in zip(w, g, G)]
    check(lambda ps: optim.Adagrad(ps, lr=lr, lr_decay=decay, initial_accumulator_value=start), w, 3)


@pytest.mark.parametrize("centered,momentum", [(False, 0.0), (True, 0.0), (False, 0.7), (True, 0.7)])
def test_rmsprop_divides_by_running_rms(centered, momentum):
    lr, alpha, eps = 0.01, 0.9, 1e-8
    w, v, m, b = list(START), [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]
    for _ in range(3):
        g = grad_f(w)
        v = [alpha * vi + (1 - alpha) * gi * gi for vi, gi in zip(v, g)]
        m = [alpha * mi + (1 - alpha) * gi for mi, gi in zip(m, g)]
        denominator = [math.sqrt(vi - mi * mi) + eps if centered else math.sqrt(vi) + eps for vi, mi in zip(v, m)]
        if momentum:
            b = [momentum * bi + gi / di for bi, gi, di in zip(b, g, denominator)]
            w = [wi - lr * bi for wi, bi in zip(w, b)]
        else:
            w = [wi - lr * gi / di for wi, gi, di in zip(w, g, denominator)]
    check(lambda ps: optim.RMSprop(ps, lr=lr, alpha=alpha, centered=centered, momentum=momentum), w, 3)


def test_adadelta_uses_rms_of_past_steps():
    lr, rho, eps = 1.0, 0.9, 1e-6
    w, v, u = list(START), [0.0, 0.0], [0.0, 0.0]
    for _ in range(3):
        g = grad_f(w)
        v = [rho * vi + (1 - rho) * gi * gi for vi, gi in zip(v, g)]
        delta = [math.sqrt(ui + eps) / math.sqrt(vi + eps) * gi for ui, vi, gi in zip(u, v, g)]
        u = [rho * ui + (1 - rho) * di * di for ui, di in zip(u, delta)]
        w = [wi - lr * di for wi, di in zip(w, delta)]
    check(lambda ps: optim.Adadelta(ps), w, 3)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_bias_corrected_moments(amsgrad):
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    w, m, v, v_max = list(START), [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]
    for t in range(1, 5):
        g = grad_f(w)
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
        v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
        v_max = [max(a, b) for a, b in zip(v_max, v)]
        second = v_max if amsgrad else v
        m_hat = [mi / (1 - b1**t) for mi in m]
        v_hat = [vi / (1 - b2**t) for vi in second]
        w = [wi - lr * mh / (math.sqrt(vh) + eps) for wi, mh, vh in zip(w, m_hat, v_hat)]
    check(lambda ps: optim.Adam(ps, lr=lr, amsgrad=amsgrad), w, 4)


def test_adam_first_step_is_lr_times_sign_of_gradient():
    np.testing.assert_allclose(run(lambda ps: optim.Adam(ps, lr=0.1), 1), [0.9, -1.9], rtol=1e-9)


def test_adamw_decays_weights_apart_from_the_gradient():
    lr, wd, b1, b2, eps = 0.1, 0.2, 0.9, 0.999, 1e-8
    w, m, v = list(START), [0.0, 0.0], [0.0, 0.0]
    for t in range(1, 4):
        g = grad_f(w)
        w = [wi * (1 - lr * wd) for wi in w]
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
        v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
        w = [wi - lr * (mi / (1 - b1**t)) / (math.sqrt(vi / (1 - b2**t)) + eps) for wi, mi, vi in zip(w, m, v)]
    check(lambda ps: optim.AdamW(ps, lr=lr, weight_decay=wd), w, 3)


def test_adam_weight_decay_is_added_to_the_gradient():
    # Adam(weight_decay) is L2: the first step is lr * sign(g + wd w), unlike AdamW
    w = run(lambda ps: optim.Adam(ps, lr=0.1, weight_decay=10.0), 1)
    # g + wd w = (4 + 10, -2 - 20): both signs unchanged, so the step is still +-lr
    np.testing.assert_allclose(w, [0.9, -1.9], rtol=1e-9)


def test_maximize_climbs():
    w = run(lambda ps: optim.SGD(ps, lr=0.1, maximize=True), 1)
    np.testing.assert_allclose(w, [1.0 + 0.4, -2.0 - 0.2])


def test_lecture_batch_gd_update_of_a_and_b():
    # course notes: a = 0.45 - 0.01 * 3.30 = 0.42, b = 0.75 - 0.01 * 1.545 = 0.73 (rounded)
    a, b = Value(0.45), Value(0.75)
    a.grad, b.grad = np.float64(3.30), np.float64(1.545)
    optim.SGD([a, b], lr=0.01).step()
    assert float(a.data) == pytest.approx(0.417, abs=1e-15)
    assert float(b.data) == pytest.approx(0.73455, abs=1e-15)
    assert round(float(a.data), 2) == 0.42 and round(float(b.data), 2) == 0.73


def test_momentum_matches_the_lectures_form_with_lr_inside_the_velocity():
    # lecture: v_t = gamma v_{t-1} + lr g_t, w_t = w_{t-1} - v_t; PyTorch keeps lr outside:
    # the two give the same weights while lr is constant
    lr, gamma = 0.05, 0.9
    w, v = list(START), [0.0, 0.0]
    for _ in range(6):
        v = [gamma * vi + lr * gi for vi, gi in zip(v, grad_f(w))]
        w = [wi - vi for wi, vi in zip(w, v)]
    check(lambda ps: optim.SGD(ps, lr=lr, momentum=gamma), w, 6)
