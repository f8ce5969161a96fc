"""A job on an image folder with a preprocessing spec reproduces Python's accuracy of the
model on that folder within 0.1 point (issue: the user's own data).

A small CNN is trained in Python on Fashion-MNIST normalized and padded to 3x32x32, the
test images are written as a class-per-folder PNG tree, and Python scores the model with
torchvision's ImageFolder and the training transform. A real acs-server and acs-worker
then run a job on that folder with preprocess_from_torchvision(the transform) and the folder
as its test set: the job's dense test accuracy must equal Python's within 0.1 point.

usage: folder_job_test.py --server-bin ACS_SERVER --worker-bin ACS_WORKER
Exits 77 (skipped) without grpc, the stubs, torch, torchvision, PIL or the dataset.
"""
import argparse
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))
try:
    import torch
    from PIL import Image
    from torchvision import datasets

    import acs_client
    from fashion_cnn import FASHION, TRANSFORM, read_idx, train_small_cnn
    from server_util import Server
except ImportError as e:
    print(f"skipping: {e}")
    sys.exit(77)

ARGS = None


class FolderJobTest(unittest.TestCase):
    def test_job_reproduces_python_accuracy_on_a_folder(self):
        work = Path(self.tmp.name)
        transform = TRANSFORM
        model = train_small_cnn()  # in Python, on the transform of each image
        model_path = work / "model.pt"
        torch.jit.trace(model, torch.rand(1, 3, 32, 32)).save(str(model_path))

        # The test images as a folder; Python's accuracy through ImageFolder.
        folder = work / "folder"
        test_images, test_labels = read_idx("t10k", 1000)
        for n, (image, label) in enumerate(zip(test_images, test_labels)):
            (folder / f"class{label}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(image, mode="L").save(folder / f"class{label}" / f"{n:04d}.png")
        loader = torch.utils.data.DataLoader(datasets.ImageFolder(str(folder), transform=transform), batch_size=250)
        correct = 0
        with torch.no_grad():
            for batch, target in loader:
                correct += (model(batch).argmax(1) == target).sum().item()
        python_accuracy = correct / 1000
        self.assertGreater(python_accuracy, 0.5)  # trained: a wrong preprocessing shows

        job = self.server.client.submit(
            model_path, "1x3x32x32", budget="flops=0.5x", device_class=self.server.device_class,
            dataset=folder, test_dataset=folder, agent="random", episodes=1, top_k=0,
            preprocess=acs_client.preprocess_from_torchvision(transform))
        final = self.server.client.wait(job, timeout=600)
        self.assertEqual(acs_client.state_name(final.state), "SUCCEEDED", final.error)
        self.assertEqual(final.test_samples, 1000)
        print(f"Python {100 * python_accuracy:.2f}%, the job's dense test accuracy "
              f"{100 * final.dense_test_accuracy:.2f}%, the downloaded model {100 * final.test_accuracy:.2f}%")
        self.assertLessEqual(abs(final.dense_test_accuracy - python_accuracy), 0.001)

    @classmethod
    def setUpClass(cls):
        if not FASHION.is_dir():
            raise unittest.SkipTest(f"{FASHION} is not installed")
        cls.server = Server(ARGS.server_bin, ARGS.worker_bin)
        try:
            cls.server.start()
        except BaseException:
            cls.server.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--server-bin", required=True)
    parser.add_argument("--worker-bin", required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)


if __name__ == "__main__":
    main()
