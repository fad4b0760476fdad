"""Run notebooks headless, as the tests, `make regress` and `make notebooks` do, with timeouts that fire.

    python -m labutils.runner [--timeout SECONDS] NOTEBOOK ...   # re-execute in place (make notebooks)

Every cell gets `timeout` seconds. A busy cell that runs longer stops the run (`CellTimeout`). A client can
also lose a reply the kernel did send (see labutils.widgets: jupyter/nbclient#312); nbclient then waits the
whole timeout, finds the reply in its last look at the socket and carries on as if nothing happened. A cell
that took its whole timeout is therefore reported too (`MissedReply`), so a hang costs minutes, never a CI run.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from .paths import display_path

CELL_TIMEOUT = 600  # seconds; the slowest cell takes 35 s on an idle 2-core CPU and over 300 s when two suites share it
MISSED_REPLY_SHARE = 0.98  # a cell that returned after this share of its timeout waited for a lost reply


class NotebookRunError(RuntimeError):
    """A notebook did not run to its end in time; the message names the notebook and the cell."""

    def __init__(self, message: str, notebook: str = "", cell: int | None = None):
        super().__init__(message)
        self.notebook, self.cell = notebook, cell

    def __reduce__(self):
        return type(self), (str(self), self.notebook, self.cell)


class CellTimeout(NotebookRunError):
    """A cell was still running when its timeout fired."""


class MissedReply(NotebookRunError):
    """A cell's reply came only when the timeout made the client look again: the client had missed it."""


def _this_python_kernel_manager():
    """A kernel manager for which "python3" always means this Python (the lab's .venv or conda environment).

    jupyter_client looks kernel names up in the learner's own folders too (~/.local/share/jupyter/kernels,
    JUPYTER_PATH), where a "python3" kernelspec may start another Python without the lab's packages or pins.
    nbval's --nbval-current-env does the same for `make test`'s notebooks.
    """
    import ipykernel.kernelspec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class ThisPythonSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            if kernel_name == "python3":
                return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES,
                                              **ipykernel.kernelspec.get_kernel_dict())
            return super().get_kernel_spec(kernel_name)

    class ThisPythonKernelManager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _this_python_specs(self):
            return ThisPythonSpecs(data_dir=self.data_dir)

    return ThisPythonKernelManager


def _cell_number(nb: nbformat.NotebookNode, index: int) -> str:
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    return f"code cell {code.index(index) + 1} (cell {index})" if index in code else f"cell {index}"


class SharedKernel:
    """One kernel in which several notebooks run in turn, for the tests' papermill chains.

    Each notebook starts on an empty namespace (`%reset -f`), in `cwd`, with the environment variables this process
    has at that moment; only the modules already imported stay loaded. That saves a kernel start and the imports
    (about 4 s of CPU) per notebook. It cannot hide a missing import (the names are gone), but it can hide a
    notebook that leans on a module another one imported: nbval runs every notebook in a kernel of its own, so
    use a SharedKernel only beside such runs. After a notebook that timed out, lost a reply or killed its kernel,
    the next one gets a new kernel; a cell that raised leaves the kernel as good as after any error.
    """

    _PRELUDE = ('get_ipython().run_line_magic("reset", "-f")\n'
                '[__import__("os").environ.pop(name, None) for name in {gone!r}]\n'
                '__import__("os").environ.update({environment!r})\n'
                '__import__("os").chdir({cwd!r})\n')

    def __init__(self, cwd: os.PathLike | str, startup_timeout: float = 60):
        self.cwd, self.startup_timeout = str(Path(cwd).resolve()), startup_timeout
        self.km, self._started_with, self._clients = None, {}, []

    def __enter__(self) -> SharedKernel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def ready(self) -> object:
        """Return the kernel's manager, its namespace empty and its environment this process's; start one if needed."""
        from jupyter_client.blocking import BlockingKernelClient
        from jupyter_core.utils import run_sync

        if self.km is None:
            km = _this_python_kernel_manager()(kernel_name="python3")
            run_sync(km.start_kernel)(cwd=self.cwd)
            make_client = km.client

            def client(**kwargs):  # papermill opens a client per notebook and, the kernel not being its own, keeps it
                self._clients.append(make_client(**kwargs))
                return self._clients[-1]

            km.client = client
            self.km, self._started_with = km, dict(os.environ)
        client = BlockingKernelClient()
        client.load_connection_info(self.km.get_connection_info())
        client.start_channels()
        try:
            client.wait_for_ready(timeout=self.startup_timeout)
            gone = sorted(set(self._started_with) - set(os.environ))
            reply = client.execute_interactive(self._PRELUDE.format(gone=gone, environment=dict(os.environ),
                                                                    cwd=self.cwd),
                                               timeout=self.startup_timeout, output_hook=lambda msg: None)
        finally:
            client.stop_channels()
        if reply["content"]["status"] != "ok":
            self.close()
            raise RuntimeError(f"the shared kernel could not be reset: {reply['content'].get('evalue')}")
        return self.km

    def release(self) -> None:
        """Close the clients the notebooks run so far opened (their sockets), keeping the kernel."""
        while self._clients:
            self._clients.pop().stop_channels()

    def close(self) -> None:
        """Stop the kernel (and its process group); the next notebook gets a new one."""
        from jupyter_core.utils import run_sync

        self.release()
        if self.km is not None:
            km, self.km = self.km, None
            run_sync(km.shutdown_kernel)(now=True)


