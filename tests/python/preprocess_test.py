"""acs's preprocessing against torchvision's: Fashion-MNIST test images through a
transforms.Compose in Python (PIL images, as a user trains with), and through the spec
acs_client.preprocess_from_torchvision makes of the same Compose, applied by
`acs data inspect --save`; and a folder of PNG / JPEG files the test writes, read by
torchvision's ImageFolder and by acs. Every value must agree within one 8-bit level (1/255, over std
after normalization).

usage: preprocess_test.py ACS_BIN [DATA_DIR]
Exits 77 (skipped) without torchvision, PIL, the client's stubs or the dataset.
"""
import gzip
import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))
try:
    import numpy as np
    import torch
    from PIL import Image
    from torchvision import transforms as T
    from acs_client import preprocess_from_torchvision, preprocess_steps
except ImportError as e:
    print(f"skipping: {e}")
    sys.exit(77)

ACS = None
DATA = Path("/usr/share/datasets/fashion-mnist")
SAMPLES = 64


def idx_images(path, count):
    with gzip.open(path, "rb") as f:
        header = f.read(16)
        rows, cols = int.from_bytes(header[8:12], "big"), int.from_bytes(header[12:16], "big")
        pixels = np.frombuffer(f.read(count * rows * cols), dtype=np.uint8)
    return pixels.reshape(count, rows, cols)


class PreprocessTest(unittest.TestCase):
    def through_acs(self, spec, input_shape):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "images.pt"
            run = subprocess.run([ACS, "data", "inspect", str(DATA), "--limit", str(SAMPLES), "--input", input_shape,
                                  "--preprocess", json.dumps(spec), "--save", str(out)],
                                 capture_output=True, text=True)
            self.assertEqual(run.returncode, 0, run.stderr)
            images, labels = torch.load(out)
        return images, labels

    def compare(self, compose, input_shape, std=1.0):
        spec = preprocess_from_torchvision(compose)
        self.assertEqual(len(preprocess_steps(spec)), len(compose.transforms))
        ours, labels = self.through_acs(spec, input_shape)
        pixels = idx_images(DATA / "t10k-images-idx3-ubyte.gz", SAMPLES)
        theirs = torch.stack([compose(Image.fromarray(p, mode="L")) for p in pixels])
        self.assertEqual(tuple(ours.shape), tuple(theirs.shape))
        self.assertEqual(len(labels), SAMPLES)
        worst = (ours - theirs).abs().max().item()
        off = ((ours - theirs).abs() > 1e-5).double().mean().item()
        print(f"{spec}: max difference {worst:.6f} (one level: {1 / 255 / std:.6f}), {off:.2%} of values differ")
        self.assertLessEqual(worst, 1 / 255 / std + 1e-5)
        return worst

    def test_resize_crop_grey_to_rgb_normalize(self):
        self.compare(T.Compose([T.Resize(36), T.CenterCrop(32), T.Grayscale(3), T.ToTensor(),
                                T.Normalize([0.2860] * 3, [0.3530] * 3)]), "1x3x32x32", std=0.3530)

    def test_pad_then_normalize(self):
        self.compare(T.Compose([T.Pad(2), T.ToTensor(), T.Normalize([0.2860], [0.3530])]), "1x1x32x32", std=0.3530)

    def test_shrink_and_uneven_pad(self):
        self.compare(T.Compose([T.Resize((20, 24)), T.Pad((1, 2, 3, 4), fill=17), T.ToTensor()]), "1x1x26x28")

    def test_image_folder_matches_torchvision(self):
        from torchvision.datasets import ImageFolder
        pixels = idx_images(DATA / "t10k-images-idx3-ubyte.gz", 12)
        compose = T.Compose([T.Resize(36), T.CenterCrop(32), T.ToTensor(), T.Normalize([0.5, 0.4, 0.3], [0.3] * 3)])
        with tempfile.TemporaryDirectory() as root:
            # Grey PNGs and colour JPEGs of odd sizes, one in a nested folder, over three classes.
            for i, p in enumerate(pixels):
                label = ["coat", "bag", "ankle_boot"][i % 3]
                folder = Path(root) / label / ("nested" if i == 4 else "")
                folder.mkdir(parents=True, exist_ok=True)
                image = Image.fromarray(p, mode="L").resize((29 + i, 41 - i), Image.BILINEAR)
                if i % 2:
                    rgb = np.stack([np.asarray(image), np.asarray(image)[::-1], 255 - np.asarray(image)], axis=-1)
                    Image.fromarray(rgb.astype(np.uint8), mode="RGB").save(folder / f"{i:02d}.jpg", quality=90)
                else:
                    image.save(folder / f"{i:02d}.png")
            theirs = ImageFolder(root, transform=compose)
            expected = torch.stack([theirs[i][0] for i in range(len(theirs))])
            expected_labels = torch.tensor([theirs[i][1] for i in range(len(theirs))])
            out = Path(root) / "prepared.pt"  # beside the class folders: neither reader takes it
            run = subprocess.run([ACS, "data", "inspect", root, "--input", "1x3x32x32", "--save", str(out),
                                  "--preprocess", json.dumps(preprocess_from_torchvision(compose))],
                                 capture_output=True, text=True)
            self.assertEqual(run.returncode, 0, run.stderr)
            images, labels = torch.load(out)
        self.assertTrue(torch.equal(labels, expected_labels), f"{labels} vs {expected_labels}")
        worst = (images - expected).abs().max().item()
        off = ((images - expected).abs() > 1e-5).double().mean().item()
        print(f"image folder of {len(expected)} PNG / JPEG images: max difference {worst:.6f} "
              f"(one level: {1 / 255 / 0.3:.6f}), {off:.2%} of values differ")
        self.assertLessEqual(worst, 1 / 255 / 0.3 + 1e-5)

    def test_a_spec_that_misses_the_input_is_refused(self):
        spec = preprocess_from_torchvision(T.Compose([T.Resize(36), T.ToTensor()]))
        run = subprocess.run([ACS, "data", "inspect", str(DATA), "--limit", "4", "--input", "1x1x32x32",
                              "--preprocess", json.dumps(spec)], capture_output=True, text=True)
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("makes images of 1x36x36, but the model's input is 1x32x32", run.stderr)

    def test_transforms_without_a_step_are_named(self):
        with self.assertRaisesRegex(ValueError, "RandomHorizontalFlip"):
            preprocess_from_torchvision(T.Compose([T.RandomHorizontalFlip(), T.ToTensor()]))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    ACS = sys.argv[1]
    if len(sys.argv) > 2:
        DATA = Path(sys.argv[2])
    if not (DATA / "t10k-images-idx3-ubyte.gz").exists():
        print(f"skipping: no Fashion-MNIST in {DATA}")
        sys.exit(77)
    sys.argv = sys.argv[:1]
    unittest.main(verbosity=2)
