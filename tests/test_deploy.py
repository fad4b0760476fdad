"""The lab past one server, checked without building an image, deploying or reaching the network.

binder/Dockerfile is the image Binder builds and a Zero to JupyterHub deployment runs; deploy/z2jh/values.yaml is the
Helm chart's values; deploy/README.md hands out the Binder and nbgitpuller links. The checks: every file the image
copies is in the repository; requirements.txt is the one place its versions are written; the image keeps Binder's
rules; every key of the values is one the chart's schema allows (a part of that schema written out below, and the
chart's whole schema file when LAB_Z2JH_SCHEMA names it: deploy/README.md says how to get it); every link is well
formed and opens a notebook that exists. Each check is also shown saying no.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shlex
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
import yaml

from labutils.paths import REPO_ROOT

DOCKERFILE = REPO_ROOT / "binder" / "Dockerfile"
SERVER_CONFIG = REPO_ROOT / "binder" / "jupyter_server_config.py"
VALUES = REPO_ROOT / "deploy" / "z2jh" / "values.yaml"
DEPLOY_README = REPO_ROOT / "deploy" / "README.md"
CHART_VERSION = "4.4.0"
# Versions the Dockerfile may write itself: none, every one comes from requirements.txt (nbgitpuller included).
PINNED_IN_DOCKERFILE: set[str] = set()
LAB_FOLDER = "save-load-lab"  # the learner's copy, ~/save-load-lab, on Binder, on a hub and in nbgitpuller's links


# --- binder/Dockerfile --------------------------------------------------------------------------------------------

def instructions(text: str) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments): comment lines dropped, continued lines joined."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\[ \t]*\n", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            found.append((keyword.upper(), arguments.strip()))
    return found


def copy_sources(text: str) -> list[str]:
    """The build-context paths that COPY and ADD take (not those copied from another stage)."""
    sources = []
    for keyword, arguments in instructions(text):
        if keyword not in ("COPY", "ADD") or "--from=" in arguments:
            continue
        words = json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)
        sources += [word for word in words if not word.startswith("--")][:-1]
    return sources


def missing_sources(text: str) -> list[str]:
    """The COPY/ADD sources that a clone of the repository lacks: absent, or ignored by git."""
    missing = []
    for source in copy_sources(text):
        present = list(REPO_ROOT.glob(source)) if any(c in source for c in "*?[") else [REPO_ROOT / source]
        ignored = subprocess.run(["git", "check-ignore", "-q", source], cwd=REPO_ROOT).returncode == 0
        if not all(path.exists() for path in present) or not present or ignored:
            missing.append(source)
    return missing


def stray_pins(text: str) -> list[str]:
    """Packages whose version a RUN instruction writes itself (name==version), other than PINNED_IN_DOCKERFILE."""
    pinned = []
    for keyword, arguments in instructions(text):
        if keyword == "RUN":
            pinned += re.findall(r"(?<![\w.)-])([A-Za-z0-9][A-Za-z0-9._-]*)==[0-9]", arguments)
    return [name for name in pinned if name.lower() not in PINNED_IN_DOCKERFILE]


def base_image_problems(text: str) -> list[str]:
    """What is wrong with the FROM line: Binder needs a tag other than latest, and a rebuild must get the same Python
    and Debian release (a full X.Y.Z tag naming the release, or a digest), the Python environment.yml names."""
    froms = [arguments for keyword, arguments in instructions(text) if keyword == "FROM"]
    if len(froms) != 1:
        return [f"{len(froms)} FROM lines, expected one"]
    image = froms[0].split()[0]
    python = re.search(r"^\s*-\s*python=(\d+\.\d+)\s*$", (REPO_ROOT / "environment.yml").read_text(), re.M).group(1)
    name, _, tag = image.partition("@")[0].partition(":")
    problems = []
    if name not in ("python", "docker.io/library/python"):
        problems.append(f"{image}: not the official python image")
    if not re.fullmatch(rf"{re.escape(python)}\.\d+-slim-[a-z]+", tag) and "@sha256:" not in image:
        problems.append(f"{image}: want python:{python}.Z-slim-<debian release> (or a digest), not a moving tag")
    return problems


def binder_rule_problems(text: str) -> list[str]:
    """Binder's Dockerfile rules: NB_USER and NB_UID taken as build arguments, HOME set to the user's home folder,
    the server not run as root, no ENTRYPOINT that could swallow the command Binder and JupyterHub give."""
    steps = instructions(text)
    args = {arguments.split("=")[0] for keyword, arguments in steps if keyword == "ARG"}
    env = " ".join(arguments for keyword, arguments in steps if keyword == "ENV")
    users = [arguments for keyword, arguments in steps if keyword == "USER"]
    problems = [f"ARG {name} missing" for name in ("NB_USER", "NB_UID") if name not in args]
    if not re.search(r"\bHOME=/home/\$\{NB_USER\}", env):
        problems.append("ENV HOME=/home/${NB_USER} missing")
    if not users or users[-1] not in ("${NB_USER}", "$NB_USER"):
        problems.append(f"the last USER is {users[-1] if users else 'root (none given)'}, not ${{NB_USER}}")
    if any(keyword == "ENTRYPOINT" for keyword, _ in steps):
        problems.append("an ENTRYPOINT")
    return problems


def env_value(text: str, name: str) -> str:
    """An ENV variable's value as the Dockerfile writes it (with ${...} unexpanded)."""
    for keyword, arguments in instructions(text):
        if keyword == "ENV":
            for word in shlex.split(arguments):
                key, _, value = word.partition("=")
                if key == name:
                    return value
    raise KeyError(name)


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s#]+)", line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


