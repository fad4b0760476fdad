"""The lab as learners meet it: JupyterLab in a real Chromium, driven by Playwright (tools/lab_browser.py).

One JupyterLab for the module, started as `make lab` starts it, on a temporary copy of the lab. Every notebook is
opened and must draw every picture (its outputs and the `../images/` figures its text shows) without a JavaScript
error and without being marked changed. The notebooks with widgets (01, 02, 05) and the Chinese 00 are then run with
Run → Run All Cells and saved: the saved file must show every code cell run and no error; and their interactive
parts are used as a learner uses them: 01's layer explorer, 05's layer picker, 02's progress bar. The notebooks
run with the regression suite's small parameter sets (tests/regression/params.yaml), injected as papermill does;
nbval runs them with their defaults.

02, 01 and the Chinese 00 run with the sets of the fast chain "02 to 00", in its order, on the server's empty
artifacts folder: these runs are that chain's execution in `make test` (tests/papermill_chains.py), and the chain's
checks are made here on what they recorded (without a Chromium, tests/test_papermill_02_to_00.py runs it instead).

`make browser` (LAB_BROWSER_RUN_ALL=1) runs every notebook from the Run menu, not only those four: about
6 minutes on 2 cores, which `make test` cannot spend (it runs them all through nbval).

Skipped, with one line saying why and how to get one, where no Chromium is found (tools/lab_browser.py).
"""
from __future__ import annotations

import json
import os
import re
import shutil

import lab  # tools/ is on the tests' path (pyproject.toml)
import lab_browser
import pytest

