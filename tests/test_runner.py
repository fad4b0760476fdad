"""labutils.runner: a busy cell and a lost reply both stop a headless run in time; the lab's widgets lose none."""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import nbclient.output_widget
import nbformat
import papermill
import pytest

from labutils.paths import REPO_ROOT
from labutils.runner import CELL_TIMEOUT, CellTimeout, MissedReply, SharedKernel, main, rerun_in_place, run_notebook


def _notebook(path, *sources: str):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture
def client_answers(monkeypatch) -> list:
    """The messages an Output widget makes the client send to the kernel (on the shell channel), in a list."""
    widget = nbclient.output_widget.OutputWidget
    sent, publish = [], widget._publish_msg

    def counted_publish(self, *args, **kwargs):
        sent.append(args[0] if args else kwargs.get("msg_type"))
        return publish(self, *args, **kwargs)

    monkeypatch.setattr(widget, "_publish_msg", counted_publish)
    return sent


def test_an_output_widget_makes_the_client_miss_a_reply_and_the_run_says_so(tmp_path, monkeypatch, client_answers):
    """The lost reply of jupyter/nbclient#312, brought about in the order that loses it, on every run.

    The reply is lost when it reaches the client's shell socket while the client is still handling an output for
    the Output widget, before the client sends the widget's new state on that socket (the send swallows the
    socket's "message arrived" signal; see labutils.widgets). A busy CPU makes that order likely; here a FIFO
    makes it certain. The cell ends, and the kernel sends its reply, only once the client's output handler has
    written to the FIFO; the handler then waits until the reply is there (select on the socket's descriptor,
    which reads nothing from the socket and leaves the signal to the send; nothing else comes to that socket
    during the cell, so the descriptor turns readable for the reply) and only then handles the output.
    """
    handshake = tmp_path / "handshake"
    os.mkfifo(handshake)
    output, waited = nbclient.output_widget.OutputWidget.output, []

    def output_once_the_reply_is_waiting(self, *args, **kwargs):
        shell = self.kernel_client.shell_channel.socket.FD
        quiet = not select.select([shell], [], [], 0)[0]  # the kernel is still in the cell: nothing has come
        fifo = os.open(handshake, os.O_WRONLY | os.O_NONBLOCK)  # the kernel holds it open: this never blocks
        try:
            os.write(fifo, b"!")
        finally:
            os.close(fifo)
        waited.append((quiet, bool(select.select([shell], [], [], 60)[0])))
        return output(self, *args, **kwargs)

    monkeypatch.setattr(nbclient.output_widget.OutputWidget, "output", output_once_the_reply_is_waiting)
    path = _notebook(tmp_path / "output_widget.ipynb", "import ipywidgets\nout = ipywidgets.Output()\nout",
                     f"import os\nhandshake = os.open({str(handshake)!r}, os.O_RDWR)  # open before the output\n"
                     "with out:\n    print('captured', flush=True)\n"
                     "os.read(handshake, 1)  # the cell ends once the client is handling the output",
                     "print('after the lost reply')")
    start = time.perf_counter()
    with pytest.raises(MissedReply, match=r"output_widget.ipynb: code cell 2 \(cell 1\) returned only after its "
                                          r"whole timeout") as caught:
        try:
            run_notebook(path, tmp_path / "out.ipynb", timeout=5)  # waited in full (8 s was for a client that slept 3)
        finally:  # the order the test sets up, checked first: a failure then says which part did not hold
            assert waited == [(True, True)], f"(socket quiet at the output, reply there before the answer): {waited}"
    assert caught.value.cell == 1 and caught.value.notebook == "output_widget.ipynb"
    assert client_answers, "the client answered the Output widget on the shell channel: the cause of the lost reply"
    assert time.perf_counter() - start < 60, "the run stopped at the cell's timeout, not later"


