"""BackpropStepper: the engine's steps, with the engine's numbers."""

import re

import numpy as np
import pytest

import autograd_core as ag
from autograd_core import BackpropStepper, GraphFreedError, engine


def test_lecture_graph_steps_numbers_and_order(lecture_graph):
    L, v = lecture_graph()
    stepper = BackpropStepper(L)
    assert [step.node for step in stepper] == [v["L"], v["d"], v["e"]]
    last = stepper[2]
    assert last.upstream == -2.0
    (a, local_a, product_a), (b, local_b, product_b) = last.contributions
    assert (a, b) == (v["a"], v["b"])
    assert (local_a, product_a) == (-3.0, 6.0)  # de/da = b, -2 * -3
    assert (local_b, product_b) == (2.0, -4.0)  # de/db = a, -2 * 2
    assert "dL/da += dL/de * de/da = -2.0 * -3.0 = 6.0" in last.explain()
    assert "dL/db += dL/de * de/db = -2.0 * 2.0 = -4.0" in last.explain()
    assert "dL/dc += dL/dd * dd/dc = -2.0 * 1.0 = -2.0" in stepper[1].explain()
    assert "dL/df += dL/dL * dL/df = 1.0 * 4.0 = 4.0" in stepper[0].explain()
    grads = {name: float(v[name].grad) for name in ["a", "b", "c", "f"]}
    assert grads == {"a": 6.0, "b": -4.0, "c": -2.0, "f": 4.0}


def test_grads_written_only_at_the_end_and_equal_to_backward(lecture_graph):
    L, v = lecture_graph()
    stepper = BackpropStepper(L)
    assert v["a"].grad is None
    assert stepper.step() is stepper[0] and stepper.step() is stepper[1]
    assert v["a"].grad is None  # not finished: .grad untouched
    assert stepper.step() is stepper[2]
    assert stepper.step() is None
    L2, w = lecture_graph()
    L2.backward()
    for name in v:
        assert v[name].grad == w[name].grad


def mlp_loss(seed=0):
    """A small tensor network with broadcasting, matmul, reuse and reductions."""
    rng = np.random.default_rng(seed)
    x = ag.Value(rng.normal(size=(5, 3)), requires_grad=False, label="x")
    W1 = ag.Value(rng.normal(size=(3, 4)), label="W1")
    b1 = ag.Value(rng.normal(size=(4,)), label="b1")
    W2 = ag.Value(rng.normal(size=(4, 2)), label="W2")
    s = ag.Value(0.7, label="s")
    h = (x @ W1 + b1).tanh()
    z = h @ W2 * s + h.sum(axis=1, keepdims=True) * s
    loss = (z * z).mean() + (W1 * W1).sum() * 0.01
    return loss, [x, W1, b1, W2, s]


def test_tensor_graph_leaves_exactly_the_grads_of_backward():
    loss, leaves = mlp_loss()
    nodes = ag.viz.collect_values([loss])
    stepper = BackpropStepper(loss)
    order = [n for n in engine.topological_order([loss]) if n._op is not None]
    assert [step.node for step in stepper.steps] == order  # the engine's order
    stepper.finish()
    loss2, leaves2 = mlp_loss()
    nodes2 = ag.viz.collect_values([loss2])
    loss2.backward()
    assert len(nodes) == len(nodes2)
    for n1, n2 in zip(nodes, nodes2):
        if n2.grad is None:
            assert n1.grad is None
        else:
            assert np.array_equal(n1.grad, n2.grad)
    # each leaf's grad is the sum of the products the steps sent it
    for leaf in leaves[1:]:
        sent = [product for step in stepper for inp, _, product in step.contributions if inp is leaf]
        np.testing.assert_allclose(np.sum(sent, axis=0), leaf.grad, rtol=1e-12, atol=1e-15)


