"""The traced call written as an ONNX graph, with the ``onnx`` package.

ONNX has no layers: every operation of the trace is written as its
declaration says (``Op(as_onnx=...)``): the name of one ONNX operator
(``"Tanh"``) or a function that adds a few nodes with the writer it is given
(``g.op("Conv", x, w, pads=[1, 1, 1, 1])``, ``g.const(value)``,
``g.ints(axes)``). Parameters become initializers named after them; the
example arguments become the graph's inputs, with their shapes.

Floats are written in one type, float32 by default: ONNX Runtime runs it on
every platform (a browser too), and some of its kernels (Conv, Erf) have no
float64 version. A float64 model is rounded to float32 once, on export.
"""

from __future__ import annotations

import math

import numpy as np

from ..compile.program import Names, identifier
from ..engine import Value
from ..errors import ShapeError
from .trace import ExportError

__all__ = ["OPSET", "write_onnx"]

OPSET = 18  # ONNX Runtime 1.15+ and its web build run it
IR_VERSION = 8  # the IR version that goes with opset 18
_COMPARISONS = {np.greater: "Greater", np.greater_equal: "GreaterOrEqual", np.less: "Less",
                np.less_equal: "LessOrEqual"}


class Graph:
    """The nodes and initializers of the graph being written."""

    def __init__(self, float_type):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.float_type = np.dtype(float_type)
        self.names = Names()
        self.nodes = []
        self.initializers = []
        self._constants = {}  # (dtype, shape, bytes) -> name: each constant stored once

    def fresh(self, hint):
        return self.names.new(hint, "v")

    def op(self, op_type, *inputs, outputs=1, **attributes):
        names = [self.fresh(op_type.lower()) for _ in range(outputs)]
        inputs = ["" if name is None else name for name in inputs]
        self.nodes.append(self.helper.make_node(op_type, inputs, names, name=names[0], **attributes))
        return names[0] if outputs == 1 else names

    def tensor(self, array, hint):
        """An initializer holding `array` (floats in the graph's float type)."""
        array = np.asarray(array)
        if array.dtype.kind == "f":
            array = array.astype(self.float_type)
        elif array.dtype.kind in "iu":
            array = array.astype(np.int64)
        elif array.dtype != np.bool_:
            raise ExportError(f"export: cannot store an array of dtype {array.dtype} in ONNX")
        key = (array.dtype.str, array.shape, array.tobytes())
        known = self._constants.get(key)
        if known is not None:
            return known
        name = self.fresh(hint)
        self.initializers.append(self.numpy_helper.from_array(np.array(array, order="C"), name))  # (0-d stays 0-d)
        self._constants[key] = name
        return name

    def elem_type(self, dtype):
        from onnx import helper

        dtype = np.dtype(dtype)
        if dtype.kind == "f":
            dtype = self.float_type
        return helper.np_dtype_to_tensor_dtype(dtype)


class _View:
    """What an op's ONNX form (a function) is given: ``op``, ``const`` and
    ``ints`` to add nodes and constants, and the node's shapes and dtype."""

    def __init__(self, writer, node):
        self._writer = writer
        self._graph = writer.graph
        self.shapes = [v.shape for v in node._inputs]
        self.out_shape = node.shape
        self.dtype = node.dtype
        self.float_type = writer.graph.float_type

    def op(self, op_type, *inputs, outputs=1, **attributes):
        """Add one node; returns its output's name (a list of them for ``outputs=2`` ...)."""
        return self._graph.op(op_type, *inputs, outputs=outputs, **attributes)

    def const(self, value, hint="const"):
        """A constant (a float in the node's float type, an int as int64, an array) or,
        for an array made from traced Values (``x > 0``), its value in the graph."""
        if isinstance(value, np.ndarray):
            return self._writer.array(value, hint)
        if isinstance(value, (bool, np.bool_)):
            return self._graph.tensor(np.asarray(value, dtype=bool), hint)
        if isinstance(value, (int, np.integer)):
            return self._graph.tensor(np.asarray(value, dtype=np.int64), hint)
        if isinstance(value, (float, np.floating)):
            return self._graph.tensor(np.asarray(value, dtype=self.dtype), hint)
        return self._graph.tensor(np.asarray(value), hint)

    def ints(self, values, hint="ints"):
        """A 1-d int64 constant (axes, a shape, pads)."""
        return self._graph.tensor(np.asarray(list(values), dtype=np.int64).reshape(-1), hint)

    def elem_type(self, dtype):
        """ONNX's number for a NumPy dtype (floats: the graph's float type)."""
        return self._graph.elem_type(dtype)


