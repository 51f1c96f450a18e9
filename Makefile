# The two commands a newcomer needs: `make run` (the platform on the local stack) and `make test`.
PY := .venv/bin/python

.PHONY: run demo test down status lint bootstrap

bootstrap:
	@stack/bootstrap.sh

run: bootstrap
	@stack/run.sh

demo: bootstrap
	@$(PY) -m stack.demo

test: bootstrap
	@$(PY) -m stack up
	@$(MAKE) --no-print-directory lint
	@$(PY) -m pytest; status=$$?; \
	  if [ $$status -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$status

lint: bootstrap
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .

down: bootstrap
	@$(PY) -m stack down

status: bootstrap
	@$(PY) -m stack status