def test_grads_match_pytorch():
    torch = pytest.importorskip("torch")
    loss, (x, W1, b1, W2, s) = mlp_loss(seed=3)
    BackpropStepper(loss).finish()
    t = {k: torch.tensor(v.data, dtype=torch.float64, requires_grad=k != "x")
         for k, v in dict(x=x, W1=W1, b1=b1, W2=W2, s=s).items()}
    h = torch.tanh(t["x"] @ t["W1"] + t["b1"])
    z = h @ t["W2"] * t["s"] + h.sum(dim=1, keepdim=True) * t["s"]
    tloss = (z * z).mean() + (t["W1"] * t["W1"]).sum() * 0.01
    tloss.backward()
    for name, value in dict(W1=W1, b1=b1, W2=W2, s=s).items():
        np.testing.assert_allclose(value.grad, t[name].grad.numpy(), rtol=1e-10, atol=1e-12)


def test_local_gradients_matmul_other_operand_structural_none_and_tensor_explanations():
    rng = np.random.default_rng(1)
    x = ag.Value(rng.normal(size=(4, 3)), label="x")
    W = ag.Value(rng.normal(size=(3, 2)), label="W")
    y = x @ W
    y.label = "y"
    L = y.sum()
    stepper = BackpropStepper(L)
    sum_step, matmul_step = stepper.steps
    (_, local, product), = sum_step.contributions
    assert local is None and np.array_equal(product, np.ones((4, 2)))
    assert "d sum(x)/dx_i = 1" in sum_step.explain()
    (xin, local_x, product_x), (win, local_w, product_w) = matmul_step.contributions
    assert local_x is W.data and local_w is x.data  # d(xW)/dx is W, d(xW)/dW is x
    np.testing.assert_allclose(product_w, x.data.T @ np.ones((4, 2)))
    text = matmul_step.explain()
    assert "dL/dW += rule dL/dB = A^T @ dL/dC with A = x (4, 3), B = W (3, 2), C = y" in text
    assert "(4, 2) -> (3, 2)" in text


def test_broadcast_elementwise_explanation_mentions_summing_back():
    v = ag.Value(np.array([1.0, 2.0, 3.0]), label="v")
    s = ag.Value(2.0, label="s")
    y = v * s
    y.label = "y"
    stepper = BackpropStepper(y.sum())
    text = stepper[1].explain()
    assert "dL/ds += dL/dy * dy/ds" in text and "summed back to ()" in text
    (_, local_v, _), (_, local_s, product_s) = stepper[1].contributions
    assert local_v == 2.0 and np.array_equal(local_s, v.data) and product_s == 6.0


def test_a_value_used_several_times_says_which_contribution():
    a = ag.Value(3.0, label="a")
    y = a * a + a
    y.label = "y"
    stepper = BackpropStepper(y)
    texts = "\n".join(step.explain() for step in stepper)
    assert "contribution 1 of 3" in texts and "contribution 3 of 3" in texts
    assert "so far = 7.0" in texts  # 1 + 3 + 3 = 2a + 1
    assert a.grad == 7.0
    # a * a and + a: two operations, three uses
    assert texts.count("a is used 3 times, by 2 operations") == 3 and "feeds 3 operations" not in texts


def test_uses_in_separate_operations_are_counted_as_operations():
    a = ag.Value(2.0, label="a")
    y = a.exp() + a.tanh() + a * 2.0
    y.label = "y"
    texts = "\n".join(step.explain() for step in BackpropStepper(y))
    assert "a is used by 3 operations: this is contribution 3 of 3" in texts


def test_the_first_step_starts_with_the_seed_on_its_own_line(lecture_graph):
    L, v = lecture_graph()
    lines = BackpropStepper(L)[0].explain().splitlines()
    assert lines[0] == "Step 1 of 3: L = d * f; its gradient goes back to d and f"
    assert lines[1] == "dL/dL = 1   (the seed: L moves one for one with itself)"
    assert lines[2] == "dL/dd += dL/dL * dL/dd = 1.0 * -2.0 = -2.0"
    # a seed given to backward is shown as given, and the other steps name no seed
    y = ag.Value(np.array([1.0, 3.0]), label="x") * 2.0
    y.label = "y"
    stepper = BackpropStepper(y, grad=np.array([0.5, -1.0]))
    assert stepper[0].explain().splitlines()[1] == "dy/dy = (2,) float64 [0.5 -1.0]   (the seed: the grad given to backward)"
    assert "seed" not in BackpropStepper(lecture_graph()[0])[1].explain()


