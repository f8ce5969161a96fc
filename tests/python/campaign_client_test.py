"""The Python client's campaign-run calls (clients/python/acs_client) against a real
acs-server and worker: a no-auth loopback server on a free port with a temporary data dir.

usage: campaign_client_test.py --server-bin ACS_SERVER --worker-bin ACS_WORKER
The generated stubs are found through $ACS_PY_STUBS. Exits 77 (skipped) when grpc or the
stubs cannot be imported; the job part is skipped without torch.
"""
import argparse
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))
try:
    import grpc
    import acs_client
    from acs_client import AcsError
    from server_util import start_server
except ImportError as e:
    print(f"skipping: {e}")
    sys.exit(77)

ARGS = None
SERVER = None


def setUpModule():
    global SERVER
    SERVER = start_server(ARGS)


def tearDownModule():
    if SERVER:
        SERVER.stop()


class CampaignRunTest(unittest.TestCase):
    def test_start_get_list_record(self):
        c = SERVER.client
        run = c.start_campaign_run("py-nightly", "2026-02-01", "h1", '{"name": "py-nightly"}', ["a", "b"])
        self.assertTrue(run.id.startswith("run-"))
        self.assertTrue(run.created_now)
        self.assertEqual([cell.key for cell in run.cells], ["a", "b"])
        # Idempotent per date; another spec for the date is refused.
        again = c.start_campaign_run("py-nightly", "2026-02-01", "h1", '{"name": "py-nightly"}', ["a", "b"])
        self.assertEqual(again.id, run.id)
        self.assertFalse(again.created_now)
        with self.assertRaises(AcsError) as refused:
            c.start_campaign_run("py-nightly", "2026-02-01", "h2", "{}", ["a"])
        self.assertEqual(refused.exception.code, grpc.StatusCode.FAILED_PRECONDITION)

        # The environment the server stored with the run: versions and the worker.
        env = c.campaign_environment(run)
        self.assertIn("libtorch", env["runtime"])
        self.assertTrue(env["acs_version"])
        self.assertEqual([w["device_class"] for w in env["workers"]], [SERVER.device_class])
        self.assertIn(SERVER.device_class, env["predictors"])
        self.assertTrue(env["workers"][0]["isa"])

        by_id = c.campaign_run(run.id)
        by_date = c.campaign_run(campaign="py-nightly", date="2026-02-01")
        self.assertEqual(by_id, by_date)
        self.assertEqual(by_id.spec_json, '{"name": "py-nightly"}')
        with self.assertRaises(ValueError):
            c.campaign_run()

        c.start_campaign_run("py-nightly", "2026-02-03", "h1", "{}", ["a"])
        self.assertEqual([r.date for r in c.campaign_runs("py-nightly")], ["2026-02-03", "2026-02-01"])
        self.assertEqual([r.date for r in c.campaign_runs("py-nightly", before_date="2026-02-03")], ["2026-02-01"])
        self.assertEqual(c.campaign_runs("py-nightly")[0].spec_json, "")  # listings leave specs out

        # A note and a re-measurement on a cell; the re-measurement stays when only the note changes.
        remeasure = {"runs": [{"worker_id": "w", "measured_us": 50.0, "dense_measured_us": 100.0, "error": ""}]}
        after = c.record_campaign_cell(run, "a", note="checked", remeasure=remeasure)
        self.assertEqual(after.cells[0].note, "checked")
        self.assertIn('"measured_us":50.0', after.cells[0].remeasure_json.replace(" ", ""))
        after = c.record_campaign_cell(run.id, "a", note="again")
        self.assertEqual(after.cells[0].note, "again")
        self.assertTrue(after.cells[0].remeasure_json)
        with self.assertRaises(AcsError) as unknown:
            c.record_campaign_cell(run, "zz", note="x")
        self.assertEqual(unknown.exception.code, grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(AcsError) as malformed:
            c.record_campaign_cell(run, "a", remeasure=["not", "an", "object"])
        self.assertEqual(malformed.exception.code, grpc.StatusCode.INVALID_ARGUMENT)

    def test_remeasure_errors(self):
        with self.assertRaises(AcsError) as unknown:
            SERVER.client.remeasure_job("job-000000000000")
        self.assertEqual(unknown.exception.code, grpc.StatusCode.NOT_FOUND)


class RemeasureJobTest(unittest.TestCase):
    """A 2-episode job's exported policy measured again on the worker."""

    def test_remeasure_an_ended_job(self):
        try:
            import torch  # noqa: F401
        except ImportError:
            self.skipTest("torch is not installed")
        from client_test import make_model_and_data
        c = SERVER.client
        with tempfile.TemporaryDirectory() as workdir:
            model_path, data_path = make_model_and_data(workdir)
            job = c.submit(model_path, "1x1x28x28", budget="flops=0.5x", device_class=SERVER.device_class,
                           dataset=data_path, agent="random", episodes=2, seed=1, top_k=1)
        final = c.wait(job, timeout=600)
        self.assertEqual(acs_client.state_name(final.state), "SUCCEEDED", final.error)
        reply = c.wait_remeasure(final, runs=2, timeout=300, poll=0.5)
        self.assertTrue(reply.done)
        self.assertEqual(reply.device_class, SERVER.device_class)
        self.assertEqual(len(reply.runs), 2)
        for r in reply.runs:
            self.assertEqual(r.state, "done", r.error)
            self.assertGreater(r.measured_us, 0)
            self.assertGreater(r.dense_measured_us, 0)
            self.assertTrue(r.worker_id)
        # Reading the same tasks again; a task of no such job is refused.
        same = c.remeasure_job(final, task_ids=[r.task_id for r in reply.runs])
        self.assertEqual([r.task_id for r in same.runs], [r.task_id for r in reply.runs])
        with self.assertRaises(AcsError) as other:
            c.remeasure_job(final, task_ids=["task-nope"])
        self.assertEqual(other.exception.code, grpc.StatusCode.INVALID_ARGUMENT)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--server-bin", required=True)
    parser.add_argument("--worker-bin", required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)


if __name__ == "__main__":
    main()
