# %% [markdown]
# # Exercises 1: the chain rule on a small graph
#
# Three exercises on the lecture graph **L = (a·b + c)·f** (course notebook 1). In each one you
# complete a cell where it says `raise NotImplementedError(...)`, then run the check cell under
# it: it prints ✓ when your answer is right, or ✗ with a hint about what looks wrong.
#
# Run the cells in order. To see all results at once, from a terminal:
# `autograd-core grade ex01_chain_rule.ipynb`.

# %%
import numpy as np
from autograd_core import Op, Value, check_rule
from autograd_core.exercises import exercise

# %% [markdown]
# ## How a gradient rule is checked
#
# Every operation of the engine is declared as an `Op`: its forward, and for each input a rule
# for its **local gradient** (how the output moves when that input moves). `check_rule` measures
# the local gradient numerically, by nudging each input a tiny bit up and down (central
# differences), and compares it with your rule, element by element.
#
# Here is a rule with a deliberate mistake: d(x³)/dx written as 2x² instead of 3x².

# %%
cube = Op("my_cube", lambda x: x ** 3, inputs="x", elementwise=True,
          d_x=lambda x, out: 2 * x * x, formula="d(x^3)/dx = 3 x^2", register=False)
report = check_rule(cube, np.array([1.0, 2.0, -3.0]))
print(report)
assert not report.ok and report.index == (0,) and (report.expected, report.got) == (3.0, 2.0)

# %% [markdown]
# `report.draw()` shows the graph of the operation with the wrong input's edge in red:

# %%
report.draw()

# %% [markdown]
# ## Exercise 1.1: the local gradients of a product
#
# For e = a·b, write the two rules: ∂e/∂a and ∂e/∂b. A rule receives the inputs and the output
# `out` as NumPy arrays and returns the local gradient, element by element.

# %%
def mul_d_a(a, b, out):
    ### SOLUTION
    return b
    ### BLANK
    raise NotImplementedError("return d(a*b)/da: how fast does a*b move when a moves?")
    ### END


def mul_d_b(a, b, out):
    ### SOLUTION
    return a
    ### BLANK
    raise NotImplementedError("return d(a*b)/db")
    ### END


my_mul = Op("my_mul", lambda a, b: a * b, inputs="a, b", elementwise=True,
            d_a=mul_d_a, d_b=mul_d_b, formula="d(a*b)/da = b, d(a*b)/db = a", register=False)

# %%
with exercise("1.1", "the local gradients of a product") as ex:
    ex.check_rule(my_mul, np.array([2.0, -1.5, 0.5]), np.array([-3.0, 4.0, 2.0]),
                  hint="nudge a by h and see how much a*b moves.")

# %% [markdown]
# ## Exercise 1.2: the lecture graph, backward by hand
#
# With a = 2, b = −3, c = 10, f = −2 the forward pass gives e = a·b = −6, d = e + c = 4 and
# L = d·f = −8. Walk back from ∂L/∂L = 1, multiplying at every node the **upstream** gradient by
# the **local** one:
#
# 1. L = d·f gives ∂L/∂d and ∂L/∂f;
# 2. d = e + c passes ∂L/∂d on to e and to c;
# 3. e = a·b gives ∂L/∂a and ∂L/∂b.
#
# Write it for any numbers (the check also tries other ones).

# %%
def backward_by_hand(a, b, c, f):
    e = a * b
    d = e + c
    dL_dL = 1.0
    ### SOLUTION
    dL_dd = dL_dL * f          # L = d*f: the local gradient of d is f
    dL_df = dL_dL * d
    dL_de = dL_dd * 1.0        # addition passes the upstream gradient through
    dL_dc = dL_dd * 1.0
    dL_da = dL_de * b          # e = a*b: the local gradient of a is b
    dL_db = dL_de * a
    ### BLANK
    raise NotImplementedError("compute dL_dd and dL_df, then dL_de and dL_dc, then dL_da and dL_db")
    ### END
    return dL_da, dL_db, dL_dc, dL_df

# %%
with exercise("1.2", "the lecture graph, backward by hand") as ex:
    names = ["dL/da", "dL/db", "dL/dc", "dL/df"]
    hints = {
        "dL/da": "dL/da = dL/de * de/da, and de/da = b (the product hands each input the other one).",
        "dL/db": "dL/db = dL/de * de/db, and de/db = a.",
        "dL/dc": "d = e + c: the addition passes dL/dd to c unchanged, so dL/dc = dL/dd = f.",
        "dL/df": "L = d*f: dL/df = d, the value of the other factor (4 here).",
    }
    mine = backward_by_hand(2.0, -3.0, 10.0, -2.0)
    ex.expect(isinstance(mine, tuple) and len(mine) == 4, "return four numbers: dL/da, dL/db, dL/dc, dL/df")
    for name, got, lecture in zip(names, mine, [6.0, -4.0, -2.0, 4.0]):
        ex.close(name, got, lecture, hint=hints[name])
    # the same rules at other numbers, against the engine's backward pass
    leaves = [Value(v) for v in (1.5, 0.5, -2.0, 3.0)]
    ((leaves[0] * leaves[1] + leaves[2]) * leaves[3]).backward()
    for name, got, leaf in zip(names, backward_by_hand(1.5, 0.5, -2.0, 3.0), leaves):
        ex.close(f"{name} at a=1.5, b=0.5, c=-2, f=3", got, leaf.grad,
                 hint="right at the lecture's numbers only: use the arguments, not the numbers 2, -3, 10, -2.")

# %% [markdown]
# ## Exercise 1.3: a value used twice
#
# In y = x·x + x the value x feeds three places. Each path carries gradient back, and the
# contributions **add up**. Write dy/dx as a function of x, working it out by the chain rule (the
# product x·x gives x to each of its two inputs).

# %%
def dy_dx(x):
    ### SOLUTION
    return x + x + 1.0        # x*x sends x back to each input, + x sends 1
    ### BLANK
    raise NotImplementedError("add up what each use of x receives")
    ### END

# %%
with exercise("1.3", "gradients add where a value is used twice") as ex:
    ex.close("dy/dx at x = 3", dy_dx(3.0), 7.0,
             hint="x*x sends x back along each of its two inputs (2x in all), and + x sends 1: 2x + 1.")
    for point in (-2.0, 0.5, 10.0):
        x = Value(point)
        (x * x + x).backward()
        ex.close(f"dy/dx at x = {point}", dy_dx(point), x.grad)
