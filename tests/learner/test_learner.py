"""check_rule: a gradient rule checked against central differences, its first
mistake located and explained. Each kind of hint is tested with a rule that
makes that mistake on purpose."""

import re

import numpy as np
import pytest

from autograd_core import Op, OPS, Value, check_rule, draw_graph
from autograd_core.learner import RuleReport, explain_difference

RNG = np.random.default_rng(29)


def elementwise(name, forward, formula="", **rules):
    inputs = ", ".join(key[2:] for key in rules)
    return Op(name, forward, inputs=inputs, elementwise=True, formula=formula or name, register=False, **rules)


def structural(name, forward, formula="", **rules):
    inputs = ", ".join(key[2:] for key in rules)
    return Op(name, forward, inputs=inputs, formula=formula or name, register=False, **rules)


def matmul_op(d_a=lambda g, a, b, out: g @ b.T, d_b=lambda g, a, b, out: a.T @ g):
    return structural("my_matmul", lambda a, b: a @ b, d_a=d_a, d_b=d_b)


def bias_op(d_b):
    return structural("add_bias", lambda z, b: z + b, d_z=lambda g, z, b, out: g, d_b=d_b)


# --------------------------------------------------------------------------
# The example, and every field of the report
# --------------------------------------------------------------------------
def test_the_cube_rule_written_2x2_is_found_at_its_first_element_with_both_numbers():
    cube = elementwise("my_cube", lambda x: x ** 3, "d(x^3)/dx = 3 x^2", d_x=lambda x, out: 2 * x * x)
    report = check_rule(cube, np.array([1.0, 2.0, -3.0]))
    assert report.ok is False and not report
    assert report.input == "x" and report.index == (0,)
    assert report.expected == 3.0 and report.got == 2.0  # d(x^3)/dx at 1: central differences, the rule
    assert report.problem == "values" and report.error is None
    assert report.hint == "every element is 2/3 of the right value: a constant factor is off (2 instead of 3?)"
    text = " ".join(str(report).split())
    assert text.startswith("check_rule(my_cube): the rule for x is wrong. At x[0] = 1,")
    assert "should be 3 (central differences), but the rule gives 2; 3 of 3 elements differ" in text
    assert "The op's formula: d(x^3)/dx = 3 x^2." in text
    assert repr(report) == "<RuleReport my_cube: values wrong for x at (0,)>"
    assert "my_cube" not in OPS  # register=False stays out of the registry


def test_a_right_rule_gives_an_ok_report_with_no_location():
    cube = elementwise("my_cube", lambda x: x ** 3, d_x=lambda x, out: 3 * x * x)
    report = check_rule(cube, np.array([1.0, 2.0, -3.0]))
    assert report.ok and bool(report)
    assert (report.input, report.index, report.expected, report.got, report.hint, report.problem) == (None,) * 6
    assert str(report) == "check_rule(my_cube): the rule for x agrees with central differences at all 3 elements."


def test_a_wrong_second_input_is_named_and_the_first_is_not_blamed():
    mul = elementwise("my_mul", lambda a, b: a * b, d_a=lambda a, b, out: b, d_b=lambda a, b, out: -a)
    report = check_rule(mul, np.array([2.0, -1.0]), np.array([3.0, 5.0]))
    assert report.input == "b" and report.index == (0,)
    assert (report.expected, report.got) == (2.0, -2.0)


def test_the_first_wrong_element_in_c_order_is_reported():
    # right where x < 0, wrong from the first positive element on
    op = elementwise("half_wrong", lambda x: x * x, d_x=lambda x, out: np.where(x < 0, 2 * x, 3 * x))
    report = check_rule(op, np.array([[-1.0, -2.0], [4.0, 5.0]]))
    assert report.index == (1, 0) and report.expected == 8.0 and report.got == 12.0


def test_structural_rules_are_checked_with_a_random_upstream_gradient():
    a, b = RNG.normal(size=(2, 3)), RNG.normal(size=(3, 4))
    assert check_rule(matmul_op(), a, b).ok
    wrong = check_rule(matmul_op(d_b=lambda g, a, b, out: -(a.T @ g)), a, b)
    g = np.random.default_rng(0).standard_normal((2, 4))  # seed 0, the default
    assert wrong.input == "b" and wrong.index == (0, 0)
    assert wrong.got == pytest.approx(-(a.T @ g)[0, 0], rel=1e-12)
    assert wrong.expected == pytest.approx((a.T @ g)[0, 0], rel=1e-6)
    other_seed = check_rule(matmul_op(d_b=lambda g, a, b, out: -(a.T @ g)), a, b, seed=1)
    assert other_seed.got != wrong.got


