# glue-tf: `make install` then `make test`. Everything runs inside .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PRETRAINED := models/pretrained/minilm-l6-h384-uncased
GLUE_DIR ?= ../shared/glue_data
TFDS_MANUAL_DIR ?= ../shared/glue_tfds_manual
PYTEST_ARGS ?=
BACKBONE ?= $(PRETRAINED)
EPOCHS ?= 3
OUT ?= runs/latest
TASKS ?= all
TRAIN_ARGS ?=
MODEL_DIR ?= $(OUT)
PORT ?= 8080
IMAGE ?= glue-tf-serving

.PHONY: install pretrained test test-fast data-check train-all submit serve bench-serving docker-build docker-run clean

install: $(VENV)/.installed pretrained

# Reinstalls only when pyproject.toml changes, so a second `make install` is a no-op.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

pretrained: $(VENV)/.installed
	PYTHON=$(BIN)/python scripts/fetch_pretrained.sh $(PRETRAINED)

test: $(VENV)/.installed
	GLUE_DIR=$(GLUE_DIR) TFDS_MANUAL_DIR=$(TFDS_MANUAL_DIR) $(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(VENV)/.installed
	GLUE_DIR=$(GLUE_DIR) TFDS_MANUAL_DIR=$(TFDS_MANUAL_DIR) $(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

data-check: $(VENV)/.installed
	$(BIN)/glue-tf data check --glue-dir $(GLUE_DIR)

# Every GLUE task whose data is found (GLUE_DIR empty: tfds), then report.md/json and test predictions.
train-all: $(VENV)/.installed
	$(BIN)/glue-tf train-all $(if $(GLUE_DIR),--glue-dir $(GLUE_DIR),) --backbone $(BACKBONE) \
		--epochs $(EPOCHS) --tasks $(TASKS) --out $(OUT) $(TRAIN_ARGS)

submit: $(VENV)/.installed
	$(BIN)/glue-tf submit --out $(OUT)

# The REST service over a training run's exports (settings: GLUE_TF_* variables, see README).
serve: $(VENV)/.installed
	GLUE_TF_MODEL_DIR=$(MODEL_DIR) PORT=$(PORT) $(BIN)/gunicorn -c serving/gunicorn.conf.py

# Requests/s and p50/p99 at 1, 8, 32 clients, batching on and off, beside the in-process ceiling.
bench-serving: $(VENV)/.installed
	$(BIN)/python bench/serving_load.py --model-dir $(MODEL_DIR) --task $(or $(BENCH_TASK),sst2) --glue-dir $(GLUE_DIR)

docker-build:
	docker build -t $(IMAGE) .

# Models read-only, job state in a named volume.
docker-run:
	docker run --rm -p $(PORT):8080 -v $(abspath $(MODEL_DIR)):/models:ro -v glue-tf-state:/var/lib/glue-tf $(IMAGE)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
