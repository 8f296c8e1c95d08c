# %% [markdown]
# # Exercises 6: dropout
#
# In training, dropout keeps each unit with probability `keep_prob` and zeroes the others, a new
# random choice for every example and every step. **Inverted** dropout also divides the kept
# units by `keep_prob`, so that each unit's expected value stays what it was; at test time the
# layer then has nothing to do.
#
# Three exercises: the forward pass, its gradient rule, and the two modes. Complete each cell
# where it says `raise NotImplementedError(...)`, then run the check under it. All results at
# once: `autograd-core grade ex06_dropout.ipynb`.

# %%
import numpy as np
from autograd_core import Op
from autograd_core.exercises import exercise

KEEP = 0.8

# %% [markdown]
# ## Exercise 6.1: the forward pass
#
# The lecture's recipe, with the random numbers `u` (uniform in [0, 1), one per unit) given so
# that the check can repeat it: a unit is kept where u < keep_prob; the kept ones are divided by
# keep_prob. Return the output and the mask (True where kept).

# %%
def dropout_forward(a, keep_prob, u):
    ### SOLUTION
    mask = u < keep_prob
    return a * mask / keep_prob, mask
    ### BLANK
    raise NotImplementedError("keep a unit where u < keep_prob, divide the kept ones by keep_prob")
    ### END

# %%
with exercise("6.1", "the forward pass of inverted dropout") as ex:
    a = np.array([[1.0, -2.0, 3.0, 0.5], [4.0, 1.5, -1.0, 2.0]])
    u = np.array([[0.05, 0.93, 0.41, 0.80], [0.79, 0.12, 0.99, 0.33]])
    out, mask = dropout_forward(a, KEEP, u)
    ex.close("the mask", mask, u < KEEP,
             hint="a unit is kept (True) where its random number is below keep_prob; 0.80 is not below 0.8")
    ex.close("the output", out, np.where(u < KEEP, a / KEEP, 0.0),
             hint="divide the kept units by keep_prob (1/0.8 = 1.25), so that the expected value stays a")
    ones = np.ones((200, 500))
    big, _ = dropout_forward(ones, KEEP, np.random.default_rng(6).random(ones.shape))
    ex.close("the mean output for inputs of 1", big.mean(), 1.0, atol=0.01, rtol=0,
             hint="on average the layer must give back its input")

# %% [markdown]
# ## Exercise 6.2: dropout's gradient rule
#
# With the mask fixed (it is a parameter of the op, drawn in the forward pass), dropout is
# elementwise: out = a · mask / keep_prob. Write its local gradient d out / d a.

# %%
def dropout_d_a(a, out, mask, keep_prob):
    ### SOLUTION
    return mask / keep_prob
    ### BLANK
    raise NotImplementedError("return d out/d a: where does the gradient flow, and scaled by what?")
    ### END


my_dropout = Op("my_dropout", lambda a, mask, keep_prob: a * mask / keep_prob, inputs="a", elementwise=True,
                d_a=dropout_d_a, formula="d out/da = mask / keep_prob", register=False)

# %%
with exercise("6.2", "dropout's gradient rule") as ex:
    a = np.array([[1.0, -2.0, 3.0, 0.5], [4.0, 1.5, -1.0, 2.0]])
    mask = np.array([[True, False, True, True], [True, True, False, True]])
    ex.check_rule(my_dropout, a, params={"mask": mask, "keep_prob": KEEP},
                  hint="the gradient of a dropped unit is 0; a kept unit passes the gradient on, scaled by "
                       "1/keep_prob as its value was.")

# %% [markdown]
# ## Exercise 6.3: training and evaluation
#
# Put it together: in training the layer draws its random numbers from `rng` and applies 6.1;
# in evaluation it leaves its input as it is. Why no rescaling at test time? Because the
# division by keep_prob in training already made the expected output equal the input.

# %%
def dropout_layer(a, keep_prob, training, rng):
    ### SOLUTION
    if not training:
        return a
    return dropout_forward(a, keep_prob, rng.random(a.shape))[0]
    ### BLANK
    raise NotImplementedError("training: dropout_forward with rng.random(a.shape); evaluation: the input")
    ### END

# %%
with exercise("6.3", "training and evaluation modes") as ex:
    a = np.arange(1.0, 9.0).reshape(2, 4)
    ex.close("the output in evaluation", dropout_layer(a, KEEP, False, np.random.default_rng(0)), a,
             hint="inverted dropout already scaled in training: at test time the layer is the identity")
    out = dropout_layer(a, KEEP, True, np.random.default_rng(0))
    expected, _ = dropout_forward(a, KEEP, np.random.default_rng(0).random(a.shape))
    ex.close("the output in training (seed 0)", out, expected,
             hint="draw u = rng.random(a.shape) once and pass it to dropout_forward")
