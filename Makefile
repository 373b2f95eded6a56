# glue-tf: `make install` then `make test`. Everything runs inside .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PRETRAINED := models/pretrained/all-minilm-l6-v2
# Where GLUE comes from: tfds by default (downloads to TFDS_DATA_DIR, else ~/tensorflow_datasets);
# offline, GLUE_DIR=<a GLUE TSV folder> or TFDS_MANUAL_DIR=<a folder of the official archives>.
GLUE_DIR ?=
TFDS_MANUAL_DIR ?=
DATA_FLAGS = $(if $(GLUE_DIR),--glue-dir $(GLUE_DIR),) $(if $(TFDS_MANUAL_DIR),--tfds-manual-dir $(TFDS_MANUAL_DIR),)
# The real GLUE data some tests compare with (they skip, saying so, where it is absent).
GLUE_TF_TEST_GLUE_DIR ?= ../shared/glue_data
GLUE_TF_TEST_TFDS_MANUAL_DIR ?= ../shared/glue_tfds_manual
TEST_DATA = GLUE_TF_TEST_GLUE_DIR=$(GLUE_TF_TEST_GLUE_DIR) GLUE_TF_TEST_TFDS_MANUAL_DIR=$(GLUE_TF_TEST_TFDS_MANUAL_DIR)
PYTEST_ARGS ?=
BACKBONE ?= $(PRETRAINED)
EPOCHS ?= 3
OUT ?= runs/latest
TASKS ?= all
TRAIN_ARGS ?=
MODEL_DIR ?= $(OUT)
PORT ?= 8080
IMAGE ?= glue-tf-serving
TRAIN_IMAGE ?= glue-tf-train
# The tag deploy/kubernetes/*/kustomization.yaml pins under `images:` (tests/test_manifests.py checks).
IMAGE_TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
QUICKSTART_OUT ?= runs/quickstart

.PHONY: install lock pretrained test test-fast test-long data-check quickstart train-all submit serve serve-deployed bench bench-install bench-exports bench-finetune bench-serving docker-build docker-build-train docker-run clean

install: $(VENV)/.installed pretrained

# The exact versions of requirements/lock.txt (training + test set), each checked against the lock's
# hashes, then the package itself (editable, no dependencies: outside the hash check).
# Reinstalls only when the lock or pyproject.toml changes, so a second `make install` is a no-op.
$(VENV)/.installed: pyproject.toml requirements/lock.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# Re-resolve the pinned set from pyproject.toml, with hashes (then `make install` and `make test`); an
# existing lock's versions are kept where pyproject.toml still allows them. Python 3.11 only, as
# requires-python says. The images' sets are cut from it at the same versions: serving.txt (the
# service and its PostgreSQL job store) and train.txt (the training extra).
LOCK = $(BIN)/python -m uv pip compile pyproject.toml --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	--generate-hashes --custom-compile-command "make lock"
lock: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet uv
	$(LOCK) --extra test -o requirements/lock.txt
	$(LOCK) --extra postgres -c requirements/lock.txt -o requirements/serving.txt
	$(LOCK) --extra train -c requirements/lock.txt -o requirements/train.txt

pretrained: $(VENV)/.installed
	PYTHON=$(BIN)/python scripts/fetch_pretrained.sh $(PRETRAINED)

# The suite (under 15 minutes on 2 cores); the long fault/load/fuzz runs have their own target.
test: $(VENV)/.installed
	$(TEST_DATA) $(BIN)/python -m pytest -m "not long" $(PYTEST_ARGS)

test-fast: $(VENV)/.installed
	$(TEST_DATA) $(BIN)/python -m pytest -m "not slow and not long" $(PYTEST_ARGS)

# Killed and crashed training, full disks, a 20,000-request load test with a worker killed, a
# 9,000-request run a third hostile, schemathesis against the live API, TF Serving's REST API
# form by form, two replicas sharing PostgreSQL, multi-worker training: see docs/RELIABILITY.md.
test-long: $(VENV)/.installed
	$(TEST_DATA) $(BIN)/python -m pytest -m long $(PYTEST_ARGS)

data-check: $(VENV)/.installed
	$(BIN)/glue-tf data check $(DATA_FLAGS)

