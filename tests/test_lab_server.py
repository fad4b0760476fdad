"""tools/lab_server.py: JupyterLab opens a lab notebook without marking it changed, on any Python, and a notebook
only opened keeps its bytes, even when saved.

JupyterLab writes the kernel's `language_info` into a notebook when its kernel starts, and marks the notebook
changed unless the value is deep-equal to the one it had. These tests play JupyterLab's part against the contents
manager, with the value a real kernel of this environment reports; tests/browser/ does it in JupyterLab itself.
"""
from __future__ import annotations

import asyncio
import copy
import shutil

import lab
import lab_server
import nbformat
import pytest
from jupyter_server.serverapp import ServerApp
from notebook_files import NOTEBOOKS, ZH_NOTEBOOKS, read
from traitlets.utils.importstring import import_item

from labutils.runner import strip_run_metadata

OPTION = "--ServerApp.contents_manager_class="


@pytest.fixture(autouse=True)
def own_data_dir(tmp_path, monkeypatch):
    """Saving signs the notebook into the signatures' database of the Jupyter data folder: a temporary one here,
    never the machine's (~/.local/share/jupyter)."""
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))


@pytest.fixture(scope="module")
def kernel_language_info() -> dict:
    """What a kernel started as JupyterLab starts the notebooks' kernel ("python3", this environment's first)
    says in its kernel_info reply."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name=lab.KERNEL_NAME, env=lab.environment())
    try:
        return kc.kernel_info(reply=True, timeout=60)["content"]["language_info"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_make_lab_serves_the_lab_through_its_contents_manager():
    args = lab.command(lab.ROOT, open_browser=False)
    assert args[1] == str(lab.SERVER) and lab.SERVER.is_file()
    option = [arg for arg in args if arg.startswith(OPTION)]
    assert option == [f"{OPTION}lab_server.LabContentsManager"]
    manager = import_item(option[0].removeprefix(OPTION))
    # jupyter_server's own default, which the lab changes only for notebooks
    assert issubclass(manager, ServerApp.contents_manager_class.default_value)
    assert lab_server.KERNEL_NAME == lab.KERNEL_NAME


def test_the_server_knows_what_the_kernel_will_report(kernel_language_info):
    assert lab_server.running_language_info() == kernel_language_info
    assert "version" in kernel_language_info, "ipykernel reports the Python's version, which the files leave out"


@pytest.mark.parametrize("path", NOTEBOOKS + ZH_NOTEBOOKS, ids=lambda p: p.name)
def test_a_committed_notebook_holds_language_info_as_the_server_saves_it(path, kernel_language_info):
    """Every committed notebook: the kernel's `language_info` without the Python's version (`make notebooks` and
    JupyterLab both write it so), and the lab's kernel."""
    nb = read(path)
    assert lab_server.is_lab_notebook(nb)
    assert nb.metadata.language_info == lab_server.as_committed(kernel_language_info), (
        f"{path.name}: its language_info is not as the lab commits it: re-run it with `make notebooks`")


def test_a_run_and_a_save_commit_the_same_form(kernel_language_info):
    """labutils.runner (make notebooks) and the server leave the same language_info in a file."""
    nb = read(NOTEBOOKS[0])
    nb.metadata.language_info = copy.deepcopy(kernel_language_info)
    assert strip_run_metadata(copy.deepcopy(nb)).metadata == lab_server.as_saved(copy.deepcopy(nb)).metadata


def jupyterlab_opens_and_saves(manager, path: str) -> tuple[bool, dict]:
    """What JupyterLab does with a notebook a learner only opens, then saves with Ctrl+S: fetch it, write the kernel's
    language_info into it (marking it changed unless equal), save it. Returns (marked changed, the saved model)."""
    async def go():
        model = await manager.get(path)
        content = nbformat.from_dict(copy.deepcopy(model["content"]))
        kernel = lab_server.running_language_info()
        changed = content.metadata.get("language_info") != kernel
        content.metadata.language_info = copy.deepcopy(kernel)
        await manager.save({"type": "notebook", "format": "json", "content": content}, path)
        return changed, model

    return asyncio.run(go())


@pytest.mark.parametrize("source", [NOTEBOOKS[0], ZH_NOTEBOOKS[0]], ids=lambda p: p.name)
def test_a_notebook_only_opened_is_not_marked_changed_and_keeps_its_bytes(tmp_path, source):
    shutil.copy(source, tmp_path / source.name)
    committed = (tmp_path / source.name).read_bytes()
    changed, model = jupyterlab_opens_and_saves(lab_server.LabContentsManager(root_dir=str(tmp_path)), source.name)
    assert model["content"]["metadata"]["language_info"] == lab_server.running_language_info()
    assert not changed, "JupyterLab would mark it changed on opening"
    assert (tmp_path / source.name).read_bytes() == committed, "saved, it no longer is the committed file"


