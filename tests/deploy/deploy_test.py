"""Checks of the deploy files (deploy/), one per run:
  kustomize  `kubectl kustomize deploy/k8s` renders the expected objects, consistent
             with each other (names, ports, data dir, token Secrets, the nightly
             CronJob's schedule, limits and spec ConfigMap)
  systemd    `systemd-analyze verify` accepts the units and the timer, their ExecStart
             paths pointed at the built binaries, with no warning about them
  docker     the compose file and the Dockerfile fit together (services, volumes,
             commands, image, user, the nightly service)
  flags      every acs-server / acs-worker / acs flag in the deploy files and
             docs/deploy.md is one the built binaries list in --help; acs accepts the
             nightly spec
  bootstrap  deploy/docker/acs-bootstrap.sh makes a data dir and a worker token once
Exits 77 (ctest's skip) when a tool it needs is missing.

usage: deploy_test.py CHECK --source-dir DIR --server-bin PATH --worker-bin PATH --acs-bin PATH
"""
import argparse
import glob
import json
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
from deploy_commands import flag_value, port_of, read  # noqa: E402
import deploy_nightly  # noqa: E402
from deploy_nightly import DEFAULT_TIME_LIMIT_MINUTES, NIGHTLY_SPEC  # noqa: E402

SKIP = 77
INSTALLED = {"acs-server": "/usr/local/bin/acs-server", "acs-worker": "/usr/local/bin/acs-worker",
             "acs": "/usr/local/bin/acs"}


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
    config_maps = [name for kind, name in objects if kind == "ConfigMap"]
    assert len(config_maps) == 1 and config_maps[0].startswith("acs-nightly-spec"), config_maps
    assert set(objects) == {("Service", "acs-server"), ("StatefulSet", "acs-server"),
                            ("Deployment", "acs-worker"), ("CronJob", "acs-nightly"),
                            ("ConfigMap", config_maps[0])}, sorted(objects)
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
    deploy_nightly.check_cronjob(args, objects[("CronJob", "acs-nightly")], objects[("ConfigMap", config_maps[0])],
                  service_port["port"])
    print(f"kustomize: {len(objects)} objects consistent")


# --- systemd ------------------------------------------------------------------------

def systemd_verify(analyze, paths):
    proc = subprocess.run([analyze, "verify"] + paths, capture_output=True, text=True)
    ours = [line for line in (proc.stdout + proc.stderr).splitlines()
            if any(os.path.basename(p).split("@")[0] in line for p in paths)]
    return proc.returncode, ours, proc.stdout + proc.stderr


UNITS = ("acs-server.service", "acs-worker@.service", "acs-nightly.service", "acs-nightly.timer")


def check_systemd(args):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        skip("systemd-analyze is not installed")
    binaries = {"acs-server": args.server_bin, "acs-worker": args.worker_bin, "acs": args.acs_bin}
    for b in binaries.values():
        assert os.access(b, os.X_OK), f"{b} is not built"
    units = os.path.join(args.source_dir, "deploy", "systemd")
    with tempfile.TemporaryDirectory() as tmp:
        for unit in UNITS:
            text = read(os.path.join(units, unit))
            # Longest first: /usr/local/bin/acs is a prefix of the others.
            for program, path in sorted(INSTALLED.items(), key=lambda kv: -len(kv[1])):
                text = re.sub(re.escape(path) + r"(?=\s)", binaries[program], text)
            assert "/usr/local/bin/" not in text, unit
            assert unit.endswith(".timer") or any(b in text for b in binaries.values()), unit
            with open(os.path.join(tmp, unit.replace("@.", "@1.")), "w") as f:
                f.write(text)
        # The template is verified through an instance.
        paths = [os.path.join(tmp, u.replace("@.", "@1.")) for u in UNITS]
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
    deploy_nightly.check_nightly_units(units)
    print("systemd: units verified")


# --- docker -------------------------------------------------------------------------

def mounts_of(service):
    """{container path: (volume or host path, read_only)} of short- and long-form volume
    entries."""
    out = {}
    for v in service.get("volumes", []):
        if isinstance(v, dict):
            out[v["target"]] = (v["source"], v.get("read_only") is True)
            continue
        parts = v.split(":")
        out[parts[1]] = (parts[0], len(parts) > 2 and "ro" in parts[2].split(","))
    return out


def check_docker(args):
    yaml = need_yaml()
    here = os.path.join(args.source_dir, "deploy", "docker")
    compose = yaml.safe_load(read(os.path.join(here, "compose.yaml")))
    services = compose["services"]
    assert set(services) == {"acs-bootstrap", "acs-server", "acs-worker", "nightly"}, sorted(services)
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

    # The nightly campaign: started only when asked for, once, with the spec and a
    # user token (not the workers') mounted read-only.
    nightly = services["nightly"]
    assert nightly["profiles"] == ["nightly"] and nightly.get("restart") == "no", nightly
    argv = nightly["command"]
    assert argv[:3] == ["acs", "campaign", "run"], argv
    assert flag_value(argv, "--server") == f"acs-server:{port}"
    mounts = mounts_of(nightly)
    source, read_only = mounts[argv[3]]
    assert read_only and os.path.normpath(os.path.join(here, source)) == \
        os.path.normpath(os.path.join(args.source_dir, NIGHTLY_SPEC)), mounts
    nightly_token = flag_value(argv, "--token-file")
    source, read_only = mounts[nightly_token]
    assert read_only and source != "acs-tokens" and nightly_token != token_file, mounts
    assert set(mounts) == {argv[3], nightly_token}, mounts
    assert "acs-server" in nightly["depends_on"]

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


