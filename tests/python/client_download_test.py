"""The Python client's checked download (Client.download) from a fake stub: no server.

The fake's DownloadArtifact yields the artifact in chunks, announcing a size and sha256 in
the first; one that does not match what arrives is refused with DATA_LOSS, and nothing is
left at the destination.

usage: client_download_test.py. The generated stubs are found through $ACS_PY_STUBS.
Exits 77 (skipped) when grpc or the stubs cannot be imported.
"""
import hashlib
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))
try:
    import grpc
    from acs_client import AcsError, Client
    from acs_client.client import pb
except ImportError as e:
    print(f"skipping: {e}")
    sys.exit(77)

ARTIFACT = bytes(i * 7 % 251 for i in range(5000))


class FakeStub:
    """DownloadArtifact streams ARTIFACT in 1000-byte chunks under the given size and digest."""

    def __init__(self, total_bytes=len(ARTIFACT), sha256=hashlib.sha256(ARTIFACT).hexdigest()):
        self.total_bytes, self.sha256 = total_bytes, sha256
        self.requests = []

    def DownloadArtifact(self, request, timeout=None, metadata=None):
        self.requests.append(request)
        for at in range(0, len(ARTIFACT), 1000):
            first = at == 0
            yield pb.ArtifactChunk(data=ARTIFACT[at:at + 1000], total_bytes=self.total_bytes if first else 0,
                                   sha256=self.sha256 if first else "")


class DownloadCheckTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="acs_client_download_")
        self.out = Path(self.dir.name)
        self.client = Client("127.0.0.1:1")  # never dialled: the fake answers
        self.addCleanup(self.dir.cleanup)
        self.addCleanup(self.client.close)

    def download(self, stub):
        self.client._stub = stub
        return self.client.download("job1", self.out, name="compressed.pt")

    def test_a_matching_artifact_is_written(self):
        stub = FakeStub()
        path = self.download(stub)
        self.assertEqual(path, self.out / "compressed.pt")
        self.assertEqual(path.read_bytes(), ARTIFACT)
        self.assertEqual([p.name for p in self.out.iterdir()], ["compressed.pt"])
        self.assertEqual((stub.requests[0].job_id, stub.requests[0].name), ("job1", "compressed.pt"))

    def test_a_sha256_mismatch_is_refused_and_leaves_no_file(self):
        wrong = "0" * 64
        with self.assertRaises(AcsError) as caught:
            self.download(FakeStub(sha256=wrong))
        self.assertEqual(caught.exception.code, grpc.StatusCode.DATA_LOSS)
        self.assertEqual(caught.exception.message, f"compressed.pt: the received bytes hash to "
                         f"{hashlib.sha256(ARTIFACT).hexdigest()}, not to the artifact's {wrong}")
        self.assertEqual(list(self.out.iterdir()), [])  # neither the file nor its .part
        # A file already at the destination is left as it was.
        (self.out / "compressed.pt").write_bytes(b"earlier")
        with self.assertRaises(AcsError):
            self.download(FakeStub(sha256=wrong))
        self.assertEqual((self.out / "compressed.pt").read_bytes(), b"earlier")
        self.assertEqual([p.name for p in self.out.iterdir()], ["compressed.pt"])

    def test_a_size_mismatch_is_refused_and_leaves_no_file(self):
        with self.assertRaises(AcsError) as caught:
            self.download(FakeStub(total_bytes=len(ARTIFACT) + 1))
        self.assertEqual(caught.exception.code, grpc.StatusCode.DATA_LOSS)
        self.assertIn("received 5000 of 5001 bytes", caught.exception.message)
        self.assertEqual(list(self.out.iterdir()), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
