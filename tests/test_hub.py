"""The classroom hub (`make hub`, tools/hub/): the real JupyterHub, its proxy from npm, two learners and the
instructor on localhost, driven as their browsers would (the login form, the REST API, a kernel's websocket).

Needs root (each learner's server runs as a Unix user of their own), useradd, and the proxy that `make test`
installs with npm; without them every test here is skipped with the reason."""
from __future__ import annotations

import asyncio
import concurrent.futures
import csv
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from unittest import mock

import pytest

from labutils.cache import trained_net
from labutils.checkpoint import sidecar_path
from labutils.paths import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tools" / "hub"))
import classroom  # noqa: E402
import client  # noqa: E402

pytestmark = pytest.mark.timeout(600)
NOTEBOOK = f"{classroom.COPY_NAME}/notebooks/00_welcome.ipynb"
TINY = dict(epochs=1, batch_size=128, train_subset=600)  # as tests/test_cache.py's
SOLUTION = (REPO_ROOT / "notebooks" / "solutions" / "ex00_1.py").read_text(encoding="utf-8")


def _why_not() -> str | None:
    if sys.platform != "linux":
        return "the hub runs on Linux"
    if os.getuid() != 0:
        return "the hub must run as root (each learner's server runs as their own Unix user): run make test as root"
    problems = [p for p in classroom.check_machine(classroom.Folders()) if "cannot get through" not in p]
    return "; ".join(problems) or None


@pytest.fixture(scope="module")
def hub():
    why = _why_not()
    if why:
        pytest.skip(f"classroom hub not tested here: {why}")
    # not in pytest's temporary folder, which only root may enter: the learners' homes are in this one
    folders = classroom.Folders(Path(tempfile.mkdtemp(prefix="lab-hub-test-")))
    request_cleanup = folders.root
    with classroom.passable_for_others([*classroom.lab_paths_learners_need(), folders.root]) as opened:
        if opened:
            print(f"\nLearners' users may pass through {', '.join(map(str, opened))} during these tests (o+x; put "
                  "back after): the lab's Python lives there.")
        # the shared cache holds a Net trained in a second (TINY), not the notebooks' default one, which
        # make hub puts there: this file does not wait for notebook 02 to train it
        folders.cache.mkdir(parents=True)
        made = trained_net(progress=False, **TINY)
        for path in (made.path, sidecar_path(made.path)):
            shutil.copy2(path, folders.cache / path.name)
            (folders.cache / path.name).chmod(0o644)
        with classroom.started_hub(folders, ["alice", "bob"], log=folders.root / "hub.log",
                                   fill_cache=False) as (url, token, pw):
            the_hub = client.Hub(url, token)
            the_hub.passwords, the_hub.folders = pw, folders
            yield the_hub
    shutil.rmtree(request_cleanup, ignore_errors=True)


@pytest.fixture(scope="module")
def servers(hub):
    """Alice and Bob logged in through the form, their servers started (side by side, as a class's start), each with
    a token of their own."""
    for name in ("alice", "bob"):
        assert hub.login(name, hub.passwords[name]) == 302, f"{name} could not log in"
    with concurrent.futures.ThreadPoolExecutor(2) as starting:
        list(starting.map(hub.start, ("alice", "bob")))  # each waits until its server answers; an error is raised
    return {name: client.Server(hub, name, hub.user_token(name)) for name in ("alice", "bob")}


def _run(coroutine):
    return asyncio.run(coroutine)


async def _in_kernel(server: client.Server, code: str) -> str:
    kernel = await server.kernel().connect()
    try:
        return "".join(o.get("text", "") for o in await kernel.execute(code) if o["output_type"] == "stream")
    finally:
        kernel.close()


def test_login_needs_the_right_password(hub):
    assert hub.login("alice", "not-her-password") == 403
    assert hub.login("alice", hub.passwords["bob"]) == 403  # knowing your own password is not knowing hers
    assert hub.login("mallory", hub.passwords["alice"]) == 403  # no account, no login
    assert hub.login("instructor", hub.passwords["alice"]) == 403
    assert hub.login("instructor", hub.passwords["instructor"]) == 302
    accounts = json.loads(hub.folders.accounts.read_text())
    assert hub.passwords["alice"] not in hub.folders.accounts.read_text() and "scrypt" in accounts["alice"]
    assert oct(hub.folders.accounts.stat().st_mode & 0o777) == "0o600"


def test_the_api_refuses_anonymous_calls(hub, servers):
    for path in ("hub/api/users", "hub/api/users/alice", "hub/api/users/alice/tokens"):
        status, _ = client.request(hub.url + path)
        assert status == 403, f"{path}: HTTP {status} without a token"
        status, _ = client.request(hub.url + path, token="not-a-token")
        assert status == 403, f"{path}: HTTP {status} with a made-up token"
    status, _ = client.request(hub.url + "user/alice/api/contents")
    assert status in (302, 403), f"alice's server answered an anonymous call: HTTP {status}"
    status, _ = client.request(hub.url + "hub/api/users", token=hub.token)
    assert status == 200  # and the same call with a token is answered: the refusals above are about the token


