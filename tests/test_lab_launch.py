"""tools/lab.py and tools/lab_browser.LabServer: JupyterLab started the lab's way, without a browser.

`make lab` must open notebook 00 with the notebooks' pictures and links working, the lab's settings (no news prompt)
and the lab's kernel, named as such, even where the learner has a "python3" kernelspec of their own. The browser
tests (tests/browser/) look at the same things in Chromium; these run without one.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import lab
import pytest
from lab_browser import LabServer, alive, descendants

from labutils import paths
from labutils.paths import REPO_ROOT


def test_the_one_list_of_notebooks_is_the_numbered_english_ones_in_order(tmp_path):
    for name in ("01_b.ipynb", "00_a.ipynb", "00_a.zh-CN.ipynb", "notes.ipynb", "1_short.ipynb", "02_c.ipynb.bak"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in paths.notebooks(tmp_path)] == ["00_a.ipynb", "01_b.ipynb"]
    assert lab.notebooks(tmp_path) == paths.notebooks(tmp_path)
    assert lab.notebooks() == paths.notebooks() and len(paths.notebooks()) >= 3


def test_tools_lab_lists_the_notebooks_without_importing_labutils_or_torch():
    """make lab, make notebooks and the second Python's JupyterLab (no torch there) load tools/lab.py."""
    probe = ("import sys; sys.path.insert(0, 'tools'); import lab; "
             "print(len(lab.notebooks()), sorted(m for m in ('labutils', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(maxsplit=1) == [str(len(paths.notebooks())), "[]\n"], done.stdout
    listed = subprocess.run([sys.executable, "tools/lab.py", "--list-notebooks"], cwd=REPO_ROOT, capture_output=True,
                            text=True, check=True, timeout=120).stdout.split()
    assert listed == [p.relative_to(REPO_ROOT).as_posix() for p in paths.notebooks()]


def test_make_lab_runs_tools_lab_py():
    dry = subprocess.run(["make", "-n", "--no-print-directory", "lab", "LAB_ARGS=--port 8890"], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True, timeout=120).stdout
    assert dry.strip().splitlines()[-1].endswith("/bin/python tools/lab.py --port 8890"), dry


def test_the_command_serves_the_lab_and_opens_notebook_00():
    args = lab.command(REPO_ROOT, open_browser=False)
    assert f"--ServerApp.root_dir={REPO_ROOT}" in args
    assert (REPO_ROOT / lab.FIRST_NOTEBOOK).is_file()
    assert f"--LabApp.default_url=/lab/tree/{lab.FIRST_NOTEBOOK}" in args
    assert "--FileContentsManager.preferred_dir=notebooks" in args
    assert "--no-browser" in args
    assert "--no-browser" not in lab.command(REPO_ROOT, open_browser=True)
    assert lab.environment({})["JUPYTER_PREFER_ENV_PATH"] == "1"


def test_make_lab_with_lab_lang_opens_the_chinese_edition():
    dry = subprocess.run(["make", "-n", "--no-print-directory", "lab", "LAB_LANG=zh-CN"], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True, timeout=120).stdout
    assert dry.strip().splitlines()[-1].endswith("/bin/python tools/lab.py --language zh-CN"), dry
    first, settings = lab.LANGUAGES["zh-CN"]
    args = lab.command(REPO_ROOT, open_browser=False, language="zh-CN")
    assert (REPO_ROOT / first).is_file() and f"--LabApp.default_url=/lab/tree/{first}" in args
    assert f"--LabApp.app_settings_dir={settings}" in args and f"--LabApp.app_settings_dir={lab.SETTINGS}" not in args
    with pytest.raises(SystemExit):
        lab.main(["--language", "fr", "--no-browser"])


def test_the_chinese_settings_are_the_labs_with_the_chinese_locale_that_the_language_pack_provides():
    english = json.loads((lab.SETTINGS / "overrides.json").read_text())
    chinese = json.loads((lab.LANGUAGES["zh-CN"][1] / "overrides.json").read_text())
    assert chinese == {**english, "@jupyterlab/translation-extension:plugin": {"locale": "zh_CN"}}
    from jupyterlab_server.translation_utils import get_language_packs

    packs, _ = get_language_packs()
    assert "zh_CN" in packs, f"jupyterlab-language-pack-zh-CN is not installed: run `make setup` ({sorted(packs)})"


@pytest.mark.parametrize("overrides", ["overrides.json", "zh-CN/overrides.json"])
def test_the_settings_override_turns_the_news_prompt_off(overrides):
    """tools/jupyterlab/overrides.json names settings the installed JupyterLab has, with values it accepts."""
    overrides = json.loads((lab.SETTINGS / overrides).read_text())
    schemas = Path(sys.prefix) / "share" / "jupyter" / "lab" / "schemas"
    for plugin, values in overrides.items():
        package, _, name = plugin.partition(":")
        schema = json.loads((schemas / package / f"{name}.json").read_text())
        for key, value in values.items():
            assert key in schema["properties"], f"{plugin} has no setting {key!r}"
            allowed = [choice["const"] for choice in schema["properties"][key].get("oneOf", [])]
            assert not allowed or value in allowed, f"{plugin}:{key} takes {allowed}, not {value!r}"
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"


def test_the_notebooks_name_the_labs_kernel():
    """Each notebook names the kernel as the lab installs it: JupyterLab opens it without marking it changed."""
    from notebook_files import NOTEBOOKS, read

    for path in NOTEBOOKS:
        assert dict(read(path).metadata.kernelspec) == {"name": lab.KERNEL_NAME, "language": "python",
                                                        "display_name": lab.KERNEL_DISPLAY_NAME}, path.name


def _kernel_seen(data_dir, prefer_env: bool) -> dict:
    """The "python3" kernelspec JupyterLab would start, in a process with a learner's own one in `data_dir`."""
    env = {**os.environ, "JUPYTER_DATA_DIR": str(data_dir)}
    env.pop("JUPYTER_PATH", None)
    # jupyter_core prefers the environment's folders by itself in a venv, not in a conda base or a system Python
    env = lab.environment(env) if prefer_env else {**env, "JUPYTER_PREFER_ENV_PATH": "0"}
    code = ("import json; from jupyter_client.kernelspec import KernelSpecManager; "
            "spec = KernelSpecManager().get_kernel_spec('python3'); "
            "print(json.dumps({'name': spec.display_name, 'python': spec.argv[0]}))")
    return json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                     check=True, timeout=120).stdout)


