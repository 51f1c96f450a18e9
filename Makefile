# The two commands a newcomer needs: `make run` (the platform on the local stack) and `make test`.
# `make test` runs on its own local stack (JOBSTREAM_STACK=test: its own folder and ports), never the platform's.
PY := .venv/bin/python
TEST_STACK := JOBSTREAM_STACK=test

.PHONY: run demo test test-unit down status lint bootstrap web-vendor

bootstrap:
	@stack/bootstrap.sh

run: bootstrap
	@stack/run.sh

demo: bootstrap
	@$(PY) -m stack.demo

test: bootstrap
	@$(TEST_STACK) $(PY) -m stack up
	@$(MAKE) --no-print-directory lint
	@$(TEST_STACK) $(PY) -m pytest; status=$$?; \
	  if [ $$status -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$status

# The fast tier: tests of pure logic, no service started or needed (under 30 s).
test-unit: bootstrap
	@$(TEST_STACK) $(PY) -m pytest -m unit; status=$$?; \
	  if [ $$status -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$status

lint: bootstrap
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .
	@.venv/bin/mypy

down: bootstrap
	@$(PY) -m stack down --all

status: bootstrap
	@$(PY) -m stack status --all

# Refresh the front end's vendored files (web/static/vendor) from web/package-lock.json; needs npm, and is run only
# to change a version: the files are committed, so `make run` and `make test` need no npm.
web-vendor:
	@cd web && npm ci --ignore-scripts --no-audit --no-fund
	@cp web/node_modules/chart.js/dist/chart.umd.min.js web/static/vendor/chart.umd.min.js
	@cp web/node_modules/chart.js/LICENSE.md web/static/vendor/chart.js.LICENSE.md

# Kubernetes (k8s/): regenerate the overlays' KafkaTopics from schemas/topics.py and the KafkaUsers and MariaDB
# grants from jobstream/identities.py, and check every overlay offline (kustomize build, kubeconform strict against
# Kubernetes 1.32, the policy tests); tools are installed on first use.
.PHONY: k8s-resources k8s-check
k8s-resources: bootstrap
	@$(PY) -m stack.k8s_resources

k8s-check: bootstrap
	@$(TEST_STACK) $(PY) -m pytest tests/k8s -q
