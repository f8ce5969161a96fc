"""Python client of the acs automated compression search service (proto/acs.proto).

    from acs_client import Client
    with Client("127.0.0.1:50051") as acs:
        job = acs.submit("model.pt", "1x1x28x28", budget="latency=0.5x",
                         device_class="...", dataset="name:fashion-mnist")
        final = acs.wait(job, on_event=print)
        acs.download(final, "out/")
"""

from acs_client.client import (AcsError, Client, TERMINAL_STATES, data_split, parse_budget, parse_shape,
                               pb, preprocess_from_torchvision, preprocess_steps, state_name)

__all__ = ["AcsError", "Client", "TERMINAL_STATES", "data_split", "parse_budget", "parse_shape", "pb",
           "preprocess_from_torchvision", "preprocess_steps", "state_name"]
