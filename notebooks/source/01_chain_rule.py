# %% [markdown]
# # 1. Values, graphs and the chain rule
#
# A neural network is a long formula. To train it we need, for every weight, the slope of the
# loss with respect to that weight. Backpropagation gets all of those slopes in one sweep by
# treating the formula as a **graph** of small operations and applying the chain rule node by node.
#
# In this notebook:
#
# 1. every operation knows its **local gradient** (how its output moves when one input moves);
# 2. the backward pass multiplies **upstream gradient × local gradient** and passes it on;
# 3. we check the engine against a hand calculation and against finite differences;
# 4. a single neuron with `tanh`, and a node used twice (gradients add up);
# 5. we draw the graph and step through backprop one node at a time.

# %%
import numpy as np
from autograd_core import BackpropStepper, Value, draw_graph, grad, gradcheck

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## The lecture graph  L = (a·b + c)·f
#
# We give names to the intermediate results so the graph reads like the lecture's drawing:
# `e = a*b`, `d = e + c`, `L = d*f`.

# %%
a = Value(2.0, label="a")
b = Value(-3.0, label="b")
c = Value(10.0, label="c")
f = Value(-2.0, label="f")

e = a * b;  e.label = "e"
d = e + c;  d.label = "d"
L = d * f;  L.label = "L"

print("e =", e.item(), " d =", d.item(), " L =", L.item())
assert (e.item(), d.item(), L.item()) == (-6.0, 4.0, -8.0)

# %% [markdown]
# ### Local gradients, known on the forward pass
#
# Each operation only needs to know its own rule:
#
# | node | operation | local gradients |
# |---|---|---|
# | `e = a*b` | multiply | ∂e/∂a = b = −3, ∂e/∂b = a = 2 |
# | `d = e + c` | add | ∂d/∂e = 1, ∂d/∂c = 1 |
# | `L = d*f` | multiply | ∂L/∂d = f = −2, ∂L/∂f = d = 4 |
#
# The engine keeps each operation's rule beside its forward computation (`mul` and `add` are in `autograd_core/ops_arith.py`);
# every operation also carries the formula in the lecture's notation.

# %%
from autograd_core.ops import OPS

for node in (e, d, L):
    print(f"{node.label} = {node.op:>4}:  {OPS[node.op].formula}")

# %% [markdown]
# ### The backward pass by hand
#
# Start with ∂L/∂L = 1 and walk back. At every node: **upstream × local**.
#
# * ∂L/∂d = 1 · f = −2  and  ∂L/∂f = 1 · d = 4
# * ∂L/∂e = ∂L/∂d · 1 = −2  and  ∂L/∂c = ∂L/∂d · 1 = −2  (addition passes the gradient through unchanged)
# * ∂L/∂a = ∂L/∂e · b = (−2)(−3) = 6  and  ∂L/∂b = ∂L/∂e · a = (−2)(2) = −4  (multiplication swaps the inputs)

# %% [markdown]
# The graph as the engine sees it (before any backward pass, so no gradients yet). Each edge carries
# its local gradient.

# %%
draw_graph(L, show_local_gradients=True)

# %% [markdown]
# ### The same, one step at a time
#
# `BackpropStepper` runs the engine's own backward loop and records each node it visits: the
# upstream gradient arriving at the node, and for each input the local gradient and their product.

# %%
stepper = BackpropStepper(L, retain_graph=True)
for step in stepper:
    print(step.explain())

by_hand = {"a": 6.0, "b": -4.0, "c": -2.0, "f": 4.0, "d": -2.0, "e": -2.0}
for v in (a, b, c, f, d, e):
    assert float(v.grad) == by_hand[v.label], v.label

# the first step starts from dL/dL = 1 at L; the last one reaches a and b through the multiply
assert stepper[0].node is L and float(stepper[0].upstream) == 1.0
(inp, local, product), _ = stepper[-1].contributions
assert inp is a and float(local) == -3.0 and float(product) == 6.0

# %% [markdown]
# In Jupyter the stepper is also a small player: press the buttons to walk through the steps on
# the drawn graph.

# %%
stepper

# %% [markdown]
# After the backward pass every box shows its gradient, the numbers we worked out by hand.

# %%
draw_graph(L)

# %% [markdown]
# `L.backward()` gives exactly the same gradients as the stepper (a fresh graph, since the
# leaves' `.grad` accumulate across backward passes):

# %%
a2, b2, c2, f2 = Value(2.0), Value(-3.0), Value(10.0), Value(-2.0)
((a2 * b2 + c2) * f2).backward()
assert [float(v.grad) for v in (a2, b2, c2, f2)] == [6.0, -4.0, -2.0, 4.0]

# %% [markdown]
# ### What a gradient means: nudge and watch
#
# ∂L/∂a = 6 says: raise `a` by a tiny h and L rises by about 6h. A central difference checks it
# without any calculus.

# %%
def lecture_L(a, b, c, f):
    return (a * b + c) * f

h = 1e-6
slope_a = (lecture_L(2.0 + h, -3.0, 10.0, -2.0) - lecture_L(2.0 - h, -3.0, 10.0, -2.0)) / (2 * h)
print("finite-difference dL/da =", round(slope_a, 6))
assert abs(slope_a - 6.0) < 1e-6

# gradcheck does the same for every input at once, and raises if any disagrees
assert gradcheck(lecture_L, [Value(2.0), Value(-3.0), Value(10.0), Value(-2.0)])

# %% [markdown]
# ## One neuron with tanh
#
# A neuron computes a weighted sum of its inputs plus a bias, then squashes it:
# `o = tanh(x1·w1 + x2·w2 + b)`. The local gradient of tanh is **1 − tanh²**, which the engine
# computes from the output it already has.
#
# We choose the bias so that the sum is atanh(0.8): then o = 0.8 and the tanh's local gradient
# is 1 − 0.8² = 0.36, which makes the hand calculation easy.

# %%
x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
bias = Value(6.0 + np.arctanh(0.8), label="b")

n = x1 * w1 + x2 * w2 + bias;  n.label = "n"
o = n.tanh();                  o.label = "o"
o.backward()

print(f"o = {o.item():.4f},  do/dn = 1 - o^2 = {float(n.grad):.4f}")
assert abs(o.item() - 0.8) < 1e-12 and abs(float(n.grad) - 0.36) < 1e-12

# upstream 0.36 times each input's local gradient
expected = {"x1": 0.36 * -3.0, "w1": 0.36 * 2.0, "x2": 0.36 * 1.0, "w2": 0.36 * 0.0, "b": 0.36}
for v in (x1, w1, x2, w2, bias):
    print(f"do/d{v.label:2} = {float(v.grad):6.3f}")
    assert abs(float(v.grad) - expected[v.label]) < 1e-12

# %%
draw_graph(o, show_local_gradients=True)

# %% [markdown]
# `w2` gets **zero** gradient: its input `x2` is 0, so changing `w2` changes nothing.
# That is the multiply rule at work (∂(x2·w2)/∂w2 = x2).
#
# ## A node used twice: gradients add
#
# If a value feeds two places, both paths carry gradient back to it and the contributions are
# **summed** (the multivariable chain rule). `y = x·x + x` has dy/dx = 2x + 1.

# %%
x = Value(3.0, label="x")
y = x * x + x
y.backward()
print("dy/dx =", float(x.grad))
assert float(x.grad) == 2 * 3.0 + 1

# the same number without touching .grad, from autograd_core.grad
(dy_dx,) = grad(x * x + x, x)
assert float(dy_dx) == 7.0
