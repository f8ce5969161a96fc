"""A small CNN trained in Python on Fashion-MNIST normalized and padded to 3x32x32, for the
tests that need a model whose accuracy means something. Needs numpy, torch, torchvision, PIL."""
import gzip
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

FASHION = Path("/usr/share/datasets/fashion-mnist")
# The training transform (as a user's torchvision pipeline would be).
TRANSFORM = transforms.Compose([transforms.Pad(2), transforms.Grayscale(3), transforms.ToTensor(),
                                transforms.Normalize((0.286,) * 3, (0.353,) * 3)])


def read_idx(prefix, count):
    """The first `count` images (uint8 [N, 28, 28]) and labels of an IDX pair."""
    with gzip.open(FASHION / f"{prefix}-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:count]
    with gzip.open(FASHION / f"{prefix}-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:count]
    return images, labels


def transformed(images):
    """uint8 [N, 28, 28] images through TRANSFORM: float [N, 3, 32, 32]."""
    return torch.stack([TRANSFORM(Image.fromarray(i, mode="L")) for i in images])


def small_cnn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.BatchNorm2d(32), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.BatchNorm2d(32), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 10))


def train_small_cnn(samples=4000, epochs=3):
    """small_cnn() trained with Adam on the first `samples` training images; in eval mode."""
    torch.manual_seed(0)
    images, labels = read_idx("train", samples)
    x = transformed(images)
    y = torch.from_numpy(labels.astype(np.int64))
    model = small_cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        for batch in torch.randperm(len(x)).split(64):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval()
