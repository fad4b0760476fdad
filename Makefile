# The Save & Load Lab. `make lab` opens it, `make test` tests it; both set up .venv first, once.
#
# Python 3.11, 3.12 or 3.13 (tools/check_python.py's SUPPORTED, the one place the versions are written): the first of
# python3, python3.13, python3.12, python3.11 on PATH that is one of them (tools/check_python.py --find, which any
# python3 runs), or the one named by `make lab PYTHON=/path/to/python3.12`. tools/check_python.py says what to do
# otherwise.
ifeq ($(origin PYTHON),undefined)
PYTHON := $(or $(shell python3 tools/check_python.py --find 2>/dev/null),python3)
endif
# Inside the conda environment environment.yml creates (`conda activate save-load-lab`), the lab runs in it and
# no .venv is made; for an environment made under another name: make test VENV=$$CONDA_PREFIX
CONDA_ENV_NAME := $(shell sed -n 's/^name: *//p' environment.yml)
ifeq ($(origin VENV),undefined)
VENV := $(if $(and $(CONDA_PREFIX),$(filter $(CONDA_ENV_NAME),$(CONDA_DEFAULT_ENV))),$(CONDA_PREFIX),.venv)
endif
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.lab-installed
# requirements.txt is the one place the versions are written; torch's and torchvision's are read from it here.
TORCH_PINS := $(shell sed -n -E 's/^(torch|torchvision)==([^ #]+).*/\1==\2/p' requirements.txt)
# For a laptop without a GPU: make lab TORCH_INDEX=https://download.pytorch.org/whl/cpu (an index, pip's --index-url),
# or from a mirror that is only a page of links (pip's --find-links; the rest comes from PIP_INDEX_URL, as always):
# make lab TORCH_FIND_LINKS=https://mirrors.aliyun.com/pytorch-wheels/cpu/ (README.md, "Installing from mainland China")
TORCH_INDEX ?=
TORCH_FIND_LINKS ?=
TORCH_FROM = $(strip $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(if $(TORCH_FIND_LINKS),--find-links $(TORCH_FIND_LINKS)))
# For a room without network: `make wheelhouse` once (with network), then `make lab OFFLINE=1` installs from it.
OFFLINE ?=
WHEELHOUSE := wheelhouse
PIP_FROM := $(if $(OFFLINE),--no-index --find-links $(WHEELHOUSE))

.PHONY: lab test check browser doctor hub rehearsal proxy setup tensorflow check-python second-python wheelhouse data notebooks map glossary images screenshots benchmarks stress \
	regress translations site site-tools clean

# JupyterLab on the lab's folder, opened on notebook 00, with the lab's kernel and settings (tools/lab.py says how);
# where there is no display it opens no browser and prints the URL. More options: make lab LAB_ARGS="--port 8890"
# The Chinese edition, with JupyterLab's menus in Chinese too: make lab LAB_LANG=zh-CN
LAB_ARGS ?=
LAB_LANG ?=
lab: data
	$(BIN)/python tools/lab.py$(if $(LAB_LANG), --language $(LAB_LANG)) $(LAB_ARGS)

# The lab runs on Python 3.11, 3.12 and 3.13, the suite on one of them. With a second one named, `make test
# SECOND_PYTHON=/path/to/python3.13` also opens notebooks in JupyterLab with the server and its kernel on it
# (tests/browser/test_second_python.py), from $(SECOND_VENV): the lab's JupyterLab pins only, no torch (13 s to
# make, 243 MB). Made again when the pins change or another Python is named. SECOND_PYTHON=auto (.ci/run) takes
# the newest supported Python found that is not the suite's; when there is none, the test says so as it skips.
# (Set before the rules below: make reads a rule's prerequisites as it reads the rule.)
SECOND_PYTHON ?=
ifeq ($(SECOND_PYTHON),auto)
override SECOND_PYTHON := $(shell $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON)) tools/check_python.py --another)
SECOND_NONE := none
endif
SECOND_VENV := .venv-second
SECOND_PINS := $(shell sed -n -E 's/^(jupyterlab|jupyterlab-language-pack-zh-CN|ipykernel|ipywidgets)==([^ #]+).*/\1==\2/p' \
	requirements.txt)
