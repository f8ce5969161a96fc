"""A real acs-server (and acs-worker) on a free loopback port with a temporary data dir, no
auth, for the Python tests."""
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from acs_client import AcsError, Client


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """acs-server (and acs-worker) processes on a free loopback port."""

    def __init__(self, server_bin, worker_bin=None):
        self.server_bin, self.worker_bin = server_bin, worker_bin
        self.tmp = tempfile.TemporaryDirectory(prefix="acs-client-test-")
        self.address = f"127.0.0.1:{free_port()}"
        self.log = open(Path(self.tmp.name) / "server.log", "w")
        self.procs, self.client, self.device_class = [], None, ""

    def start(self):
        data_dir = str(Path(self.tmp.name) / "data")
        subprocess.run([self.server_bin, "--init", "--data-dir", data_dir], check=True, capture_output=True)
        self.procs = [subprocess.Popen(
            [self.server_bin, "--data-dir", data_dir, "--listen", self.address, "--no-auth", "--log-level", "warn"],
            stdout=self.log, stderr=subprocess.STDOUT)]
        self.client = Client(self.address, timeout=5)
        self._wait(lambda: self.client.devices() is not None, "the server to answer")
        if self.worker_bin:
            self.procs.append(subprocess.Popen([self.worker_bin, "serve", "--server", self.address],
                                               stdout=self.log, stderr=subprocess.STDOUT))
            self._wait(lambda: self.client.devices(), "the worker to register")
            self.device_class = self.client.devices()[0].device_class

    def _wait(self, ready, what, seconds=60):
        deadline = time.time() + seconds
        while time.time() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{p.args[0]} exited with {p.returncode} waiting for {what}: {self.logs()}")
            try:
                if ready():
                    return
            except AcsError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {what}: {self.logs()}")

    def logs(self):
        self.log.flush()
        return (Path(self.tmp.name) / "server.log").read_text()[-4000:]

    def stop(self):
        if self.client:
            self.client.close()
        for p in reversed(self.procs):
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        self.log.close()
        self.tmp.cleanup()


def start_server(args):
    """A started Server for a test module (its setUpModule); stopped again if start fails."""
    server = Server(args.server_bin, args.worker_bin)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    return server
