"""A Docker engine of the test's own, to restart under a node: the shared engine must never be restarted.

It keeps everything under a short temporary dir (a unix socket path must stay under 108 bytes): its own data
root, exec root (where its own containerd runs), pid file, socket and an empty config file, and like the
shared engine it has no bridge and touches no iptables.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import docker

from tests.stack import TEST_IMAGE


class PrivateDocker:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="lfd-", dir="/tmp"))
        (self.root / "daemon.json").write_text("{}")
        self.url = f"unix://{self.root / 'd.sock'}"
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"

    def start(self, timeout: float = 60) -> None:
        root = self.root
        with open(self.log, "ab") as handle:
            self._popen = subprocess.Popen(
                [
                    "dockerd",
                    "--config-file", str(root / "daemon.json"),
                    "--data-root", str(root / "data"),
                    "--exec-root", str(root / "exec"),
                    "--pidfile", str(root / "d.pid"),
                    "-H", self.url,
                    "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
                    "--shutdown-timeout", "2",
                ],
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self._popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"private dockerd did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def answers(self) -> bool:
        try:
            return docker.DockerClient(base_url=self.url, timeout=5).ping()
        except Exception:
            return False

    def stop(self, timeout: float = 60) -> None:
        if self._popen is not None and self._popen.poll() is None:
            self._popen.send_signal(signal.SIGTERM)
            try:
                self._popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait()

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.url, timeout=30)

    def load_test_image(self) -> None:
        """Copy the test image from the shared engine (`docker save | docker -H ... load`)."""
        save = subprocess.Popen(["docker", "save", TEST_IMAGE], stdout=subprocess.PIPE)
        subprocess.run(["docker", "-H", self.url, "load"], stdin=save.stdout, check=True, capture_output=True)
        assert save.wait() == 0

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
