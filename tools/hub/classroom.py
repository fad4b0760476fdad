"""The lab on one shared server: a JupyterHub for a workshop (`make hub`; docs/INSTRUCTOR.md, "A classroom hub").

    python tools/hub/classroom.py start [--learners 30 | --learners "alice bob"]   # what `make hub` runs (root)
    python tools/hub/classroom.py accounts --learners 35    # add accounts (late arrivals) and print the handout
    python tools/hub/classroom.py reset NAME                # a learner's copy set aside, a fresh one at next start

Everything the hub keeps is in one folder, HUB_DIR (default `hub/` in the lab's folder; `make clean` leaves it):

    hub/accounts.json    each account's name and scrypt hash (0600)     hub/handout.txt  names and passwords (0600)
    hub/state/           JupyterHub's database and cookie secret (0700)
    hub/cache/           the shared trained Nets, read-only for learners (labutils.cache, LAB_SHARED_CACHE)
    hub/homes/NAME/      each learner's home: their copy of the lab in save-load-lab/, their artifacts/

How the pieces fit (each is JupyterHub's own, configured in jupyterhub_config.py):
- Login: `WorkshopAuthenticator`, one generated password per account, handed out on paper. Nobody gets in without
  one, and a learner who knows their own password cannot log in as another (a single shared password would let
  them: JupyterHub's SharedPasswordAuthenticator says so). The instructor account is the hub's admin.
- Separation: `LabSpawner` runs each learner's server as a Unix user of their own (`lab-NAME`, made at first
  start), in a home folder only they and the instructors' group can read (mode 2750). Their kernel is the lab's
  Python, their notebooks a copy made at first start; the lab's code, data and shared cache are read-only to them.
- The instructor account (`instructor`) is in the group `lab-instructors`, so that in its server
  `python -m labutils progress ../` grades every learner's copy.
- Idle servers are stopped by jupyterhub-idle-culler (a hub service; HUB_CULL_AFTER seconds, default 3600).

It must run as root: only root can start a process as another user. JupyterHub's proxy, configurable-http-proxy,
comes from npm (package.json and its lock; `make hub` runs `npm ci`).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import grp
import hashlib
import hmac
import json
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

LAB = Path(__file__).resolve().parents[2]  # the lab's folder: its code, data and notebooks, read-only to learners
HUB_DIR = Path(os.environ.get("HUB_DIR") or LAB / "hub")
INSTRUCTOR = "instructor"
INSTRUCTORS_GROUP = "lab-instructors"
USER_PREFIX = "lab-"  # learner alice runs as the Unix user lab-alice: never an existing account such as root
NAME_PATTERN = r"[a-z][a-z0-9]{0,19}"  # what a hub name may be (lower case, as JupyterHub normalises it)
COPY = ("notebooks", "images", "docs", "tools", "README.md", "README.zh-CN.md")  # what a learner's copy holds, and
BESIDE = {"labutils/sha256sums.py": "tools/sha256sums.py"}  # tools/predict.py (07 runs it) reads its checksums so
COPY_NAME = "save-load-lab"  # the copy's folder in the learner's home
FIRST_NOTEBOOK = {"en": "notebooks/00_welcome.ipynb", "zh-CN": "notebooks/00_welcome.zh-CN.ipynb"}
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper without doubt


class Folders:
    """The hub's folders under `root` (HUB_DIR)."""

    def __init__(self, root: Path = HUB_DIR):
        self.root = Path(root)
        self.accounts = self.root / "accounts.json"
        self.handout = self.root / "handout.txt"
        self.state = self.root / "state"
        self.cache = self.root / "cache"
        self.homes = self.root / "homes"

    def home(self, name: str) -> Path:
        return self.homes / name


# ---- accounts -------------------------------------------------------------------------------------------------

