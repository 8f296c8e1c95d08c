"""The exceptions the engine raises on purpose.

Each one subclasses the built-in exception a Python or NumPy user would
already catch for that kind of mistake, so ``except ValueError`` keeps working.
"""


class ShapeError(ValueError):
    """Operand shapes do not fit the operation (broadcasting, matmul, reshape...).

    The message names the operation and every shape involved.

    >>> from autograd_core import Value
    >>> Value([1.0, 2.0]) + Value([1.0, 2.0, 3.0])    # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ShapeError: add: shapes (2,) and (3,) cannot be broadcast together (trailing dimensions must be equal or 1)
    """


class GraphFreedError(RuntimeError):
    """A backward pass reached a part of the graph that an earlier backward freed.

    Pass ``retain_graph=True`` to the first ``backward()`` to keep it.

    >>> from autograd_core import Value
    >>> x = Value(2.0); y = x * x; y.backward()
    >>> y.backward()                                  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    GraphFreedError: backward through the graph a second time: the 'mul' node was freed by an earlier backward(). ...
    """


class AnomalyError(FloatingPointError):
    """Raised inside ``detect_anomaly()`` by the first operation whose forward
    output or backward gradient holds NaN or Inf.

    >>> from autograd_core import Value, detect_anomaly
    >>> with detect_anomaly():                        # sqrt's gradient at 0 is inf
    ...     Value(0.0).sqrt().backward()              # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    AnomalyError: sqrt produced Inf in the gradient for its input 0 during backward ...
    """


class GradcheckError(AssertionError):
    """``gradcheck`` found an analytic gradient that disagrees with central
    differences; the message names the input, the index and both values.

    >>> from autograd_core import Value, gradcheck
    >>> gradcheck(lambda x: x.relu(), [Value(0.0)])   # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    GradcheckError: gradcheck: input 0 of shape (), index (): analytic gradient 0 but central difference 0.5 ...
    """


class SavedDataModifiedError(RuntimeError):
    """The data of a Value that a pending backward still needs was replaced or
    modified in place between the forward pass and ``backward()``.

    >>> from autograd_core import Value
    >>> x = Value(2.0); y = x * x
    >>> x.data = 5.0                                  # mul saved x = 2 for its gradient
    >>> y.backward()                                  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    SavedDataModifiedError: backward(): the data of the Value (shape (), float64), an input of 'mul', was changed ...
    """


class GraphDroppedWarning(UserWarning):
    """A Value that requires grad was turned into a plain Python number
    (``float(v)``, or ``math.exp(v)`` which calls it): the number is outside
    the graph and no gradient flows through it. Use ``v.item()`` when the
    number is what you want, or the engine's operation (``v.exp()``) to stay
    in the graph.

    >>> import warnings
    >>> from autograd_core import Value
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error")
    ...     float(Value(2.0) * 3)                     # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    GraphDroppedWarning: float() of a Value that requires grad ...
    """
