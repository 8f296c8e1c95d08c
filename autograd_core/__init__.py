"""autograd_core: a computation-graph engine on NumPy.

A :class:`Value` holds a scalar or an n-d array; every operation on Values
records its inputs and its local gradient, and ``backward()`` walks the graph
once in reverse to fill every ``.grad``.

>>> from autograd_core import Value
>>> a = Value(2.0); b = Value(-3.0); c = Value(10.0); f = Value(-2.0)
>>> L = (a * b + c) * f
>>> L.backward()
>>> a.grad, b.grad, c.grad, f.grad
(np.float64(6.0), np.float64(-4.0), np.float64(-2.0), np.float64(4.0))
"""

from .engine import (
    Value,
    detect_anomaly,
    enable_grad,
    grad,
    is_grad_enabled,
    name_scope,
    no_grad,
    topological_order,
)
from .errors import AnomalyError, GradcheckError, GraphDroppedWarning, GraphFreedError, SavedDataModifiedError, ShapeError
from . import ops
from . import ops_math, ops_select  # noqa: F401  (more operations: they register themselves in ops.OPS)
from .ops import OPS, Op  # the registry itself: every declared operation by name; Op declares one
from . import conv  # noqa: F401  convolution, pooling and padding: declared in the registry, exported below with the rest
from . import conv_transpose, resample  # noqa: F401  transposed convolution, interpolation and unpooling: the same way
from .gradcheck import gradcheck
from .learner import check_rule  # learner mode: a gradient rule checked, its mistake explained
from .stepper import BackpropStepper
from .viz import draw_graph, render_graph
from .functional import hessian, hvp, jacobian
from .compile import compile  # noqa: E402 (the function; the module stays importable as autograd_core.compile)
from . import export  # noqa: E402 (to PyTorch and ONNX; torch and onnx are imported only when used)

__version__ = "0.1.0"

__all__ = [
    "Value", "grad", "no_grad", "enable_grad", "is_grad_enabled", "detect_anomaly", "name_scope",
    "topological_order", "OPS", "Op", "compile", "gradcheck", "check_rule", "draw_graph", "render_graph", "BackpropStepper", "hessian", "hvp", "jacobian",
    "ShapeError", "GraphFreedError", "GraphDroppedWarning", "AnomalyError", "GradcheckError", "SavedDataModifiedError",
]
# Every operation's function (add, matmul, softmax...) is exported as declared in
# the registry; an op declared later, in another module, adds itself (ops._export).
for _name in ops.__all__:
    if _name not in ("OPS", "Op", "F"):
        globals()[_name] = getattr(ops, _name)
        __all__.append(_name)
del _name
# Python's any and all keep their names inside ops.py, so these two are exported from here
from .ops_select import all, any  # noqa: E402,A004

__all__ += ["any", "all"]