# The whole loop in minutes: SST-2 on 2,000 examples for one epoch, exported, served on a free
# port, asked over both REST APIs, stopped (scripts/quickstart.py; data as for train-all).
quickstart: install
	$(BIN)/python scripts/quickstart.py $(DATA_FLAGS) --backbone $(BACKBONE) --out $(QUICKSTART_OUT)

# Every GLUE task whose data is found, then report.md/json and test predictions (hours on a CPU:
# see README). With no data source reachable it stops at once, naming the three ways to get GLUE.
train-all: $(VENV)/.installed
	$(BIN)/glue-tf train-all $(DATA_FLAGS) --backbone $(BACKBONE) \
		--epochs $(EPOCHS) --tasks $(TASKS) --out $(OUT) $(TRAIN_ARGS)

submit: $(VENV)/.installed
	$(BIN)/glue-tf submit --out $(OUT)

# The REST service over a training run's exports (settings: GLUE_TF_* variables, see docs/SERVING.md), gunicorn
# alone: for development.
serve: $(VENV)/.installed
	$(BIN)/glue-tf serve --model-dir $(MODEL_DIR) --port $(PORT)

# The stack as deployed, in the foreground: nginx on PORT (all interfaces; deploy/nginx/glue-tf.conf)
# buffering each request whole in front of gunicorn on a loopback port; state in GLUE_TF_STATE_DIR,
# both logs on stdout, both stopped by SIGTERM or Ctrl-C. Needs nginx (apt-get install nginx-light)
# and GLUE_TF_API_TOKEN (or GLUE_TF_ALLOW_ANONYMOUS_JOBS=1): see docs/DEPLOY.md.
serve-deployed: $(VENV)/.installed
	$(BIN)/python scripts/serve_deployed.py --model-dir $(MODEL_DIR) --port $(PORT)

# glue-tf vs KerasHub's recipe vs Hugging Face, side by side in one run: fine-tuning and
# inference speed on CoLA, MRPC, RTE, a step profile; then the inference paths of the exports
# (the signature chosen where the model runs against serving_default and Hugging Face's best):
# `glue-tf predict` over 20,000 SST-2 sentences as whole processes, the service at 1/8/32
# clients, and the signatures' agreement on the six tasks' full dev splits; then both sections
# of docs/BENCHMARKS.md (JSON lines under runs/bench/; OUT=<a train-all run> adds its end-to-end
# wall times). The exports come from BENCH_MODEL_DIR (a training run's --out folder); a task
# missing there is trained quickly first (BENCH_EXPORT_ARGS: about 5 minutes a task on 2 cores,
# once). On 2 cores the inference-path pieces take about 50 minutes beside the speed runs.
BENCH_TASKS ?= cola,mrpc,rte
# The benchmarks read a GLUE TSV folder (every contender takes the same files).
BENCH_GLUE_DIR = $(or $(GLUE_DIR),$(error make $@ reads a GLUE TSV folder: set GLUE_DIR=<folder>))
BENCH_STEPS ?= 15
BENCH_MODEL_DIR ?= runs/bench/exports
BENCH_EXPORT_TASKS ?= sst2 cola mrpc stsb rte wnli
BENCH_EXPORT_ARGS ?= --max-train-examples 1000 --max-eval-examples 128 --epochs 1
BENCH_SERVING_SECONDS ?= 12
# Whole-process benchmarks run in alternating rounds and quote the ratio of the medians (issue 27).
BENCH_ROUNDS ?= 3
bench: bench-install bench-exports
	mkdir -p runs/bench
	$(BIN)/python -m bench.speed train --glue-dir $(BENCH_GLUE_DIR) --tasks $(BENCH_TASKS) --steps $(BENCH_STEPS) --json-out runs/bench/train.jsonl
	$(BIN)/python -m bench.speed infer --glue-dir $(BENCH_GLUE_DIR) --tasks $(BENCH_TASKS) --model-dir $(BENCH_MODEL_DIR) --json-out runs/bench/infer.jsonl
	$(BIN)/python -m bench.step_profile --lengths 16,48 --json-out runs/bench/profile.jsonl
	$(BIN)/python -m bench.predict_speed --model-dir $(BENCH_MODEL_DIR) --glue-dir $(BENCH_GLUE_DIR) --rounds $(BENCH_ROUNDS) --json-out runs/bench/predict.jsonl
	$(BIN)/python -m bench.evaluate_speed --model-dir $(BENCH_MODEL_DIR) --glue-dir $(BENCH_GLUE_DIR) --tasks $(BENCH_TASKS) --rounds $(BENCH_ROUNDS) --json-out runs/bench/evaluate.jsonl
	$(BIN)/python -m bench.serving_load --model-dir $(BENCH_MODEL_DIR) --task sst2 --glue-dir $(BENCH_GLUE_DIR) \
		--seconds $(BENCH_SERVING_SECONDS) --json-out runs/bench/serving.jsonl --markdown runs/bench/serving.md
	-$(BIN)/python -m bench.agreement --model-dir $(BENCH_MODEL_DIR) --glue-dir $(BENCH_GLUE_DIR) --json-out runs/bench/agreement.jsonl
	$(BIN)/python -m bench.benchmarks_doc --train runs/bench/train.jsonl --infer runs/bench/infer.jsonl \
		--profile runs/bench/profile.jsonl $(if $(wildcard $(OUT)/report.json),--report $(OUT)/report.json,) \
		--predict runs/bench/predict.jsonl --evaluate runs/bench/evaluate.jsonl --serving runs/bench/serving.jsonl \
		--agreement runs/bench/agreement.jsonl

