# Two commands a new user needs: `make demo` and `make test` (see README.md).
.PHONY: demo test stop deps lint

demo:
	scripts/demo.sh

test:
	scripts/test.sh

stop:
	scripts/stack.sh stop

deps:
	scripts/install-deps.sh

lint: deps
	.venv/bin/ruff check leruli_prefect tests
	.venv/bin/ruff format --check leruli_prefect tests