def test_params_reach_the_forward_and_the_rules():
    scale = elementwise("scale", lambda x, k: k * x, d_x=lambda x, out, k: k)
    assert check_rule(scale, np.array([1.0, 2.0]), params={"k": 3.0}).ok
    wrong = elementwise("scale", lambda x, k: k * x, d_x=lambda x, out, k: 1.0)
    assert check_rule(wrong, np.array([1.0, 2.0]), params={"k": 3.0}).expected == 3.0


def test_a_rule_for_a_reduction_with_an_axis_parameter():
    mean = structural("my_mean", lambda x, axis: x.mean(axis=axis),
                      d_x=lambda g, x, out, axis: np.expand_dims(g, axis) * np.ones_like(x) / x.shape[axis])
    assert check_rule(mean, RNG.normal(size=(4, 3)), params={"axis": 0}).ok
    assert check_rule(mean, RNG.normal(size=(4, 3)), params={"axis": 1}).ok


def test_registered_engine_ops_pass():
    for name, inputs, params in [("tanh", [RNG.normal(size=5)], {}), ("mul", [RNG.normal(size=3), RNG.normal(size=3)], {}),
                                 ("matmul", [RNG.normal(size=(2, 3)), RNG.normal(size=(3, 2))], {}),
                                 ("softmax", [RNG.normal(size=(2, 4))], {"axis": -1}),
                                 ("sum", [RNG.normal(size=(3, 2))], {"axis": (0,), "keepdims": False})]:
        report = check_rule(OPS[name], *inputs, params=params)
        assert report.ok, str(report)


def test_a_variadic_op_names_its_inputs_by_position():
    stack2 = Op("stack2", lambda *xs: np.stack(xs), inputs="*values", formula="", register=False,
                d_each=lambda i, g, *values_and_out: g[i] * (2 if i == 1 else 1))
    report = check_rule(stack2, np.ones(2), np.ones(2), np.ones(2))
    assert report.input == "values[1]" and report.index == (0,)


# --------------------------------------------------------------------------
# Each hint, from a rule that makes that mistake
# --------------------------------------------------------------------------
def test_hint_wrong_sign():
    tanh = elementwise("my_tanh", np.tanh, d_x=lambda x, out: out ** 2 - 1)
    report = check_rule(tanh, np.array([0.5, -1.0, 2.0]))
    assert report.hint == "the sign is wrong: every element has the right size and the opposite sign"
    assert report.got == pytest.approx(-report.expected, rel=1e-6)


def test_hint_a_rule_written_with_the_input_where_the_output_belongs():
    sigmoid = elementwise("my_sigmoid", lambda x: 1 / (1 + np.exp(-x)), d_x=lambda x, out: x * (1 - x))
    report = check_rule(sigmoid, np.array([-2.0, 0.5, 3.0]))
    assert report.hint.startswith("the rule uses x where out belongs: with out in its place the numbers are right")
    exp = elementwise("my_exp", np.exp, d_x=lambda x, out: x)
    assert check_rule(exp, np.array([0.5, 2.0])).hint.startswith("the rule uses x where out belongs")


def test_hint_constant_factor_names_the_batch_size_it_hides():
    mean = structural("my_mean", lambda x: x.mean(axis=0), d_x=lambda g, x, out: np.broadcast_to(g, x.shape))
    report = check_rule(mean, RNG.normal(size=(4, 3)))
    assert report.hint == ("every element is 4 times the right value: a constant factor is off "
                           "(4 is the length of axis 0 of x: a division by it missing?)")
    assert report.got == pytest.approx(4 * report.expected, rel=1e-6)


