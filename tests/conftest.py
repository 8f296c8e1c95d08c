import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def torch_or_skip():
    """Import PyTorch for oracle tests, or skip them cleanly."""
    return pytest.importorskip("torch")


def build_lecture_graph():
    """L = (a*b + c) * f with the lecture's numbers (a=2, b=-3, c=10, f=-2), every
    node labeled; returns ``(L, {"a": a, ..., "L": L})``."""
    import autograd_core as ag

    a = ag.Value(2.0, label="a")
    b = ag.Value(-3.0, label="b")
    c = ag.Value(10.0, label="c")
    f = ag.Value(-2.0, label="f")
    e = a * b
    e.label = "e"
    d = e + c
    d.label = "d"
    L = d * f
    L.label = "L"
    return L, dict(a=a, b=b, c=c, d=d, e=e, f=f, L=L)


@pytest.fixture
def lecture_graph():
    """The builder of the lecture's graph: ``L, v = lecture_graph()``; call it
    again for a fresh, independent copy."""
    return build_lecture_graph