DOCKER_TEXT = DOCKERFILE.read_text()


def test_every_file_the_image_copies_is_in_the_repository():
    sources = copy_sources(DOCKER_TEXT)
    assert {"requirements.txt", "labutils", "data", "notebooks", "binder/jupyter_server_config.py"} <= set(sources)
    assert missing_sources(DOCKER_TEXT) == []
    # the files its RUN steps take from what was copied
    for used in re.findall(r"\bcp (\S+)", DOCKER_TEXT):
        assert (REPO_ROOT / used).is_file(), used


def test_a_copy_of_a_missing_or_ignored_file_is_found():
    missing = missing_sources("COPY requirements.txt notebooks/nothing-here.ipynb /x/\n")
    assert missing == ["notebooks/nothing-here.ipynb"]
    assert missing_sources("COPY --chown=1000 artifacts /x\nCOPY [\"data\", \"/y\"]\n") == ["artifacts"]
    assert copy_sources("COPY --from=build /a /b\nADD \\\n  tools \\\n  /t\n") == ["tools"]


def test_the_image_takes_its_versions_from_requirements_txt():
    runs = " ".join(arguments for keyword, arguments in instructions(DOCKER_TEXT) if keyword == "RUN")
    assert re.search(r"pip install -r requirements\.txt\b", runs)
    assert stray_pins(DOCKER_TEXT) == []
    # the CPU wheels' pins are read from requirements.txt by the Makefile's own sed expression
    sed = re.search(r"sed -n -E '([^']+)' requirements\.txt", runs).group(1)
    assert f"sed -n -E '{sed}' requirements.txt" in (REPO_ROOT / "Makefile").read_text()
    read = subprocess.run(["sed", "-n", "-E", sed, "requirements.txt"], cwd=REPO_ROOT, capture_output=True,
                          text=True, check=True).stdout.split()
    pins = requirement_pins()
    assert read == [f"torch=={pins['torch']}", f"torchvision=={pins['torchvision']}"]
    # what a hub's learner server needs is pinned there: jupyterhub-singleuser comes with jupyterhub
    assert {"jupyterhub", "jupyterlab", "ipykernel", "nbgitpuller"} <= set(pins)
    assert not set(PINNED_IN_DOCKERFILE) & set(pins), "pinned in requirements.txt now: drop the Dockerfile's pin"


def test_a_version_written_in_the_dockerfile_is_found():
    found = stray_pins("RUN pip install torch==2.0.0 -r requirements.txt nbgitpuller==1.3.0\n")
    assert found == ["torch", "nbgitpuller"]
    assert stray_pins("RUN sed -n -E 's/^(torch|torchvision)==([^ #]+).*/\\1==\\2/p' requirements.txt\n") == []


def test_the_base_image_is_pinned_to_the_labs_python():
    assert base_image_problems(DOCKER_TEXT) == []
    assert base_image_problems("FROM python:3.11-slim\n")
    assert base_image_problems("FROM python:latest\n")
    assert base_image_problems("FROM python:3.12.9-slim-trixie\n")  # not environment.yml's Python
    assert base_image_problems("FROM python:3.11.14-slim-trixie\nFROM python:3.11.14-slim-trixie\n")
    assert not base_image_problems("FROM python:3.11-slim@sha256:" + "0" * 64 + "\n")