def test_hint_transpose_says_which_product_for_a_matmul_rule_written_g_at_b():
    # g @ b instead of g @ b.T: with these shapes the product raises; a report, not a traceback
    report = check_rule(matmul_op(d_a=lambda g, a, b, out: g @ b), RNG.normal(size=(2, 3)), RNG.normal(size=(3, 4)))
    assert report.problem == "error" and report.input == "a" and isinstance(report.error, ValueError)
    assert report.index is None and report.expected is None and report.got is None
    assert "the right value is g @ b.T (shapes (2, 4) @ (4, 3))" in report.hint
    text = " ".join(str(report).split())
    assert "It was given g (2, 4), a (2, 3), b (3, 4), out (2, 4) and must return a's shape (2, 3)" in text


def test_hint_transpose_with_square_matrices_names_the_product_the_rule_computed():
    report = check_rule(matmul_op(d_a=lambda g, a, b, out: g @ b), RNG.normal(size=(3, 3)), RNG.normal(size=(3, 3)))
    assert report.problem == "values" and report.input == "a"
    assert report.hint == "a transpose is misplaced: the rule computes g @ b, the right value is g @ b.T"


def test_hint_transposed_result_shape():
    report = check_rule(matmul_op(d_b=lambda g, a, b, out: g.T @ a), RNG.normal(size=(2, 3)), RNG.normal(size=(3, 4)))
    assert report.problem == "shape" and report.input == "b"
    assert report.hint.startswith("the shape (4, 3) is the transpose of b's shape (3, 4): transposed, the numbers are right")


def test_hint_missing_sum_over_the_batch_axis_of_a_bias():
    report = check_rule(bias_op(lambda g, z, b, out: g), RNG.normal(size=(4, 3)), RNG.normal(size=3))
    assert report.problem == "shape" and report.input == "b"
    assert report.hint == ("the shape (4, 3) is b's shape (3,) stretched over axis 0 (the batch): what is stretched "
                           "over an axis collects the gradient of every copy, so sum over axis 0 (.sum(axis=0)); "
                           "with that sum the numbers are right")
    assert "returns an array of shape (4, 3), but b has shape (3,)" in str(report).replace("\n", " ")


def test_hint_missing_sum_over_a_kept_axis():
    report = check_rule(bias_op(lambda g, z, b, out: g), RNG.normal(size=(4, 3)), RNG.normal(size=(1, 3)))
    assert "sum over axis 0 (.sum(axis=0, keepdims=True))" in report.hint


def test_hint_swapped_rules_of_two_inputs():
    mul = elementwise("my_mul", lambda a, b: a * b, d_a=lambda a, b, out: a, d_b=lambda a, b, out: b)
    report = check_rule(mul, np.array([2.0, 5.0]), np.array([-3.0, 4.0]))
    assert report.input == "a" and (report.expected, report.got) == (-3.0, 2.0)
    assert report.hint == "the rule for a gives what the rule for b should give: are the two swapped?"


def test_hint_a_rule_that_ignores_the_upstream_gradient():
    scaled = structural("sum_all", lambda x: x.sum(), d_x=lambda g, x, out: np.ones_like(x))
    report = check_rule(scaled, np.array([1.0, 2.0, 3.0]))
    assert report.hint.startswith("the rule gives the same result whatever the upstream gradient g is: multiply by g")


def test_hint_a_missing_term_summed_over_the_batch():
    # batch centring's rule without its mean path: wrong by the same amount down each column
    centre = structural("centre", lambda x: x - x.mean(axis=0), d_x=lambda g, x, out: g)
    report = check_rule(centre, RNG.normal(size=(4, 3)))
    assert report.hint.startswith("the error is the same at every position along axis 0")


def test_hint_an_op_declared_elementwise_that_is_not():
    softmax = elementwise("sm", lambda z: np.exp(z) / np.exp(z).sum(), d_z=lambda z, out: out * (1 - out))
    report = check_rule(softmax, np.array([1.0, 2.0, 3.0]))
    assert not report.ok and report.input == "z" and "declare it elementwise=False" in report.hint


@pytest.mark.filterwarnings("ignore:divide by zero")
def test_hint_nan_from_the_rule():
    log = elementwise("my_log", np.log, d_x=lambda x, out: 1 / (x - 1))
    report = check_rule(log, np.array([1.0, 2.0]))
    assert report.index == (0,) and report.hint.startswith("the result is inf at [0]: a division by zero")


