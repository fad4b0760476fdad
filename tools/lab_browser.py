"""Drive the lab in JupyterLab in a real browser (Playwright and a Chromium found on this machine).

    python tools/lab_browser.py screenshots [--out images/screenshots]   # what `make screenshots` runs

The browser tests (tests/browser/) and `make screenshots` use this one driver:
- `LabServer` starts JupyterLab as `make lab` does (tools/lab.py) on a free localhost port with a random token,
  on a temporary copy of the notebooks (JupyterLab saves what it opens: the committed notebooks must not change),
  with its own artifacts folder; leaving the `with` block stops the server and its kernels, even after an error.
- `Lab` is one browser page on it: open a notebook, run all its cells from the Run menu, wait for them, save,
  run a scratch cell, list the pictures that did not load.

Playwright never downloads a browser here: it is given the Chromium found on the machine (`find_chromium`).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import nbformat

import lab  # tools/lab.py: how the lab starts JupyterLab (this folder is on the path, as a script or in the tests)

ROOT = lab.ROOT
NOTEBOOKS = ROOT / "notebooks"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
HOW_TO_INSTALL = "set CHROMIUM=/path/to/chromium, or install one: sudo apt-get install chromium on Debian and Ubuntu"
SERVER_START_TIMEOUT = 90  # seconds for JupyterLab to answer; it takes 3-10 s on an idle 2-core CPU
RUN_TIMEOUT = 300  # seconds for one notebook's "Run All Cells"
# what `make screenshots` writes into images/screenshots/
SCREENSHOTS = ("first_screen.png", "layer_picker.png", "resume_proof.png", "clinic_case.png")


def find_chromium() -> str | None:
    """The browser to drive: $CHROMIUM when set, otherwise the first of chromium, chromium-browser and
    google-chrome on the PATH; None when there is none."""
    named = os.environ.get("CHROMIUM")
    if named:
        return named if Path(named).is_file() or shutil.which(named) else None
    return next((found for found in map(shutil.which, BROWSERS) if found), None)


def _stop_with_parent() -> None:
    """In the server's process, before it starts (Linux): SIGTERM when the thread that started it ends (the tests and
    `make screenshots` start it from their main thread: when their process dies), so that a run killed from outside
    (a CI timeout, Ctrl-C twice) leaves no server behind; the server then stops its kernels itself. Elsewhere,
    nothing."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def why_no_chromium() -> str:
    """The one line that says why find_chromium found nothing, and what to do."""
    named = os.environ.get("CHROMIUM")
    if named:
        return f"CHROMIUM={named} is not a file or a command on the PATH ({HOW_TO_INSTALL})"
    return f"no Chromium found: none of {', '.join(BROWSERS)} is on the PATH ({HOW_TO_INSTALL})"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """JupyterLab on a temporary copy of the lab (its notebooks, and the folders they link to or run from) with an
    empty artifacts folder of its own. `prepare(name, nb)`, when given, rewrites each copied notebook first.
    `python`, when given, is the Python of another environment that runs the server and, through that
    environment's kernelspec, its kernels (tests/browser/test_second_python.py)."""

    def __init__(self, notebooks: list[str] | None = None, *, prepare=None, language: str = "en",
                 python: str | None = None):
        self.names = notebooks or [p.name for p in lab.notebooks(NOTEBOOKS)]
        self.prepare = prepare
        self.language = language  # "zh-CN": as `make lab LAB_LANG=zh-CN` starts it
        self.python = python or sys.executable
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.folder: Path | None = None
        self.process: subprocess.Popen | None = None
        self.pid: int | None = None  # the server's, which is also its session's: the kernels are in it
        self.log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LabServer:
        self.folder = Path(tempfile.mkdtemp(prefix="lab-browser-"))
        try:
            self._copy()
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _copy(self) -> None:
        served = self.folder / "notebooks"
        served.mkdir()
        for name in self.names:
            nb = nbformat.read(NOTEBOOKS / name, as_version=4)
            if self.prepare is not None:
                nb = self.prepare(name, nb) or nb
            nbformat.write(nb, served / name)
        for extra in ("scripts", "solutions"):
            shutil.copytree(NOTEBOOKS / extra, served / extra)
        for folder in ("docs", "images", "tools"):  # what the notebooks link to or run (../tools/predict.py)
            shutil.copytree(ROOT / folder, self.folder / folder, ignore=shutil.ignore_patterns("__pycache__"))
        (self.folder / "labutils").mkdir()  # predict.py's checksum module, where it finds it in the lab
        shutil.copy(ROOT / "labutils" / "sha256sums.py", self.folder / "labutils")

    def _start(self) -> None:
        env = lab.environment()
        env["LAB_ARTIFACTS_DIR"] = str(self.folder / "artifacts")
        env.pop("LAB_METRICS_DIR", None)
        env["JUPYTER_RUNTIME_DIR"] = str(self.folder / "runtime")  # its kernels' connection files: ours alone
        env["JUPYTERLAB_WORKSPACES_DIR"] = str(self.folder / "workspaces")  # no layout from the learner's lab
        env["JUPYTERLAB_SETTINGS_DIR"] = str(self.folder / "user-settings")  # nor their settings
        env["JUPYTER_DATA_DIR"] = str(self.folder / "data")  # saves sign notebooks into its database, not theirs
        # expose_app_in_browser: the page may open notebooks in the loaded app (Lab.open), as JupyterLab's own UI
        # tests do (Galata); `make lab` does not set it
        args = lab.command(self.folder, open_browser=False, language=self.language, python=self.python,
                           extra=[f"--port={self.port}", "--port-retries=0", "--ip=127.0.0.1",
                                  f"--IdentityProvider.token={self.token}", "--LabApp.expose_app_in_browser=True"])
        self.log = self.folder / "jupyterlab.log"
        with open(self.log, "wb") as log:
            # a session of its own, so that close() can stop the server and every kernel it started together
            self.process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            preexec_fn=_stop_with_parent)
        self.pid = self.process.pid
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode} before it answered:\n"
                                   f"{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=5) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"JupyterLab did not answer on port {self.port} within {SERVER_START_TIMEOUT} s:\n"
                           f"{self.log_tail()}")

    def printed_url(self) -> str:
        """The URL JupyterLab prints for the learner to open (as `make lab` does where there is no display), with
        the token it hides when the token was given to it."""
        found = re.search(r"http://127\.0\.0\.1:\d+(/\S*?)\?token=", self.log.read_text("utf-8", "replace"))
        assert found, f"JupyterLab printed no URL to open:\n{self.log_tail()}"
        return f"{self.url}{found.group(1)}?token={self.token}"

    def log_tail(self, lines: int = 40) -> str:
        if self.log is None or not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text("utf-8", "replace").splitlines()[-lines:])

    def api(self, path: str, method: str = "GET"):
        """Call the server's REST API (for the lab's own housekeeping, not what a test checks)."""
        data = b"{}" if method == "POST" else None
        request = urllib.request.Request(f"{self.url}/api/{path}?token={self.token}", method=method, data=data)
        with urllib.request.urlopen(request, timeout=30) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def kernels(self) -> list[dict]:
        return self.api("kernels")

    def end_sessions(self, path: str) -> None:
        """End the server's sessions of the notebook at `path` (relative to the served folder), with their kernels."""
        for session in self.api("sessions"):
            if session.get("path") == path:
                try:
                    self.api(f"sessions/{session['id']}", method="DELETE")
                except OSError:  # ended meanwhile
                    pass

    def shut_down_kernels(self, wait: bool = True) -> None:
        """Shut down every kernel this server runs, to free their memory and CPU; without `wait`, in the
        background (a kernel takes a second or two to go)."""
        def shut_down(ids):
            for kernel_id in ids:
                try:
                    self.api(f"kernels/{kernel_id}", method="DELETE")
                except OSError:  # gone already, or the server is stopping
                    pass

        ids = [kernel["id"] for kernel in self.kernels()]
        if wait:
            shut_down(ids)
        else:
            threading.Thread(target=shut_down, args=(ids,), daemon=True).start()

    def close(self) -> None:
        """Stop the server, which shuts its kernels down; then kill whatever it started that is still there (a
        kernel runs in a session of its own, so killing the server's does not reach it); remove the copy."""
        process, self.process = self.process, None
        if process is not None:
            started = descendants(process.pid)
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
            for pid in started + descendants(process.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def notebook(self, name: str) -> nbformat.NotebookNode:
        """The served copy of a notebook as JupyterLab last saved it."""
        return nbformat.read(self.folder / "notebooks" / name, as_version=4)


class Lab:
    """One Chromium page on a LabServer."""

    def __init__(self, server: LabServer, page):
        self.server, self.page = server, page

    def open(self, name: str) -> None:
        """Open a notebook alone and wait for an idle kernel: in the JupyterLab already loaded in the page, after
        closing what is open there (as the file browser opens one: 1.4 s of the browser's CPU, where loading the app
        again takes 4), or by loading JupyterLab on it (`reset` drops the tabs a previous page left open)."""
        if self.app_loaded():
            self.close_all()
            self.server.end_sessions(f"notebooks/{name}")  # a kernel left from an earlier opening may be stopping
            self.page.evaluate("async path => { await window.jupyterapp.commands.execute('docmanager:open', {path}); }",
                               f"notebooks/{name}")
        else:
            self.page.goto(f"{self.server.url}/lab/tree/notebooks/{name}?reset&token={self.server.token}")
        self.wait_for_notebook(name)

    def app_loaded(self) -> bool:
        """Whether the page shows this server's JupyterLab, loaded."""
        return self.page.url.startswith(self.server.url) and self.page.evaluate(
            "() => Boolean(window.jupyterapp && window.jupyterapp.shell)")

    def close_all(self) -> None:
        """Close every open document without saving it (the served folder is a throwaway copy) and without a dialog;
        their kernels keep running (LabServer.shut_down_kernels stops them)."""
        self.page.evaluate("""async () => { const app = window.jupyterapp;
            for (const widget of Array.from(app.shell.widgets('main'))) {
                if (widget.context && widget.context.model) { widget.context.model.dirty = false; } }
            await app.commands.execute('application:close-all'); }""")
        self.wait_until(lambda: self.page.locator(".jp-NotebookPanel").count() == 0, "every notebook closed")

    def current_tab(self) -> str:
        return self.page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel"
                                 ).first.inner_text().strip()

    def wait_for_notebook(self, name: str, timeout: float = 60) -> None:
        """Wait until the notebook `name` is the current tab, drawn, with its kernel started and idle."""
        self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").first.wait_for(
            timeout=timeout * 1000)
        self.wait_until(lambda: self.current_tab() == name, f"{name} as the current tab", timeout)
        deadline = time.monotonic() + timeout
        while self.kernel_name() in ("", "No Kernel", "Kernel") or self.kernel_status() != "idle":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: no idle kernel after {timeout:.0f} s (kernel {self.kernel_name()!r}, "
                                   f"status {self.kernel_status()!r})\n{self.server.log_tail()}")
            time.sleep(0.2)

    @property
    def notebook(self):
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")

    def kernel_name(self) -> str:
        return self.notebook.locator(".jp-KernelName, [data-jp-item-name='kernelName']").first.inner_text().strip()

    def kernel_status(self) -> str | None:
        return self.notebook.locator(".jp-Notebook-ExecutionIndicator").first.get_attribute("data-status")

    @staticmethod
    def wait_until(condition, what: str, timeout: float = 10) -> None:
        """Poll `condition` until it holds; AssertionError naming `what` when it still does not after `timeout`."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not there after {timeout:.0f} s")
            time.sleep(0.2)

    def output_with(self, selector: str):
        """The output area of the one cell whose output holds `selector` (a widget, say)."""
        found = self.notebook.locator(".jp-Cell-outputArea").filter(has=self.page.locator(selector))
        assert found.count() == 1, f"{found.count()} cells show {selector!r}, expected 1"
        found.scroll_into_view_if_needed()
        return found

    def menu(self, top: str, item: str) -> None:
        """Choose an item of the main menu, as a learner does."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(top)}$")).click()
        self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).first.click()

    def prompts(self) -> list[str]:
        """The code cells' prompts ("[ ]:", "[*]:", "[3]:"), read without making the page lay itself out again."""
        return self.page.evaluate("""() => Array.from(document.querySelectorAll(
            '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt'), p => p.textContent.trim())""")

    def run_all(self, timeout: float = RUN_TIMEOUT) -> float:
        """Edit → Clear Outputs of All Cells, then Run → Run All Cells; wait until no cell is queued or running and
        the kernel is idle. Returns the seconds the run took. (Cleared first, so that a cell that did not run cannot
        pass for one that did with the count the notebook was saved with.)"""
        self.menu("Edit", "Clear Outputs of All Cells")
        start = time.monotonic()
        self.menu("Run", "Run All Cells")
        deadline, quiet_since = start + timeout, None
        while True:
            time.sleep(0.25)
            prompts = self.prompts()
            busy = sum("*" in p for p in prompts)
            ran = sum(bool(re.search(r"\d", p)) for p in prompts)
            if ran and not busy and self.kernel_status() == "idle":
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= 1.0:  # idle for a second: not between two cells
                    return quiet_since - start
            else:
                quiet_since = None
            if time.monotonic() > deadline:
                raise TimeoutError(f"Run All Cells had not finished after {timeout:.0f} s ({ran} of {len(prompts)} "
                                   f"code cells done, {busy} queued or running)")

    def save(self) -> None:
        """File → Save Notebook, and wait until the file is written."""
        self.menu("File", "Save Notebook")
        tab = self.page.locator(".lm-TabBar-tab.lm-mod-current.jp-mod-dirty")
        tab.wait_for(state="detached", timeout=30_000)
        time.sleep(0.3)

    def press_save(self, name: str) -> bytes:
        """Ctrl+S, as a learner saves out of habit, on the open notebook `name`; wait until the server has written
        the file (even when nothing changed), and return its bytes."""
        path = self.server.folder / "notebooks" / name
        written = path.stat().st_mtime_ns
        self.notebook.locator(".jp-Cell").first.locator(".jp-InputPrompt, .jp-InputArea-prompt").first.click()
        self.page.keyboard.press("Control+s")
        self.wait_until(lambda: path.stat().st_mtime_ns != written, f"{name} written by Ctrl+S", timeout=30)
        time.sleep(0.3)
        return path.read_bytes()

    def cell(self, index: int):
        return self.notebook.locator(".jp-Cell").nth(index)

    def run_scratch(self, code: str, timeout: float = 120) -> str:
        """Add a code cell at the end, type `code` into it and run it with Shift+Enter; return its output text.
        The kernel handles it after whatever the page sent before (a button's click, say)."""
        cells = self.notebook.locator(".jp-Cell")
        last = cells.last
        last.evaluate("node => { node.dataset.labWasLast = '1'; }")
        tag = secrets.token_hex(4)
        new_cell = ("() => { const cell = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) "
                    ".jp-Cell.jp-mod-active'); if (!cell || cell.dataset.labWasLast || "
                    "!cell.classList.contains('jp-CodeCell') || cell.querySelector('.cm-content').textContent) "
                    f"return false; cell.dataset.labScratch = '{tag}'; return true; }}")
        for attempt in range(3):  # a page still settling can drop the first click or key press
            last.scroll_into_view_if_needed()
            self.page.wait_for_timeout(300)  # the cells above settle their heights once in view
            last.locator(".jp-InputPrompt").click()  # selects the cell without following a link in it
            self.page.keyboard.press("Escape")
            self.page.keyboard.press("b")  # a new code cell below, now the active one
            try:
                self.wait_until(lambda: self.page.evaluate(new_cell), "a new cell at the end", timeout=3)
                break
            except AssertionError:
                if attempt == 2:
                    raise
        new = self.notebook.locator(f".jp-Cell[data-lab-scratch='{tag}']")
        self.page.keyboard.press("Enter")
        self.page.keyboard.insert_text(code)
        self.page.keyboard.press("Shift+Enter")
        prompt = new.locator(".jp-InputPrompt")
        self.wait_until(lambda: re.fullmatch(r"\[\d+\]:", prompt.text_content().strip()), "the scratch cell's run",
                        timeout)
        return new.locator(".jp-OutputArea").text_content().strip()

    def broken_pictures(self) -> list[str]:
        """The pictures of the open notebook that did not load (their addresses): outputs and figures alike."""
        return broken_pictures(self.notebook)

    def hide_file_browser(self) -> None:
        """View → File Browser off, for a wider notebook (the item toggles it: nothing to do when it is hidden)."""
        if self.page.locator(".jp-FileBrowser").is_visible():
            self.menu("View", "File Browser")
        self.wait_until(lambda: not self.page.locator(".jp-FileBrowser").is_visible(), "the file browser hidden")