def new_password() -> str:
    """Twelve characters in three groups, easy to copy from a slip of paper: `k7qm-x3pa-9tfe` (about 59 bits)."""
    return "-".join("".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(4)) for _ in range(3))


def password_hash(password: str, salt: bytes | None = None) -> dict:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return {"salt": salt.hex(), "scrypt": digest.hex()}


def password_matches(password: str, stored: dict) -> bool:
    try:
        expected = password_hash(password, bytes.fromhex(stored["salt"]))["scrypt"]
        return hmac.compare_digest(expected, stored["scrypt"])
    except (KeyError, TypeError, ValueError):
        return False


def read_accounts(folders: Folders) -> dict:
    try:
        return json.loads(folders.accounts.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def learner_names(learners: str) -> list[str]:
    """`30` -> learner01 ... learner30; `"alice bob"` -> alice, bob."""
    import re

    words = learners.replace(",", " ").split()
    if len(words) == 1 and words[0].isdigit():
        count = int(words[0])
        return [f"learner{i:0{max(2, len(str(count)))}d}" for i in range(1, count + 1)]
    bad = [w for w in words if not re.fullmatch(NAME_PATTERN, w) or w == INSTRUCTOR]
    if bad:
        raise SystemExit(f"Learner names must be lower-case letters and digits, starting with a letter, at most 20 "
                         f"characters, and not '{INSTRUCTOR}': {', '.join(bad)} is not.")
    return words


def add_accounts(folders: Folders, names: list[str]) -> dict[str, str]:
    """Make an account for each name that has none, and one for the instructor. Returns {name: password} for the
    accounts made now (existing ones keep their passwords), and rewrites the handout with every password known."""
    accounts = read_accounts(folders)
    made = {}
    for name in [INSTRUCTOR, *names]:
        if name not in accounts:
            made[name] = new_password()
            accounts[name] = password_hash(made[name])
    if made:
        _write_private(folders.accounts, json.dumps(accounts, indent=1, sort_keys=True) + "\n")
        known = _handout_passwords(folders)
        known.update(made)
        lines = [f"{name:<22} {known[name]}" for name in sorted(known, key=lambda n: (n != INSTRUCTOR, n))]
        _write_private(folders.handout, "\n".join(lines) + "\n")
    return made


def _handout_passwords(folders: Folders) -> dict[str, str]:
    try:
        rows = folders.handout.read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        return {}
    return dict(row.split() for row in rows if len(row.split()) == 2)


# ---- the learner's Unix account and copy ----------------------------------------------------------------------

def system_user(name: str) -> str:
    return USER_PREFIX + name


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip() or done.stdout.strip()}")


def ensure_group() -> int:
    try:
        return grp.getgrnam(INSTRUCTORS_GROUP).gr_gid
    except KeyError:
        _run("groupadd", "--system", INSTRUCTORS_GROUP)
        return grp.getgrnam(INSTRUCTORS_GROUP).gr_gid


def ensure_user(folders: Folders, name: str) -> pwd.struct_passwd:
    """The Unix user `lab-NAME` with its home in the hub's folder, made if missing. An existing user of that name
    whose home is elsewhere is not the lab's, and is refused."""
    ensure_group()
    user, home = system_user(name), folders.home(name)
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        extra = ["--groups", INSTRUCTORS_GROUP] if name == INSTRUCTOR else []
        _run("useradd", "--home-dir", str(home), "--no-create-home", "--shell", "/bin/bash", "--user-group",
             "--comment", f"Save and Load Lab hub, {name}", *extra, user)
        entry = pwd.getpwnam(user)
    if Path(entry.pw_dir) != home:
        raise RuntimeError(f"The Unix user {user} exists with the home {entry.pw_dir}, not {home}: it is not this "
                           f"hub's. Remove it (userdel {user}) or use another HUB_DIR.")
    return entry


