"""JupyterHub's configuration for the lab's classroom hub (`make hub` starts it through classroom.py).

Read from the environment (the Makefile passes its variables of the same names):
    HUB_DIR          the hub's one folder (default hub/ in the lab)          HUB_IP, HUB_PORT  where it answers
    HUB_API_PORT     the hub's own API, behind the proxy (8081)              HUB_PROXY_API_PORT  the proxy's (8001)
    HUB_CULL_AFTER   seconds of inactivity before a learner's server stops (3600)
    HUB_THREADS      threads per learner's kernel (1: thirty kernels on a few cores do not fight over them)
    HUB_KERNEL_IDLE  seconds before an idle kernel (a notebook left open) stops (1200)
    LAB_LANG=zh-CN   learners' servers open on the Chinese edition, with JupyterLab's menus in Chinese
    HUB_DRIVER_TOKEN an API token for a service that may start servers and make tokens (the tests and the rehearsal)
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # tools/, for lab.py
import classroom  # noqa: E402
import lab  # noqa: E402  (tools/lab.py: what each edition's file browser hides)
import lab_hub  # noqa: E402

c = get_config()  # noqa: F821  (JupyterHub provides it)
folders = classroom.Folders(Path(os.environ.get("HUB_DIR") or classroom.HUB_DIR))
language = os.environ.get("LAB_LANG") or "en"
python = sys.executable  # the lab's environment: the hub, the learners' servers and their kernels all run it

c.JupyterHub.ip = os.environ.get("HUB_IP") or "127.0.0.1"
c.JupyterHub.port = int(os.environ.get("HUB_PORT") or 8000)
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("HUB_API_PORT") or 8081)
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{int(os.environ.get('HUB_PROXY_API_PORT') or 8001)}"
c.ConfigurableHTTPProxy.command = [str(classroom.LAB / "node_modules" / ".bin" / "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = str(folders.state / "proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{folders.state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(folders.state / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(folders.state / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True  # a hub stopped with Ctrl-C stops the learners' servers too

c.JupyterHub.authenticator_class = lab_hub.WorkshopAuthenticator
c.WorkshopAuthenticator.hub_dir = str(folders.root)
c.Authenticator.admin_users = {classroom.INSTRUCTOR}

c.JupyterHub.spawner_class = lab_hub.LabSpawner
c.LabSpawner.hub_dir = str(folders.root)
c.Spawner.cmd = [python, str(Path(__file__).with_name("singleuser.py"))]
c.Spawner.default_url = f"/lab/tree/{classroom.COPY_NAME}/{classroom.FIRST_NOTEBOOK[language]}"
settings = classroom.LAB / "tools" / "jupyterlab" / ("zh-CN" if language == "zh-CN" else "")
c.Spawner.args = ["--ServerApp.contents_manager_class=lab_server.LabContentsManager",
                  f"--FileContentsManager.preferred_dir={classroom.COPY_NAME}/notebooks",
                  f"--LabApp.app_settings_dir={settings}",
                  # a notebook left open keeps its kernel (about 1 GB here); one idle for HUB_KERNEL_IDLE seconds
                  # stops, open tab or not, and the next cell run in it starts a new one (seen in Chromium)
                  f"--MappingKernelManager.cull_idle_timeout={int(os.environ.get('HUB_KERNEL_IDLE') or 1200)}",
                  "--MappingKernelManager.cull_connected=True",  # an open tab counts as idle too
                  "--MappingKernelManager.cull_interval=60",
                  *lab.hidden_args(language)]  # the file browser shows the learners' edition only
threads = os.environ.get("HUB_THREADS") or "1"
c.Spawner.environment = {
    "PATH": f"{Path(python).parent}:/usr/local/bin:/usr/bin:/bin",  # a terminal's python is the lab's
    "JUPYTER_PREFER_ENV_PATH": "1",  # the lab's kernel, as tools/lab.py sets it
    "LAB_DATA_DIR": str(classroom.LAB / "data"),
    "LAB_SHARED_CACHE": str(folders.cache),
    "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
    "LANG": "C.UTF-8",
}
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 60

cull_after = int(os.environ.get("HUB_CULL_AFTER") or 3600)
c.JupyterHub.services = [{"name": "idle-culler",
                          "command": [python, "-m", "jupyterhub_idle_culler", f"--timeout={cull_after}",
                                      f"--cull-every={max(10, min(300, cull_after // 2))}"]}]
c.JupyterHub.load_roles = [{"name": "idle-culler", "services": ["idle-culler"],
                            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]}]
if os.environ.get("HUB_DRIVER_TOKEN"):
    c.JupyterHub.services.append({"name": "driver", "api_token": os.environ["HUB_DRIVER_TOKEN"]})
    c.JupyterHub.load_roles.append({"name": "driver", "services": ["driver"],
                                    "scopes": ["admin:users", "admin:servers", "tokens", "list:users"]})