def test_the_lab_widgets_never_make_a_client_answer(tmp_path, client_answers):
    path = _notebook(
        tmp_path / "widgets.ipynb",
        "import labutils\nfrom labutils.widgets import LayerExplorer, LayerPicker",
        "explorer = LayerExplorer(labutils.Net(), 'conv1.weight')\nexplorer",
        "explorer.dropdown.value = 'fc1.weight'\nexplorer.select('fc3.bias')['shape']",
        "picker = LayerPicker(['conv1', 'conv2'], lambda load, freeze: 0.5 + 0.1 * len(load), presets=[([], [])],\n"
        "                     load=['conv1'])\npicker",
        "picker.button.click()\nassert [r['accuracy'] for r in picker.results] == [0.5, 0.6]",
        "assert explorer.picture.value[:4] == picker.picture.value[:4] == b'\\x89PNG'")
    nb = run_notebook(path, tmp_path / "out.ipynb", timeout=20)
    assert client_answers == [], "no message went from the client to the kernel"
    assert "(1, 10)" not in str(nb.cells[2].outputs) and "(10,)" in str(nb.cells[2].outputs)


def test_a_busy_cell_stops_at_its_timeout_with_its_number(tmp_path):
    path = _notebook(tmp_path / "busy.ipynb", "x = 1", "import time\ntime.sleep(600)", "x = 2", "x = 3")
    start = time.perf_counter()
    with pytest.raises(CellTimeout, match=r"busy.ipynb: code cell 2 \(cell 1\) was still running after 2 s"):
        run_notebook(path, tmp_path / "out.ipynb", timeout=2)
    assert time.perf_counter() - start < 60


@pytest.mark.parametrize("timeout", [0, None, -1])
def test_a_run_needs_a_timeout(tmp_path, timeout):
    with pytest.raises(ValueError, match="a notebook run needs a timeout"):
        run_notebook(_notebook(tmp_path / "a.ipynb", "1"), tmp_path / "out.ipynb", timeout=timeout)


def test_rerun_in_place_keeps_outputs_and_no_run_metadata(tmp_path):
    path = _notebook(tmp_path / "ok.ipynb", "print(6 * 7)")
    rerun_in_place(path, timeout=60)
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].outputs[0].text == "42\n" and nb.cells[0].execution_count == 1
    assert "papermill" not in nb.metadata and set(nb.cells[0].metadata) <= {"execution"}
    # the kernel wrote its language_info; the run keeps it without the Python's version, as JupyterLab saves it
    assert nb.metadata.language_info.name == "python" and "version" not in nb.metadata.language_info
    assert [p.name for p in tmp_path.iterdir()] == ["ok.ipynb"], "no temporary left beside it"


def test_a_failed_rerun_leaves_the_notebook_as_it_was(tmp_path, capsys):
    path = _notebook(tmp_path / "bad.ipynb", "print('fine')", "raise ValueError('broken on purpose')")
    before = path.read_bytes()
    assert main([str(path), "--timeout", "60"]) == 1
    err = capsys.readouterr().err
    assert "bad.ipynb FAILED and was left as it was: cell 1 raised ValueError: broken on purpose" in err
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["bad.ipynb"]
    with pytest.raises(papermill.PapermillExecutionError):
        run_notebook(path, tmp_path / "out.ipynb", timeout=60)


def _start_pytest(tmp_path, *args: str) -> subprocess.Popen:
    """Start pytest in a subprocess with the lab's settings (pyproject.toml), from `tmp_path`."""
    return subprocess.Popen([sys.executable, "-m", "pytest", "-c", str(REPO_ROOT / "pyproject.toml"),
                             "--rootdir", str(tmp_path), "-p", "no:randomly", *args], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finished(process: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        stdout, stderr = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_the_suite_bounds_every_test_and_every_cell():
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert int(config["timeout"]) <= 1200, "pytest-timeout: every test ends within 20 minutes"
    assert f"--nbval-cell-timeout={CELL_TIMEOUT}" in config["addopts"], "nbval's own default is 2000 s per cell"


def _learners_kernelspec(folder, environment) -> Path:
    """A learner's own "python3" kernelspec, found before the lab's, that starts another Python (here: none)."""
    other = folder / "other-python"
    other.write_text("#!/bin/sh\necho 'another Python, without the lab' >&2\nexit 3\n")
    other.chmod(0o755)
    spec = folder / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": [str(other), "-m", "ipykernel_launcher", "-f",
                                                           "{connection_file}"],
                                                  "display_name": "Another Python", "language": "python"}))
    environment.setenv("JUPYTER_PATH", str(folder / "jupyter"))  # as ~/.local/share/jupyter or JUPYTER_PATH
    from jupyter_client.kernelspec import KernelSpecManager
    assert KernelSpecManager().get_kernel_spec("python3").argv[0] == str(other), "jupyter_client would start it"
    return other