def prepare_home(folders: Folders, name: str, lab: Path = LAB) -> Path:
    """The learner's home, readable by them and the instructors' group only, holding their copy of the lab (made
    at the first start, or after a reset). Returns the copy's folder."""
    entry = ensure_user(folders, name)
    gid = grp.getgrnam(INSTRUCTORS_GROUP).gr_gid
    home = Path(entry.pw_dir)
    for folder in (folders.root, folders.homes):  # learners pass through, and read nothing else here
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
    home.mkdir(exist_ok=True)
    os.chown(home, entry.pw_uid, gid)
    home.chmod(0o2750)  # owner all, instructors read, others nothing; new files keep the instructors' group
    copy = home / COPY_NAME
    if not copy.exists():
        staging = home / f".{COPY_NAME}.new"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        for item in COPY:
            source = lab / item
            if source.is_dir():
                shutil.copytree(source, staging / item, ignore=shutil.ignore_patterns(
                    "__pycache__", ".ipynb_checkpoints", "*.pyc"))
            elif source.exists():
                shutil.copy2(source, staging / item)
        for source, target in BESIDE.items():
            shutil.copy2(lab / source, staging / target)
        (staging / "artifacts").mkdir()
        for path in [staging, *staging.rglob("*")]:
            os.lchown(path, entry.pw_uid, gid)
        staging.rename(copy)
    return copy


def reset_copy(folders: Folders, name: str) -> Path | None:
    """Set the learner's copy aside (renamed with the time, nothing deleted); the next start makes a fresh one."""
    copy = folders.home(name) / COPY_NAME
    if not copy.exists():
        return None
    aside = copy.with_name(f"{COPY_NAME}.{datetime.datetime.now():%Y%m%d-%H%M%S}")
    copy.rename(aside)
    return aside


# ---- checks before starting -----------------------------------------------------------------------------------

def unreadable_for_others(paths: list[Path]) -> list[Path]:
    """The first folder or file on the way to each of `paths` that another Unix user (a learner) cannot pass
    through (a folder on the way needs x) or read (the path itself needs r, and x for a folder or a program)."""
    problems = []
    for path in paths:
        for part in [*reversed(path.parents), path]:
            mode = part.stat().st_mode
            if part != path:
                needed = stat.S_IXOTH
            else:
                needed = stat.S_IROTH | (stat.S_IXOTH if part.is_dir() or mode & stat.S_IXUSR else 0)
            if mode & needed != needed:
                problems.append(part)
                break
    return list(dict.fromkeys(problems))


def lab_paths_learners_need() -> list[Path]:
    """What every learner's server reads: the lab's Python (the interpreter the environment points at, and its
    standard library), the lab's code, data and settings."""
    return [Path(sys.executable).resolve(), Path(sys.base_prefix) / "lib", Path(sys.prefix) / "bin",
            LAB / "labutils" / "__init__.py", LAB / "data", LAB / "tools" / "lab_server.py"]


def check_machine(folders: Folders) -> list[str]:
    """What stops the hub from serving learners here, each with its fix."""
    problems = []
    if os.name != "posix" or not hasattr(os, "getuid"):
        return ["The hub runs on Linux (it starts each learner's server as a Unix user of their own)."]
    if os.getuid() != 0:
        problems.append("The hub must run as root, to start each learner's server as their own Unix user: "
                        "sudo make hub")
    proxy = LAB / "node_modules" / ".bin" / "configurable-http-proxy"
    if not proxy.exists():
        problems.append("JupyterHub's proxy is not installed: npm ci (make hub runs it; install Node.js and npm "
                        "first, for example apt-get install nodejs npm)")
    for tool in ("useradd", "groupadd"):
        if shutil.which(tool) is None:
            problems.append(f"{tool} is missing: install the passwd package (apt-get install passwd)")
    hub_dir = next(p for p in [folders.root, *folders.root.parents] if p.exists())  # the learners' homes are in it
    for path in unreadable_for_others([p for p in [*lab_paths_learners_need(), hub_dir] if p.exists()]):
        fix = "chmod o+x" if path.is_dir() and path not in [*lab_paths_learners_need(), hub_dir] else "chmod o+rX"
        problems.append(f"Learners' servers run as other users and cannot get through {path}: {fix} {path}, or "
                        f"install the lab and its Python where everyone can read them (for example /srv)")
    return problems


