"""A client of the acs-server gRPC API (proto/acs.proto).

Every call raises AcsError, carrying the gRPC status code and the server's message, when
the server answers with an error. A Client is thread-safe, like the gRPC channel under it.
"""

import hashlib
import json
import os
import re
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

import grpc

CHUNK_BYTES = 1 << 20  # upload chunk size
DEFAULT_ADDRESS = "127.0.0.1:50051"


def _load_stubs():
    """Imports the generated acs_pb2 / acs_pb2_grpc modules.

    Looked for in $ACS_PY_STUBS, beside this package (acs_client/_stubs), then in the
    build trees of a source checkout (build*/clients/python/stubs)."""
    here = Path(__file__).resolve().parent
    candidates = [Path(os.environ["ACS_PY_STUBS"])] if os.environ.get("ACS_PY_STUBS") else []
    candidates.append(here / "_stubs")
    if len(here.parents) > 2:
        candidates += sorted(here.parents[2].glob("build*/clients/python/stubs"))
    for directory in candidates:
        if (directory / "acs_pb2_grpc.py").exists():
            if str(directory) not in sys.path:
                sys.path.insert(0, str(directory))
            break
    try:
        import acs_pb2  # noqa: E402
        import acs_pb2_grpc  # noqa: E402
    except ImportError as e:
        raise ImportError(
            "acs_client needs the Python stubs of proto/acs.proto: build them with "
            "'cmake --build BUILD --target acs_py_stubs' and set ACS_PY_STUBS=BUILD/clients/python/stubs"
        ) from e
    return acs_pb2, acs_pb2_grpc


pb, pb_grpc = _load_stubs()

TERMINAL_STATES = frozenset({pb.SUCCEEDED, pb.BUDGET_NOT_MET, pb.FAILED, pb.CANCELLED})


class AcsError(Exception):
    """An error answered by the server (or the channel): code is a grpc.StatusCode."""

    def __init__(self, code, message):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


def image_folder_files(root):
    """The image files of a folder as acs reads it (core/image_files.h): .jpg, .jpeg and .png
    files under root, hidden entries skipped, links not followed; relative, '/'-separated."""
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            path = Path(folder) / name
            if name.startswith(".") or path.is_symlink() or path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
                continue
            found.append(path.relative_to(root).as_posix())
    return sorted(found)


def preprocess_steps(steps):
    """A preprocessing spec (a list of dicts in docs/data.md's terms, e.g.
    [{"op": "resize", "size": 32}, {"op": "to_tensor"}]) -> PreprocessStep messages.
    The server checks the spec and names the step that is wrong."""
    out = []
    for step in steps:
        step = dict(step)
        fields = {"op": step.pop("op", "")}
        for key in ("size", "padding", "mean", "std"):
            if key in step:
                value = step.pop(key)
                fields[key] = list(value) if isinstance(value, (list, tuple)) else [value]
        for key in ("fill", "channels"):
            if key in step:
                fields[key] = step.pop(key)
        if step:
            raise ValueError(f"preprocessing step {fields['op']!r}: unknown keys {sorted(step)}")
        out.append(pb.PreprocessStep(**fields))
    return out


def data_split(split):
    """A DataSplit from a dict such as {"calibration": 256, "validation": "10%",
    "fine_tune": 0.5, "shuffle_seed": 7}: an int is a count of samples, a float in (0, 1] or
    a "N%" string a share of the data's (docs/data.md). None or {}: the server's defaults."""
    out = pb.DataSplit()
    for key, value in (split or {}).items():
        if key == "shuffle_seed":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"split: shuffle_seed must be an integer >= 0, not {value!r}")
            out.shuffle_seed = value
            continue
        if key not in ("calibration", "validation", "fine_tune"):
            raise ValueError(f"split: unknown part {key!r} (calibration, validation, fine_tune, shuffle_seed)")
        part = getattr(out, key)
        if isinstance(value, str) and value.endswith("%"):
            value = float(value[:-1]) / 100
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"split: {key} must be a count, a fraction or 'N%', not {value!r}")
        if isinstance(value, int):
            if value < 1:
                raise ValueError(f"split: {key} must be at least 1 sample, not {value}")
            part.samples = value
        elif 0 < value <= 1:
            part.fraction = value
        else:
            raise ValueError(f"split: {key}'s fraction must be in (0, 1], not {value}")
    return out


