# Everything a fresh Debian/Ubuntu machine needs, then the two jobs of the README.
#   make demo   score example recordings with the embedded default model
#   make test   run the whole test suite
# Override TORCH to pick another build, e.g. make test TORCH="torch==2.13.0+cu128".
VENV   ?= .venv
PYTHON ?= python3
TORCH  ?= torch==2.13.0
PY      = $(VENV)/bin/python
APT     = ffmpeg chromium espeak-ng sox
SUDO    = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-deps demo test benchmarks clean

setup: $(VENV)/.installed

system-deps:
	@missing=""; for p in $(APT); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: setup.cfg constraints.txt | system-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -c constraints.txt -e ".[all,dev]"
	# olah (a Hub server that serves git repositories offline) for the publishing tests; its fastapi-utils pins an
	# old psutil that it does not need for what olah uses, so it goes in without dependencies.
	$(PY) -m pip install -q -c constraints.txt GitPython peewee portalocker pydantic-settings shortuuid tenacity toml typing_inspect
	$(PY) -m pip install -q --no-deps olah==0.5.4 fastapi-utils==0.8.0
	touch $@

demo: setup
	$(VENV)/bin/nes2net demo

test: setup
	$(PY) -m pytest -q

benchmarks: setup
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