class Writer:
    def __init__(self, traced, float_type):
        self.traced = traced
        self.graph = Graph(float_type)
        self.variables = {}
        self.leaves = {}
        self.inputs = []

    def array(self, array, hint="const"):
        kind, source = self.traced.array_source(array)
        if kind == "argument":  # an integer array given to the model (indices): the graph's input too
            return self.input_names[source]
        if kind == "host":
            return self.variables[("host", id(source))]
        return self.graph.tensor(np.asarray(source), hint)

    def operand(self, value, time):
        traced = self.traced
        step = traced.producer(value, time, frozenset())
        if step is not None:
            return self.variables[step.key]
        k = traced.argument_index(value)
        if k is not None:
            return self.input_names[k]
        if traced.is_leaf(value):
            known = self.leaves.get(id(value))
            if known is None:
                path = traced.leaf_paths.get(id(value)) or traced.leaf_path_of(value) or value.label or "param"
                known = self.leaves[id(value)] = self.graph.tensor(value._data, identifier(path, "param"))
            return known
        return self.array(np.asarray(value._data), "const")

    def write(self, name):
        from onnx import helper

        traced, graph = self.traced, self.graph
        self.input_names = []
        for k, (arg_name, arg) in enumerate(zip(traced.arg_names, traced.call_args)):
            name_k = graph.names.new(arg_name, f"input{k}")
            self.input_names.append(name_k)
            if isinstance(arg, Value):
                self.inputs.append(helper.make_tensor_value_info(name_k, graph.elem_type(arg.dtype), list(arg.shape)))
            elif isinstance(arg, np.ndarray):
                self.inputs.append(helper.make_tensor_value_info(name_k, graph.elem_type(arg.dtype), list(arg.shape)))
            else:
                raise ExportError(f"export: to_onnx takes arrays as the model's arguments; argument {k} is a "
                                  f"{type(arg).__name__} (a number is part of the model: put it in the function)")
        for step in traced.steps():
            if step.kind == "host":
                self._host(step)
            else:
                self._node(step)
        outputs = []
        for k, value in enumerate(traced.outputs):
            source = self.operand(value, math.inf)
            out_name = graph.names.new(value.label or ("output" if len(traced.outputs) == 1 else f"output{k}"), "output")
            graph.nodes.append(helper.make_node("Identity", [source], [out_name], name=out_name))
            outputs.append(helper.make_tensor_value_info(out_name, graph.elem_type(value.dtype), list(value.shape)))
        onnx_graph = helper.make_graph(graph.nodes, identifier(name, "model"), self.inputs, outputs,
                                       initializer=graph.initializers)
        model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="autograd-core")
        model.ir_version = IR_VERSION
        return model

    def _host(self, step):
        record = step.obj
        op_type = _COMPARISONS.get(record.fn)
        if op_type is None or len(record.inputs) != 2:
            what = record.name or getattr(record.fn, "__name__", "an array")
            raise ExportError(f"export: the model makes an array in NumPy from traced values ({what!s:.40}), which "
                              f"has no ONNX form; compute it with the engine's operations")
        like = next(x for x in record.inputs if isinstance(x, Value))
        names = []
        for x in record.inputs:
            if isinstance(x, Value):
                names.append(self.operand(x, record.when))
            else:
                names.append(self.graph.tensor(np.asarray(x, dtype=like.dtype), "const"))
        self.variables[step.key] = self.graph.op(op_type, *names)

    def _node(self, step):
        node = step.obj
        op = node._op
        form = op.as_onnx
        if form is None:
            raise ExportError(
                f"export: the operation {op.name!r} has no ONNX form (Op(as_onnx=...)), so a model using it cannot "
                f"be exported to ONNX; compute it with other operations, or export to PyTorch (export.to_torch)")
        inputs = [self.operand(v, node._id) for v in node._inputs]
        if callable(form):
            try:
                out = form(_View(self, node), *inputs, **node._params)
            except ShapeError as error:  # a case of the op that ONNX cannot say (circular padding)
                raise ExportError(f"export: the operation {op.name!r} as used here has no ONNX form: {error}") from None
        else:
            out = self.graph.op(form, *inputs)
        self.variables[step.key] = out


def write_onnx(traced, dtype=np.float32, name="model"):
    """The ONNX ModelProto of a traced call, checked with ``onnx.checker``."""
    import onnx

    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ExportError(f"export: to_onnx writes floats as float16, float32 or float64, not {dtype}")
    model = Writer(traced, dtype).write(name)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as error:
        raise ExportError(f"export: the ONNX graph does not pass onnx.checker: {str(error)[:800]}") from None
    return model