SECOND_ENV := $(if $(SECOND_PYTHON),LAB_SECOND_PYTHON="$(CURDIR)/$(SECOND_VENV)/bin/python" ,$(if \
	$(SECOND_NONE),LAB_SECOND_PYTHON=none ))
MINOR := import sys; print("%d.%d" % sys.version_info[:2])

# The suite on every core (pytest-xdist): a notebook or test file stays on one worker, and files are handed out in
# the order conftest.py sets (the browser tests and the two papermill chains first). TEST_WORKERS=0 runs it all in one
# process.
TEST_WORKERS ?= auto
test: data proxy tensorflow site-tools $(if $(SECOND_PYTHON),second-python)
	$(SECOND_ENV)$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The quick loop while editing (under 90 s on 2 cores): lint, the unit tests, hygiene, links and translations,
# without anything that runs a notebook, trains or drives a browser (pytest -m "not executes"; conftest.py lists
# what executes). `make test`, which CI runs, runs everything.
check: data
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not executes"

# Every notebook run from JupyterLab's Run menu in a headless Chromium, not only those with widgets as in `make test`
# (tests/browser/; about 6 minutes on 2 cores; CHROMIUM=/path/to/chromium names the browser)
browser: data $(if $(SECOND_PYTHON),second-python)
	$(SECOND_ENV)LAB_BROWSER_RUN_ALL=1 $(BIN)/python -m pytest tests/browser

# Is this machine ready for the lab? One line per check with its fix, in under a minute; exits non-zero naming what
# is wrong (tools/doctor.py). Run it on each laptop before class, and on a hub's image. LAB_LANG=zh-CN checks the
# Chinese edition's language pack too.
doctor: setup
	$(BIN)/python tools/doctor.py$(if $(LAB_LANG), --language $(LAB_LANG))

# The lab on one shared server for a class (tools/hub/classroom.py says how; docs/INSTRUCTOR.md, "A classroom hub"):
# JupyterHub on http://$(HUB_IP):$(HUB_PORT)/, one account per learner (LEARNERS=30 makes learner01 ... learner30,
# LEARNERS="alice bob" names them), its passwords printed to hand out. Everything it keeps is in $(HUB_DIR), which
# make clean leaves alone. As root: each learner's server runs as a Unix user of their own.
HUB_DIR ?= hub
HUB_IP ?= 127.0.0.1
HUB_PORT ?= 8000
LEARNERS ?=
hub: data proxy
	HUB_DIR="$(abspath $(HUB_DIR))" HUB_IP=$(HUB_IP) HUB_PORT=$(HUB_PORT) LAB_LANG=$(LAB_LANG) \
		$(BIN)/python tools/hub/classroom.py start$(if $(LEARNERS), --learners "$(LEARNERS)")

# How big a server does a class need? LEARNERS simulated learners work through the notebooks at once through a
# hub (tools/hub/rehearsal.py); the report gives each notebook's wall time and CPU-seconds and each learner's
# peak memory. Not part of make test.
rehearsal: data proxy
	$(BIN)/python tools/hub/rehearsal.py --learners $(or $(LEARNERS),4)

# JupyterHub's proxy, configurable-http-proxy, pinned in package.json and package-lock.json (npm ci). Without npm,
# make hub says what to install, and make test's hub tests say why they skip.
PROXY := node_modules/.bin/configurable-http-proxy
proxy:
	@if [ -x $(PROXY) ] && [ $(PROXY) -nt package-lock.json ]; then :; elif command -v npm >/dev/null 2>&1; then \
		npm ci --ignore-scripts --no-audit --no-fund && touch $(PROXY); else \
		echo "npm not found: the classroom hub's proxy is not installed (apt-get install npm, or Node.js from nodejs.org)"; fi