def preprocess_from_torchvision(compose):
    """The spec of a torchvision transforms.Compose (or a list of transforms) of Resize,
    CenterCrop, Pad (constant fill), Grayscale, ToTensor and Normalize; ValueError naming
    any other transform (or option the spec lacks)."""
    from torchvision import transforms as T  # only this helper needs torchvision

    def pair(value):
        return [value] if isinstance(value, int) else list(value)

    steps = []
    for t in getattr(compose, "transforms", compose):
        if isinstance(t, T.Resize):
            if t.max_size is not None or t.interpolation != T.InterpolationMode.BILINEAR:
                raise ValueError(f"{t}: only bilinear resizes without max_size are in the spec")
            steps.append({"op": "resize", "size": pair(t.size)})
        elif isinstance(t, T.CenterCrop):
            steps.append({"op": "center_crop", "size": pair(t.size)})
        elif isinstance(t, T.Pad):
            if t.padding_mode != "constant" or not isinstance(t.fill, (int, float)):
                raise ValueError(f"{t}: only constant padding with one fill value is in the spec")
            steps.append({"op": "pad", "padding": pair(t.padding), "fill": float(t.fill)})
        elif isinstance(t, T.Grayscale):
            steps.append({"op": "grayscale", "channels": t.num_output_channels})
        elif isinstance(t, T.ToTensor):
            steps.append({"op": "to_tensor"})
        elif isinstance(t, T.Normalize):
            steps.append({"op": "normalize", "mean": [float(m) for m in t.mean], "std": [float(v) for v in t.std]})
        else:
            raise ValueError(f"{t!r} has no step in the preprocessing spec (docs/data.md)")
    return steps


def state_name(state):
    """JobState value -> its name, e.g. 5 -> "SUCCEEDED"."""
    return pb.JobState.Name(state)


def parse_budget(budget):
    """"latency=0.5x" or ("latency", 0.5) -> Budget; ValueError when malformed."""
    if isinstance(budget, str):
        m = re.fullmatch(r"(latency|flops|params|bytes)=([0-9.eE+-]+)[xX]?", budget.strip())
        if not m:
            raise ValueError(f"budget expects KIND=RATIOx with KIND latency, flops, params or bytes, got {budget!r}")
        budget = (m.group(1), float(m.group(2)))
    kind, ratio = budget
    if not 0 < ratio <= 1:
        raise ValueError(f"budget ratio must be in (0, 1], got {ratio}")
    return pb.Budget(kind=kind, ratio=ratio)


def parse_shape(shape):
    """"1x3x32x32", "1,3,32,32" or a sequence of ints -> list of ints."""
    if isinstance(shape, str):
        shape = [int(d) for d in re.split(r"[x,]", shape) if d]
    shape = [int(d) for d in shape]
    if not shape or any(d <= 0 for d in shape):
        raise ValueError(f"input shape must be positive integers, got {shape}")
    return shape


def _job_id(job):
    return job if isinstance(job, str) else job.id


