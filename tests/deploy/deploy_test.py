"""Checks of the deploy files (deploy/), one per run:
  kustomize  `kubectl kustomize deploy/k8s` renders the expected objects, consistent
             with each other (names, ports, data dir, token Secret)
  systemd    `systemd-analyze verify` accepts the units, their ExecStart paths pointed
             at the built binaries, with no warning about them
  docker     the compose file and the Dockerfile fit together (services, volumes,
             commands, image, user)
  flags      every acs-server / acs-worker flag in the deploy files and docs/deploy.md
             is one the built binaries list in --help
  bootstrap  deploy/docker/acs-bootstrap.sh makes a data dir and a worker token once
Exits 77 (ctest's skip) when a tool it needs is missing.

usage: deploy_test.py CHECK --source-dir DIR --server-bin PATH --worker-bin PATH
"""
import argparse
import glob
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy_commands  # noqa: E402

SKIP = 77
INSTALLED = {"acs-server": "/usr/local/bin/acs-server", "acs-worker": "/usr/local/bin/acs-worker"}


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(SKIP)


def need_yaml():
    try:
        import yaml  # noqa: F401
    except ImportError:
        skip("python3-yaml is not installed")
    import yaml
    return yaml


def read(path):
    with open(path) as f:
        return f.read()


def flag_value(argv, flag):
    """The value after `flag` in argv; AssertionError when absent."""
    assert flag in argv, f"{flag} missing from {argv}"
    return argv[argv.index(flag) + 1]


def port_of(address):
    return int(address.rsplit(":", 1)[1])


# --- kustomize ----------------------------------------------------------------------