def test_the_image_keeps_binders_rules():
    assert binder_rule_problems(DOCKER_TEXT) == []
    root = DOCKER_TEXT.replace("USER ${NB_USER}", "USER root")
    assert binder_rule_problems(root) == ["the last USER is root, not ${NB_USER}"]
    assert "ARG NB_UID missing" in binder_rule_problems("FROM python:3.11.14-slim-trixie\nARG NB_USER=jovyan\n")
    assert "an ENTRYPOINT" in binder_rule_problems(DOCKER_TEXT + 'ENTRYPOINT ["tini", "--"]\n')


def test_the_image_opens_notebook_00_and_keeps_artifacts_in_the_learners_copy():
    cmd = json.loads(next(arguments for keyword, arguments in instructions(DOCKER_TEXT) if keyword == "CMD"))
    default_url = next(word.split("=", 1)[1] for word in cmd if word.startswith("--LabApp.default_url="))
    assert lab_tree_notebook(default_url.lstrip("/")) == REPO_ROOT / "notebooks" / "00_welcome.ipynb"
    assert env_value(DOCKER_TEXT, "LAB_ARTIFACTS_DIR") == f"${{HOME}}/{LAB_FOLDER}/artifacts"
    assert env_value(DOCKER_TEXT, "LAB_SHARED_CACHE").startswith("${LAB_ROOT}/")
    # the learner's copy holds what the classroom hub copies: notebooks/, images/, docs/, tools/, README*.md
    copied = set()
    for keyword, arguments in instructions(DOCKER_TEXT):
        words = arguments.split()
        if keyword == "COPY" and words[-1].startswith(f"${{HOME}}/{LAB_FOLDER}"):
            copied.update(words[:-1])
    # the same copy as the classroom hub's, whose list is tools/hub/classroom.py's
    sys.path.insert(0, str(REPO_ROOT / "tools" / "hub"))
    import classroom

    assert copied == set(classroom.COPY) | set(classroom.BESIDE)


def test_the_servers_settings_name_the_labs_contents_manager(monkeypatch):
    from traitlets.config.loader import PyFileConfigLoader
    from traitlets.utils.importstring import import_item

    assert env_value(DOCKER_TEXT, "LAB_ROOT") in SERVER_CONFIG.read_text()  # its default is the image's folder
    monkeypatch.setenv("LAB_ROOT", str(REPO_ROOT))
    monkeypatch.setattr(sys, "path", list(sys.path))  # the settings put the image's tools/ first
    config = PyFileConfigLoader(SERVER_CONFIG.name, path=str(SERVER_CONFIG.parent)).load_config()
    manager = import_item(config.ServerApp.contents_manager_class)
    assert manager.__name__ == "LabContentsManager" and manager.__module__ == "lab_server"
    with pytest.raises(ImportError):
        import_item("lab_server.NoSuchManager")


# --- deploy/z2jh/values.yaml ---------------------------------------------------------------------------------------

def _closed(**properties) -> dict:
    return {"type": "object", "additionalProperties": False, "properties": properties}


def _leaf(*types: str) -> dict:
    return {"type": list(types)}


# The part of the jupyterhub chart's values.schema.yaml (4.4.0) that the lab's values use, written out from it: each
# object closed where the chart closes it, each value with the chart's types. hub.config takes any JupyterHub class
# (a capitalised name), as the chart's does; its traits are checked against JupyterHub itself below.
CHART_SCHEMA_PART = _closed(
    hub=_closed(config={"type": "object", "additionalProperties": False,
                        "patternProperties": {"^[A-Z].*$": {"type": "object", "additionalProperties": True}}}),
    singleuser=_closed(
        image=_closed(name=_leaf("string"), tag=_leaf("string")),
        cpu=_closed(guarantee=_leaf("number", "null"), limit=_leaf("number", "null")),
        memory=_closed(guarantee=_leaf("number", "string", "null"), limit=_leaf("number", "string", "null")),
        storage=_closed(capacity=_leaf("string", "null")),
        defaultUrl=_leaf("string", "null"),
    ),
    cull=_closed(enabled=_leaf("boolean"), timeout=_leaf("integer", "null"), every=_leaf("integer", "null")),
)


