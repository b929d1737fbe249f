#!/usr/bin/python3
"""stacks_config.py - every stack file of stacks/ as `docker stack
deploy` would take it, with stacks/siren.env sourced.

  1. rendering: `docker stack config -c FILE` (the Docker client renders
     and validates a stack file against the compose schema without an
     engine) for siren-stack.yml, siren-stack.yml + siren-plain.yml and
     mock-stack.yml; it must exit 0 and print every service.
  2. what the schema does not check (so a deploy would not fail late):
     every variable used without a default is set by siren.env; every
     image has a tag that is not "latest"; every secret, config, volume
     and network a service names is declared; every config file exists;
     the placement rules (gateway on bridge=true nodes, archive and
     PostgreSQL on storage=true); the gateway's keys are secrets only its
     user (the Dockerfile's uid) can read, at the paths stacks/siren.conf
     reads by default; each variable the gateway service sets is one
     stacks/siren.conf or the policies read; one spool volume per task
     slot.

Without a docker client, or with one older than Docker CLI 23.0 (which
has no `stack config`; Debian 12's docker.io is 20.10), part 1 is
skipped with a message and the exit status is 77 (ctest's
SKIP_RETURN_CODE) when part 2 passed.

Usage: stacks_config.py [--source DIR] [--docker PATH]
Exit status: 0 passed, 1 a check failed, 77 docker absent (part 2 passed).
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys

import stackfiles

SKIPPED = 77
STACKS = (("siren-stack.yml",), ("siren-stack.yml", "siren-plain.yml"),
          ("mock-stack.yml",))
PLACEMENT = {"gateway": "node.labels.bridge == true",
             "archive": "node.labels.storage == true",
             "postgres": "node.labels.storage == true"}
GATEWAY_SECRETS = ("siren-server-chain.pem", "siren-server.key",
                   "siren-sites-ca.pem", "siren-sites-crl.pem",
                   "siren-pseudonym.key")


class Findings(list):
    def expect(self, condition, what):
        if not condition:
            self.append(what)
        return bool(condition)


def render(findings, docker, stacks_dir, files, env):
    """docker stack config -c FILE...; the rendered text."""
    command = [docker, "stack", "config"]
    for name in files:
        command += ["-c", os.path.join(stacks_dir, name)]
    run_env = dict(os.environ)
    run_env.update(env)
    done = subprocess.run(command, capture_output=True, text=True,
                          env=run_env, cwd=stacks_dir, timeout=60)
    findings.expect(done.returncode == 0,
                    f"docker stack config {' '.join(files)}: exit "
                    f"{done.returncode}: {done.stderr.strip()}")
    findings.expect("WARN" not in done.stderr,
                    f"docker stack config {' '.join(files)} warns: "
                    f"{done.stderr.strip()}")
    return done.stdout


def stack_config_missing(docker):
    """Why this docker client cannot render stack files, or None."""
    try:
        done = subprocess.run([docker, "stack", "config", "--help"],
                              capture_output=True, text=True, timeout=30)
    except OSError as error:
        return f"{docker} does not run: {error}"
    if done.returncode != 0 or "--compose-file" not in done.stdout:
        return f"{docker} has no 'stack config' command (a client older " \
               "than Docker CLI 23.0, like Debian 12's docker.io 20.10)"
    return None


def check_declared(findings, name, stack):
    for service_name, service in stack.get("services", {}).items():
        where = f"{name}: service {service_name}"
        image = service.get("image", "")
        tag = image.rsplit("/", 1)[-1]
        findings.expect(":" in tag and not tag.endswith(":latest"),
                        f"{where}: image {image!r} has no fixed tag")
        for kind in ("secrets", "configs"):
            for entry in service.get(kind, []):
                source = entry["source"] if isinstance(entry, dict) \
                    else entry
                findings.expect(source in stack.get(kind, {}),
                                f"{where}: {kind[:-1]} {source} is not "
                                "declared")
        for volume in service.get("volumes", []):
            if isinstance(volume, str):
                source = volume.split(":")[0]
                if not source.startswith(("/", ".", "$")):
                    findings.expect(source in stack.get("volumes", {}),
                                    f"{where}: volume {source} is not "
                                    "declared")
        for network in service.get("networks", []):
            findings.expect(network in stack.get("networks", {}),
                            f"{where}: network {network} is not declared")


def check_files(findings, name, stack_file, stack):
    for config_name, config in stack.get("configs", {}).items():
        path = stackfiles.stack_path(stack_file, config["file"])
        findings.expect(os.path.isfile(path),
                        f"{name}: config {config_name}: no file {path}")


def conf_variables(source):
    """The variables stacks/siren.conf and the example policies read."""
    names = set()
    paths = [os.path.join(source, "stacks", "siren.conf")] + \
        glob.glob(os.path.join(source, "examples", "policies", "*.policy"))
    for path in paths:
        with open(path) as stream:
            names.update(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)",
                                    stream.read()))
    return names


def dockerfile_uid(source):
    with open(os.path.join(source, "stacks", "Dockerfile")) as stream:
        text = stream.read()
    match = re.search(r"useradd [^\n]*--uid (\d+) --gid siren", text)
    return match.group(1) if match else None


def check_gateway(findings, source, stack):
    services = stack["services"]
    for service_name, rule in PLACEMENT.items():
        constraints = services.get(service_name, {}).get("deploy", {}) \
            .get("placement", {}).get("constraints", [])
        findings.expect(rule in constraints,
                        f"{service_name}: not placed by {rule!r}")
    gateway = services["gateway"]
    uid = dockerfile_uid(source)
    findings.expect(uid, "stacks/Dockerfile: no siren user with a --uid")
    with open(os.path.join(source, "stacks", "siren.conf")) as stream:
        conf = stream.read()
    secrets = {entry["target"]: entry for entry in gateway["secrets"]}
    for target in GATEWAY_SECRETS:
        entry = secrets.get(target)
        if not findings.expect(entry, f"gateway: no secret {target}"):
            continue
        findings.expect(entry.get("uid") == uid and
                        entry.get("mode") == 0o400,
                        f"gateway: secret {target}: uid "
                        f"{entry.get('uid')} mode "
                        f"{oct(entry.get('mode') or 0)}, want {uid} and "
                        "0o400")
        path = f"/run/secrets/{target}"
        findings.expect(path in conf or path in
                        gateway["environment"].values(),
                        f"gateway: {path} is neither siren.conf's default "
                        "nor set in the environment")
    read = conf_variables(source)
    for variable in gateway["environment"]:
        findings.expect(variable in read,
                        f"gateway: sets {variable}, which neither "
                        "stacks/siren.conf nor the policies read")
    mounts = [v for v in gateway.get("volumes", [])
              if isinstance(v, str) and v.startswith("spool:")]
    volume = stack.get("volumes", {}).get("spool") or {}
    findings.expect(mounts and "{{.Task.Slot}}" in volume.get("name", ""),
                    "gateway: the spool volume is not one per task slot")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--source", default=os.path.join(here, "..", ".."))
    parser.add_argument("--docker", default=shutil.which("docker"))
    args = parser.parse_args()
    source = os.path.abspath(args.source)
    stacks_dir = os.path.join(source, "stacks")
    findings = Findings()
    env = stackfiles.source_env(os.path.join(stacks_dir, "siren.env"))

    for name in sorted({f for files in STACKS for f in files}):
        stack_file = os.path.join(stacks_dir, name)
        stack, unset = stackfiles.load_stack(stack_file, env)
        findings.expect(not unset, f"{name}: uses {sorted(unset)} without a "
                                   "default, and siren.env does not set them")
        if any(files[0] == name for files in STACKS):
            # a whole stack; an overlay like siren-plain.yml only adds
            check_declared(findings, name, stack)
        check_files(findings, name, stack_file, stack)
        if name == "siren-stack.yml":
            check_gateway(findings, source, stack)

    why_not = "no docker client on PATH" if not args.docker else \
        stack_config_missing(args.docker)
    rendered = 0
    if not why_not:
        for files in STACKS:
            text = render(findings, args.docker, stacks_dir, files, env)
            for service in ("gateway", "archive", "postgres") \
                    if files[0] == "siren-stack.yml" else ("site",):
                findings.expect(re.search(rf"^  {service}:$", text, re.M),
                                f"{' + '.join(files)}: service {service} "
                                "missing from the rendered stack")
            rendered += 1

    for finding in findings:
        print(f"FAIL {finding}")
    if findings:
        print(f"stacks_config: {len(findings)} finding(s)")
        return 1
    if why_not:
        print(f"stacks_config: SKIPPED rendering: {why_not} (docker stack "
              "config, Docker CLI 23.0 and later, renders stack files "
              "without an engine); the static checks passed")
        return SKIPPED
    print(f"stacks_config: {rendered} stack renderings with siren.env and "
          "the static checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