def test_with_jupyterlabs_own_manager_the_same_notebook_is_marked_changed_and_saved_changed(tmp_path):
    """What the lab's contents manager prevents (the failure seen on Python 3.12 and 3.13)."""
    source = NOTEBOOKS[0]
    shutil.copy(source, tmp_path / source.name)
    committed = (tmp_path / source.name).read_bytes()
    default = ServerApp.contents_manager_class.default_value
    changed, _ = jupyterlab_opens_and_saves(default(root_dir=str(tmp_path)), source.name)
    assert changed and (tmp_path / source.name).read_bytes() != committed


def test_a_notebook_last_saved_on_another_python_opens_unchanged_and_is_saved_as_committed(tmp_path):
    """A lab notebook whose file names another Python (saved by a plain `jupyter lab` on 3.13, say)."""
    nb = read(NOTEBOOKS[0])
    nb.metadata.language_info["version"] = "3.13.0" if lab_server.running_language_info()["version"] != "3.13.0" \
        else "3.11.7"
    nbformat.write(nb, tmp_path / "other.ipynb")
    changed, _ = jupyterlab_opens_and_saves(lab_server.LabContentsManager(root_dir=str(tmp_path)), "other.ipynb")
    assert not changed
    assert read(tmp_path / "other.ipynb").metadata.language_info == read(NOTEBOOKS[0]).metadata.language_info


def test_a_notebook_of_another_kernel_is_served_and_saved_as_it_is(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "ir", "display_name": "R", "language": "R"}
    nb.metadata.language_info = {"name": "R", "version": "4.4.1", "file_extension": ".r"}
    nbformat.write(nb, tmp_path / "r.ipynb")
    manager = lab_server.LabContentsManager(root_dir=str(tmp_path))
    assert not lab_server.is_lab_notebook(nb)

    async def go():
        model = await manager.get("r.ipynb")
        assert model["content"]["metadata"]["language_info"] == nb.metadata.language_info
        await manager.save({"type": "notebook", "format": "json", "content": model["content"]}, "r.ipynb")

    asyncio.run(go())
    assert read(tmp_path / "r.ipynb").metadata.language_info == nb.metadata.language_info


@pytest.mark.parametrize("metadata", [{"kernelspec": "python3", "language_info": {"name": "python"}},
                                      {"kernelspec": {"name": "python3"}, "language_info": "python"},
                                      {"kernelspec": None}], ids=["kernelspec-text", "language-text", "none"])
def test_a_notebook_with_unusual_metadata_opens_and_saves_as_it_is(tmp_path, metadata):
    """Metadata that is not as nbformat describes it: not a lab notebook, so served and saved untouched, as
    jupyter_server's own manager does (a learner's edits in it can be saved)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    nb.metadata.update(metadata)
    (tmp_path / "odd.ipynb").write_text(nbformat.writes(nb, version=4))
    manager = lab_server.LabContentsManager(root_dir=str(tmp_path))

    async def go():
        model = await manager.get("odd.ipynb")
        assert {key: model["content"]["metadata"].get(key) for key in metadata} == metadata
        model["content"]["cells"][0]["source"] = "print(2)"
        await manager.save({"type": "notebook", "format": "json", "content": model["content"]}, "odd.ipynb")

    asyncio.run(go())
    saved = read(tmp_path / "odd.ipynb")
    assert saved.cells[0].source == "print(2)" and {key: saved.metadata.get(key) for key in metadata} == metadata


def test_trusting_a_notebook_signs_its_file(tmp_path):
    """The trust endpoint signs what the file holds; jupyter_server's own path, which signs what `get` serves,
    would leave the file untrusted."""
    from jupyter_server.services.contents.manager import AsyncContentsManager

    shutil.copy(NOTEBOOKS[0], tmp_path / "a.ipynb")
    shutil.copy(NOTEBOOKS[1], tmp_path / "b.ipynb")  # another notebook: a signature is of the content
    manager = lab_server.LabContentsManager(root_dir=str(tmp_path))
    asyncio.run(manager.trust_notebook("a.ipynb"))
    asyncio.run(AsyncContentsManager.trust_notebook(manager, "b.ipynb"))
    assert manager.notary.check_signature(read(tmp_path / "a.ipynb"))
    assert not manager.notary.check_signature(read(tmp_path / "b.ipynb"))
