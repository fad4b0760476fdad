"""The lab's JupyterLab server: JupyterLab with a contents manager under which opening a notebook changes nothing.

    python tools/lab_server.py [JUPYTER LAB OPTIONS ...]   # what tools/lab.py starts (`make lab`, the browser tests)

When a kernel starts, JupyterLab writes the kernel's `language_info` into the notebook's metadata; when the value
differs from the file's, the notebook is marked changed (JupyterLab 4.6: `NotebookPanel._updateLanguage` calls
`setMetadata`, which skips only a deep-equal value). ipykernel puts the Python's full version in it ("3.13.0"),
so a notebook last saved on another Python, or another patch release of the same one, was marked changed as soon
as it opened: JupyterLab offered to save changes the learner never made, and the save showed in `git status` and
made the next `git pull` conflict.

`LabContentsManager` keeps what JupyterLab sees and what the file holds apart:
- JupyterLab is given each lab notebook with the `language_info` of the Python that runs the server, which is the
  Python its kernel runs (`make` installs the kernelspec of the environment's own Python), so the kernel's value
  is equal and nothing is marked;
- a saved lab notebook keeps `language_info` without its `version`, the only field that depends on the machine:
  that is how the lab's notebooks are committed (`make notebooks` writes them so too), and a notebook a learner
  saves differs from the committed one only where they changed it.

A lab notebook here is one that names the lab's kernel ("python3") and the Python language; other notebooks are
served and saved as they are. Loading this module imports jupyter_server and, on the first notebook, ipykernel;
never torch (a classroom's server runs one of these per learner).
"""
from __future__ import annotations

import copy
import functools
import sys

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

from lab import KERNEL_NAME  # tools/lab.py: the kernel the notebooks name
MACHINE_FIELDS = ("version",)  # the fields of language_info that depend on the machine the kernel runs on


@functools.cache
def running_language_info() -> dict:
    """The `language_info` this Python's kernel reports to JupyterLab (ipykernel's, read, not started)."""
    from ipykernel.ipkernel import IPythonKernel

    return copy.deepcopy(IPythonKernel.language_info)


def is_lab_notebook(nb: dict) -> bool:
    """Whether the notebook names the lab's kernel and holds Python: the notebooks this manager looks after. A
    notebook whose metadata is not as nbformat describes it is not one (it is served and saved as it is)."""
    metadata = nb.get("metadata")
    if not isinstance(metadata, dict):
        return False
    kernel, language = metadata.get("kernelspec"), metadata.get("language_info")
    return (isinstance(kernel, dict) and kernel.get("name") == KERNEL_NAME and isinstance(language, dict)
            and language.get("name") == "python")


def as_committed(language_info: dict) -> dict:
    """`language_info` as the lab's notebooks hold it: without the fields that depend on the machine."""
    return {key: value for key, value in language_info.items() if key not in MACHINE_FIELDS}


def as_served(nb: dict) -> dict:
    """The notebook with this Python's `language_info`, as the lab's kernel will report it (a lab notebook only)."""
    if is_lab_notebook(nb):
        nb["metadata"]["language_info"] = copy.deepcopy(running_language_info())
    return nb


def as_saved(nb: dict) -> dict:
    """The notebook with its `language_info` as committed (a lab notebook only)."""
    if is_lab_notebook(nb):
        nb["metadata"]["language_info"] = as_committed(nb["metadata"]["language_info"])
    return nb


class LabContentsManager(AsyncLargeFileManager):
    """jupyter_server's default contents manager, but the lab's notebooks are served as the running kernel
    describes itself and saved as committed (the module's docstring says why)."""

    async def get(self, path, content=True, type=None, format=None, **kwargs):
        model = await super().get(path, content=content, type=type, format=format, **kwargs)
        if model.get("type") == "notebook" and model.get("content") is not None:
            as_served(model["content"])
        return model

    async def save(self, model, path=""):
        if model.get("type") == "notebook" and isinstance(model.get("content"), dict):
            model = {**model, "content": as_saved(copy.deepcopy(model["content"]))}
        return await super().save(model, path)

    async def trust_notebook(self, path):
        """Sign the notebook as its file holds it (jupyter_server's own would sign the copy `get` serves, which the
        file is not, and the file would not be trusted)."""
        model = await super().get(path)
        nb = model["content"]
        self.log.warning("Trusting notebook %s", path)
        self.notary.mark_cells(nb, True)
        self.check_and_sign(nb, path)


def main(argv: list[str] | None = None) -> int:
    """Start JupyterLab (as `python -m jupyterlab` does) with `argv`; this folder is on the path, so that the
    option naming LabContentsManager finds this module."""
    from jupyterlab.labapp import main as jupyterlab

    sys.modules.setdefault("lab_server", sys.modules[__name__])  # the option imports this module, not a second copy
    return jupyterlab(argv) or 0


if __name__ == "__main__":
    sys.exit(main())