def acs_words(acs_bin, argv, helps):
    """The command words of an acs command line (`acs campaign run`): its command, and
    its subcommand when the command's usage lists some (`usage: acs campaign run|list`).
    None when acs has no such command. helps caches `acs ... --help` by words."""
    if () not in helps:
        text, _ = help_flags([acs_bin])
        helps[()] = set(re.findall(r"^  ([a-z][a-z-]*)\s", text, re.M))
    if len(argv) < 2 or argv[1] not in helps[()]:
        return None
    words = tuple(argv[1:2])
    if words not in helps:
        helps[words] = help_flags([acs_bin, *words])
    subs = re.match(rf"usage: acs {words[0]} ([a-z]+(?:\|[a-z]+)+)\s", helps[words][0])
    if subs:
        if len(argv) < 3 or argv[2] not in subs.group(1).split("|"):
            return None
        words = tuple(argv[1:3])
        if words not in helps:
            helps[words] = help_flags([acs_bin, *words])
    return words


def check_nightly_spec(args):
    """acs campaign run accepts the nightly spec: it reads and checks the spec before
    dialing the server, so a closed port fails after the check (1), a bad spec before (2)."""
    proc = subprocess.run([args.acs_bin, "campaign", "run", os.path.join(args.source_dir, NIGHTLY_SPEC),
                           "--server", "127.0.0.1:1", "--token", "unused"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "cannot reach" in proc.stderr, \
        f"{NIGHTLY_SPEC} refused (exit {proc.returncode}):\n{proc.stderr}"


def check_flags(args):
    by_file = deploy_commands_by_file(args)
    rel = {os.path.relpath(f, args.source_dir): cmds for f, cmds in by_file.items()}
    # Each file's commands were found (a parser that finds nothing would pass anything).
    expected = {"deploy/docker/compose.yaml": 3, "deploy/docker/Dockerfile": 2, "deploy/docker/acs-bootstrap.sh": 3,
                "deploy/systemd/acs-server.service": 1, "deploy/systemd/acs-worker@.service": 1,
                "deploy/systemd/acs-nightly.service": 1, "deploy/k8s/nightly-cronjob.yaml": 1,
                "deploy/k8s/server-statefulset.yaml": 1, "deploy/k8s/worker-deployment.yaml": 1,
                "docs/deploy.md": 15}
    for f, n in expected.items():
        assert len(rel.get(f, [])) >= n, f"{f}: {len(rel.get(f, []))} commands found, expected >= {n}"

    _, server_flags = help_flags([args.server_bin])
    worker_help, _ = help_flags([args.worker_bin])
    worker_commands = set(re.findall(r"^  ([a-z][a-z-]*)\s", worker_help, re.M))
    assert "serve" in worker_commands, worker_help
    worker_flags = {}
    acs_helps = {}
    bad = []
    checked = 0
    campaign_runs = 0
    for cmds in by_file.values():
        for c in cmds:
            if c.program == "acs-server":
                allowed = server_flags
            elif c.program == "acs":
                words = acs_words(args.acs_bin, c.argv, acs_helps)
                if words is None:
                    bad.append(f"{c.where}: acs has no command '{' '.join(c.argv[1:3])}'")
                    continue
                campaign_runs += words == ("campaign", "run")
                allowed = acs_helps[words][1] | {"--help"}
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
    # Flags named alone in docs/deploy.md belong to one of the three.
    docs = read(os.path.join(args.source_dir, "docs", "deploy.md"))
    if ("campaign", "run") not in acs_helps:
        acs_helps[("campaign", "run")] = help_flags([args.acs_bin, "campaign", "run"])
    everything = server_flags.union(*worker_flags.values(), acs_helps[("campaign", "run")][1], {"--help"})
    bare = deploy_commands.bare_flags_in_markdown(docs)
    assert bare, "no flag named alone in docs/deploy.md"
    bad += [f"docs/deploy.md: {flag} is a flag of none of the programs" for flag in sorted(bare - everything)]
    assert not bad, "\n".join(bad)
    assert checked >= 30, checked
    # The CronJob, the unit, the compose service and the docs run the campaign.
    assert campaign_runs >= 4, f"{campaign_runs} `acs campaign run` command lines found"
    check_nightly_spec(args)
    print(f"flags: {checked} uses of flags in {sum(map(len, by_file.values()))} commands accepted, "
          f"{NIGHTLY_SPEC} accepted")


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
    p.add_argument("--acs-bin", required=True)
    args = p.parse_args()
    for name in ("source_dir", "server_bin", "worker_bin", "acs_bin"):
        setattr(args, name, os.path.abspath(getattr(args, name)))
    CHECKS[args.check](args)


if __name__ == "__main__":
    main()
