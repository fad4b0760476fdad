"""A learner's server on the lab's hub: jupyterhub-singleuser with the lab's contents manager (tools/lab_server.py:
opening a notebook changes nothing), as `make lab` runs JupyterLab. tools/ goes on this process's path only, not
on the kernels'."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lab_server  # noqa: E402  (tools/lab_server.py)

sys.modules.setdefault("lab_server", lab_server)

if __name__ == "__main__":
    from jupyterhub.singleuser import main

    sys.exit(main())
