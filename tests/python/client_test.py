"""The Python client (clients/python/acs_client) and the acs CLI against a real acs-server:
a no-auth loopback server on a free port with a temporary data dir, and a worker.

usage: client_test.py --server-bin ACS_SERVER [--worker-bin ACS_WORKER] [--acs-bin ACS]
The generated stubs are found through $ACS_PY_STUBS. Exits 77 (skipped) when grpc or the
stubs cannot be imported. Parts the server does not implement yet (it answers
UNIMPLEMENTED) are skipped, saying so.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))
try:
    import grpc
    import acs_client
    from acs_client import AcsError, Client
    from server_util import start_server, free_port
except ImportError as e:
    print(f"skipping: {e}")
    sys.exit(77)

ARGS = None
SERVER = None  # the running server: address, data dir, processes


def setUpModule():
    global SERVER
    SERVER = start_server(ARGS)


def tearDownModule():
    if SERVER:
        SERVER.stop()


def skip_unimplemented(test, error, what):
    if error.code == grpc.StatusCode.UNIMPLEMENTED:
        test.skipTest(f"the server does not implement {what} yet: {error.message}")


def run_acs(*args):
    """Runs the acs CLI against the test server -> CompletedProcess (text)."""
    return subprocess.run([ARGS.acs_bin, *args, "--server", SERVER.address], capture_output=True, text=True,
                          timeout=600)


class UploadTest(unittest.TestCase):
    def upload(self, method):
        data = os.urandom(2 * acs_client.client.CHUNK_BYTES + 12345)  # three chunks
        with tempfile.NamedTemporaryFile(suffix=".bin") as f:
            f.write(data)
            f.flush()
            try:
                first = method(f.name)
            except AcsError as e:
                skip_unimplemented(self, e, "uploads")
                raise
            again = method(f.name)
        self.assertEqual(first.sha256, hashlib.sha256(data).hexdigest())
        self.assertEqual(first.bytes, len(data))
        self.assertFalse(first.deduplicated)
        self.assertEqual(again.sha256, first.sha256)
        self.assertTrue(again.deduplicated)

    def test_model_round_trip(self):
        self.upload(SERVER.client.upload_model)

    def test_dataset_round_trip(self):
        self.upload(SERVER.client.upload_dataset)

    def test_missing_file(self):
        with self.assertRaises(FileNotFoundError):
            SERVER.client.upload_model("/nonexistent/model.pt")


class ErrorTest(unittest.TestCase):
    def test_unknown_job_is_not_found(self):
        with self.assertRaises(AcsError) as caught:
            SERVER.client.get("job-does-not-exist")
        skip_unimplemented(self, caught.exception, "GetJob")
        self.assertEqual(caught.exception.code, grpc.StatusCode.NOT_FOUND)
        self.assertIn("NOT_FOUND", str(caught.exception))

    def test_unreachable_server(self):
        with Client(f"127.0.0.1:{free_port()}", timeout=2) as c, self.assertRaises(AcsError) as caught:
            c.devices()
        self.assertEqual(caught.exception.code, grpc.StatusCode.UNAVAILABLE)
        self.assertIn("cannot reach acs-server", caught.exception.message)

    def test_bad_arguments(self):
        with self.assertRaises(ValueError):
            acs_client.parse_budget("latency=2x")
        with self.assertRaises(ValueError):
            acs_client.parse_shape("1x0x28x28")
        self.assertEqual(acs_client.parse_budget("flops=0.5x").ratio, 0.5)
        self.assertEqual(acs_client.parse_shape("1x1x28x28"), [1, 1, 28, 28])
        split = acs_client.data_split({"calibration": 64, "validation": "10%", "fine_tune": 0.5, "shuffle_seed": 3})
        self.assertEqual((split.calibration.samples, split.validation.fraction, split.fine_tune.fraction,
                          split.shuffle_seed), (64, 0.1, 0.5, 3))
        for bad in ({"validation": 0}, {"validation": 1.5}, {"holdout": 5}, {"calibration": "many"}):
            with self.assertRaises(ValueError):
                acs_client.data_split(bad)


class DevicesTest(unittest.TestCase):
    def test_list_devices(self):
        devices = SERVER.client.devices()
        self.assertIsInstance(devices, list)
        if ARGS.worker_bin:
            self.assertEqual(len(devices), 1)
            self.assertTrue(devices[0].online)


class SearchSpaceTest(unittest.TestCase):
    def test_choices_name_what_submit_accepts(self):
        choices = SERVER.client.search_space()
        self.assertIn(choices.default_agent, choices.agents)
        self.assertIn("latency", choices.budget_kinds)
        self.assertIn("block", choices.patterns)
        self.assertIn("int8", choices.precisions)
        # A name the server does not list is refused, and the refusal names the listed ones.
        with tempfile.TemporaryDirectory() as d:
            model = Path(d) / "m.pt"
            model.write_bytes(b"not a model")
            with self.assertRaises(AcsError) as e:
                SERVER.client.submit(str(model), "1x1x28x28", agent="no-such-agent", dataset="name:fashion-mnist")
        self.assertIn(choices.agents[0], e.exception.message)


class CliTest(unittest.TestCase):
    def setUp(self):
        if not ARGS.acs_bin:
            self.skipTest("no --acs-bin")

    def test_help_lists_commands(self):
        out = subprocess.run([ARGS.acs_bin, "--help"], capture_output=True, text=True).stdout
        for command in ("submit", "watch", "jobs", "job", "cancel", "download", "devices"):
            self.assertIn(f"  {command} ", out)

    def test_unknown_job(self):
        proc = run_acs("job", "job-does-not-exist")
        if "UNIMPLEMENTED" in proc.stderr:
            self.skipTest("the server does not implement GetJob yet")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("acs job: NOT_FOUND: ", proc.stderr)

    def test_data_directory_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            model = Path(d) / "m.pt"
            model.write_bytes(b"x")
            proc = run_acs("submit", str(model), "--input", "1x1x28x28", "--data", d)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("is a directory", proc.stderr)

    def test_devices(self):
        proc = run_acs("devices")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("device class", proc.stdout)


def make_model_and_data(workdir):
    """A small traced CNN for 1x1x28x28 and a torch.save'd (images, labels) file."""
    import torch
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 16, 3, padding=1),
        torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 10)).eval()
    model_path = Path(workdir) / "small.pt"
    torch.jit.trace(model, torch.rand(1, 1, 28, 28)).save(str(model_path))
    data_path = Path(workdir) / "data.pt"
    torch.save((torch.rand(1000, 1, 28, 28), torch.randint(0, 10, (1000,))), str(data_path))
    return model_path, data_path


