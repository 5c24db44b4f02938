# Two commands a new user needs: `make demo` and `make test` (see README.md).
.PHONY: demo test bench stop deps lint

demo:
	scripts/demo.sh

test:
	scripts/test.sh

# Benchmarks against the machine's own limits, one table; figures in bench/RESULTS.md.
bench:
	bench/bench.sh

stop:
	scripts/stack.sh stop

deps:
	scripts/install-deps.sh

lint: deps
	.venv/bin/ruff check leruli_prefect tests
	.venv/bin/ruff format --check leruli_prefect tests