# ---- the shared cache -----------------------------------------------------------------------------------------

def fill_shared_cache(folders: Folders, python: str = sys.executable) -> list[Path]:
    """Put the trained Net that the notebooks start from (their default parameters) into the read-only shared cache:
    taken from the lab's own cache (artifacts/cache, or LAB_ARTIFACTS_DIR's) when it is there, else trained into
    it first (about a minute on 2 cores). Returns the files copied now."""
    folders.cache.mkdir(parents=True, exist_ok=True)
    code = "from labutils.cache import trained_net\nprint(trained_net(progress=False).path)\n"
    env = {key: value for key, value in os.environ.items() if key != "LAB_SHARED_CACHE"}
    done = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, cwd=LAB)
    if done.returncode:
        raise RuntimeError(f"Filling the shared cache failed:\n{done.stderr[-2000:]}")
    made = Path(done.stdout.strip().splitlines()[-1])
    copied = []
    for source in (made, made.with_name(made.name + ".sha256")):
        target = folders.cache / source.name
        if source.exists() and not target.exists():
            shutil.copy2(source, target)
            copied.append(target)
    for path in [folders.cache, *folders.cache.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return copied


# ---- the commands ---------------------------------------------------------------------------------------------

def print_handout(folders: Folders, url: str) -> None:
    print(f"\nThe lab's hub: {url}\nHand each learner one line (name and password); the instructor's is first.\n"
          f"The list is in {folders.handout} (readable by root only).\n")
    print(folders.handout.read_text(encoding="utf-8"))


def hub_command(folders: Folders) -> tuple[list[str], dict]:
    env = {**os.environ, "HUB_DIR": str(folders.root)}
    return [sys.executable, "-m", "jupyterhub", "-f", str(Path(__file__).with_name("jupyterhub_config.py"))], env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/hub/classroom.py", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "accounts", "reset", "check"])
    parser.add_argument("name", nargs="?", help="reset: the learner whose copy to set aside")
    parser.add_argument("--learners", default=os.environ.get("LEARNERS") or "30",
                        help='how many accounts (learner01 ...), or their names: "alice bob" (default 30)')
    args = parser.parse_args(argv)
    folders = Folders()
    url = f"http://{os.environ.get('HUB_IP') or '127.0.0.1'}:{os.environ.get('HUB_PORT') or 8000}/"
    if args.command == "reset":
        if not args.name:
            parser.error("reset needs the learner's name")
        aside = reset_copy(folders, args.name)
        print(f"{args.name}'s copy was set aside as {aside}; the next start of their server makes a fresh one."
              if aside else f"{args.name} has no copy yet: their next start makes one.")
        return 0
    problems = check_machine(folders)
    if problems:
        print("The hub cannot start here:\n" + "\n".join(f"- {p}" for p in problems), file=sys.stderr)
        return 1
    if args.command == "check":
        print("This machine can run the lab's hub.")
        return 0
    made = add_accounts(folders, learner_names(args.learners))
    if args.command == "accounts":
        print(f"{len(made)} new account(s).")
        print_handout(folders, url)
        return 0
    folders.state.mkdir(parents=True, exist_ok=True)
    folders.state.chmod(0o700)
    print(f"The shared cache of trained Nets, {folders.cache}: the Net the notebooks start from (trained now, about a "
          "minute, when the lab's own cache does not have it) ...", flush=True)
    try:
        print("  " + (", ".join(p.name for p in fill_shared_cache(folders)) or "already there"))
    except RuntimeError as err:  # the training failed: its error, then what to run to see it whole
        print(f"{err}\nThe hub did not start. Run `make doctor` to find what is wrong with this machine.",
              file=sys.stderr)
        return 1
    print_handout(folders, url)
    command, env = hub_command(folders)
    os.execvpe(command[0], command, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())


# ---- a hub started for a while (the tests and the rehearsal) --------------------------------------------------

def remove_user(name: str, folders: Folders) -> None:
    """Remove the Unix user `lab-NAME` if it is this hub's (its home in `folders`), with its home."""
    try:
        entry = pwd.getpwnam(system_user(name))
    except KeyError:
        return
    if Path(entry.pw_dir).is_relative_to(folders.homes) or not Path(entry.pw_dir).exists():
        _kill_user_processes(name)
        subprocess.run(["userdel", system_user(name)], capture_output=True)
        shutil.rmtree(entry.pw_dir, ignore_errors=True)


@contextlib.contextmanager
def passable_for_others(paths: list[Path]) -> Iterator[list[Path]]:
    """Let other users pass through the folders on the way to `paths` (o+x) for a while, then put each mode back.
    A test on a machine whose Python lives under /root (pyenv) needs it; `make hub` never does it: it says so."""
    changed = []
    try:
        for _ in range(20):  # one folder at a time: the next one on the way shows once this one is passable
            blocked = [f for f in unreadable_for_others(paths) if f.is_dir() and f not in paths]
            if not blocked:
                break
            for folder in blocked:
                changed.append((folder, folder.stat().st_mode))
                folder.chmod(folder.stat().st_mode | stat.S_IXOTH)
        yield [folder for folder, _ in changed]
    finally:
        for folder, mode in changed:
            folder.chmod(stat.S_IMODE(mode))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def started_hub(folders: Folders, learners: list[str], *, cull_after: int = 3600, log: Path | None = None,
                timeout: float = 60, fill_cache: bool = True) -> Iterator[tuple[str, str, dict[str, str]]]:
    """A hub on free local ports over `folders`, with accounts for `learners` and the instructor. Yields its URL,
    a driver token (a service that may start servers and make tokens) and {name: password}. On exit the hub
    stops (and with it every learner's server) and the learners' Unix users are removed. With `fill_cache`, the
    shared cache gets the notebooks' trained Net first, as `make hub` does."""
    import urllib.request

    for name in [INSTRUCTOR, *learners]:
        remove_user(name, folders)  # left by a run that did not finish
    passwords = add_accounts(folders, learners)
    folders.state.mkdir(parents=True, exist_ok=True)
    folders.state.chmod(0o700)
    if fill_cache:
        fill_shared_cache(folders)
    token = secrets.token_hex(24)
    ports = {"HUB_PORT": _free_port(), "HUB_API_PORT": _free_port(), "HUB_PROXY_API_PORT": _free_port()}
    command, env = hub_command(folders)
    env.update({key: str(value) for key, value in ports.items()}, HUB_DRIVER_TOKEN=token,
               HUB_CULL_AFTER=str(cull_after), HUB_IP="127.0.0.1")
    url = f"http://127.0.0.1:{ports['HUB_PORT']}/"
    with open(log or folders.root / "hub.log", "ab") as out:
        hub = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}hub/api/", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if hub.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"The hub did not start (see {log or folders.root / 'hub.log'})")
            time.sleep(0.3)
        yield url, token, passwords
    finally:
        hub.terminate()  # the hub stops the learners' servers and its proxy (cleanup_servers)
        try:
            hub.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(hub.pid, 9)
        for name in [INSTRUCTOR, *learners]:
            remove_user(name, folders)


def _kill_user_processes(name: str) -> None:
    try:
        uid = pwd.getpwnam(system_user(name)).pw_uid
    except KeyError:
        return
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                os.kill(int(status.parent.name), 9)
        except (OSError, KeyError, ValueError):
            continue
