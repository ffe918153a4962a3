# `make demo` and `make test` each set up .venv on first use, then run.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONUTF8 := 1

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/nnunet-clip demo --out demo_output

test: $(STAMP)
	$(PY) -m pytest tests

clean:
	rm -rf $(VENV) demo_output