def test_each_learner_runs_a_notebook_in_their_own_copy(hub, servers):
    def answer(nb):  # Alice solves exercise 00.1, as a learner pastes the solution into the exercise cell
        cell = next(c for c in nb["cells"] if "ex00_1" in c["metadata"].get("tags", []))
        cell["source"] = SOLUTION

    async def both():
        return await asyncio.gather(
            client.run_notebook(servers["alice"], NOTEBOOK, edit=answer, probe="import os; print(os.getuid())"),
            client.run_notebook(servers["bob"], NOTEBOOK, probe="import os; print(os.getuid())"))

    ran = dict(zip(("alice", "bob"), _run(both())))
    for name in ("alice", "bob"):
        assert int(ran[name]["probe"]) == pwd.getpwnam(classroom.system_user(name)).pw_uid, f"{name}'s kernel's user"
        copy = hub.folders.home(name) / classroom.COPY_NAME
        saved = json.loads((copy / "notebooks" / "00_welcome.ipynb").read_text())
        code = [c for c in saved["cells"] if c["cell_type"] == "code"]
        assert all(c["execution_count"] for c in code), f"{name}'s notebook did not run to the end"
        assert (copy / "artifacts" / "metrics" / "00_welcome.json").exists(), f"{name}'s artifacts are not in the copy"
        assert (copy / "artifacts").stat().st_uid == int(ran[name]["probe"])
    assert not (REPO_ROOT / "notebooks" / "00_welcome.ipynb").read_text().count("int((labels == digit).sum())")


def test_a_learner_cannot_reach_another(hub, servers):
    alice, bob = servers["alice"], servers["bob"]
    as_alice_at_bob = client.Server(hub, "bob", alice.token)
    for path in ("api/contents", f"api/contents/{NOTEBOOK}", "api/kernels"):
        status, _ = as_alice_at_bob.get(path)
        assert status == 403, f"alice's token on bob's server, {path}: HTTP {status}"
    status, _ = bob.get("api/contents")
    assert status == 200  # bob's own token is let in: the 403 above is about whose token it is
    bob_home = hub.folders.home("bob")
    printed = _run(_in_kernel(alice, f"""
import os
for attempt in (lambda: os.listdir({str(bob_home)!r}),
                lambda: open({str(bob_home / NOTEBOOK)!r}).read(),
                lambda: open({str(hub.folders.cache / 'mine.pt')!r}, 'w'),
                lambda: open({str(REPO_ROOT / 'labutils' / 'mine.py')!r}, 'w')):
    try:
        attempt()
        print('allowed')
    except PermissionError:
        print('refused')
print(len(open({str(REPO_ROOT / 'labutils' / '__init__.py')!r}).read()) > 0)
"""))
    assert printed.split() == ["refused"] * 4 + ["True"], printed


def test_learners_start_from_the_shared_trained_net(hub, servers):
    printed = _run(_in_kernel(servers["bob"], f"""
from labutils.cache import trained_net
from labutils.paths import artifacts_dir
net = trained_net(progress=False, **{TINY!r})
print(net.from_cache, net.path.parent, sorted(p.name for p in (artifacts_dir() / "cache").glob("*.pt")))
"""))
    from_cache, folder, own = printed.split(maxsplit=2)
    assert (from_cache, folder, own.strip()) == ("True", str(hub.folders.cache), "[]"), printed


def test_a_killed_kernel_harms_nobody_else(hub, servers):
    alice, bob = servers["alice"], servers["bob"]

    async def scenario():
        victim = await alice.kernel().connect()
        neighbour = await bob.kernel().connect()
        try:
            pid = int("".join(o["text"] for o in await victim.execute("import os; print(os.getpid())")))
            await neighbour.execute("x = 41")
            os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(1)
            assert hub.api("users/alice")["servers"][""]["ready"], "alice's server went down with her kernel"
            after = await neighbour.execute("print(x + 1)")
            assert after[0]["text"].strip() == "42", "bob's kernel lost its state"
        finally:
            victim.close()
            neighbour.close()
        fresh = await alice.kernel().connect()
        try:
            return "".join(o["text"] for o in await fresh.execute("print(6 * 7)"))
        finally:
            fresh.close()

    assert _run(scenario()).strip() == "42"
    assert client.request(hub.url + "hub/api/users", token=hub.token)[0] == 200


def test_the_instructor_sees_every_learners_marks(hub, servers):
    if not (hub.folders.home("alice") / NOTEBOOK).read_text().count("✓ ex00_1"):
        test_each_learner_runs_a_notebook_in_their_own_copy(hub, servers)
    hub.start("instructor")
    instructor = client.Server(hub, "instructor", hub.user_token("instructor"))
    report = _run(_in_kernel(instructor, f"""
import subprocess, sys
done = subprocess.run([sys.executable, "-m", "labutils", "progress", {str(hub.folders.homes)!r}, "--notebooks", "00",
                       "--csv", "progress.csv"], capture_output=True, text=True)
print(done.stdout, done.stderr)
print(open("progress.csv").read())
"""))
    marks = {row[0]: dict(zip(["00.1", "00.2"], row[1:3])) for row in csv.reader(report.splitlines()[-4:])
             if row and row[0] in ("alice", "bob")}
    assert marks == {"alice": {"00.1": "solved", "00.2": "not tried"},
                     "bob": {"00.1": "not tried", "00.2": "not tried"}}, report