def schema_errors(values: dict, schema: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return sorted(f"{'.'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
                  for error in validator.iter_errors(values))


def without_required(schema):
    """The schema without its `required` lists: Helm validates the chart's defaults merged with these values, which
    supply what the chart requires; the lab's file alone holds only what it changes."""
    if isinstance(schema, dict):
        schema = {key: value for key, value in schema.items() if key not in ("required", "description")}
        for key in ("properties", "patternProperties"):
            if key in schema:
                schema[key] = {name: without_required(part) for name, part in schema[key].items()}
        for key in ("items", "additionalProperties", "not"):
            if isinstance(schema.get(key), dict):
                schema[key] = without_required(schema[key])
        for key in ("anyOf", "oneOf", "allOf"):
            if key in schema:
                schema[key] = [without_required(part) for part in schema[key]]
    return schema


def leaf_types(schema: dict, path: tuple = ()) -> dict[tuple, set[str]]:
    """Every path of named properties in a schema, with the types it allows."""
    found = {}
    for name, part in schema.get("properties", {}).items():
        types = part.get("type", [])
        found[path + (name,)] = {types} if isinstance(types, str) else set(types)
        found.update(leaf_types(part, path + (name,)))
    return found


VALUES_TEXT = VALUES.read_text()
LAB_VALUES = yaml.safe_load(VALUES_TEXT)
MISSPELT = copy.deepcopy(LAB_VALUES)
MISSPELT["singleuser"]["memory"]["limt"] = MISSPELT["singleuser"]["memory"].pop("limit")


def test_every_key_of_the_values_is_one_the_chart_allows():
    jsonschema.Draft7Validator.check_schema(CHART_SCHEMA_PART)
    assert schema_errors(LAB_VALUES, CHART_SCHEMA_PART) == []


def test_a_misspelt_key_is_refused():
    assert schema_errors(MISSPELT, CHART_SCHEMA_PART) == [
        "singleuser.memory: Additional properties are not allowed ('limt' was unexpected)"]
    wrong_type = copy.deepcopy(LAB_VALUES)
    wrong_type["cull"]["timeout"] = "1h"
    assert [error.split(":")[0] for error in schema_errors(wrong_type, CHART_SCHEMA_PART)] == ["cull.timeout"]
    lowercase = copy.deepcopy(LAB_VALUES)
    lowercase["hub"]["config"]["jupyterhub"] = {}
    assert schema_errors(lowercase, CHART_SCHEMA_PART)


def chart_schema() -> dict:
    location = os.environ.get("LAB_Z2JH_SCHEMA")
    if not location:
        pytest.skip(f"LAB_Z2JH_SCHEMA is not set: it names the values.schema.json of the jupyterhub chart "
                    f"{CHART_VERSION} (deploy/README.md says how to get it)")
    return yaml.safe_load(Path(location).read_text())  # the chart's .json, or its source values.schema.yaml


def test_the_charts_own_schema_allows_the_values_and_refuses_a_misspelt_key():
    schema = without_required(chart_schema())
    assert schema_errors(LAB_VALUES, schema) == []
    assert schema_errors(MISSPELT, schema) == [
        "singleuser.memory: Additional properties are not allowed ('limt' was unexpected)"]
    # the part written out above says what the chart's schema says
    theirs = leaf_types(schema)
    for path, types in leaf_types(CHART_SCHEMA_PART).items():
        assert path in theirs, f"{'.'.join(path)} is not in the chart's schema"
        assert theirs[path] == types, f"{'.'.join(path)}: the chart says {theirs[path]}, the part says {types}"


def hub_config_problems(config: dict) -> list[str]:
    """hub.config's classes and traits that JupyterHub (the version requirements.txt pins) does not have, and an
    authenticator_class that names no installed authenticator."""
    from jupyterhub.app import JupyterHub
    from jupyterhub.auth import Authenticator

    authenticators = {point.name: point.load() for point in entry_points(group="jupyterhub.authenticators")}
    classes = {"JupyterHub": JupyterHub, "Authenticator": Authenticator}
    classes.update({cls.__name__: cls for cls in authenticators.values()})
    problems = []
    for section, traits in config.items():
        cls = classes.get(section)
        if cls is None:
            problems.append(f"{section}: no such class in JupyterHub")
            continue
        problems += [f"{section}.{name}: no such trait" for name in traits
                     if name not in cls.class_trait_names(config=True)]
    chosen = config.get("JupyterHub", {}).get("authenticator_class")
    if chosen not in authenticators:
        problems.append(f"authenticator_class {chosen!r}: not one of {sorted(authenticators)}")
    return problems


def test_the_hub_settings_name_jupyterhubs_own_classes_and_traits():
    assert hub_config_problems(LAB_VALUES["hub"]["config"]) == []
    wrong = copy.deepcopy(LAB_VALUES["hub"]["config"])
    wrong["Authenticator"]["allow_al"] = wrong["Authenticator"].pop("allow_all")
    wrong["JupyterHub"]["authenticator_class"] = "shared-pasword"
    problems = hub_config_problems(wrong)
    assert problems[0] == "Authenticator.allow_al: no such trait" and len(problems) == 2
    assert problems[1].startswith("authenticator_class 'shared-pasword': not one of [")
    assert "'shared-password'" in problems[1]
    misnamed = {**LAB_VALUES["hub"]["config"], "GenericOAuthenticatr": {}}
    assert hub_config_problems(misnamed) == ["GenericOAuthenticatr: no such class in JupyterHub"]


SIZED = re.compile(r"^\s+(guarantee|limit):.*# sizing: docs/INSTRUCTOR\.md$")


def unsized_lines(text: str) -> list[str]:
    """The guarantee and limit lines under singleuser's cpu and memory that do not say where their numbers come from."""
    section, missing = None, []
    for line in text.splitlines():
        key = re.match(r"^( *)([A-Za-z]\w*):", line)
        if key and len(key.group(1)) <= 2:
            section = key.group(2) if key.group(1) else None
        elif key and section in ("cpu", "memory") and key.group(2) in ("guarantee", "limit") and not SIZED.match(line):
            missing.append(line.strip())
    return missing


def test_the_cpu_and_memory_numbers_say_where_their_sizing_lives():
    resources = {key: LAB_VALUES["singleuser"][key] for key in ("cpu", "memory")}
    assert set(resources["cpu"]) == set(resources["memory"]) == {"guarantee", "limit"}
    assert unsized_lines(VALUES_TEXT) == []
    assert unsized_lines(VALUES_TEXT.replace("limit: 4G  # sizing: docs/INSTRUCTOR.md", "limit: 4G")) == ["limit: 4G"]


def test_the_image_tag_is_not_latest_and_culling_is_on():
    assert LAB_VALUES["singleuser"]["image"]["tag"] not in ("", "latest")
    assert LAB_VALUES["cull"]["enabled"] is True and LAB_VALUES["cull"]["timeout"] > 0
    assert CHART_VERSION in VALUES_TEXT.split("\n\n")[0]  # the header names the chart version the keys were checked on


# --- the nbgitpuller and Binder links ------------------------------------------------------------------------------

def lab_tree_notebook(urlpath: str, folder: str = LAB_FOLDER) -> Path | None:
    """The repository's notebook that `lab/tree/<folder>/<path>` opens in the learner's copy, or None."""
    prefix = f"lab/tree/{folder}/"
    if not urlpath.startswith(prefix):
        return None
    path = REPO_ROOT / urlpath[len(prefix):]
    return path if path.suffix == ".ipynb" and path.is_file() else None


def pull_link_problems(link: str) -> list[str]:
    """What is wrong with an nbgitpuller link: the hand-out form (https://HUB/hub/user-redirect/git-pull?...) or the
    server-relative one of singleuser.defaultUrl (/git-pull?...). It must name the repository, the branch, the folder
    (targetPath, the learner's copy) and a urlpath that opens one of the lab's notebooks there in JupyterLab."""
    parts = urlsplit(link)
    query = parse_qs(parts.query, keep_blank_values=True)
    problems = []
    if parts.scheme:
        if parts.scheme != "https" or not parts.netloc or not parts.path.endswith("/hub/user-redirect/git-pull"):
            problems.append(f"{parts.scheme}://{parts.netloc}{parts.path}: want https://HUB/hub/user-redirect/git-pull")
    elif parts.path != "/git-pull":
        problems.append(f"{parts.path}: want /git-pull")
    for name in ("repo", "branch", "targetPath", "urlpath"):
        if len(query.get(name, [])) != 1 or not query[name][0]:
            problems.append(f"{name}: want it once, found {query.get(name, [])}")
    if problems:
        return problems
    repo = urlsplit(query["repo"][0])
    if repo.scheme != "https" or not repo.netloc or len(repo.path.strip("/").split("/")) != 2:
        problems.append(f"repo {query['repo'][0]}: want https://HOST/OWNER/NAME")
    if query["targetPath"][0] != LAB_FOLDER:
        problems.append(f"targetPath {query['targetPath'][0]}: the image keeps artifacts in ~/{LAB_FOLDER}")
    if lab_tree_notebook(query["urlpath"][0], query["targetPath"][0]) is None:
        problems.append(f"urlpath {query['urlpath'][0]}: want lab/tree/<targetPath>/<a notebook of the lab>")
    return problems


LINK = re.compile(r"https://[^\s)<>`\"']+")


def links(text: str, marker: str) -> list[str]:
    return [link for link in LINK.findall(text) if marker in link]


def test_the_default_url_pulls_the_lab_and_opens_notebook_00():
    assert pull_link_problems(LAB_VALUES["singleuser"]["defaultUrl"]) == []
    query = parse_qs(urlsplit(LAB_VALUES["singleuser"]["defaultUrl"]).query)
    assert lab_tree_notebook(query["urlpath"][0]) == REPO_ROOT / "notebooks" / "00_welcome.ipynb"


def test_the_links_in_the_docs_are_well_formed():
    readme = DEPLOY_README.read_text()
    handed_out = links(readme, "/git-pull?")
    assert handed_out, "deploy/README.md gives no nbgitpuller link"
    # the instructor guide's, once it has the section
    handed_out += links((REPO_ROOT / "docs" / "INSTRUCTOR.md").read_text(), "/git-pull?")
    for link in handed_out:
        assert pull_link_problems(link) == [], link
        assert parse_qs(urlsplit(link).query) == parse_qs(urlsplit(LAB_VALUES["singleuser"]["defaultUrl"]).query)
    binder = links(readme, "mybinder.org/v2/")
    assert binder, "deploy/README.md gives no Binder link"
    for link in binder:
        urlpath = parse_qs(urlsplit(link).query).get("urlpath", [""])[0]
        assert lab_tree_notebook(urlpath) is not None, link


def test_a_broken_link_is_found():
    good = ("https://hub.example.org/hub/user-redirect/git-pull?repo=https://github.com/o/save-load-lab&branch=main"
            "&targetPath=save-load-lab&urlpath=lab/tree/save-load-lab/notebooks/00_welcome.ipynb")
    assert pull_link_problems(good) == []
    assert pull_link_problems(good.replace("&branch=main", "")) == ["branch: want it once, found []"]
    assert pull_link_problems(good.replace("00_welcome", "00_welcom")) == [
        "urlpath lab/tree/save-load-lab/notebooks/00_welcom.ipynb: want lab/tree/<targetPath>/<a notebook of the lab>"]
    assert pull_link_problems(good.replace("user-redirect/git-pull", "git-pull"))
    assert pull_link_problems(good.replace("repo=https://github.com/o/save-load-lab", "repo=save-load-lab"))
    moved = good.replace("targetPath=save-load-lab", "targetPath=lab").replace("tree/save-load-lab/", "tree/lab/")
    assert pull_link_problems(moved) == ["targetPath lab: the image keeps artifacts in ~/save-load-lab"]


def test_the_github_pages_workflow_publishes_what_make_site_builds():
    """deploy/github-pages.yml, the example deploy/README.md gives: one job runs `make site` with the repository's name
    (the Binder links) and uploads site/; the next deploys it, with the permissions GitHub Pages asks for."""
    workflow = yaml.safe_load((REPO_ROOT / "deploy" / "github-pages.yml").read_text())
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    runs = [step["run"] for step in build["steps"] if "run" in step]
    assert runs == ["make site SITE_REPOSITORY=${{ github.repository }}"], runs
    uploads = [step for step in build["steps"] if step.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert [step["with"]["path"] for step in uploads] == ["site"]
    assert deploy["needs"] == "build" and deploy["steps"][-1]["uses"].startswith("actions/deploy-pages@")
    assert workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    assert "site:" in (REPO_ROOT / "Makefile").read_text() and "SITE_REPOSITORY" in (REPO_ROOT / "Makefile").read_text()
