# Writes the seed inputs of the importer fuzz target (tests/fuzz/corpus/importer): small
# TorchScript models for input 1x1x28x28, each prefixed by the shape byte 0 (1x1x28x28,
# see fuzz_importer.cc). Their archives are rewritten with every entry stored, not
# deflated, and without the .debug_pkl entries, so that the fuzzer's byte mutations reach
# the code and pickles; "original.pt" keeps the layout torch.jit.save writes.
# Usage (PYTHONHASHSEED=0 for the same bytes each time):
#   PYTHONHASHSEED=0 /usr/bin/python3 tests/fuzz/make_importer_seeds.py tests/fuzz/corpus/importer
import io
import os
import sys
import zipfile
from enum import Enum
from typing import Final, List, NamedTuple, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


class Plain(nn.Module):  # conv + bn + relu + pool, flatten, two linears
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1, bias=True)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 8, 3, stride=2)
        self.fc1 = nn.Linear(8 * 3 * 3, 16)
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x):
        x = F.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


class Residual(nn.Module):  # residual adds (one in place), downsample, depthwise, concat, SE
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.a = nn.Conv2d(4, 4, 3, padding=1)
        self.down = nn.Conv2d(4, 6, 1, stride=2)
        self.b = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.dw = nn.Conv2d(6, 6, 3, padding=1, groups=6)
        self.branch = nn.Conv2d(6, 2, 1)
        self.grouped = nn.Conv2d(8, 8, 3, padding="same", dilation=2, groups=2)
        self.se = nn.Conv2d(8, 8, 1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = F.hardswish(self.stem(x))
        x = x + torch.relu(self.a(x))
        y = self.b(x)
        y += self.down(x)
        y = F.relu6(self.dw(y))
        y = torch.cat([y, self.branch(y)], 1)
        y = self.grouped(y)
        y = y * torch.sigmoid(self.se(F.adaptive_avg_pool2d(y, 1)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


class Control(nn.Module):  # control flow, a shared weight, a transposed conv, tuple output
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.shared = nn.Conv2d(4, 4, 3, padding=1)
        self.up = nn.ConvTranspose2d(4, 2, 2, stride=2)
        self.fc = nn.Linear(2, 10)

    def forward(self, x) -> Tuple[torch.Tensor, torch.Tensor]:
        x = torch.relu(self.conv(x))
        x = self.shared(torch.relu(self.shared(x)))
        if x.size(0) > 1:
            x = x * 2.0
        parts: List[torch.Tensor] = []
        for i in range(2):
            parts.append(x[:, i:i + 2])
        x = torch.cat(parts, 1)
        x = self.up(F.avg_pool2d(x, 2))
        y = x.reshape(x.size(0), 2, -1).transpose(1, 2)
        return self.fc(torch.mean(y, 1)), x


class Odd(nn.Module):  # conv1d, a weight computed in the graph, a linear on 4-d input
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(28, 4, 3)
        self.w = nn.Parameter(torch.randn(4, 4, 1, 1))
        self.fc = nn.Linear(26, 10)

    def forward(self, x):
        y = self.c1(x[:, 0])
        y = F.conv2d(y.unsqueeze(1).expand(-1, 4, -1, -1), self.w * 2.0)
        return self.fc(y).mean([1, 2])


class Mode(Enum):
    SUM = 1
    MAX = 2


class Out(NamedTuple):
    logits: torch.Tensor
    scale: float


class Classes(nn.Module):  # an Enum attribute, a NamedTuple output, a class constant
    limit: Final[int] = 3

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4, 10)
        self.mode = Mode.SUM

    def forward(self, x) -> Out:
        y = torch.relu(self.conv(x))
        y = y.sum([2, 3]) if self.mode == Mode.SUM else y.amax([2, 3])
        return Out(self.fc(y) * self.limit, 1.0)


class TwoInputs(nn.Module):
    def forward(self, x, y):
        return x + y


class ThreeChannels(nn.Module):  # does not run on 1 channel
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(x)


def stored(data: bytes) -> bytes:
    """The archive with every entry stored and no debug info."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            if not info.filename.endswith(".debug_pkl"):
                dst.writestr(zipfile.ZipInfo(info.filename), src.read(info.filename))
    return out.getvalue()


def save(module: torch.jit.ScriptModule) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    return buffer.getvalue()


def main() -> None:
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    example = torch.rand(1, 1, 28, 28)
    models = {
        "plain.pt": torch.jit.script(Plain().eval()),
        "residual.pt": torch.jit.script(Residual().eval()),
        "control.pt": torch.jit.script(Control().eval()),
        "traced.pt": torch.jit.trace(Residual().eval(), example),
        "odd.pt": torch.jit.script(Odd().eval()),
        "classes.pt": torch.jit.script(Classes().eval()),
        "two_inputs.pt": torch.jit.script(TwoInputs()),
        "three_channels.pt": torch.jit.script(ThreeChannels().eval()),
    }
    for name, module in models.items():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(b"\0" + stored(save(module)))
    with open(os.path.join(out_dir, "original.pt"), "wb") as f:
        f.write(b"\0" + save(models["plain.pt"]))


if __name__ == "__main__":
    main()