class Client:
    """A connection to an acs-server.

    address: "host:port". token: bearer token (default $ACS_TOKEN; none in no-auth mode).
    root_certs: PEM bytes of the server's CA, or a path to them: connect with TLS.
    timeout: seconds for unary calls; uploads, downloads and watches have none."""

    def __init__(self, address=DEFAULT_ADDRESS, token=None, root_certs=None, timeout=60.0):
        self.address = address
        self.timeout = timeout
        token = token if token is not None else os.environ.get("ACS_TOKEN")
        self._metadata = [("authorization", f"Bearer {token}")] if token else []
        if root_certs is not None:
            if isinstance(root_certs, (str, Path)):
                root_certs = Path(root_certs).read_bytes()
            self._channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certs))
        else:
            self._channel = grpc.insecure_channel(address)
        self._stub = pb_grpc.AcsStub(self._channel)

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- plumbing ------------------------------------------------------------------------

    def _error(self, e):
        code, message = e.code(), e.details()
        if code == grpc.StatusCode.UNIMPLEMENTED and not message:
            message = "this acs-server does not implement the call; it is older than this client"
        if code == grpc.StatusCode.UNAVAILABLE:
            message = f"cannot reach acs-server at {self.address}: {message}"
        return AcsError(code, message)

    def _unary(self, rpc, request, timeout=-1):
        try:
            return rpc(request, timeout=self.timeout if timeout == -1 else timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise self._error(e) from None

    def _stream(self, rpc, request, timeout=None):
        """Yields the messages of a server stream, raising AcsError for its errors."""
        try:
            yield from rpc(request, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise self._error(e) from None

    # -- uploads -------------------------------------------------------------------------

    def _upload(self, rpc, path):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path} is not a file")
        size = path.stat().st_size

        def chunks():
            with open(path, "rb") as f:
                data = f.read(CHUNK_BYTES)
                yield pb.UploadChunk(name=path.name, total_bytes=size, data=data)
                while data := f.read(CHUNK_BYTES):
                    yield pb.UploadChunk(data=data)

        return self._unary(rpc, chunks(), timeout=None)

    def upload_model(self, path):
        """Uploads a TorchScript file -> UploadReply (sha256, bytes, deduplicated)."""
        return self._upload(self._stub.UploadModel, path)

    def upload_dataset(self, path):
        """Uploads one dataset file (IDX, CIFAR-10 binary, torch.save'd (images, labels)), or an
        image folder (ROOT/CLASS/*.jpg|png, as torchvision's ImageFolder) as a tar archive of
        its images."""
        if not Path(path).is_dir():
            return self._upload(self._stub.UploadDataset, path)
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "images.tar"
            with tarfile.open(archive, "w", format=tarfile.USTAR_FORMAT) as tar:
                for name in image_folder_files(path):
                    tar.add(Path(path) / name, arcname=name, recursive=False)
            return self._upload(self._stub.UploadDataset, archive)

    # -- jobs ----------------------------------------------------------------------------

    def _dataset_fields(self, dataset, prefix=""):
        """A path to an existing file or image folder is uploaded; "name:NAME" or a bare NAME is
        a dataset the server knows. The fields are prefix + dataset_sha256 / dataset_name."""
        what = f"{prefix.replace('_', ' ')}dataset"
        if dataset is None:
            raise ValueError(f"{what} is required: a file path or the name of a dataset the server knows")
        dataset = str(dataset)
        if dataset.startswith("name:"):
            return {prefix + "dataset_name": dataset[len("name:"):]}
        if os.path.isdir(dataset):
            if not image_folder_files(dataset):
                raise ValueError(f"{dataset} is a directory without JPEG or PNG images: pass an image folder, a "
                                 "single file or the name of a dataset the server knows, e.g. 'name:fashion-mnist'")
            return {prefix + "dataset_sha256": self.upload_dataset(dataset).sha256}
        if os.path.isfile(dataset):
            return {prefix + "dataset_sha256": self.upload_dataset(dataset).sha256}
        if os.sep in dataset:
            raise FileNotFoundError(f"{what} {dataset} does not exist")
        return {prefix + "dataset_name": dataset}

    def submit(self, model_path, input_shape, budget="latency=0.5x", device_class="", dataset=None, agent="amc",
               episodes=0, seed=1, threads=1, top_k=0, fine_tune=False, patterns=(), block_sizes=(),
               precisions=(), max_sparsity=0.0, skip_layers=(), preprocess=(), split=None, test_dataset=None,
               time_limit_seconds=0):
        """Uploads the model (and a dataset file) and submits a search job -> Job.

        0 for episodes / top_k and empty search-space lists mean the server's defaults.
        time_limit_seconds: the wall-clock seconds the job may run, counted while a runner
        runs it (not while queued) and summed over its resumes; past it the job is FAILED
        ("the job exceeded its time limit of N s while ..."). 0: the server's limit
        (--job-wall-seconds), which also caps a larger one.
        preprocess: the model's preprocessing spec, a list of dicts (preprocess_steps) or
        preprocess_from_torchvision(transforms); empty: images fitted to input_shape.
        split: which samples calibrate, validate and fine-tune (data_split); None: the
        server's defaults. test_dataset: a labelled test set (forms as dataset) on which the
        job reports the dense and the downloaded model's accuracy."""
        fields = self._dataset_fields(dataset)
        if test_dataset is not None:
            fields.update(self._dataset_fields(test_dataset, prefix="test_"))
        request = pb.SubmitJobRequest(
            input_shape=parse_shape(input_shape), budget=parse_budget(budget), device_class=device_class,
            agent=agent, episodes=episodes, seed=seed, threads=threads, top_k=top_k, fine_tune=fine_tune,
            space=pb.SearchSpace(patterns=list(patterns), block_sizes=list(block_sizes),
                                 precisions=list(precisions), max_sparsity=max_sparsity,
                                 skip_layers=list(skip_layers)),
            preprocess=preprocess_steps(preprocess), split=data_split(split),
            time_limit_seconds=time_limit_seconds, **fields)
        request.model_sha256 = self.upload_model(model_path).sha256
        return self._unary(self._stub.SubmitJob, request)

    def get(self, job):
        """job: an id or a Job -> the Job as it is now."""
        return self._unary(self._stub.GetJob, pb.GetJobRequest(id=_job_id(job)))

    def list(self, state=None, page_size=0):
        """Every job (all pages), optionally of one state (a JobState value or name)."""
        if isinstance(state, str):
            state = pb.JobState.Value(state.upper())
        request = pb.ListJobsRequest(state=state or 0, page_size=page_size)
        jobs = []
        while True:
            reply = self._unary(self._stub.ListJobs, request)
            jobs.extend(reply.jobs)
            if not reply.next_page_token:
                return jobs
            request.page_token = reply.next_page_token

    def watch(self, job, timeout=None, after_seq=0):
        """Yields the job's JobEvents until it ends (DEADLINE_EXCEEDED after timeout seconds).

        after_seq: only the events after that one (JobEvent.seq, from 1); 0 yields all. Each
        event carries its seq and time_ms (unix ms when it happened; 0 when unknown)."""
        request = pb.WatchJobRequest(id=_job_id(job), after_seq=after_seq)
        return self._stream(self._stub.WatchJob, request, timeout)

    def wait(self, job, on_event=None, timeout=None):
        """Watches the job to its end (calling on_event(event) for each) -> the final Job."""
        for event in self.watch(job, timeout):
            if on_event:
                on_event(event)
        return self.get(job)

    def cancel(self, job):
        return self._unary(self._stub.CancelJob, pb.CancelJobRequest(id=_job_id(job)))

    def download(self, job, path, name="compressed.pt"):
        """Writes the job's artifact `name` to path (a directory: path/name) -> the file's Path.

        The bytes go to a temporary file renamed into place once their count and sha256
        are checked."""
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"{name!r} is not an artifact name")
        path = Path(path)
        if path.is_dir():
            path = path / name
        temp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.part"
        try:
            expected, expected_sha256, written = None, "", 0
            digest = hashlib.sha256()
            with open(temp, "xb") as out:
                request = pb.DownloadArtifactRequest(job_id=_job_id(job), name=name)
                for chunk in self._stream(self._stub.DownloadArtifact, request):
                    if expected is None:
                        expected, expected_sha256 = chunk.total_bytes, chunk.sha256
                    out.write(chunk.data)
                    digest.update(chunk.data)
                    written += len(chunk.data)
            if expected is not None and written != expected:
                raise AcsError(grpc.StatusCode.DATA_LOSS, f"{name}: received {written} of {expected} bytes")
            if expected_sha256 and digest.hexdigest() != expected_sha256:
                raise AcsError(grpc.StatusCode.DATA_LOSS,
                               f"{name}: the received bytes hash to {digest.hexdigest()}, "
                               f"not to the artifact's {expected_sha256}")
            os.replace(temp, path)
        except BaseException:
            if os.path.exists(temp):
                os.unlink(temp)
            raise
        return path

    # -- devices and predictors ----------------------------------------------------------

    def devices(self):
        """The workers registered with the server -> list of Device."""
        return list(self._unary(self._stub.ListDevices, pb.ListDevicesRequest()).devices)

    def search_space(self):
        """What a submit may name, from the server (agents, budget kinds, patterns,
        precisions, the default space) -> SearchSpaceChoices."""
        return self._unary(self._stub.GetSearchSpace, pb.GetSearchSpaceRequest())

    def train_predictor(self, device_class, samples=0):
        """Starts a measurement campaign and training for a device class -> PredictorStatus."""
        return self._unary(self._stub.TrainPredictor,
                           pb.TrainPredictorRequest(device_class=device_class, samples=samples))

    def predictor_status(self, device_class):
        return self._unary(self._stub.GetPredictorStatus, pb.PredictorStatusRequest(device_class=device_class))

    # -- nightly campaign runs (docs/campaigns.md) ---------------------------------------

    def start_campaign_run(self, campaign, date, spec_hash, spec_json, cell_keys):
        """Creates the caller's run of `campaign` on `date` (YYYY-MM-DD) with one cell per key,
        or returns the stored one (created_now False) -> CampaignRun. FAILED_PRECONDITION when
        the date ran another spec hash."""
        return self._unary(self._stub.StartCampaignRun,
                           pb.StartCampaignRunRequest(campaign=campaign, date=date, spec_hash=spec_hash,
                                                      spec_json=spec_json, cell_keys=list(cell_keys)))

    def campaign_run(self, run_id=None, campaign=None, date=None):
        """A run with its spec and cells, by id or by campaign and date -> CampaignRun."""
        if not run_id and not (campaign and date):
            raise ValueError("pass run_id, or campaign and date")
        return self._unary(self._stub.GetCampaignRun,
                           pb.GetCampaignRunRequest(id=run_id or "", campaign=campaign or "", date=date or ""))

    def campaign_runs(self, campaign=None, before_date=None, page_size=0):
        """Runs (without their specs), newest date first -> list of CampaignRun."""
        reply = self._unary(self._stub.ListCampaignRuns,
                            pb.ListCampaignRunsRequest(campaign=campaign or "", before_date=before_date or "",
                                                       page_size=page_size))
        return list(reply.runs)

    def record_campaign_cell(self, run, key, job="", note="", remeasure=None):
        """Records a cell's job (refused when it holds another), note and re-measurement (a
        dict, stored as JSON; None keeps the cell's) -> CampaignRun."""
        run_id = run if isinstance(run, str) else run.id
        return self._unary(self._stub.RecordCampaignCell,
                           pb.RecordCampaignCellRequest(run_id=run_id, key=key, job_id=_job_id(job) if job else "",
                                                        note=note,
                                                        remeasure_json=json.dumps(remeasure) if remeasure else ""))

    def remeasure_job(self, job, runs=0, task_ids=None, cancel=False):
        """Measures an ended job's exported policy again on workers of its class: without
        task_ids queues `runs` tasks (0: 3); with them, reads them (cancel: fails the open
        ones) -> RemeasureJobReply (device_class, runs, done)."""
        return self._unary(self._stub.RemeasureJob,
                           pb.RemeasureJobRequest(id=_job_id(job), runs=runs, task_ids=list(task_ids or []),
                                                  cancel=cancel))

    def wait_remeasure(self, job, runs=0, timeout=600.0, poll=1.0):
        """remeasure_job, then polled until every run ended or `timeout` seconds passed (the
        open ones then cancelled) -> RemeasureJobReply."""
        reply = self.remeasure_job(job, runs=runs)
        ids = [r.task_id for r in reply.runs]
        deadline = time.monotonic() + timeout
        while not reply.done:
            if time.monotonic() >= deadline:
                return self.remeasure_job(job, task_ids=ids, cancel=True)
            time.sleep(poll)
            reply = self.remeasure_job(job, task_ids=ids)
        return reply

    @staticmethod
    def campaign_environment(run):
        """What the server stored with a run when it created it (versions, predictors,
        workers) -> dict; {} for runs of older servers."""
        return json.loads(run.environment_json) if run.environment_json else {}
