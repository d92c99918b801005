# The two commands of the README: `make demo` and `make test`.
# Both set up what they need: .venv with pip, peer tools with apt-get.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYPY_VENV := .venv-pypy
PEER_PACKAGES := qemu-utils qemu-system-x86 qemu-user libnbd-bin gdb-multiarch \
                 busybox-static gcc-multilib pypy3 qemu-guest-agent nbdkit fdisk cpio \
                 bximage cloop-utils cryptsetup-bin mtools dmg2img
# The translator and user-mode core must also pass under PyPy 3.9.
PYPY_TEST_DIRS := $(wildcard tests/unit/tcg tests/unit/target tests/unit/linux_user tests/system/linux_user tests/unit/sysemu)

.PHONY: all demo demo-img test test-fast lint pypy-test peer-tools venv pypy-venv clean bench

all: test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

peer-tools:
	@sh scripts/install-peer-tools.sh $(PEER_PACKAGES)

$(PYPY_VENV)/.installed: | peer-tools
	pypy3 -m venv $(PYPY_VENV)
	$(PYPY_VENV)/bin/python -m pip install -q pytest pytest-timeout hypothesis
	touch $@

pypy-venv: $(PYPY_VENV)/.installed

lint: venv
	$(VENV)/bin/ruff check $(wildcard src tests bench scripts)

# The main job: Debian's Linux booted to a busybox shell on pyqemu-system-x86_64,
# on PyPy when pypy3 can be had (else CPython). demo-img: the pyqemu-img session.
demo: venv peer-tools
	@$(MAKE) --no-print-directory pypy-venv || echo "make demo: no PyPy environment (is pypy3 installed?): the demo runs on CPython"
	@bash scripts/demo-linux.sh $(DEMO_ARGS)

demo-img: venv peer-tools
	@PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/demo-img.sh

test-fast: venv
	$(PY) -m pytest -q tests/unit

# unit, peer and system tests run as three pytest sessions: a test file name
# may then recur across them (tests/unit/gdbstub/test_gdbstub.py and
# tests/system/linux_user/test_gdbstub.py).
test: venv peer-tools lint
	@status=0; for d in $(wildcard tests/unit tests/peer tests/system); do \
	    echo "== pytest $$d"; $(PY) -m pytest -q $$d || status=1; done; exit $$status
	@$(MAKE) --no-print-directory pypy-test

pypy-test: pypy-venv
ifneq ($(strip $(PYPY_TEST_DIRS)),)
	PYTHONPATH=src $(PYPY_VENV)/bin/python -m pytest -q -p no:cacheprovider $(PYPY_TEST_DIRS)
else
	@echo "pypy-test: no translator/user-mode tests yet; checking that the package compiles under PyPy"
	PYTHONPYCACHEPREFIX=/tmp/pyqemu-pypy-pycache pypy3 -m compileall -q src/pyqemu
endif

bench: venv peer-tools
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(PYPY_VENV) .pytest_cache .ruff_cache build src/*.egg-info
