"""The lab's JupyterHub pieces: the workshop's login and the spawner that gives each learner their own Unix user and
copy of the lab (classroom.py says how they fit; jupyterhub_config.py configures them)."""
from __future__ import annotations

import asyncio
import re

from jupyterhub.auth import Authenticator
from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Unicode

import classroom


class WorkshopAuthenticator(Authenticator):
    """One generated password per account (classroom.py accounts; hashed in HUB_DIR/accounts.json). Only the names
    in that file may log in, so an account added during class (late arrivals) works without a restart."""

    hub_dir = Unicode(str(classroom.HUB_DIR), config=True, help="The hub's folder, holding accounts.json.")

    def _accounts(self) -> dict:
        return classroom.read_accounts(classroom.Folders(self.hub_dir))

    async def authenticate(self, handler, data):
        name = self.normalize_username(data.get("username", ""))
        stored = self._accounts().get(name)
        if stored is None or not re.fullmatch(classroom.NAME_PATTERN, name):
            self.log.warning("Login refused: no account %r", name)
            return None
        if not await asyncio.to_thread(classroom.password_matches, data.get("password", ""), stored):
            self.log.warning("Login refused: wrong password for %r", name)
            return None
        return {"name": name, "admin": name == classroom.INSTRUCTOR}

    def check_allowed(self, username, authentication=None):
        return username in self._accounts()

    def check_allow_config(self):
        """The accounts file is the allow list (JupyterHub would warn that no allow config is set)."""


class LabSpawner(LocalProcessSpawner):
    """LocalProcessSpawner, with the learner's server run as `lab-NAME` (never a Unix account named like the hub
    user: a learner called root stays lab-root), whose home and copy of the lab are made before the first start."""

    hub_dir = Unicode(str(classroom.HUB_DIR), config=True, help="The hub's folder, holding the learners' homes.")

    @property
    def folders(self) -> classroom.Folders:
        return classroom.Folders(self.hub_dir)

    async def start(self):
        copy = await asyncio.to_thread(classroom.prepare_home, self.folders, self.user.name)
        self.log.info("%s's copy of the lab: %s", self.user.name, copy)
        return await super().start()

    def make_preexec_fn(self, name):
        return super().make_preexec_fn(classroom.system_user(name))

    def user_env(self, env):
        import pwd

        entry = pwd.getpwnam(classroom.system_user(self.user.name))
        env.update(USER=entry.pw_name, HOME=entry.pw_dir, SHELL=entry.pw_shell,
                   LAB_ARTIFACTS_DIR=f"{entry.pw_dir}/{classroom.COPY_NAME}/artifacts")
        return env
