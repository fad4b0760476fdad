# The Save & Load Lab. `make lab` opens it, `make test` tests it; both set up .venv first, once.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# For a laptop without a GPU: make lab TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
# For a room without network: `make wheelhouse` once (with network), then `make lab OFFLINE=1` installs from it.
OFFLINE ?=
WHEELHOUSE := wheelhouse
PIP_FROM := $(if $(OFFLINE),--no-index --find-links $(WHEELHOUSE))

# JupyterLab: no browser where there is no display (it prints the URL), and root needs --allow-root.
LAB_FLAGS := --notebook-dir=notebooks
ifeq ($(shell uname -s),Linux)
ifeq ($(DISPLAY)$(WAYLAND_DISPLAY),)
LAB_FLAGS += --no-browser
endif
endif
ifeq ($(shell id -u),0)
LAB_FLAGS += --allow-root
endif

.PHONY: lab test setup wheelhouse data notebooks images benchmarks stress regress clean

lab: data
	$(BIN)/jupyter lab $(LAB_FLAGS)

test: data
	$(BIN)/python -m pytest

setup: $(STAMP)

# Runs only when .venv is missing or the pins changed, so a second `make lab` installs nothing.
$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "the lab needs Python 3.11, found " + sys.version.split()[0]' \
		|| { echo "Install Python 3.11 or run: make lab PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(if $(OFFLINE),@test -d $(WHEELHOUSE) || { echo "OFFLINE=1 installs from $(WHEELHOUSE)/ but it is missing: run make wheelhouse where there is network"; exit 1; })
	$(if $(and $(TORCH_INDEX),$(if $(OFFLINE),,1)),$(BIN)/python -m pip install --index-url $(TORCH_INDEX) torch==2.14.1 torchvision==0.29.1)
	$(BIN)/python -m pip install $(PIP_FROM) -r requirements.txt
	$(BIN)/python -m pip install $(PIP_FROM) --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Download every wheel the lab installs (for this machine's OS, CPU and Python) into wheelhouse/.
wheelhouse: requirements.txt
	$(if $(TORCH_INDEX),$(PYTHON) -m pip download --dest $(WHEELHOUSE) --index-url $(TORCH_INDEX) torch==2.14.1 torchvision==0.29.1)
	$(PYTHON) -m pip download --dest $(WHEELHOUSE) --find-links $(WHEELHOUSE) -r requirements.txt

# Decompress the bundled MNIST once and check every file's sha256.
data: setup
	$(BIN)/python -m labutils

# Re-execute every notebook top to bottom and keep the outputs (commit them after a change). Each cell has
# 600 s; a notebook that fails or times out is left as it was (labutils/runner.py).
notebooks: data
	$(BIN)/python -m labutils.runner notebooks/[0-9]*.ipynb

images: setup
	$(BIN)/python images/make_images.py

benchmarks: data
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/checkpoint_io.py

# The notebooks with widgets, 20 times each, headless, on an empty cache and a busy CPU: 0 hangs expected.
stress: data
	$(BIN)/python benchmarks/widget_stress.py

# Every notebook through papermill with the parameter sets in tests/regression/params.yaml, compared with the
# committed baselines; reports/regression.md lists every metric. `make test` runs the fast sets.
regress: data
	$(BIN)/python tests/regression/regress.py

clean:
	rm -rf artifacts reports data/MNIST
