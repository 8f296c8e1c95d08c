"""Random shapes and options (hypothesis): cross-entropy against PyTorch, and
identities that hold for every input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograd_core import Value
from nn import functional as F

problems = st.fixed_dictionaries({
    "n": st.integers(1, 6),
    "c": st.integers(2, 6),
    "seed": st.integers(0, 2**16),
    "scale": st.sampled_from([0.1, 1.0, 30.0]),
    "smoothing": st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    "weighted": st.booleans(),
    "reduction": st.sampled_from(["mean", "sum", "none"]),
})


@settings(max_examples=40, deadline=None)
@given(problems)
def test_cross_entropy_matches_pytorch_for_random_problems(problem):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(problem["seed"])
    n, c = problem["n"], problem["c"]
    logits = rng.normal(size=(n, c)) * problem["scale"]
    target = rng.integers(0, c, size=n)
    if n > 1:
        target[rng.integers(0, n)] = -100  # one ignored sample (all but one stay counted)
    weight = rng.uniform(0.2, 2.0, size=c) if problem["weighted"] else None
    kwargs = dict(reduction=problem["reduction"], label_smoothing=problem["smoothing"])
    x = Value(logits.copy())
    ours = F.cross_entropy(x, target, weight=weight, **kwargs)
    tx = torch.tensor(logits, requires_grad=True)
    theirs = torch.nn.functional.cross_entropy(
        tx, torch.tensor(target), weight=None if weight is None else torch.tensor(weight), **kwargs)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-9, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(2, 6), st.integers(0, 2**16))
def test_cross_entropy_is_entropy_plus_kl(n, c, seed):
    # H(p, q) = H(p) + D_KL(p || q) for the softmax q of any logits
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c)) * 3
    p = rng.dirichlet(np.ones(c), size=n)
    cross = F.cross_entropy(logits, p, reduction="none").data
    q = F.softmax(logits, dim=1).data
    np.testing.assert_allclose(cross, (F.entropy(p, dim=1) + F.kl_divergence(p, q, dim=1)).data, rtol=1e-10)
    assert np.all(F.kl_divergence(p, q, dim=1).data >= -1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5), st.integers(2, 6), st.integers(0, 2**16))
def test_log_softmax_and_nll_compose_to_cross_entropy(n, c, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c)) * 10
    target = rng.integers(0, c, size=n)
    weight = rng.uniform(0.5, 2.0, size=c)
    a = F.cross_entropy(logits, target, weight=weight)
    b = F.nll_loss(F.log_softmax(logits, dim=1), target, weight=weight)
    np.testing.assert_allclose(a.data, b.data, rtol=1e-12)