def check_kustomize(args):
    yaml = need_yaml()
    kubectl = shutil.which("kubectl")
    if not kubectl:
        skip("kubectl is not installed (Debian: kubernetes-client)")
    base = os.path.join(args.source_dir, "deploy", "k8s")
    proc = subprocess.run([kubectl, "kustomize", base], capture_output=True, text=True)
    assert proc.returncode == 0, f"kubectl kustomize failed:\n{proc.stderr}"
    objects = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(proc.stdout) if d}
    assert set(objects) == {("Service", "acs-server"), ("StatefulSet", "acs-server"),
                            ("Deployment", "acs-worker")}, sorted(objects)
    service = objects[("Service", "acs-server")]
    server = objects[("StatefulSet", "acs-server")]
    workers = objects[("Deployment", "acs-worker")]

    # The server: one replica governed by the Service, its data dir on the claim.
    spec = server["spec"]
    assert spec["replicas"] == 1 and spec["serviceName"] == "acs-server"
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    (container,) = pod["containers"]
    argv = container["command"] + container.get("args", [])
    assert argv[0] == "acs-server", argv
    assert "--no-auth" not in argv
    data_dir = flag_value(argv, "--data-dir")
    claims = {c["metadata"]["name"]: c for c in spec["volumeClaimTemplates"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts.get(data_dir) in claims, f"{data_dir} is not on a volume claim: {mounts}"
    assert claims[mounts[data_dir]]["spec"]["resources"]["requests"]["storage"]
    listen_port = port_of(flag_value(argv, "--listen"))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    (service_port,) = service["spec"]["ports"]
    assert ports[service_port["targetPort"]] == listen_port, (ports, service_port)
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()

    # The workers: two, dialing the Service, their token from the Secret.
    spec = workers["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    (container,) = pod["containers"]
    argv = container["command"] + container.get("args", [])
    assert argv[:2] == ["acs-worker", "serve"], argv
    assert flag_value(argv, "--server") == f"acs-server:{service_port['port']}"
    token_file = flag_value(argv, "--token-file")
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == os.path.dirname(token_file))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "acs-worker-token"
    assert {"key": "token", "path": os.path.basename(token_file)} in volume["secret"]["items"]
    resources = container["resources"]
    assert resources["requests"] == resources["limits"], "workers want Guaranteed QoS"
    for obj in (server, workers):
        for c in obj["spec"]["template"]["spec"]["containers"]:
            assert c["image"] == "acs:latest", c["image"]
    print(f"kustomize: {len(objects)} objects consistent")


# --- systemd ------------------------------------------------------------------------

UNITS = ("acs-server.service", "acs-worker@.service")


def systemd_verify(analyze, paths):
    proc = subprocess.run([analyze, "verify"] + paths, capture_output=True, text=True)
    ours = [line for line in (proc.stdout + proc.stderr).splitlines()
            if any(os.path.basename(p).split("@")[0] in line for p in paths)]
    return proc.returncode, ours, proc.stdout + proc.stderr


def check_systemd(args):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        skip("systemd-analyze is not installed")
    binaries = {"acs-server": args.server_bin, "acs-worker": args.worker_bin}
    for b in binaries.values():
        assert os.access(b, os.X_OK), f"{b} is not built"
    units = os.path.join(args.source_dir, "deploy", "systemd")
    with tempfile.TemporaryDirectory() as tmp:
        for unit in UNITS:
            text = read(os.path.join(units, unit))
            for program, path in INSTALLED.items():
                text = text.replace(path, binaries[program])
            assert "/usr/local/bin/" not in text and (args.server_bin in text or args.worker_bin in text), unit
            with open(os.path.join(tmp, unit), "w") as f:
                f.write(text)
        # The template is verified through an instance.
        paths = [os.path.join(tmp, "acs-server.service"), os.path.join(tmp, "acs-worker@1.service")]
        rc, ours, output = systemd_verify(analyze, paths)
        assert rc == 0 and not ours, f"systemd-analyze verify: exit {rc}\n{output}"

        # The warnings above would be seen: an unknown key is reported.
        bad = os.path.join(tmp, "acs-server-bad.service")
        with open(bad, "w") as f:
            f.write(read(paths[0]).replace("[Service]\n", "[Service]\nNoSuchOption=yes\n"))
        _, ours, output = systemd_verify(analyze, [bad])
        assert any("NoSuchOption" in line for line in ours), f"an unknown key went unreported:\n{output}"

    server = read(os.path.join(units, "acs-server.service"))
    worker = read(os.path.join(units, "acs-worker@.service"))
    for text in (server, worker):
        for option in ("NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "ProtectHome=yes"):
            assert re.search(rf"^{re.escape(option)}$", text, re.M), option
        assert not re.search(r"^User=root$", text, re.M)
    (command,) = deploy_commands.from_systemd_unit(server, "acs-server.service")
    data_dir = flag_value(command.argv, "--data-dir")
    assert re.search(rf"^ReadWritePaths=.*{re.escape(data_dir)}\b", server, re.M), "the data dir is not writable"
    assert re.search(r"^StateDirectory=" + re.escape(os.path.relpath(data_dir, "/var/lib")) + "$", server, re.M)
    assert re.search(r"^User=acs$", server, re.M)
    assert re.search(r"^DynamicUser=yes$", worker, re.M) and re.search(r"^LoadCredential=token:", worker, re.M)
    (command,) = deploy_commands.from_systemd_unit(worker, "acs-worker@.service")
    assert command.argv[1] == "serve" and flag_value(command.argv, "--token-file") == "%d/token"
    print("systemd: units verified")


# --- docker -------------------------------------------------------------------------

def mounts_of(service):
    """{container path: (volume, read_only)} of short-form volume entries."""
    out = {}
    for v in service.get("volumes", []):
        parts = v.split(":")
        out[parts[1]] = (parts[0], len(parts) > 2 and "ro" in parts[2].split(","))
    return out


def check_docker(args):
    yaml = need_yaml()
    here = os.path.join(args.source_dir, "deploy", "docker")
    compose = yaml.safe_load(read(os.path.join(here, "compose.yaml")))
    services = compose["services"]
    assert set(services) == {"acs-bootstrap", "acs-server", "acs-worker"}, sorted(services)
    for name, s in services.items():
        assert s["image"] == "acs:latest" and s["pull_policy"] == "build", name
        context = os.path.normpath(os.path.join(here, s["build"]["context"]))
        assert context == os.path.normpath(args.source_dir), context
        assert os.path.isfile(os.path.join(context, s["build"]["dockerfile"])), name

    server, worker, bootstrap = services["acs-server"], services["acs-worker"], services["acs-bootstrap"]
    argv = server["command"]
    assert argv[0] == "acs-server" and "--no-auth" not in argv, argv
    data_dir = flag_value(argv, "--data-dir")
    port = port_of(flag_value(argv, "--listen"))
    assert mounts_of(server)[data_dir] == ("acs-data", False)
    assert any(p.endswith(f":{port}:{port}") for p in server["ports"]), server["ports"]
    assert set(compose["volumes"]) == {"acs-data", "acs-tokens"}

    assert bootstrap["command"][0] == "acs-bootstrap" and bootstrap.get("restart") == "no"
    boot_data, token_file = bootstrap["command"][1:]
    assert boot_data == data_dir
    assert mounts_of(bootstrap) == {data_dir: ("acs-data", False), os.path.dirname(token_file): ("acs-tokens", False)}

    assert worker["deploy"]["replicas"] == 2
    argv = worker["command"]
    assert argv[:2] == ["acs-worker", "serve"], argv
    assert flag_value(argv, "--server") == f"acs-server:{port}"
    assert flag_value(argv, "--token-file") == token_file
    assert mounts_of(worker) == {os.path.dirname(token_file): ("acs-tokens", True)}
    for s in (server, worker):
        assert s["depends_on"]["acs-bootstrap"]["condition"] == "service_completed_successfully"
    assert "acs-server" in worker["depends_on"]

    # The Dockerfile: Debian 12, the project's script, a non-root user owning the
    # volumes' mount points (a new named volume takes their owner), acs-server by default.
    docker = read(os.path.join(here, "Dockerfile"))
    froms = re.findall(r"^FROM\s+(\S+)", docker, re.M)
    assert froms[0] == "debian:12", froms
    assert re.search(r"^RUN .*deploy/install-deps\.sh|^RUN bash /tmp/install-deps\.sh", docker, re.M)
    assert "COPY deploy/install-deps.sh" in docker
    users = re.findall(r"^USER\s+(\S+)", docker, re.M)
    assert users and users[-1] not in ("root", "0"), users
    owned = re.search(r"install -d -o acs -g acs \S+ (.*)$", docker, re.M)
    assert owned and {data_dir, os.path.dirname(token_file)} <= set(owned.group(1).split()), owned
    (cmd,) = deploy_commands.from_dockerfile(docker, "Dockerfile")
    assert cmd.argv == server["command"], (cmd.argv, server["command"])
    assert "acs-bootstrap" in docker and "--target acs-server acs-worker" in docker
    ignored = read(os.path.join(args.source_dir, ".dockerignore")).split()
    assert "build*" in ignored and ".git" in ignored
    print("docker: compose file and Dockerfile consistent")


# --- flags --------------------------------------------------------------------------

def help_flags(argv):
    proc = subprocess.run(argv + ["--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{argv} --help: exit {proc.returncode}\n{proc.stderr}"
    return proc.stdout, set(re.findall(r"--[a-z][a-z0-9-]*", proc.stdout))


def deploy_commands_by_file(args):
    """{file: [Command]} of every deploy file and docs/deploy.md."""
    yaml = need_yaml()
    src = args.source_dir
    out = {}
    k8s = sorted(glob.glob(os.path.join(src, "deploy", "k8s", "*.yaml")))
    for path in k8s:
        out[path] = deploy_commands.from_k8s_docs(list(yaml.safe_load_all(read(path))), path)
    compose = os.path.join(src, "deploy", "docker", "compose.yaml")
    out[compose] = deploy_commands.from_compose(yaml.safe_load(read(compose)), compose)
    dockerfile = os.path.join(src, "deploy", "docker", "Dockerfile")
    out[dockerfile] = deploy_commands.from_dockerfile(read(dockerfile), dockerfile)
    out[dockerfile] += deploy_commands.from_dockerfile(read(dockerfile), dockerfile, comments=True)
    for path in glob.glob(os.path.join(src, "deploy", "docker", "*.sh")):
        out[path] = deploy_commands.from_shell_text(read(path), path)
    for path in glob.glob(os.path.join(src, "deploy", "systemd", "*.service")):
        out[path] = deploy_commands.from_systemd_unit(read(path), path)
    docs = os.path.join(src, "docs", "deploy.md")
    out[docs] = deploy_commands.from_markdown(read(docs), docs)
    return out


def check_flags(args):
    by_file = deploy_commands_by_file(args)
    rel = {os.path.relpath(f, args.source_dir): cmds for f, cmds in by_file.items()}
    # Each file's commands were found (a parser that finds nothing would pass anything).
    expected = {"deploy/docker/compose.yaml": 2, "deploy/docker/Dockerfile": 2, "deploy/docker/acs-bootstrap.sh": 3,
                "deploy/systemd/acs-server.service": 1, "deploy/systemd/acs-worker@.service": 1,
                "deploy/k8s/server-statefulset.yaml": 1, "deploy/k8s/worker-deployment.yaml": 1,
                "docs/deploy.md": 4}
    for f, n in expected.items():
        assert len(rel.get(f, [])) >= n, f"{f}: {len(rel.get(f, []))} commands found, expected >= {n}"

    _, server_flags = help_flags([args.server_bin])
    worker_help, _ = help_flags([args.worker_bin])
    worker_commands = set(re.findall(r"^  ([a-z][a-z-]*)\s", worker_help, re.M))
    assert "serve" in worker_commands, worker_help
    worker_flags = {}
    bad = []
    checked = 0
    for cmds in by_file.values():
        for c in cmds:
            if c.program == "acs-server":
                allowed = server_flags
            else:
                sub = c.argv[1] if len(c.argv) > 1 else ""
                if sub not in worker_commands:
                    bad.append(f"{c.where}: acs-worker has no command '{sub}'")
                    continue
                if sub not in worker_flags:
                    worker_flags[sub] = help_flags([args.worker_bin, sub])[1]
                allowed = worker_flags[sub]
            for flag in c.flags():
                checked += 1
                if flag not in allowed:
                    bad.append(f"{c.where}: {c.program} does not accept {flag}")
    # Flags named alone in docs/deploy.md belong to one of the two.
    docs = read(os.path.join(args.source_dir, "docs", "deploy.md"))
    everything = server_flags.union(*worker_flags.values(), {"--help"})
    bare = deploy_commands.bare_flags_in_markdown(docs)
    assert bare, "no flag named alone in docs/deploy.md"
    bad += [f"docs/deploy.md: {flag} is a flag of neither program" for flag in sorted(bare - everything)]
    assert not bad, "\n".join(bad)
    assert checked >= 20, checked
    print(f"flags: {checked} uses of flags in {sum(map(len, by_file.values()))} commands accepted")


# --- bootstrap ----------------------------------------------------------------------

def token_rows(server_bin, data):
    out = subprocess.run([server_bin, "token", "list", "--data-dir", data], capture_output=True, text=True,
                         check=True).stdout
    rows = [line.split() for line in out.splitlines()[1:]]
    return [(r[1], r[2], r[-1]) for r in rows]  # name, role, state


def check_bootstrap(args):
    script = os.path.join(args.source_dir, "deploy", "docker", "acs-bootstrap.sh")
    assert os.access(script, os.X_OK), "acs-bootstrap.sh is not executable"
    assert os.access(args.server_bin, os.X_OK), f"{args.server_bin} is not built"
    with tempfile.TemporaryDirectory() as tmp:
        bindir = os.path.join(tmp, "bin")
        os.makedirs(bindir)
        os.symlink(args.server_bin, os.path.join(bindir, "acs-server"))
        os.makedirs(os.path.join(tmp, "etc"))
        data, token_file = os.path.join(tmp, "data"), os.path.join(tmp, "etc", "worker.token")
        env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""))

        def bootstrap():
            proc = subprocess.run(["sh", script, data, token_file], capture_output=True, text=True, env=env)
            assert proc.returncode == 0, f"acs-bootstrap failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
            return proc.stdout

        first = bootstrap()
        assert re.search(r"admin token \(shown once\): acs_a_[0-9a-f]+", first), first
        token = read(token_file)
        assert re.fullmatch(r"acs_w_[0-9a-f]+\n", token), token
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        assert token not in first, "the worker token was printed"
        rows = token_rows(args.server_bin, data)
        assert sorted(rows) == [("acs-workers", "worker", "live"), ("admin", "admin", "live")], rows

        assert bootstrap() == "", "a second run changed something"
        assert read(token_file) == token

        # A lost token file: a new token, the old one revoked.
        os.remove(token_file)
        bootstrap()
        assert read(token_file) != token
        rows = token_rows(args.server_bin, data)
        assert sorted(r for r in rows if r[0] == "acs-workers") == [("acs-workers", "worker", "live"),
                                                                    ("acs-workers", "worker", "revoked")], rows
    print("bootstrap: data dir and worker token made once")


CHECKS = {"kustomize": check_kustomize, "systemd": check_systemd, "docker": check_docker, "flags": check_flags,
          "bootstrap": check_bootstrap}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("check", choices=sorted(CHECKS))
    p.add_argument("--source-dir", required=True)
    p.add_argument("--server-bin", required=True)
    p.add_argument("--worker-bin", required=True)
    args = p.parse_args()
    for name in ("source_dir", "server_bin", "worker_bin"):
        setattr(args, name, os.path.abspath(getattr(args, name)))
    CHECKS[args.check](args)


if __name__ == "__main__":
    main()