def test_the_lab_kernel_is_named_and_wins_over_a_learners_own(tmp_path):
    learners = tmp_path / "kernels" / "python3"
    learners.mkdir(parents=True)
    (learners / "kernel.json").write_text(json.dumps({"argv": ["/usr/bin/python3", "-m", "ipykernel_launcher", "-f",
                                                               "{connection_file}"],
                                                      "display_name": "Python 3", "language": "python"}))
    seen = _kernel_seen(tmp_path, prefer_env=True)
    assert seen == {"name": lab.KERNEL_DISPLAY_NAME, "python": sys.executable}, (
        f"{seen}: run `make setup` (it installs the lab's kernelspec with tools/lab.py --install-kernel)")
    assert _kernel_seen(tmp_path, prefer_env=False)["python"] == "/usr/bin/python3"  # what the setting prevents


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="lists processes through /proc (Linux)")
def test_the_server_and_its_kernels_stop_even_when_the_test_fails():
    with pytest.raises(RuntimeError, match="a failing test"):
        with LabServer(["00_welcome.ipynb"]) as server:
            assert (server.folder / "notebooks" / "00_welcome.ipynb").is_file()
            assert (server.folder / "images").is_dir() and (server.folder / "docs").is_dir()
            kernel = server.api("kernels", method="POST")
            deadline = time.monotonic() + 120
            while not (started := [pid for pid in descendants(server.pid)
                                   if kernel["id"] in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")]):
                assert time.monotonic() < deadline, "the kernel's process did not appear in 120 s"
                time.sleep(0.2)
            processes, folder = [server.pid, *started], server.folder
            raise RuntimeError("a failing test")
    assert alive(processes) == [], "the server or its kernel outlived the test"
    assert not folder.exists()


def test_the_screenshots_are_the_ones_make_screenshots_writes_and_the_readme_shows_some():
    import lab_browser

    folder = REPO_ROOT / "images" / "screenshots"
    assert sorted(p.name for p in folder.glob("*")) == sorted(lab_browser.SCREENSHOTS), "run `make screenshots`"
    readme = (REPO_ROOT / "README.md").read_text()
    shown = [name for name in lab_browser.SCREENSHOTS if f"](images/screenshots/{name})" in readme]
    assert 2 <= len(shown) <= 3, f"the README shows {shown}"
    assert readme.index("images/screenshots/") < readme.index("## Start"), "before a newcomer decides to start"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_test_run_killed_from_outside_leaves_no_server_or_kernel(tmp_path):
    """The process that started the server dies without cleaning up (a CI timeout's SIGKILL): the server stops,
    and stops its kernel."""
    code = ("import json, os, sys, time\n"
            f"sys.path.insert(0, {str(REPO_ROOT / 'tools')!r})\n"
            "import lab_browser\n"
            "server = lab_browser.LabServer(['00_welcome.ipynb']).__enter__()\n"
            "kernel = server.api('kernels', method='POST')\n"
            "deadline = time.monotonic() + 120\n"
            "while len(lab_browser.descendants(server.pid)) < 1 and time.monotonic() < deadline:\n"
            "    time.sleep(0.2)\n"
            "print(json.dumps([str(server.folder), server.pid, *lab_browser.descendants(server.pid)]), flush=True)\n"
            "os._exit(1)\n")
    folder, *started = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                 timeout=180).stdout.strip().splitlines()[-1])
    try:
        assert len(started) >= 2, f"the server started no kernel: {started}"
        deadline = time.monotonic() + 60
        while alive(started):
            assert time.monotonic() < deadline, f"still running 60 s after their parent died: {alive(started)}"
            time.sleep(0.5)
    finally:  # the copy the dead process could not remove, once the server has stopped removing its own files in it
        shutil.rmtree(folder, ignore_errors=True)
