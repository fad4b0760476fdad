"""The Jupyter server settings of the lab's container image (binder/Dockerfile copies this file to /etc/jupyter/).

Every server the image starts reads it: Binder's jupyter-lab, a hub's jupyterhub-singleuser and `docker run`. It
serves notebooks through the lab's contents manager, as `make lab` does (tools/lab_server.py says why): opening a
notebook does not mark it changed, so its file stays as committed until the learner edits it, and nbgitpuller
merges an update into it without a conflict the learner never made.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get("LAB_ROOT", "/opt/save-load-lab"), "tools"))  # lab_server.py, lab.py

c = get_config()  # noqa: F821 (Jupyter defines get_config for its configuration files)
c.ServerApp.contents_manager_class = "lab_server.LabContentsManager"