def test_a_learner_resets_their_copy(hub, servers):
    answered = hub.folders.home("alice") / NOTEBOOK
    before = answered.read_text()
    hub.stop("alice")
    aside = classroom.reset_copy(hub.folders, "alice")
    hub.start("alice")
    fresh = (hub.folders.home("alice") / NOTEBOOK).read_text()
    assert fresh == (REPO_ROOT / "notebooks" / "00_welcome.ipynb").read_text()
    assert (aside / "notebooks" / "00_welcome.ipynb").read_text() == before  # nothing lost
    servers["alice"].token = hub.user_token("alice")


def test_idle_servers_are_stopped_and_keep_their_files(hub, servers):
    """The hub's idle culler (jupyterhub_config.py runs it with HUB_CULL_AFTER, an hour by default) run here with
    a one-second limit: every idle server stops; the learner's files stay."""
    hub.start("bob")
    notebook = hub.folders.home("bob") / NOTEBOOK
    before = notebook.read_bytes()
    culler = subprocess.Popen([sys.executable, "-m", "jupyterhub_idle_culler", f"--url={hub.url}hub/api",
                               "--timeout=1", "--cull-every=60"],
                              env={**os.environ, "JUPYTERHUB_API_TOKEN": hub.token}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while hub.api("users/bob").get("servers") and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        culler.terminate()
        log = culler.communicate(timeout=30)[0]
    assert not hub.api("users/bob").get("servers"), f"bob's idle server still runs:\n{log}"
    assert "Culling server bob" in log or "culling server bob" in log.lower(), log
    assert notebook.read_bytes() == before


def _config(monkeypatch, **env) -> object:
    from traitlets.config import Config

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = Config()
    path = REPO_ROOT / "tools" / "hub" / "jupyterhub_config.py"
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), {"get_config": lambda: config,
                                                                      "__file__": str(path)})
    return config


def test_the_configuration_follows_the_makefiles_variables(monkeypatch, tmp_path):
    """What `make hub` passes on: the address, the folder, the language, the culling time (no hub started)."""
    english = _config(monkeypatch, HUB_DIR=str(tmp_path), HUB_IP="0.0.0.0", HUB_PORT="8123", LAB_LANG="")
    assert (english.JupyterHub.ip, english.JupyterHub.port) == ("0.0.0.0", 8123)
    assert english.JupyterHub.db_url == f"sqlite:///{tmp_path}/state/jupyterhub.sqlite"
    assert english.Spawner.default_url.endswith("/notebooks/00_welcome.ipynb")
    assert english.Spawner.environment["LAB_SHARED_CACHE"] == str(tmp_path / "cache")
    assert "--ServerApp.contents_manager_class=lab_server.LabContentsManager" in english.Spawner.args
    # idle kernels stop after 20 minutes, those of notebooks still open in a tab too (the default spares them)
    assert {"--MappingKernelManager.cull_idle_timeout=1200",
            "--MappingKernelManager.cull_connected=True"} <= set(english.Spawner.args)
    assert english.Authenticator.admin_users == {"instructor"}
    assert english.JupyterHub.services[0]["command"][-2] == "--timeout=3600"
    assert [s["name"] for s in english.JupyterHub.services] == ["idle-culler"]  # no driver without its token
    chinese = _config(monkeypatch, HUB_DIR=str(tmp_path), LAB_LANG="zh-CN", HUB_CULL_AFTER="1800",
                      HUB_DRIVER_TOKEN="t" * 32)
    assert chinese.Spawner.default_url.endswith("/notebooks/00_welcome.zh-CN.ipynb")
    assert any(arg.endswith("tools/jupyterlab/zh-CN") for arg in chinese.Spawner.args)
    assert chinese.JupyterHub.services[0]["command"][-2] == "--timeout=1800"
    assert [s["name"] for s in chinese.JupyterHub.services] == ["idle-culler", "driver"]


def test_accounts_are_made_once_and_names_are_checked(tmp_path):
    folders = classroom.Folders(tmp_path)
    made = classroom.add_accounts(folders, classroom.learner_names("3"))
    assert sorted(made) == ["instructor", "learner01", "learner02", "learner03"]
    assert classroom.add_accounts(folders, classroom.learner_names("learner02 dana")) == {"dana": mock.ANY}
    handout = folders.handout.read_text()
    assert handout.splitlines()[0].split()[0] == "instructor" and handout.count("\n") == 5
    stored = classroom.read_accounts(folders)
    assert classroom.password_matches(made["learner01"], stored["learner01"])
    assert not classroom.password_matches(made["learner01"], stored["learner02"])
    for bad in ("Root", "instructor", "a b/c", "x" * 21, "1abc"):
        with pytest.raises(SystemExit, match="Learner names must be"):
            classroom.learner_names(bad)