# Fine-tuning against Hugging Face (issue 13): the training step with TensorFlow's oneDNN on and off beside
# PyTorch's, then `glue-tf train-all` against Hugging Face's Trainer as whole processes, side by side (about
# 70 minutes for CoLA, MRPC and RTE on 2 cores), rendered into docs/BENCHMARKS.md.
BENCH_FINETUNE_TASKS ?= cola,mrpc,rte
bench-finetune: bench-install
	mkdir -p runs/bench
	$(BIN)/python -m bench.step_profile --lengths 16,48 --json-out runs/bench/training-profile.jsonl
	$(BIN)/python -m bench.op_profile --length 16
	$(BIN)/python -m bench.onednn_settings --rounds $(BENCH_ROUNDS) --json-out runs/bench/onednn.jsonl
	$(BIN)/python -m bench.roofline --json-out runs/bench/roofline.jsonl
	$(BIN)/python -m bench.end_to_end --glue-dir $(BENCH_GLUE_DIR) --tasks $(BENCH_FINETUNE_TASKS) \
		--rounds $(BENCH_ROUNDS) --json-out runs/bench/end_to_end.jsonl
	$(BIN)/python -m bench.benchmarks_doc --training-profile runs/bench/training-profile.jsonl \
		--end-to-end runs/bench/end_to_end.jsonl --roofline runs/bench/roofline.jsonl

# Quick exports (measured signatures, warm-up file) for the tasks BENCH_MODEL_DIR lacks; a no-op when all are there.
bench-exports: $(VENV)/.installed
	@for task in $(BENCH_EXPORT_TASKS); do \
		[ -d $(BENCH_MODEL_DIR)/models/$$task ] || $(BIN)/glue-tf train --task $$task --glue-dir $(BENCH_GLUE_DIR) \
			$(BENCH_EXPORT_ARGS) --out $(BENCH_MODEL_DIR) --overwrite || exit 1; \
	done

bench-install: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[bench]"

# Requests/s and p50/p99 at 1, 8, 32 clients: the chosen signature against serving_default (batching on),
# batching on against off, beside each signature's in-process ceiling.
bench-serving: $(VENV)/.installed
	$(BIN)/python -m bench.serving_load --model-dir $(MODEL_DIR) --task $(or $(BENCH_TASK),sst2) --glue-dir $(BENCH_GLUE_DIR)

docker-build:
	docker build --target serving -t $(IMAGE):$(IMAGE_TAG) .

# The training image (`glue-tf` as entrypoint) that deploy/kubernetes/training's Job runs.
docker-build-train:
	docker build --target train -t $(TRAIN_IMAGE):$(IMAGE_TAG) .

# Models read-only, job state in a named volume.
docker-run:
	docker run --rm -p $(PORT):8080 -v $(abspath $(MODEL_DIR)):/models:ro -v glue-tf-state:/var/lib/glue-tf \
		-e GLUE_TF_API_TOKEN $(IMAGE):$(IMAGE_TAG)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