def run_notebook(source: os.PathLike | str, target: os.PathLike | str, *, parameters: dict | None = None,
                 cwd: os.PathLike | str | None = None, timeout: float = CELL_TIMEOUT,
                 kernel_name: str = "python3", kernel: SharedKernel | None = None) -> nbformat.NotebookNode:
    """Execute `source` with papermill into `target` (in `cwd`, by default the notebook's folder); return it.

    The kernel "python3" is this Python, whatever kernelspecs the learner has installed elsewhere; it is started
    for this notebook and stopped after it, unless `kernel` (a SharedKernel) is given.
    Raises papermill.PapermillExecutionError when a cell raises, CellTimeout when a cell runs past `timeout`
    seconds, and MissedReply when a cell only came back because its timeout fired.
    """
    import papermill
    from nbclient.exceptions import CellTimeoutError

    source, target = Path(source), Path(target)
    name = source.name
    if not timeout or timeout <= 0:
        raise ValueError(f"timeout={timeout!r} is not allowed: a notebook run needs a timeout in seconds, such as 600.")
    cwd = Path(cwd or source.parent).resolve()
    if kernel is not None and str(cwd) != kernel.cwd:
        raise ValueError(f"{name} runs in {cwd}, the shared kernel in {kernel.cwd}: one kernel has one folder.")
    # shutdown_kernel="immediate": the kernel is stopped once the last cell has replied, as nbval does. ipykernel 7.4's
    # graceful shutdown sometimes stalls (its control thread waits on the IOPub thread that is closing) until
    # jupyter_client sends SIGTERM 2.5 s later: idle seconds on every few notebooks a suite runs.
    engine = ({"km": kernel.ready()} if kernel is not None else
              {"kernel_manager_class": _this_python_kernel_manager(), "shutdown_kernel": "immediate"})
    try:
        nb = papermill.execute_notebook(str(source), str(target), parameters=parameters or {}, kernel_name=kernel_name,
                                        cwd=str(cwd), progress_bar=False, log_output=False,
                                        execution_timeout=timeout, **engine)
    except papermill.PapermillExecutionError:
        if kernel is not None:
            kernel.release()
        raise
    except CellTimeoutError as err:
        if kernel is not None:
            kernel.close()
        ran = nbformat.read(target, as_version=4) if target.exists() else None
        index = _running_cell(ran) if ran is not None else None
        where = _cell_number(ran, index) if index is not None else "a cell"
        raise CellTimeout(f"{name}: {where} was still running after {timeout:g} s; the run was stopped.",
                          name, index) from err
    except BaseException:
        if kernel is not None:
            kernel.close()
        raise
    if kernel is not None:
        kernel.release()
    for index, cell in enumerate(nb.cells):
        duration = cell.get("metadata", {}).get("papermill", {}).get("duration") or 0
        if cell.cell_type == "code" and duration >= MISSED_REPLY_SHARE * timeout:
            if kernel is not None:
                kernel.close()
            raise MissedReply(f"{name}: {_cell_number(nb, index)} returned only after its whole timeout "
                              f"({duration:.0f} s of {timeout:g} s): the client had missed the kernel's reply, as "
                              "an ipywidgets.Output written to from the kernel can make it do (jupyter/nbclient#312).",
                              name, index)
    return nb


def _running_cell(nb: nbformat.NotebookNode) -> int | None:
    """Return the index of the cell that was running when the run stopped: the last one papermill started.

    papermill gives every cell a start time when it starts it, and at the end marks the cells it never
    reached as "completed" too, so the start time, not the status, tells which cell was running.
    """
    started = [index for index, cell in enumerate(nb.cells)
               if cell.get("metadata", {}).get("papermill", {}).get("start_time")]
    return started[-1] if started else None


def strip_run_metadata(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove what papermill adds (timings, empty tag lists) and the kernel's Python version, so that a committed
    notebook stays as it was whichever machine ran it (tools/lab_server.py: JupyterLab saves it so too)."""
    nb.metadata.pop("papermill", None)
    nb.metadata.get("language_info", {}).pop("version", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        if cell.metadata.get("tags") == []:
            del cell.metadata["tags"]
    return nb


def rerun_in_place(path: os.PathLike | str, timeout: float = CELL_TIMEOUT) -> float:
    """Re-execute a notebook top to bottom and replace it only when every cell ran; return the seconds taken."""
    path = Path(path)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=".lab-run-", dir=path.parent) as work:  # same disk: an atomic rename
        executed = Path(work) / path.name
        nb = strip_run_metadata(run_notebook(path, executed, cwd=path.parent, timeout=timeout))
        nbformat.write(nb, executed)
        os.replace(executed, path)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Re-execute notebooks in place, each cell with a timeout.")
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=float, default=CELL_TIMEOUT, help="seconds per cell (default %(default)s)")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    import papermill

    for path in args.notebooks:
        try:
            seconds = rerun_in_place(path, args.timeout)
        except papermill.PapermillExecutionError as err:
            print(f"{display_path(path)} FAILED and was left as it was: cell {err.cell_index} raised "
                  f"{err.ename}: {err.evalue}", file=sys.stderr)
            return 1
        except NotebookRunError as err:
            print(f"{display_path(path)} FAILED and was left as it was: {err}", file=sys.stderr)
            return 1
        print(f"{display_path(path)}: {seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
