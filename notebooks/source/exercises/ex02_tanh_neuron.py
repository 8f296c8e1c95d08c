# %% [markdown]
# # Exercises 2: one neuron with tanh
#
# A neuron takes a weighted sum of its inputs plus a bias and squashes it:
# **o = tanh(n)** with **n = x1·w1 + x2·w2 + b**. Three exercises: tanh's local gradient,
# the neuron's backward pass by hand, and tanh built from operations the engine can differentiate.
#
# Complete each cell where it says `raise NotImplementedError(...)`, then run the check under it
# (✓ right, ✗ with a hint). All results at once: `autograd-core grade ex02_tanh_neuron.ipynb`.

# %%
import numpy as np
from autograd_core import Op, Value
from autograd_core.exercises import exercise

# %% [markdown]
# ## Exercise 2.1: tanh's local gradient
#
# d tanh(x)/dx = 1 − tanh(x)². The forward has already computed tanh(x): it is the output `out`,
# so the rule can use it instead of computing tanh again.

# %%
def tanh_d_x(x, out):
    ### SOLUTION
    return 1 - out ** 2
    ### BLANK
    raise NotImplementedError("return d tanh(x)/dx, written with out = tanh(x)")
    ### END


my_tanh = Op("my_tanh", np.tanh, inputs="x", elementwise=True, d_x=tanh_d_x,
             formula="d tanh(x)/dx = 1 - tanh(x)^2", register=False)

# %%
with exercise("2.1", "tanh's local gradient") as ex:
    ex.check_rule(my_tanh, np.array([-2.0, -0.5, 0.0, 0.8813735870195432, 3.0]),
                  hint="1 - tanh(x)^2 is written with out = tanh(x), which the forward has already computed.")

# %% [markdown]
# ## Exercise 2.2: the neuron, forward and backward by hand
#
# With x1 = 2, w1 = −3, x2 = 0, w2 = 1 and b = 6.8813735870195432 the sum is n ≈ 0.8814, and
# o = tanh(n) = 1/√2 ≈ 0.7071. Then do/dn = 1 − o² = 0.5, and each weight and input gets 0.5 times
# its local gradient in the sum (for x1·w1: ∂/∂w1 = x1, ∂/∂x1 = w1).
#
# Return o and its gradient with respect to x1, w1, x2, w2 and b.

# %%
def neuron_by_hand(x1, w1, x2, w2, b):
    ### SOLUTION
    n = x1 * w1 + x2 * w2 + b
    o = np.tanh(n)
    do_dn = 1 - o ** 2
    return o, {"x1": do_dn * w1, "w1": do_dn * x1, "x2": do_dn * w2, "w2": do_dn * x2, "b": do_dn}
    ### BLANK
    raise NotImplementedError("return o and a dict of do/dx1, do/dw1, do/dx2, do/dw2, do/db (keys 'x1', 'w1', ...)")
    ### END

# %%
with exercise("2.2", "the neuron's gradients by hand") as ex:
    o, grads = neuron_by_hand(2.0, -3.0, 0.0, 1.0, 6.8813735870195432)
    ex.close("o", o, 1 / np.sqrt(2), hint="o = tanh(x1*w1 + x2*w2 + b)")
    lecture = {"x1": -1.5, "w1": 1.0, "x2": 0.5, "w2": 0.0, "b": 0.5}
    ex.expect(isinstance(grads, dict) and set(grads) == set(lecture),
              "return the gradients as a dict with the keys 'x1', 'w1', 'x2', 'w2', 'b'")
    for name, number in lecture.items():
        ex.close(f"do/d{name}", grads[name], number,
                 hint=f"do/d{name} = do/dn * dn/d{name}, with do/dn = 1 - o**2 = 0.5; in x1*w1 the local "
                      f"gradient of w1 is x1 and that of x1 is w1")
    # other numbers, against the engine
    leaves = {name: Value(v) for name, v in zip(["x1", "w1", "x2", "w2", "b"], [0.5, -1.0, 1.5, 0.25, 0.1])}
    engine_o = (leaves["x1"] * leaves["w1"] + leaves["x2"] * leaves["w2"] + leaves["b"]).tanh()
    engine_o.backward()
    o, grads = neuron_by_hand(0.5, -1.0, 1.5, 0.25, 0.1)
    for name, leaf in leaves.items():
        ex.close(f"do/d{name} at other numbers", grads[name], leaf.grad,
                 hint="right at the lecture's numbers only: compute with the arguments")

# %% [markdown]
# ## Exercise 2.3: tanh from exponentials, inside the graph
#
# tanh(x) = (e²ˣ − 1) / (e²ˣ + 1). Write it with the engine's operations on the Value `x`
# (`x.exp()`, `+`, `-`, `*`, `/`), so that the engine records every step and can differentiate
# it. `check_rule` also checks a whole function: it compares the engine's gradient of your
# function with central differences.
#
# (A NumPy function such as `np.exp(x.data)` computes the right numbers but leaves the graph:
# then no gradient reaches `x`, and the check says so.)

# %%
def tanh_from_exp(x):
    ### SOLUTION
    e2x = (2 * x).exp()
    return (e2x - 1) / (e2x + 1)
    ### BLANK
    raise NotImplementedError("build (exp(2x) - 1) / (exp(2x) + 1) from operations on the Value x")
    ### END

# %%
with exercise("2.3", "tanh from exponentials") as ex:
    points = np.array([-1.5, -0.2, 0.0, 0.8813735870195432, 1.0])
    result = tanh_from_exp(Value(points))
    ex.expect(isinstance(result, Value), "return a Value: build it from operations on x, not from x.data")
    ex.close("tanh_from_exp", result.data, np.tanh(points), hint="tanh(x) = (exp(2x) - 1) / (exp(2x) + 1)")
    ex.check_rule(tanh_from_exp, points)