class JobTest(unittest.TestCase):
    """Submit, watch, list, download: a 3-episode random search under a FLOPs budget."""

    def setUp(self):
        try:
            import torch  # noqa: F401
        except ImportError:
            self.skipTest("torch is not installed")
        self.workdir = tempfile.TemporaryDirectory()
        self.addCleanup(self.workdir.cleanup)
        self.model_path, self.data_path = make_model_and_data(self.workdir.name)

    def submit(self, episodes, **more):
        """Submits the test model; skips when the server has no job RPCs yet."""
        more.setdefault("dataset", self.data_path)
        try:
            return SERVER.client.submit(self.model_path, "1x1x28x28", budget="flops=0.5x",
                                        device_class=SERVER.device_class, agent="random", episodes=episodes, **more)
        except AcsError as e:
            skip_unimplemented(self, e, "job submission")
            raise

    def test_submit_watch_download(self):
        import torch
        c, workdir = SERVER.client, self.workdir.name
        job = self.submit(3, seed=1, top_k=1)
        self.assertTrue(job.id)
        self.assertIn(job.id, [j.id for j in c.list()])

        events = []
        final = c.wait(job, on_event=events.append, timeout=540)
        self.assertEqual(acs_client.state_name(final.state), "SUCCEEDED", final.error)
        self.assertIn(final.state, acs_client.TERMINAL_STATES)
        self.assertEqual(final.episodes_done, 3)
        self.assertTrue(any(e.kind == acs_client.pb.JobEvent.EPISODE for e in events))
        self.assertIn(final.id, [j.id for j in c.list(state="succeeded")])

        out = c.download(final, workdir)
        self.assertEqual(out, Path(workdir) / "compressed.pt")
        self.assertEqual(out.stat().st_size, {a.name: a.bytes for a in final.artifacts}["compressed.pt"])
        compressed = torch.jit.load(str(out))
        with torch.no_grad():
            self.assertEqual(tuple(compressed(torch.rand(2, 1, 28, 28)).shape), (2, 10))
        if ARGS.acs_bin:
            self.check_cli(final, workdir)

    def test_image_folder_job(self):
        """An image folder uploaded (as a tar archive of its images) and prepared by a spec."""
        import numpy as np
        from PIL import Image
        folder = Path(self.workdir.name) / "folder"
        rng = np.random.default_rng(0)
        for i in range(300):  # the first 256 calibrate, the rest validate
            cls = folder / ["ankle_boot", "bag", "coat"][i % 3]
            cls.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8), mode="L").save(cls / f"{i}.png")
        (folder / ".cache").mkdir()
        (folder / ".cache" / "x.png").write_bytes(b"not read")
        spec = [{"op": "grayscale"}, {"op": "to_tensor"}, {"op": "normalize", "mean": 0.5, "std": 0.25}]
        self.assertEqual(len(acs_client.client.image_folder_files(folder)), 300)
        # Its own split, and the folder again as the test set.
        job = self.submit(2, top_k=0, dataset=folder, preprocess=spec,
                          split={"calibration": 100, "validation": "50%"}, test_dataset=folder)
        final = SERVER.client.wait(job, timeout=540)
        self.assertEqual(acs_client.state_name(final.state), "SUCCEEDED", final.error)
        report = json.loads((SERVER.client.download(final, self.workdir.name, name="report.json")).read_text())
        self.assertIn("image folder, 3 classes", report["data"]["source"])
        self.assertEqual(report["data"]["preprocess"][0], {"op": "grayscale"})
        self.assertEqual((report["data"]["calibration"], report["data"]["validation"]), (100, 150))
        self.assertEqual(final.test_samples, 300)
        self.assertEqual(report["test"]["samples"], 300)
        self.assertAlmostEqual(final.test_accuracy, report["test"]["exported_accuracy"])
        if ARGS.acs_bin:  # the same folder through the CLI: packed, uploaded, accepted
            proc = run_acs("submit", str(self.model_path), "--input", "1x1x28x28", "--data", str(folder),
                           "--preprocess", json.dumps(spec), "--budget", "flops=0.5x", "--agent", "random",
                           "--episodes", "1", "--top-k", "0", "--device-class", SERVER.device_class)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertIn("300 images packed", proc.stderr)
            try:
                SERVER.client.cancel(proc.stdout.strip())
            except AcsError:
                pass  # it ended already

    def test_cancel(self):
        job = self.submit(500)
        SERVER.client.cancel(job)
        final = SERVER.client.wait(job, timeout=120)
        self.assertEqual(acs_client.state_name(final.state), "CANCELLED")

    def test_time_limit(self):
        """A job past its time_limit_seconds fails naming the limit; GetJob shows the limit back."""
        job = self.submit(100000, top_k=0, time_limit_seconds=2)
        self.assertEqual(job.request.time_limit_seconds, 2)
        self.assertEqual(SERVER.client.get(job).request.time_limit_seconds, 2)
        final = SERVER.client.wait(job, timeout=540)
        self.assertEqual(acs_client.state_name(final.state), "FAILED", final.error)
        self.assertTrue(final.error.startswith("the job exceeded its time limit of 2 s while "), final.error)
        self.assertLess(final.episodes_done, 100000)

    def check_cli(self, job, workdir):
        proc = run_acs("job", job.id, "--json")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(json.loads(proc.stdout)["id"], job.id)
        proc = run_acs("watch", job.id)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("SUCCEEDED", proc.stdout)
        proc = run_acs("jobs", "--all")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn(job.id, proc.stdout)
        out = Path(workdir) / "cli"
        proc = run_acs("download", job.id, "--all", "--out", str(out))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(sorted(p.name for p in out.iterdir()), sorted(a.name for a in job.artifacts))


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--server-bin", required=True)
    parser.add_argument("--worker-bin")
    parser.add_argument("--acs-bin")
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)


if __name__ == "__main__":
    main()
