#!/usr/bin/python3
"""Trains torchvision models on Fashion-MNIST as a PyTorch user would, and saves them as
TorchScript for the benchmarks (bench_onpolicy): images padded to 32x32, repeated to 3
channels and normalized *inside* the saved module, so the module takes the raw pixels in
[0, 1] at 1x3x32x32 that acs's readers produce (grey repeated to 3 channels, resized).

    /usr/bin/python3 experiments/zoo/train_torchvision.py --model resnet18 --out data/zoo
        [--epochs 1] [--train-samples 20000] [--threads 2] [--data /usr/share/datasets/fashion-mnist]

Writes OUT/tv_MODEL.pt and prints the test top-1 on the 10,000 test images. Uses Debian's
python3-torch and python3-torchvision; nothing is downloaded.
"""
import argparse
import gzip
import os
import time

import numpy as np
import torch
import torchvision

MEAN, STD = 0.2860, 0.3530


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(data_dir, split):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(images.copy()).float().div_(255).unsqueeze(1)  # N x 1 x 28 x 28 in [0, 1]
    x = torch.nn.functional.pad(x, (2, 2, 2, 2)).repeat(1, 3, 1, 1)   # N x 3 x 32 x 32
    return x, torch.from_numpy(labels.astype(np.int64))


class Normalized(torch.nn.Module):
    """The network behind the normalization its training used."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net((x - 0.2860) / 0.3530)  # MEAN, STD (TorchScript needs literals)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True, choices=["resnet18", "mobilenet_v2"])
    p.add_argument("--out", default="data/zoo")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-samples", type=int, default=20000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    x, y = load(a.data, "train")
    x, y = x[: a.train_samples], y[: a.train_samples]
    tx, ty = load(a.data, "test")
    net = getattr(torchvision.models, a.model)(num_classes=10)
    model = Normalized(net)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    steps = a.epochs * ((len(x) + 127) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=steps)
    start = time.time()
    for epoch in range(a.epochs):
        model.train()
        order = torch.randperm(len(x))
        for i in range(0, len(x), 128):
            idx = order[i:i + 128]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print(f"{a.model} epoch {epoch + 1}/{a.epochs} loss {loss.item():.4f} ({time.time() - start:.0f} s)", flush=True)
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(tx), 500):
            correct += (model(tx[i:i + 500]).argmax(1) == ty[i:i + 500]).sum().item()
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, f"tv_{a.model}.pt")
    torch.jit.script(model).save(path)
    print(f"{a.model}: test top-1 {100.0 * correct / len(tx):.2f}%, saved {path} (input 1x3x32x32)")


if __name__ == "__main__":
    main()