def test_explain_difference_is_the_same_recogniser_for_numbers():
    expected = np.array([[1.0, -2.0], [3.0, 0.5]])
    assert explain_difference(-expected, expected).startswith("the sign is wrong")
    assert explain_difference(expected.T, expected).startswith("it is the transpose of the right answer")
    assert explain_difference(expected * 0.5, expected) == "every element is 1/2 of the right value: a constant factor is off"
    assert explain_difference(np.zeros((2, 2)), expected).startswith("it is 0 everywhere")
    assert explain_difference(expected + 1, expected).startswith("every element is off by the same amount (+1)")
    assert explain_difference(expected + [1.0, 2.0], expected).startswith("the error is the same at every position along axis 0")
    assert explain_difference(expected ** 2, expected).startswith("the difference is not a constant factor")


# --------------------------------------------------------------------------
# A rule that raises, a rule of the wrong shape, a forward that raises
# --------------------------------------------------------------------------
def test_a_rule_that_raises_gets_a_report_with_the_call_and_the_shapes():
    def rule(x, out):
        raise NotImplementedError("return the local gradient")

    report = check_rule(elementwise("todo", np.sin, d_x=rule), np.array([0.1, 0.2]))
    assert report.problem == "error" and isinstance(report.error, NotImplementedError)
    assert report.hint == "this part is not written yet: return the local gradient"
    text = " ".join(str(report).split())
    assert "the rule for x, called as d_x(x, out), raised NotImplementedError: return the local gradient" in text


def test_a_rule_with_the_wrong_signature_is_told_how_the_engine_calls_it():
    report = check_rule(structural("s", lambda x: 2 * x, d_x=lambda x, out: 2 * x), np.array([1.0]))
    assert report.problem == "error" and isinstance(report.error, TypeError)
    assert report.hint.startswith("a structural rule takes the upstream gradient g first") and "d_x(g, x, out)" in report.hint


def test_a_broadcast_error_inside_a_rule_points_at_keepdims():
    rule = lambda g, z, out: out * (g - (g * out).sum(axis=-1))  # noqa: E731
    softmax = structural("softmax", lambda z: np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True), d_z=rule)
    report = check_rule(softmax, RNG.normal(size=(2, 3)))
    assert report.problem == "error" and "keepdims=True" in report.hint


def test_an_elementwise_rule_of_a_shape_that_does_not_fit():
    report = check_rule(elementwise("bad", np.sin, d_x=lambda x, out: np.ones(7)), np.array([0.1, 0.2]))
    assert report.problem == "shape" and "shape (7,)" in str(report)


def test_a_forward_that_raises_gets_a_report():
    def forward(x):
        raise ZeroDivisionError("boom")

    report = check_rule(elementwise("f", forward, d_x=lambda x, out: 1.0), np.array([1.0]))
    assert report.problem == "forward" and isinstance(report.error, ZeroDivisionError) and report.input is None
    assert "the forward raised ZeroDivisionError: boom" in str(report)


def test_a_rule_that_returns_text_gets_a_report():
    report = check_rule(structural("s", lambda x: x, d_x=lambda g, x, out: "g"), np.array([1.0]))
    assert report.problem == "error" and isinstance(report.error, ValueError)


def test_check_rule_refuses_misuse_clearly():
    with pytest.raises(TypeError, match="give an Op or a function"):
        check_rule(3, np.array([1.0]))
    with pytest.raises(TypeError, match="takes the inputs x"):
        check_rule(elementwise("f", np.sin, d_x=lambda x, out: 1.0), np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="at most 10,000"):
        check_rule(elementwise("f", np.sin, d_x=lambda x, out: np.cos(x)), np.ones(10_001))
    with pytest.raises(TypeError, match="must be numbers"):
        check_rule(elementwise("f", np.sin, d_x=lambda x, out: 1.0), "abc")


# --------------------------------------------------------------------------
# A function of Values
# --------------------------------------------------------------------------
def test_a_function_of_values_is_gradchecked_and_named_by_its_parameters():
    def neuron(w, x):
        return (w * x).sum().tanh()

    report = check_rule(neuron, np.array([0.5, -1.0]), np.array([2.0, 1.0]))
    assert report.ok and report.checked == ("w", "x") and report.noun == "gradient"


