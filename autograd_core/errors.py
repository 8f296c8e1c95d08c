"""The exceptions the engine raises on purpose.

Each one subclasses the built-in exception a Python or NumPy user would
already catch for that kind of mistake, so ``except ValueError`` keeps working.
"""


class ShapeError(ValueError):
    """Operand shapes do not fit the operation (broadcasting, matmul, reshape...).

    The message names the operation and every shape involved.
    """


class GraphFreedError(RuntimeError):
    """A backward pass reached a part of the graph that an earlier backward freed.

    Pass ``retain_graph=True`` to the first ``backward()`` to keep it.
    """


class AnomalyError(FloatingPointError):
    """Raised inside ``detect_anomaly()`` by the first operation whose forward
    output or backward gradient holds NaN or Inf."""


class GradcheckError(AssertionError):
    """``gradcheck`` found an analytic gradient that disagrees with central
    differences; the message names the input, the index and both values."""


class SavedDataModifiedError(RuntimeError):
    """The data of a Value that a pending backward still needs was replaced or
    modified in place between the forward pass and ``backward()``."""
