"""einsum's gradient has each operand's shape, also where another operand's
length-1 axis is broadcast against it (found by the PyTorch export's oracle)."""

import numpy as np

import autograd_core as ac
from autograd_core import Value


def test_a_broadcast_length_one_axis_gives_the_full_gradient():
    a, b = Value(np.arange(6.0).reshape(2, 3)), Value(np.array([2.0]))
    ac.einsum("ij,j->i", a, b).sum().backward()
    assert a.grad.shape == (2, 3) and a.grad.tolist() == [[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]
    assert b.grad.tolist() == [15.0]  # the sum of every a_ij