def broken_pictures(locator) -> list[str]:
    """The pictures in `locator` (a page, a notebook) that did not load: their addresses, cut to 120 characters."""
    return locator.locator("img").evaluate_all(
        "imgs => imgs.filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.src.slice(0, 120))")


def descendants(pid: int) -> list[int]:
    """The processes started by `pid`, and by them, ... (Linux, from /proc; elsewhere none are found)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pids: list[int]) -> list[int]:
    """Those of `pids` still running (Linux, from /proc); a zombie has stopped, only its parent's wait is missing."""
    running = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.append(pid)
    return running


def executed_problems(nb: nbformat.NotebookNode) -> list[str]:
    """What went wrong in a notebook run, read from the file JupyterLab saved: error outputs, and code cells that
    did not run (Run All stops at the first error)."""
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                problems.append(f"cell {index} ({cell.get('id')}) raised {output.get('ename')}: "
                                f"{output.get('evalue')}")
        if cell.get("execution_count") is None:
            problems.append(f"cell {index} ({cell.get('id')}) did not run")
    return problems


def launch(playwright, chromium: str):
    """A headless Chromium from this machine (Playwright downloads none)."""
    return playwright.chromium.launch(executable_path=chromium, headless=True,
                                      args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])


@contextlib.contextmanager
def watched_page(browser):
    """A new page, 1400 × 1000, in a context of its own; a JavaScript error in it fails the block. The errors so far
    are `page.js_errors`, for a test that shares the page to check its own."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    try:
        yield page
        assert not page.js_errors, f"JavaScript errors in the page: {page.js_errors}"
    finally:
        context.close()


@contextlib.contextmanager
def lab_session(chromium: str, notebooks: list[str] | None = None, **server_options):
    """A LabServer on `notebooks` (with `server_options`) and a watched page on it in a headless Chromium: a `Lab`.
    On leaving, the kernels, the browser and the server stop, and AssertionError if a process they started is
    still running."""
    from playwright.sync_api import sync_playwright

    with LabServer(notebooks, **server_options) as server, sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        try:
            with watched_page(browser) as page:
                yield Lab(server, page)
        finally:
            server.shut_down_kernels(wait=False)
            browser.close()
        started = [server.pid, *descendants(server.pid)]
    assert alive(started) == [], "the server or a kernel outlived the session"


def clip_cells(lab: Lab, first: str, last: str, path: Path) -> None:
    """Screenshot the cells from the one with id `first` to the one with id `last`, as they are drawn."""
    nb = lab.server.notebook(lab.current_tab())
    ids = [cell.get("id") for cell in nb.cells]
    top, bottom = lab.cell(ids.index(first)), lab.cell(ids.index(last))
    for _ in range(3):  # cells drawn for the first time change height, and with them where `top` is
        top.evaluate("node => node.scrollIntoView({block: 'start'})")
        lab.page.wait_for_timeout(600)
    a, b = top.bounding_box(), bottom.bounding_box()
    area = lab.notebook.locator(".jp-Notebook").bounding_box()
    lab.page.screenshot(path=str(path), clip={"x": area["x"], "y": a["y"] - 6, "width": area["width"],
                                              "height": min(b["y"] + b["height"], area["y"] + area["height"]) -
                                              a["y"] + 12})


def screenshots(out: Path, chromium: str) -> list[Path]:
    """What `make screenshots` writes: the lab's first screen (the file browser with the English notebooks, as
    `make lab` shows them: the Chinese ones are served too, and hidden), the layer picker after a click (05 run in
    full with its defaults), the resume proof in 06 and a clinic case in 09 (both as committed)."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    shot = {name: out / name for name in SCREENSHOTS}
    both = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    with LabServer(both) as server, sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            lab = Lab(server, page)
            page.goto(server.printed_url())
            lab.wait_for_notebook("00_welcome.ipynb")
            page.wait_for_timeout(1500)
            page.screenshot(path=str(shot["first_screen.png"]))

            page.set_viewport_size({"width": 1400, "height": 2400})  # room for whole cells, outputs included
            lab.open("06_resume_training.ipynb")
            lab.hide_file_browser()
            clip_cells(lab, "c16", "c18", shot["resume_proof.png"])
            lab.open("09_troubleshooting_clinic.ipynb")
            lab.hide_file_browser()
            clip_cells(lab, "c10", "c14", shot["clinic_case.png"])
            lab.close_all()
            server.shut_down_kernels()

            lab.open("05_partial_loading.ipynb")
            lab.run_all()
            picker = lab.output_with("button.jupyter-button")
            picker.locator(".widget-checkbox", has_text="fc1").first.locator("input").check()
            picker.locator("button.jupyter-button").click()
            assert lab.run_scratch("print(len(picker.results))") == "4", "the picker's button did not add a run"
            lab.page.wait_for_timeout(1000)
            picker.scroll_into_view_if_needed()
            picker.screenshot(path=str(shot["layer_picker.png"]))
        finally:
            browser.close()
    return list(shot.values())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["screenshots"])
    parser.add_argument("--out", type=Path, default=ROOT / "images" / "screenshots")
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        sys.exit(f"make screenshots: {why_no_chromium()}")
    for path in screenshots(args.out, chromium):
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()