def test_graph_freed_like_backward_unless_retained(lecture_graph):
    L, v = lecture_graph()
    BackpropStepper(L).finish()
    with pytest.raises(GraphFreedError):
        L.backward()
    L, v = lecture_graph()
    BackpropStepper(L, retain_graph=True).finish()
    L.backward()
    assert v["a"].grad == 12.0  # leaves accumulate, as with two backward() calls


def test_leaf_grads_accumulate_like_backward(lecture_graph):
    L, v = lecture_graph()
    v["a"].grad = np.float64(1.0)
    stepper = BackpropStepper(L)
    assert "already held a grad" in stepper._frames()[1][0]["x"]
    stepper.finish()
    stepper.finish()  # idempotent
    assert v["a"].grad == 7.0


def test_non_scalar_root_needs_grad_and_then_matches_backward():
    w = ag.Value(np.array([1.0, -2.0, 0.5]), label="w")
    with pytest.raises(RuntimeError, match="grad="):
        BackpropStepper(w * w)
    seed = np.array([1.0, 2.0, 3.0])
    BackpropStepper(w * w, grad=seed).finish()
    w2 = ag.Value(np.array([1.0, -2.0, 0.5]))
    (w2 * w2).backward(seed)
    assert np.array_equal(w.grad, w2.grad)
    with pytest.raises(RuntimeError, match="does not require grad"):
        BackpropStepper(ag.Value(1.0, requires_grad=False) * 2)


def test_forward_mode_steps_in_creation_order_with_values(lecture_graph):
    L, v = lecture_graph()
    forward = BackpropStepper(L, mode="forward")
    assert [step.node for step in forward] == [v["e"], v["d"], v["L"]]
    assert forward[0].explain().endswith("e = a * b = 2.0 * -3.0 = -6.0")
    assert forward[1].explain().endswith("d = e + c = -6.0 + 10.0 = 4.0")
    assert forward[2].value == -8.0
    assert v["a"].grad is None  # the forward mode runs no backward
    L.backward()  # and the graph is still there
    x = ag.Value(np.ones((2, 3)), label="x")
    t = x.tanh()
    text = BackpropStepper(t, mode="forward")[0].explain()
    assert "tanh(x)" in text and "(2, 3)" in text and "0.7616" in text
    with pytest.raises(ValueError, match="mode"):
        BackpropStepper(L, mode="sideways")


def test_player_html_is_self_contained_with_one_frame_per_step(lecture_graph, tmp_path):
    L, v = lecture_graph()
    stepper = BackpropStepper(L)
    fragment = stepper._repr_html_()
    other = stepper._repr_html_()
    ids = re.findall(r'class="agc-player" id="(\w+)"', fragment + other)
    assert len(ids) == 2 and ids[0] != ids[1]  # two players on one page never collide
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", fragment)  # nothing fetched
    assert "@import" not in fragment and "fetch(" not in fragment
    data = re.search(r"AGC_PLAYER_DATA_\w+ = (\{.*?\});\n", fragment, flags=re.S).group(1)
    import json

    frames = json.loads(data.replace("<\\/", "</"))["frames"]
    assert len(frames) == len(stepper) + 1
    # every box that changes has its text element in the SVG
    for frame in frames:
        for text_id in frame["t"]:
            assert f'id="{text_id}"' in fragment
    path = stepper.save_html(tmp_path / "player.html")
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "grad 6.0" in page


def test_last_frame_shows_exactly_the_grads_backward_leaves():
    loss, leaves = mlp_loss(seed=5)
    leaves[1].grad = np.full((3, 4), 0.5)  # a leftover grad: the player must show the accumulated one
    stepper = BackpropStepper(loss)
    _, frames = stepper._frames()
    shown = {}
    for frame in frames:
        shown.update(frame["t"])
    stepper.finish()
    for value in stepper.values:
        if value.requires_grad:
            assert shown[id(value)] == ag.viz.grad_text(value), stepper.names[id(value)]
