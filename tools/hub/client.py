"""A small client of the lab's hub, as a learner's browser uses it: the login form, the hub's REST API, a learner's
server's contents API, and a kernel's websocket to run a notebook's cells. The hub tests (tests/test_hub.py) and
the rehearsal (tools/hub/rehearsal.py) drive the hub with it. Standard library and tornado (JupyterHub's own) only.
"""
from __future__ import annotations

import asyncio
import http.cookiejar
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


class HubError(RuntimeError):
    pass


def request(url: str, method: str = "GET", *, token: str | None = None, body=None, opener=None,
            data: bytes | None = None, headers: dict | None = None, timeout: float = 60) -> tuple[int, bytes]:
    """(status, body) of one HTTP request; an HTTP error status is returned, not raised."""
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"token {token}"
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with (opener or urllib.request.build_opener(NoRedirect)).open(req, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Hub:
    """The hub at `url` (http://127.0.0.1:8000/), driven with a service token that may start servers and make
    users' tokens (jupyterhub_config.py's HUB_DRIVER_TOKEN)."""

    def __init__(self, url: str, token: str | None = None):
        self.url = url.rstrip("/") + "/"
        self.token = token

    def api(self, path: str, method: str = "GET", body=None, token: str | None = None, expect=(200, 201, 202, 204)):
        status, data = request(f"{self.url}hub/api/{path}", method, token=token or self.token, body=body)
        if status not in expect:
            raise HubError(f"{method} hub/api/{path}: HTTP {status} {data[:300]!r}")
        return json.loads(data) if data else None

    def login(self, name: str, password: str) -> int:
        """Log in through the login form, as a browser does; returns the HTTP status (302: logged in)."""
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
        request(f"{self.url}hub/login", opener=opener)
        xsrf = next((c.value for c in jar if c.name == "_xsrf"), "")
        form = urllib.parse.urlencode({"username": name, "password": password, "_xsrf": xsrf}).encode()
        status, _ = request(f"{self.url}hub/login", "POST", data=form, opener=opener,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        return status

    def user_token(self, name: str) -> str:
        return self.api(f"users/{name}/tokens", "POST", {"note": "lab hub client", "expires_in": 3600})["token"]

    def start(self, name: str, timeout: float = 120) -> None:
        """Start the learner's server (no-op when it runs) and wait until it answers."""
        user = self.api(f"users/{name}")
        if not user.get("servers", {}).get("", {}).get("ready"):
            self.api(f"users/{name}/server", "POST", expect=(201, 202, 400))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.api(f"users/{name}").get("servers", {}).get("", {})
            if server.get("ready"):
                return
            time.sleep(0.5)
        raise HubError(f"{name}'s server did not start within {timeout:.0f} s")

    def stop(self, name: str) -> None:
        self.api(f"users/{name}/server", "DELETE", expect=(202, 204, 400))
        for _ in range(120):
            if not self.api(f"users/{name}").get("servers"):
                return
            time.sleep(0.5)


class Server:
    """A learner's server behind the hub, reached with a token of theirs (or one that may access it)."""

    def __init__(self, hub: Hub, name: str, token: str):
        self.hub, self.name, self.token = hub, name, token
        self.base = f"{hub.url}user/{name}/"

    def get(self, path: str) -> tuple[int, bytes]:
        return request(self.base + path, token=self.token)

    def api(self, path: str, method: str = "GET", body=None, expect=(200, 201, 204)):
        status, data = request(f"{self.base}api/{path}", method, token=self.token, body=body)
        if status not in expect:
            raise HubError(f"{method} user/{self.name}/api/{path}: HTTP {status} {data[:300]!r}")
        return json.loads(data) if data else None

    def notebook(self, path: str) -> dict:
        return self.api(f"contents/{urllib.parse.quote(path)}?content=1")["content"]

    def save(self, path: str, nb: dict) -> None:
        self.api(f"contents/{urllib.parse.quote(path)}", "PUT", {"type": "notebook", "format": "json",
                                                                    "content": nb})

    def kernel(self, notebook: str | None = None) -> Kernel:
        """A new kernel; for a `notebook` (its path), through a session as JupyterLab opens one, so that the kernel
        runs in the notebook's folder (its relative paths, such as scripts/ and ../artifacts/, then hold)."""
        if notebook is None:
            return Kernel(self, self.api("kernels", "POST", {"name": "python3"})["id"])
        session = self.api("sessions", "POST", {"path": notebook, "name": notebook.rsplit("/", 1)[-1],
                                                 "type": "notebook", "kernel": {"name": "python3"}})
        return Kernel(self, session["kernel"]["id"], session["id"])


class CellError(HubError):
    """A cell that raised; `outputs` are the cell's outputs, its traceback last."""

    def __init__(self, message: str, outputs: list | None = None):
        super().__init__(message)
        self.outputs = outputs or []


class Kernel:
    """A kernel in a learner's server, run over its websocket as JupyterLab does."""

    def __init__(self, server: Server, kernel_id: str, session_id: str | None = None):
        self.server, self.id, self.session_id = server, kernel_id, session_id
        self.session = uuid.uuid4().hex
        self.ws = None

    async def connect(self) -> Kernel:
        url = self.server.base.replace("http", "ws", 1) + f"api/kernels/{self.id}/channels?session_id={self.session}"
        self.ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {self.server.token}"}),
                                          max_message_size=256 * 2**20)
        return self

    async def execute(self, code: str, timeout: float = 600) -> list[dict]:
        """Run `code`; return its outputs as nbformat output dicts. An error in the cell raises CellError."""
        msg_id = uuid.uuid4().hex
        await self.ws.write_message(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": self.session,
                       "username": self.server.name, "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        outputs, idle, reply = [], False, None
        deadline = time.monotonic() + timeout
        while not (idle and reply):
            raw = await asyncio.wait_for(self.ws.read_message(), max(1.0, deadline - time.monotonic()))
            if raw is None:
                raise HubError(f"{self.server.name}'s kernel {self.id}: the websocket closed")
            if isinstance(raw, bytes):  # a binary frame (buffers of a widget message): not an output
                continue
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content.get("execution_state") == "idle":
                idle = True
            elif kind == "execute_reply":
                reply = content
            elif kind == "stream":
                outputs.append({"output_type": "stream", "name": content["name"], "text": content["text"]})
            elif kind in ("display_data", "execute_result"):
                out = {"output_type": kind, "data": content["data"], "metadata": content.get("metadata", {})}
                if kind == "execute_result":
                    out["execution_count"] = content.get("execution_count")
                outputs.append(out)
            elif kind == "error":
                outputs.append({"output_type": "error", "ename": content["ename"], "evalue": content["evalue"],
                                "traceback": content["traceback"]})
        if reply.get("status") != "ok":
            raise CellError(f"{reply.get('ename')}: {reply.get('evalue')}", outputs)
        return outputs

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
        if self.session_id:  # closing the notebook's session shuts its kernel down
            self.server.api(f"sessions/{self.session_id}", "DELETE", expect=(204, 404))
        else:
            self.server.api(f"kernels/{self.id}", "DELETE", expect=(204, 404))


def parameterised(nb: dict, parameters: dict) -> dict:
    """The notebook with a cell that sets `parameters` after its cell tagged "parameters", as papermill injects."""
    if not parameters:
        return nb
    where = next((i for i, cell in enumerate(nb["cells"]) if "parameters" in cell.get("metadata", {}).get("tags", [])),
                 None)
    if where is None:
        raise HubError("the notebook has no cell tagged parameters")
    source = "\n".join(f"{key} = {value!r}" for key, value in parameters.items())
    cell = {"cell_type": "code", "source": source, "metadata": {"tags": ["injected-parameters"]}, "outputs": [],
            "execution_count": None}
    return {**nb, "cells": [*nb["cells"][:where + 1], cell, *nb["cells"][where + 1:]]}


async def run_notebook(server: Server, path: str, parameters: dict | None = None, *, save: bool = True,
                       probe: str | None = None, edit=None, timeout: float = 600) -> dict:
    """Run the notebook at `path` (relative to the learner's home) top to bottom in a new kernel, as a learner
    with Run All; with `save`, write it back with its outputs, as their Save does. `edit(nb)` may change it first
    (a learner's answer). `probe`, code run after the last cell, returns its printed output (not saved).
    Returns {"seconds": wall time, "probe": printed text}."""
    nb = server.notebook(path)
    if edit is not None:
        edit(nb)
    nb = parameterised(nb, parameters or {})
    kernel = await server.kernel(path).connect()
    started = time.monotonic()
    try:
        for count, cell in enumerate((c for c in nb["cells"] if c["cell_type"] == "code"), start=1):
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            cell["execution_count"] = count
            try:
                cell["outputs"] = await kernel.execute(source, timeout)
            except CellError as err:
                cell["outputs"] = err.outputs
                raise CellError(f"{server.name}: {path}, code cell {count}: {err}", err.outputs) from None
        seconds = time.monotonic() - started
        printed = ""
        if probe:
            printed = "".join(o.get("text", "") for o in await kernel.execute(probe, timeout)
                              if o["output_type"] == "stream")
    finally:
        kernel.close()
        if save:  # what the learner's Save keeps: the outputs so far, an error's included
            nb["cells"] = [c for c in nb["cells"] if "injected-parameters" not in c["metadata"].get("tags", [])]
            server.save(path, nb)
    return {"seconds": seconds, "probe": printed}