def test_a_function_that_leaves_the_graph_is_told_so():
    def leaky(w, x):
        return (w * Value(x.data, requires_grad=False)).sum()   # x through .data: no gradient reaches it

    report = check_rule(leaky, np.array([0.5, -1.0]), np.array([2.0, 1.0]))
    assert report.input == "x" and report.index == (0,) and report.got == 0.0 and report.expected == 0.5
    assert report.hint.startswith("the graph never reaches x")


def test_a_function_using_a_wrong_custom_op_is_located_through_the_engine():
    cube = elementwise("my_cube", lambda x: x ** 3, d_x=lambda x, out: 2 * x * x)

    def f(x):
        return cube.apply(x).sum()

    report = check_rule(f, np.array([1.0, 2.0]))
    assert (report.input, report.index, report.expected, report.got) == ("x", (0,), 3.0, 2.0)
    assert report.hint.startswith("every element is 2/3 of the right value")


def test_a_function_that_raises_or_returns_no_value_gets_a_report():
    assert check_rule(lambda x: 1 / 0, np.ones(2)).problem == "error"
    report = check_rule(lambda x: x.data.sum(), np.ones(2))
    assert report.problem == "error" and "not a Value" in str(report)


def test_a_function_whose_output_left_the_graph_entirely():
    report = check_rule(lambda x: Value(x.data * 2), np.ones(2))
    assert report.problem == "values" and report.hint.startswith("the graph never reaches x")


# --------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------
def test_draw_marks_the_wrong_inputs_edge_in_red_and_only_it():
    mul = elementwise("my_mul", lambda a, b: a * b, d_a=lambda a, b, out: b, d_b=lambda a, b, out: b)
    report = check_rule(mul, np.array([2.0, 5.0]), np.array([-3.0, 4.0]))
    source = report.draw().source
    red = [line for line in source.splitlines() if "#d62728" in line]
    assert len(red) == 1 and red[0].strip().startswith("v") and "wrong: -3 where 2 is due, at [0]" in red[0]
    box_of_b = re.search(r"(v\d+) \[label=\"\{ b ", source).group(1)
    assert red[0].strip().startswith(f"{box_of_b} -> ")
    assert len(re.findall(r"->", source)) == 3  # a -> op, b -> op, op -> out: the red edge replaced its old line
    assert "check_rule(my_mul): the rule for b is wrong." in source


def test_draw_of_an_ok_report_has_no_red_edge_and_says_so():
    source = check_rule(lambda x: x * x, np.array([3.0])).draw().source
    assert "#d62728" not in source and "agrees with central differences" in source


def test_draw_of_a_function_marks_every_edge_leaving_the_wrong_input():
    def leaky(w, x):
        return w * x + Value(x.data, requires_grad=False) * w   # x used twice; one use leaves the graph

    report = check_rule(leaky, np.array([1.0]), np.array([2.0]))
    assert report.input == "x"
    source = report.draw().source
    assert len([line for line in source.splitlines() if "#d62728" in line]) == 1


def test_labels_from_user_code_are_escaped_in_the_drawing():
    op = Op('evil"><svg onload=x>', lambda x: 2 * x, inputs="x", elementwise=True, formula="", register=False,
            d_x=lambda x, out: 3.0)
    source = check_rule(op, np.array([1.0])).draw().source
    assert '"><svg' not in source and "&quot;&gt;&lt;svg" in source


def test_draw_graph_of_a_report_says_to_call_draw():
    report = check_rule(lambda x: x * x, np.array([3.0]))
    with pytest.raises(TypeError, match=r"report\.draw\(\)"):
        draw_graph(report)
    assert isinstance(report, RuleReport)


# --------------------------------------------------------------------------
# The README's example runs and says what its comments say
# --------------------------------------------------------------------------
def test_readme_check_rule_example():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "check_rule" in b)
    namespace = {}
    exec(compile(block, "README check_rule example", "exec"), namespace)
    report = namespace["report"]
    assert (report.ok, report.input, report.index, report.expected, report.got) == (False, "x", (0,), 3.0, 2.0)
    for comment in re.findall(r"#\s*(.*)", block):
        if "2/3" in comment:
            assert "2/3" in report.hint
