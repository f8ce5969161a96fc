"""The checks of the nightly campaign's deploy files (the CronJob, the systemd units), called by
deploy_test.py."""
import json
import os
import re

import deploy_commands
from deploy_commands import flag_value, read

# The campaign spec of the nightly runs (the CronJob's ConfigMap, the compose service).
NIGHTLY_SPEC = os.path.join("deploy", "k8s", "nightly.json")
# A spec's time_limit_minutes when it names none (docs/campaigns.md).
DEFAULT_TIME_LIMIT_MINUTES = 240


def check_cronjob(args, cron, config_map, service_port):
    """The nightly CronJob: one run a day, never two at once, bounded, not retried on a
    verdict, its date the scheduled one, dialing the Service with a user token's Secret
    and the spec of the generated ConfigMap."""
    spec = cron["spec"]
    minute, hour, *rest = spec["schedule"].split()
    assert rest == ["*", "*", "*"] and minute.isdigit() and hour.isdigit(), spec["schedule"]
    assert spec["timeZone"] in ("Etc/UTC", "UTC"), spec.get("timeZone")
    assert spec["concurrencyPolicy"] == "Forbid", spec["concurrencyPolicy"]
    assert spec["startingDeadlineSeconds"] > 0
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] >= 1, job.get("backoffLimit")
    with open(os.path.join(args.source_dir, NIGHTLY_SPEC)) as f:
        nightly = json.load(f)
    limit = 60 * nightly.get("time_limit_minutes", DEFAULT_TIME_LIMIT_MINUTES)
    assert job["activeDeadlineSeconds"] > limit, (job["activeDeadlineSeconds"], limit)
    # Keyed by the scheduled date: a late start or a retry still runs on that UTC day.
    end = int(hour) * 3600 + int(minute) * 60 + spec["startingDeadlineSeconds"] + job["activeDeadlineSeconds"]
    assert end < 24 * 3600, f"a run may end after midnight UTC ({end} s), under the next date"
    (rule,) = job["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["operator"] == "In"
    assert {3, 4} <= set(rule["onExitCodes"]["values"]) and 1 not in rule["onExitCodes"]["values"], rule

    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never", pod["restartPolicy"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    (container,) = pod["containers"]
    assert rule["onExitCodes"]["containerName"] == container["name"]
    assert container["image"] == "acs:latest", container["image"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    argv = container["command"] + container.get("args", [])
    assert argv[:3] == ["acs", "campaign", "run"], argv
    assert flag_value(argv, "--server") == f"acs-server:{service_port}"

    def volume_of(path):
        mount = next(m for m in container["volumeMounts"] if m["mountPath"] == os.path.dirname(path))
        assert mount.get("readOnly") is True, mount
        return next(v for v in pod["volumes"] if v["name"] == mount["name"])

    spec_path = argv[3]
    volume = volume_of(spec_path)
    assert volume["configMap"]["name"] == config_map["metadata"]["name"], volume
    assert json.loads(config_map["data"][os.path.basename(spec_path)]) == nightly, "not the spec's file"
    token_file = flag_value(argv, "--token-file")
    volume = volume_of(token_file)
    assert volume["secret"]["secretName"] == "acs-nightly-token", "the nightly run needs a user token"
    assert {"key": "token", "path": os.path.basename(token_file)} in volume["secret"]["items"]


def check_nightly_units(units):
    """acs-nightly.service runs `acs campaign run` once, hardened as the others, with a
    user token as a credential; acs-nightly.timer starts it daily, catching up."""
    service = read(os.path.join(units, "acs-nightly.service"))
    timer = read(os.path.join(units, "acs-nightly.timer"))
    for option in ("Type=oneshot", "DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict",
                   "PrivateTmp=yes", "ProtectHome=yes", "CapabilityBoundingSet=",
                   "LoadCredential=token:/etc/acs/nightly.token"):
        assert re.search(rf"^{re.escape(option)}$", service, re.M), option
    assert not re.search(r"^(User=root|Restart=(always|on-failure))$", service, re.M)
    # Hardened like the worker: every option of its hardening block.
    worker = read(os.path.join(units, "acs-worker@.service"))
    hardening = worker[worker.index("# Hardening"):worker.index("[Install]")]
    missing = [line for line in hardening.splitlines() if "=" in line and line not in service.splitlines()]
    assert not missing, f"acs-nightly.service lacks the worker's {missing}"
    (command,) = deploy_commands.from_systemd_unit(service, "acs-nightly.service")
    assert command.argv[:3] == ["acs", "campaign", "run"], command.argv
    assert flag_value(command.argv, "--token-file") == "%d/token"
    # Bounded above the spec's default time limit.
    m = re.search(r"^TimeoutStartSec=(\d+)h$", service, re.M)
    assert m and int(m.group(1)) * 60 > DEFAULT_TIME_LIMIT_MINUTES, "TimeoutStartSec"
    assert re.search(r"^OnCalendar=(\*-\*-\* |daily)", timer, re.M), "the timer is not daily"
    assert re.search(r"^Persistent=true$", timer, re.M), "a missed night is not caught up"
    m = re.search(r"^RandomizedDelaySec=(\d+)min$", timer, re.M)
    assert m and 0 < int(m.group(1)) <= 30, "RandomizedDelaySec"
    assert re.search(r"^Unit=acs-nightly\.service$", timer, re.M)
    assert re.search(r"^WantedBy=timers\.target$", timer, re.M)
