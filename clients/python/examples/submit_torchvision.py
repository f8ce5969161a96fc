"""Exports a torchvision model with torch.jit.trace, submits it to an acs-server, watches
the search to its end and downloads the compressed model.

    python3 submit_torchvision.py --server 127.0.0.1:50051 --device-class ID \\
        --arch mobilenet_v2 --data name:fashion-mnist --budget latency=0.5x --out out/

The model is built with random weights (weights=None): nothing is downloaded. For a real
search, load your trained weights before tracing.
"""
import argparse
import sys
import tempfile
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from acs_client import Client, pb, state_name  # noqa: E402


def export(arch, input_shape, path):
    """Traces torchvision.models.<arch> (random weights, 10 classes) to a TorchScript file."""
    model = getattr(torchvision.models, arch)(weights=None, num_classes=10).eval()
    torch.jit.trace(model, torch.rand(*input_shape)).save(str(path))


def print_event(event):
    """One line per event: the state, then the episode's numbers or the event's message."""
    job = event.job
    state = event.state if event.kind == pb.JobEvent.STATE and event.state else job.state
    if event.kind == pb.JobEvent.EPISODE:
        detail = f"episode {event.episode}/{job.request.episodes}: reward {event.reward:.4f}, " \
                 f"accuracy {event.accuracy:.2%}, cost {event.cost_ratio:.3f}x, best {job.best_accuracy:.2%}, " \
                 f"ETA {job.eta_seconds:.0f}s"
    else:
        detail = event.message
    print(f"{state_name(state):10} {detail}", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default="127.0.0.1:50051")
    p.add_argument("--token", help="bearer token (default $ACS_TOKEN)")
    p.add_argument("--tls-ca", help="PEM of the server's CA: connect with TLS")
    p.add_argument("--arch", default="mobilenet_v2", help="a torchvision.models constructor")
    p.add_argument("--input", default="1x3x32x32", help="input shape the model is traced and searched at")
    p.add_argument("--data", default="name:fashion-mnist", help="a dataset file or name:NAME")
    p.add_argument("--budget", default="latency=0.5x")
    p.add_argument("--device-class", default="", help="see 'acs devices'")
    p.add_argument("--agent", default="amc")
    p.add_argument("--episodes", type=int, default=0, help="0: the server's default")
    p.add_argument("--out", default="out", help="directory for the downloaded artifacts")
    args = p.parse_args()

    shape = [int(d) for d in args.input.split("x")]
    with Client(args.server, token=args.token, root_certs=args.tls_ca) as acs:
        with tempfile.TemporaryDirectory() as tmp:
            model_path = Path(tmp) / f"{args.arch}.pt"
            export(args.arch, shape, model_path)
            job = acs.submit(model_path, shape, budget=args.budget, device_class=args.device_class,
                             dataset=args.data, agent=args.agent, episodes=args.episodes)
        print(job.id)
        final = acs.wait(job, on_event=print_event)
        if state_name(final.state) != "SUCCEEDED":
            sys.exit(f"job {final.id} {state_name(final.state)}: {final.error}")
        Path(args.out).mkdir(parents=True, exist_ok=True)
        for artifact in final.artifacts:
            print(acs.download(final, args.out, name=artifact.name))
    print(f"compressed.pt accuracy {final.exported_accuracy:.2%} (dense {final.dense_accuracy:.2%}, "
          f"search estimate {final.best_accuracy:.2%})", file=sys.stderr)

if __name__ == "__main__":
    main()
