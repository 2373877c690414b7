# Install order matters: pufferlib-core 3.0.16 compiles its C extension against the torch that is
# already installed, so torch (and the build tools) go in first and pufferlib-core is built without
# build isolation. See README.md.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_PIN := torch==2.13.0
PUFFERLIB_PIN := pufferlib-core==3.0.16

.PHONY: venv run test bench lint lock lock-check image image-cuda reproducible gpu-wheels gpu-check clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet $(TORCH_PIN) numpy==2.4.6
	$(BIN)/pip install --quiet --no-build-isolation $(PUFFERLIB_PIN)
	$(BIN)/pip install --quiet --no-build-isolation -e '.[dev]'
	touch $@

run: venv
	$(BIN)/cluster-rl train

# The same lint as .github/workflows/ci.yml, then the suite.
test: lint
	$(BIN)/python -m pytest -q

bench: venv
	$(BIN)/python benchmarks/sim_throughput.py --json
	$(BIN)/python benchmarks/train_throughput.py --json

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# requirements/cpu.txt and cuda.txt, the hash-locked sets the images install (scripts/lock.sh).
lock: venv
	UV=$(abspath $(BIN))/uv scripts/lock.sh

lock-check: venv
	UV=$(abspath $(BIN))/uv scripts/lock.sh --check

# The images: docker when its daemon answers, else podman; where no registry or PyTorch index can
# be reached, the script makes the Debian base locally and takes torch from the host's pip.
image:
	PYTHON=$(PYTHON) scripts/build-image.sh cpu

image-cuda:
	PYTHON=$(PYTHON) scripts/build-image.sh cuda

# Two builds of an image without the layer cache, from two copies of the tree, give the same image ID
# (scripts/reproducible.py; with podman). VARIANT=cuda checks the CUDA image.
VARIANT ?= cpu
reproducible: venv
	PYTHON=$(abspath $(BIN))/python $(BIN)/python scripts/reproducible.py $(VARIANT)

# The GPU check (scripts/gpu-check.sh) for a GPU machine without network: gpu-wheels/ holds what it
# installs there (under 60 MiB, hash-checked against requirements/cuda.txt). See docs/gpus.md, "GPU check".
gpu-wheels: venv
	PYTHON=$(abspath $(BIN))/python scripts/gpu-wheels.sh

gpu-check:
	scripts/gpu-check.sh

clean:
	rm -rf $(VENV) build *.egg-info