CHROMIUM = lab_browser.find_chromium()
if CHROMIUM is None:
    pytest.skip(f"browser tests: {lab_browser.why_no_chromium()}", allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402

from papermill_chains import CHAINS, CHECKS_02_TO_00, Made, browser_runs_the_chain  # noqa: E402
from regression.regress import load_plan  # noqa: E402

RUN_ALL = os.environ.get("LAB_BROWSER_RUN_ALL") == "1"
# Each notebook with the parameter set it runs with here; 02 first, so that the others find its small Net in the
# server's cache, as in a classroom. 10 runs as shipped (its steps wait for the learner's code).
PLAN = {"02_train_mnist": "02-small", "00_welcome": "00-seed-1", "01_define_net": "01-small",
        "00_welcome.zh-CN": "00-seed-1", "03_saving": "03-small", "04_loading": "04-small",
        "05_partial_loading": "05-small", "06_resume_training": "06-stop-before-first-checkpoint",
        "07_deploy_and_share": "07-small", "08_large_models": "08-small-three-processes",
        "09_troubleshooting_clinic": "09-small", "10_language_model": "10-small", "11_frameworks": "11-small",
        "12_capstone_project": None}
CHAIN = {run.path.stem: run for run in CHAINS["02 to 00"]}  # the chain's runs, by the notebook each runs
STARTED: set[str] = set()  # the chain's runs begun here, and
MADE: dict[str, dict] = {}  # {run id: metrics} of those that ended well


def CHAIN_ARTIFACTS(server):  # noqa: N802
    """The artifacts folder as the chain's last run left it (copied then: later notebooks share the server's)."""
    return server.folder / "artifacts-after-the-chain"


def with_parameters(name: str, nb):
    """Inject the notebook's small parameter set after its `parameters` cell, as papermill does."""
    from papermill.parameterize import parameterize_notebook

    run_id = PLAN[name.removesuffix(".ipynb")]
    if run_id is None:
        return nb
    parameters = {run.id: run.parameters for run in load_plan()[0]}[run_id]
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
    nb.metadata.setdefault("papermill", {})
    return parameterize_notebook(nb, parameters, kernel_name=lab.KERNEL_NAME, language="python")


@pytest.fixture(scope="module")
def server():
    with lab_browser.LabServer([f"{name}.ipynb" for name in PLAN], prepare=with_parameters) as running:
        yield running
        started = [running.pid, *lab_browser.descendants(running.pid)]
    assert lab_browser.alive(started) == [], "the server or a kernel outlived the module"


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = lab_browser.launch(playwright, CHROMIUM)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def page(browser):
    """One page for the module: JupyterLab is loaded once, and each test opens its notebooks in it (Lab.open)."""
    with lab_browser.watched_page(browser) as page:
        yield page


@pytest.fixture
def ui(page, server):
    """The lab in the module's page; a JavaScript error during the test fails it. Afterwards the notebooks it opened
    are closed and their kernels shut down."""
    seen = len(page.js_errors)
    lab_ui = lab_browser.Lab(server, page)
    try:
        yield lab_ui
        assert not page.js_errors[seen:], f"JavaScript errors in the page: {page.js_errors[seen:]}"
    finally:
        del page.js_errors[seen:]  # reported once, by this test
        try:
            if page.locator(".jp-Dialog").count():
                raise RuntimeError("a dialog is open")
            if lab_ui.app_loaded():
                lab_ui.close_all()
        except Exception:  # a test that failed midway: the next one loads JupyterLab afresh, as on a new page
            page.goto("about:blank")
        finally:
            server.shut_down_kernels(wait=False)


def test_first_screen(ui, server):
    """The URL `make lab` prints opens notebook 00 with the lab's kernel, and no prompt about Jupyter news. 00 is not
    marked changed, and saved with Ctrl+S (a learner's habit) its file keeps every byte: `git status` shows nothing
    and the next `git pull` cannot conflict (tools/lab_server.py; on every Python, tests/test_lab_server.py)."""
    served = (server.folder / "notebooks" / "00_welcome.ipynb").read_bytes()
    ui.page.goto(server.printed_url())
    ui.wait_for_notebook("00_welcome.ipynb")
    assert ui.current_tab() == "00_welcome.ipynb"
    assert ui.kernel_name() == lab.KERNEL_DISPLAY_NAME
    assert ui.page.locator(".lm-TabBar-tab.lm-mod-current.jp-mod-dirty").count() == 0, "opening 00 changed it"
    assert ui.press_save("00_welcome.ipynb") == served, "00, only opened, then saved with Ctrl+S, changed"
    ui.page.wait_for_timeout(1000)  # the news question, when it is asked, comes a moment after the page
    toasts = " ".join(ui.page.locator(".Toastify__toast, .jp-Notification-Toast").all_inner_texts())
    assert "news" not in toasts.lower(), f"JupyterLab asks about news: {toasts}"


def run_notebook(ui, server, name: str) -> None:
    run = CHAIN.get(name.removesuffix(".ipynb"))
    if run is not None:
        STARTED.add(run.id)
    if ui.current_tab() != name:
        ui.open(name)
    ui.run_all()
    ui.save()
    problems = lab_browser.executed_problems(server.notebook(name))
    assert not problems, f"{name} in JupyterLab:\n  " + "\n  ".join(problems)
    if run is not None:  # what it recorded, for the chain's checks below
        MADE[run.id] = json.loads((server.folder / "artifacts" / "metrics" / f"{run.notebook}.json").read_text())
        if MADE.keys() >= {r.id for r in CHAIN.values()}:  # its last run: keep the folder as the chain left it
            shutil.copytree(server.folder / "artifacts", CHAIN_ARTIFACTS(server), dirs_exist_ok=True)


@pytest.mark.parametrize("name", list(PLAN))
def test_notebook_in_jupyterlab(ui, server, name):
    """Opened, every picture drawn; the notebooks with widgets and the chain's (every one with `make browser`) run
    from the Run menu, and their widgets used."""
    ui.open(f"{name}.ipynb")
    assert ui.page.locator(".lm-TabBar-tab.lm-mod-current.jp-mod-dirty").count() == 0, f"opening {name} changed it"
    try:
        ui.wait_until(lambda: not ui.broken_pictures(), "every picture drawn")
    except AssertionError:
        raise AssertionError(f"{name}: pictures not drawn: {ui.broken_pictures()}") from None
    if name in RUN_IN_MAKE_TEST or RUN_ALL:
        run_notebook(ui, server, f"{name}.ipynb")
        if name in INTERACTIVE:
            INTERACTIVE[name](ui)


def test_the_picture_check_sees_broken_pictures(ui, server):
    """01's ../images figure at the address it had when `make lab` served only notebooks/ (so notebooks/images/,
    which does not exist) is a broken picture, and the check above sees it."""
    ui.page.goto(f"{server.url}/lab/tree/notebooks/01_define_net.ipynb?reset&token={server.token}")
    ui.wait_for_notebook("01_define_net.ipynb")
    figure = ui.notebook.locator('img[src*="/files/images/state_dict.png"]')
    ui.wait_until(lambda: figure.count() == 1 and not ui.broken_pictures(), "01 drawn, its figure included")
    ui.page.evaluate("""() => document.querySelectorAll('.jp-NotebookPanel img[src*="state_dict.png"]').forEach(
        img => { img.src = img.src.replace('/files/images/', '/files/notebooks/images/'); })""")
    ui.wait_until(lambda: any("state_dict.png" in src for src in ui.broken_pictures()), "a broken picture seen")


def explorer_works(ui) -> None:
    """01: choosing another entry in the layer explorer changes its statistics and its picture to that entry."""
    explorer = ui.output_with(".widget-dropdown select")
    select = explorer.locator(".widget-dropdown select")
    text, picture = explorer.locator(".widget-html"), explorer.locator(".widget-image img, img.widget-image")
    assert text.text_content().startswith("conv1.weight: shape (6, 1, 5, 5)")
    before = picture.get_attribute("src")
    select.select_option("fc1.weight")
    ui.wait_until(lambda: text.text_content().startswith("fc1.weight: shape (120, 400)"), "the explorer's text")
    ui.wait_until(lambda: picture.get_attribute("src") != before, "the explorer's picture")
    select.select_option("fc3.bias")
    ui.wait_until(lambda: text.text_content().startswith("fc3.bias: shape (10,)"), "the explorer's text")


def picker_works(ui) -> None:
    """05: ticking a box and pressing the button adds a run to `picker.results` and a bar to the chart."""
    picker = ui.output_with("button.jupyter-button")
    runs = int(ui.run_scratch("print(len(picker.results))"))
    chart = picker.locator(".widget-image img, img.widget-image")
    before = chart.get_attribute("src")
    box = picker.locator(".widget-checkbox", has_text="fc1").first.locator("input")
    box.set_checked(not box.is_checked())
    picker.locator("button.jupyter-button").click()
    # the kernel runs this after the click's fine-tuning: no need to guess how long that takes
    after = ui.run_scratch("print(len(picker.results), picker.results[-1]['load'])")
    expected = f"{runs + 1} {['conv1', 'conv2', 'fc1'] if box.is_checked() else ['conv1', 'conv2']}"
    assert after == expected, f"after the click, picker.results has {after!r}, expected {expected!r}"
    ui.wait_until(lambda: chart.get_attribute("src") != before, "a new bar in the picker's chart")


def progress_is_a_widget(ui) -> None:
    """02: the training progress bar is drawn as a widget (tqdm.auto in JupyterLab), full at the end, and not
    printed as text."""
    output = ui.output_with(".widget-hprogress")
    assert re.search(r"training:\s*100%", output.text_content()), output.text_content()
    bar = output.locator(".widget-hprogress .progress-bar")
    assert bar.get_attribute("style") and "width: 100%" in bar.get_attribute("style"), bar.get_attribute("style")
    as_text = output.locator("[data-mime-type='application/vnd.jupyter.stderr']")
    assert as_text.count() == 0, f"the cell also prints a text progress bar: {as_text.all_inner_texts()}"


def picker_works_and_its_check_can_fail(ui) -> None:
    """05: the picker check passes; then, with the button's handler removed in the served copy (a cell added after
    the picker, as a learner would add one), the same check fails on what the click should have done."""
    picker_works(ui)
    ui.run_scratch("picker.button._click_handlers.callbacks.clear()  # the button now does nothing")
    with pytest.raises(AssertionError, match="after the click, picker.results has"):
        picker_works(ui)


INTERACTIVE = {"01_define_net": explorer_works, "02_train_mnist": progress_is_a_widget,
               "05_partial_loading": picker_works_and_its_check_can_fail}
RUN_IN_MAKE_TEST = {*INTERACTIVE, *CHAIN}  # with the chain: 02, 01 and the Chinese 00 (a run of 7 s)


@pytest.mark.parametrize("check", CHECKS_02_TO_00, ids=lambda check: check.__name__.removeprefix("the_"))
def test_the_chain_02_to_00_run_here(check, server, request):
    """The chain's checks (tests/papermill_chains.py) on what its three runs above recorded and saved."""
    if not browser_runs_the_chain(request.session.items):
        pytest.skip("the chain's runs are not all selected here: tests/test_papermill_02_to_00.py runs and checks it")
    failed = [run.id for run in CHAIN.values() if run.id in STARTED and run.id not in MADE]
    if failed:
        pytest.skip(f"{', '.join(failed)} failed in JupyterLab (reported above): nothing to check")
    missing = [run.id for run in CHAIN.values() if run.id not in MADE]
    assert not missing, (f"{', '.join(missing)} did not run in this process: the chain's runs and checks must run on "
                         f"one worker (make test passes --dist loadfile)")
    check(Made(dict(MADE), CHAIN_ARTIFACTS(server),
               {run.id: server.folder / "notebooks" / run.path.name for run in CHAIN.values()}))