second-python: setup
	@test -n "$(SECOND_PYTHON)" || { echo "Name the second Python: make second-python SECOND_PYTHON=/path/to/python3.13"; \
		exit 1; }
	@"$(SECOND_PYTHON)" -V >/dev/null || { echo "SECOND_PYTHON=$(SECOND_PYTHON) does not run. Name the interpreter"\
		"itself, for example /usr/bin/python3.13 or, with pyenv, ~/.pyenv/versions/3.13.0/bin/python3.13"; exit 1; }
	@[ "$$("$(SECOND_PYTHON)" -c '$(MINOR)')" != "$$($(BIN)/python -c '$(MINOR)')" ] || { \
		echo "SECOND_PYTHON=$(SECOND_PYTHON) is Python $$($(BIN)/python -c '$(MINOR)'), as $(VENV) is: name another version"; \
		exit 1; }
	@[ "$$("$(SECOND_PYTHON)" -V 2>&1)" = "$$($(SECOND_VENV)/bin/python -V 2>&1)" ] || rm -rf $(SECOND_VENV)
	@$(MAKE) --no-print-directory $(SECOND_VENV)/.lab-installed

$(SECOND_VENV)/.lab-installed: requirements.txt tools/lab.py
	"$(SECOND_PYTHON)" tools/check_python.py $(SECOND_VENV)
	test -x $(SECOND_VENV)/bin/python || "$(SECOND_PYTHON)" -m venv $(SECOND_VENV)
	$(SECOND_VENV)/bin/python -m pip install $(PIP_FROM) $(SECOND_PINS)$(if $(OFFLINE), || { echo "$(WHEELHOUSE)/ lacks"\
		"wheels for $(SECOND_PYTHON): run make wheelhouse SECOND_PYTHON=$(SECOND_PYTHON) where there is network"; exit 1; })
	$(SECOND_VENV)/bin/python tools/lab.py --install-kernel
	touch $@

# The environment's Python is checked on every run (tools/check_python.py), even when nothing is to install.
setup: check-python $(STAMP)

check-python:
	@if command -v $(PYTHON) >/dev/null 2>&1; then $(PYTHON) tools/check_python.py $(VENV); else \
		echo "No Python to set the lab up with: $(PYTHON) is not on PATH. Install Python 3.11, 3.12 or 3.13 and run: make lab PYTHON=/path/to/python3.12"; exit 1; fi

# Runs only when the environment is new or the pins changed, so a second `make lab` installs nothing. setuptools is
# pinned in requirements.txt and installed with the other pins, before labutils, so that labutils' install does
# not use the one that came with the interpreter (Python 3.12 and later put none into a new venv). Last, the lab's
# kernelspec goes into the environment (tools/lab.py --install-kernel), so that JupyterLab names the lab's Python.
$(STAMP): requirements.txt pyproject.toml tools/lab.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(if $(OFFLINE),@test -d $(WHEELHOUSE) || { echo "OFFLINE=1 installs from $(WHEELHOUSE)/ but it is missing: run make wheelhouse where there is network"; exit 1; })
	$(if $(and $(TORCH_FROM),$(if $(OFFLINE),,1)),$(BIN)/python -m pip install $(TORCH_FROM) $(TORCH_PINS))
	$(BIN)/python -m pip install $(PIP_FROM) -r requirements.txt
	$(BIN)/python -m pip install $(PIP_FROM) --no-deps --no-build-isolation -e .
	$(BIN)/python tools/lab.py --install-kernel
	touch $(STAMP)

# TensorFlow, the optional extra of notebook 07's last section (requirements-tensorflow.txt: about 274 MB to download,
# 1.4 GB installed); without it that section says how to add it and skips. `make test` installs it, so the suite runs it.
TF_STAMP := $(VENV)/.lab-tensorflow
tensorflow: setup $(TF_STAMP)

$(TF_STAMP): requirements-tensorflow.txt $(STAMP)
	$(BIN)/python -m pip install $(PIP_FROM) -r requirements-tensorflow.txt
	touch $(TF_STAMP)