@pytest.fixture
def learners_kernelspec(tmp_path, monkeypatch):
    return _learners_kernelspec(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def one_session(tmp_path_factory):
    """One pytest run with the lab's settings, where a learner has their own "python3" kernelspec, of a test that
    hangs, a notebook cell that hangs and a notebook that checks which Python runs it; and its time. Beside it, at
    the same time (it spends most of its time waiting out the two timeouts), the same notebook run by nbval without
    --nbval-current-env."""
    folder = tmp_path_factory.mktemp("session")
    (folder / "test_hangs.py").write_text("import time\n\nimport pytest\n\n\n@pytest.mark.timeout(1)\n"
                                          "def test_hangs():\n    time.sleep(600)\n")
    _notebook(folder / "hangs.ipynb", "import time\ntime.sleep(600)")
    _notebook(folder / "which.ipynb", f"import sys\nassert sys.executable == {sys.executable!r}, sys.executable")
    with pytest.MonkeyPatch.context() as environment:
        _learners_kernelspec(folder, environment)
        start = time.perf_counter()
        running = _start_pytest(folder, "-rA", "--nbval-cell-timeout=3", "test_hangs.py", "hangs.ipynb",
                                "which.ipynb")
        without = _start_pytest(folder, "-o", "addopts=--nbval-lax -p no:cacheprovider", "which.ipynb")
        try:
            done = _finished(running)
            seconds = time.perf_counter() - start
        finally:
            without = _finished(without)
    assert seconds < 120, "the hung test and the hung cell stopped at their timeouts, not later"
    return done, without


def test_pytest_timeout_stops_a_hung_test(one_session):
    done, _ = one_session
    assert "FAILED test_hangs.py::test_hangs - Failed: Timeout" in done.stdout, done.stdout[-2000:]


def test_nbval_stops_a_hung_cell(one_session):
    done, _ = one_session
    assert "Timeout of 3 seconds exceeded executing cell" in done.stdout, done.stdout[-2000:]
    assert "FAILED hangs.ipynb::Cell 0" in done.stdout


def test_papermill_runs_in_the_labs_python_whatever_kernelspec_the_learner_has(tmp_path, learners_kernelspec):
    path = _notebook(tmp_path / "which.ipynb", "import sys\nprint(sys.executable)")
    nb = run_notebook(path, tmp_path / "out.ipynb", timeout=120)
    assert nb.cells[0].outputs[0]["text"].strip() == sys.executable


def test_nbval_runs_in_the_labs_python_whatever_kernelspec_the_learner_has(one_session):
    done, without = one_session
    assert "PASSED which.ipynb::Cell 0" in done.stdout and "2 failed, 1 passed" in done.stdout, done.stdout[-2000:]
    assert without.returncode == 1 and "died before replying" in without.stdout, \
        "without --nbval-current-env nbval starts the learner's kernelspec"


# --- SharedKernel: the tests' papermill chains run their notebooks in one kernel ---------------------------------

def test_a_shared_kernel_gives_each_notebook_an_empty_namespace_and_the_current_environment(tmp_path, monkeypatch):
    first = _notebook(tmp_path / "first.ipynb", "import os\nleft_behind = os.getpid()\nprint(left_behind)",
                      "os.chdir('/')")
    second = _notebook(tmp_path / "second.ipynb",
                       "import os\nprint(os.getpid(), os.getcwd(), *map(os.environ.get, ['LAB_SET', 'LAB_GONE']))",
                       "left_behind")
    monkeypatch.setenv("LAB_GONE", "set when the kernel started")
    with SharedKernel(tmp_path) as kernel:
        ran = run_notebook(first, tmp_path / "out1.ipynb", kernel=kernel)
        monkeypatch.setenv("LAB_SET", "set later")
        monkeypatch.delenv("LAB_GONE")
        with pytest.raises(papermill.PapermillExecutionError) as caught:
            run_notebook(second, tmp_path / "out2.ipynb", kernel=kernel)
        assert caught.value.ename == "NameError" and "left_behind" in caught.value.evalue, "the namespace was reset"
        code = [cell for cell in nbformat.read(tmp_path / "out2.ipynb", as_version=4).cells if cell.cell_type == "code"]
        printed = code[0].outputs[0]["text"].split(" ", 2)
        assert printed == [ran.cells[0].outputs[0]["text"].strip(), str(tmp_path), "set later None\n"]
        assert kernel.km is not None, "a cell that raised leaves the kernel to the next notebook"
        process = kernel.km.provisioner.process
    assert kernel.km is None and process.poll() is not None, "closing the SharedKernel stopped its kernel"


def test_after_a_timeout_a_shared_kernel_starts_a_new_kernel(tmp_path):
    hung = _notebook(tmp_path / "hung.ipynb", "import time\ntime.sleep(60)")
    quick = _notebook(tmp_path / "quick.ipynb", "import os\nprint(os.getpid())")
    with SharedKernel(tmp_path) as kernel:
        run_notebook(quick, tmp_path / "out.ipynb", kernel=kernel)
        first = kernel.km.provisioner.process
        with pytest.raises(CellTimeout, match="hung.ipynb"):
            run_notebook(hung, tmp_path / "out.ipynb", kernel=kernel, timeout=2)
        assert kernel.km is None and first.poll() is not None, "the kernel that hung was stopped"
        ran = run_notebook(quick, tmp_path / "out.ipynb", kernel=kernel)
        assert ran.cells[0].outputs[0]["text"].strip() == str(kernel.km.provisioner.process.pid) != str(first.pid)


def test_a_shared_kernel_runs_notebooks_of_its_own_folder_only(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    path = _notebook(other / "elsewhere.ipynb", "1")
    with SharedKernel(tmp_path) as kernel, pytest.raises(ValueError, match="elsewhere.ipynb runs in .*other, "
                                                                           "the shared kernel in"):
        run_notebook(path, tmp_path / "out.ipynb", kernel=kernel)
    assert run_notebook(path, tmp_path / "out.ipynb", cwd=tmp_path, kernel=None).cells[0].outputs


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts this process's descriptors in /proc (Linux)")
def test_a_shared_kernel_leaves_no_client_sockets_open(tmp_path):
    """papermill opens a kernel client per notebook and keeps it when the kernel is not its own: 18 descriptors a
    notebook until the SharedKernel closed them."""
    path = _notebook(tmp_path / "quick.ipynb", "1 + 1")
    failing = _notebook(tmp_path / "fails.ipynb", "1 / 0")
    with SharedKernel(tmp_path) as kernel:
        run_notebook(path, tmp_path / "out.ipynb", kernel=kernel)  # the first opens what every later one shares
        before = len(os.listdir("/proc/self/fd"))
        for _ in range(3):
            run_notebook(path, tmp_path / "out.ipynb", kernel=kernel)
            with pytest.raises(papermill.PapermillExecutionError):
                run_notebook(failing, tmp_path / "out.ipynb", kernel=kernel)
        assert len(os.listdir("/proc/self/fd")) <= before


def test_the_widget_stress_benchmark_finds_a_small_set_for_each_of_its_notebooks():
    """make stress must not break when params.yaml changes which sets make test runs."""
    import runpy

    stress = runpy.run_path(str(REPO_ROOT / "benchmarks" / "widget_stress.py"), run_name="widget_stress")
    plans = {key: stress["fast_parameters"](name) for key, name in stress["NOTEBOOKS"].items()}
    assert all(plan.get("EPOCHS") == 1 for plan in plans.values()) and plans["05"]["REPEATS"] == 1, plans
