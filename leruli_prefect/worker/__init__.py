"""The compute node: `LeruliWorker` (in `leruli_worker`), a Prefect worker of type `leruli-docker`.

Prefect finds it through the `prefect.collections` entry point (`leruli_prefect.worker.leruli_worker`), so
`prefect worker start --type leruli-docker` works as well as `leruli node start`. This package stays free of
imports so that light modules (`node_config`) load without Prefect.
"""