# The lab as a website in site/ (tools/website.py; 10 to 15 s): every notebook with its saved outputs, the README and
# the documents, in English (site/index.html) and Chinese (site/zh-CN/index.html), with search, and nothing fetched
# from the internet: `python -m http.server -d site` serves it to a classroom. Its tools are pinned in
# requirements-site.txt and go into the lab's environment; on a new clone `make site` installs only them (no torch:
# about 20 s), `make test` installs them too (its tests build the site), `make lab` does not. Once the lab is on GitHub,
# SITE_REPOSITORY=OWNER/NAME gives each notebook a Binder link (deploy/github-pages.yml publishes it so).
SITE_STAMP := $(VENV)/.lab-site
SITE_REPOSITORY ?=
site: site-tools
	$(BIN)/python tools/website.py --out site$(if $(SITE_REPOSITORY), --repository $(SITE_REPOSITORY))

site-tools: check-python $(SITE_STAMP)

$(SITE_STAMP): requirements-site.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FROM) -r requirements-site.txt
	touch $(SITE_STAMP)

# Download every wheel the lab installs (for this machine's OS, CPU and Python) into wheelhouse/; with
# SECOND_PYTHON=..., the second Python's too.
wheelhouse: requirements.txt requirements-tensorflow.txt requirements-site.txt
	$(if $(TORCH_FROM),$(PYTHON) -m pip download --dest $(WHEELHOUSE) $(TORCH_FROM) $(TORCH_PINS))
	$(PYTHON) -m pip download --dest $(WHEELHOUSE) --find-links $(WHEELHOUSE) -r requirements.txt -r requirements-tensorflow.txt \
		-r requirements-site.txt
	$(if $(SECOND_PYTHON),"$(SECOND_PYTHON)" -m pip download --dest $(WHEELHOUSE) --find-links $(WHEELHOUSE) $(SECOND_PINS))

# Decompress the bundled MNIST once and check every file's sha256.
data: setup
	$(BIN)/python -m labutils

# Re-execute every notebook top to bottom and keep the outputs (commit them after a change). Each cell has
# 600 s; a notebook that fails or times out is left as it was (labutils/runner.py). The English notebooks come from
# the lab's one list (labutils/paths.py, printed by tools/lab.py); the Chinese edition is then written from them.
notebooks: data
	$(BIN)/python -m labutils.runner $(shell $(BIN)/python tools/lab.py --list-notebooks)
	$(BIN)/python tools/translations.py

# The Chinese edition: update translations/zh-CN/*.po and labutils/locale/zh-CN.po from the English (changed text
# becomes fuzzy), write every NN_name.zh-CN.ipynb and *.zh-CN.md from them, and list what needs translating
translations: setup
	$(BIN)/python tools/translations.py

# Rewrite README.md's table, 00's map and every notebook's time line and navigation from tools/lab_map.py's list.
map: setup
	$(BIN)/python tools/lab_map.py

# Link each notebook's first use of a docs/GLOSSARY.md term to its entry (tools/glossary.py lists the terms).
glossary: setup
	$(BIN)/python tools/glossary.py

images: setup
	$(BIN)/python images/make_images.py

# images/screenshots/*.png, taken in JupyterLab in a headless Chromium (tools/lab_browser.py; CHROMIUM=/path/to/it)
screenshots: data
	$(BIN)/python tools/lab_browser.py screenshots

benchmarks: data
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/checkpoint_io.py

# The notebooks with widgets, 20 times each, headless, on an empty cache and a busy CPU: 0 hangs expected.
stress: data
	$(BIN)/python benchmarks/widget_stress.py

# Every notebook through papermill with the parameter sets in tests/regression/params.yaml, compared with the
# committed baselines; reports/regression.md lists every metric. `make test` runs the fast sets and compares
# each notebook's nbval run with its `-defaults` baseline.
regress: data
	$(BIN)/python tests/regression/regress.py

clean:
	rm -rf artifacts reports data/MNIST site
