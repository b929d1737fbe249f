#!/usr/bin/python3
"""stack_smoke.py - what the Docker stack ships, run natively: the files
stacks/siren-stack.yml mounts, with a local `siren` and Debian's Orthanc
on free loopback ports, and the mock site's data sent through them over
DICOM-TLS.

What is shipped is what is tested:
  - the gateway's Docker configs (stacks/siren.conf and the policies, as
    siren-stack.yml names them, with stacks/siren.env's values) are
    copied to the paths the stack mounts them at, under a temporary
    root, and `siren serve -c ROOT/etc/siren/siren.conf` runs them; its
    environment is the stack's for the gateway, except what only a
    container has: the Docker secrets' paths (here a PKI made by
    scripts/site-cert.sh), the spool, ports, the archive's address, no
    Splunk.
  - Orthanc reads stacks/orthanc.json itself, plus a file with what the
    orthancteam image and the stack give it (ports, folders, the users
    the secret holds, no plugins: SQLite instead of PostgreSQL).
  - the image's HEALTHCHECK command (from stacks/Dockerfile) is run
    against the gateway.
  - stacks/mock/mock_site.py makes the studies and sends them with DCMTK
    storescu +tls and site A's certificate.

Checks: the mock site's 8 instances reach Orthanc de-identified under
basic.policy (stamp, PatientIdentityRemoved, a keyed Patient ID), none of
the planted values or original UIDs in Orthanc's files; a revoked
certificate with site A's name is refused (CRL from site-cert.sh), and
nothing it sent arrives; Orthanc refuses a C-STORE that does not come
from the gateway's AE title and REST calls without a password; the health
check passes; SIGTERM stops the gateway with status 0.

Usage:
  /usr/bin/python3 stack_smoke.py --siren build/gateway/siren \\
      --source . --work /tmp/stack_smoke

Exit status: 0 every check passed, 1 a check failed, 2 the test could not
run (a missing tool). About 15 s.
"""

import argparse
import base64
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import traceback
import urllib.error
import urllib.request

import stackfiles
from tls_orthanc import (Checks, Processes, free_port, sanitizer_report,
                         wait_until)

DELIVERY_TIMEOUT_S = 30
STARTUP_TIMEOUT_S = 20
TOOLS = ("Orthanc", "storescu", "openssl", "curl", "sh")


def run(command, env=None, timeout_s=60):
    done = subprocess.run(command, capture_output=True, text=True, env=env,
                          timeout=timeout_s, stdin=subprocess.DEVNULL)
    return done.returncode, done.stdout + done.stderr


class Pki:
    """The registry CA and certificates made by scripts/site-cert.sh."""

    def __init__(self, source, work, site_cn):
        self.script = os.path.join(source, "scripts", "site-cert.sh")
        self.ca_dir = os.path.join(work, "registry-ca")
        self.issued = os.path.join(self.ca_dir, "issued")
        self.cert("init")
        self.cert("server", "localhost", "IP:127.0.0.1")
        self.cert("site", "site-a", site_cn)
        # A second certificate with site A's name, then revoked (a lost
        # laptop, say): the CRL must keep it out.
        self.cert("site", "site-a-lost", site_cn)
        self.cert("revoke", "site-a-lost")

    def cert(self, *args):
        status, output = run(["sh", self.script, "-d", self.ca_dir, *args])
        if status != 0:
            raise RuntimeError(f"site-cert.sh {' '.join(args)}: {output}")
        return output

    def path(self, name):
        return os.path.join(self.issued, name)


class Archive:
    """Debian's Orthanc reading stacks/orthanc.json and, beside it, what
    the stack gives the orthancteam image."""

    def __init__(self, processes, source, work):
        self.folder = os.path.join(work, "archive")
        config_dir = os.path.join(self.folder, "config")
        os.makedirs(config_dir)
        os.symlink(os.path.join(source, "stacks", "orthanc.json"),
                   os.path.join(config_dir, "orthanc.json"))
        self.http_port, self.dicom_port = free_port(), free_port()
        while self.dicom_port == self.http_port:
            self.dicom_port = free_port()
        self.password = secrets.token_hex(12)
        local = {
            "HttpPort": self.http_port, "DicomPort": self.dicom_port,
            "StorageDirectory": os.path.join(self.folder, "storage"),
            "IndexDirectory": os.path.join(self.folder, "index"),
            "RegisteredUsers": {"admin": self.password},
            "Plugins": [],
        }
        with open(os.path.join(config_dir, "smoke-local.json"), "w") as out:
            json.dump(local, out, indent=2)
        self.log_path = os.path.join(work, "orthanc.log")
        self.process = processes.start(["Orthanc", config_dir],
                                       self.log_path)
        self.base = f"http://127.0.0.1:{self.http_port}"
        if not wait_until(lambda: self.process.poll() is None and
                          self.request("/system")[0] == 200,
                          STARTUP_TIMEOUT_S, 0.2):
            raise RuntimeError(f"Orthanc did not start; {self.log_path}")

    def request(self, path, password=True):
        request = urllib.request.Request(self.base + path)
        if password:
            token = base64.b64encode(f"admin:{self.password}".encode())
            request.add_header("Authorization", "Basic " + token.decode())
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except OSError:
            return None, b""

    def get(self, path):
        status, body = self.request(path)
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}")
        return body

    def instances(self):
        return json.loads(self.get("/instances"))


def gateway_service(source, env):
    """The gateway service of siren-stack.yml, interpolated with
    siren.env."""
    stack_file = os.path.join(source, "stacks", "siren-stack.yml")
    stack, _ = stackfiles.load_stack(stack_file, env)
    return stack_file, stack, stack["services"]["gateway"]


def install_configs(stack_file, stack, service, root):
    """Copies each Docker config of the gateway to its target under
    root; returns root + the configuration's target."""
    conf = None
    for entry in service["configs"]:
        source = stackfiles.stack_path(
            stack_file, stack["configs"][entry["source"]]["file"])
        target = root + entry["target"]
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(source, target)
        if target.endswith("/siren.conf"):
            conf = target
    if not conf:
        raise RuntimeError("the gateway mounts no siren.conf")
    return conf


def healthcheck_command(source):
    """The shell command of the gateway image's HEALTHCHECK."""
    _, stages = stackfiles.dockerfile_stages(
        os.path.join(source, "stacks", "Dockerfile"))
    for keyword, rest in stages[-1].instructions:
        if keyword == "HEALTHCHECK":
            match = re.search(r"\bCMD\s+(.*)$", rest)
            if match:
                return match.group(1)
    raise RuntimeError("stacks/Dockerfile's last stage has no HEALTHCHECK")


def dockerfile_env(source):
    """The ENV of the gateway image (what a container starts with)."""
    _, stages = stackfiles.dockerfile_stages(
        os.path.join(source, "stacks", "Dockerfile"))
    env = {}
    for keyword, rest in stages[-1].instructions:
        if keyword == "ENV":
            for name, value in re.findall(r"(\w+)=(\S+)", rest):
                env[name] = value
    return env


def start_gateway(ctx):
    env = dict(os.environ)
    env.update(dockerfile_env(ctx["source"]))
    env.update({k: str(v) for k, v in ctx["service"]["environment"].items()})
    pki, archive, work = ctx["pki"], ctx["archive"], ctx["work"]
    # What only a container has: its secrets, volume, ports, the overlay.
    env.update({
        "SIREN_TLS_CERT": pki.path("localhost-chain.pem"),
        "SIREN_TLS_KEY": pki.path("localhost.key"),
        "SIREN_SITES_CA": os.path.join(pki.ca_dir, "ca.pem"),
        "SIREN_CRL": os.path.join(pki.ca_dir, "crl.pem"),
        "SIREN_PSEUDONYM_KEY": ctx["key"],
        "SIREN_SPOOL": os.path.join(work, "spool"),
        "SIREN_AUDIT_FILE": os.path.join(work, "audit.jsonl"),
        "SIREN_TLS_PORT": "0",
        "SIREN_METRICS_PORT": str(ctx["metrics_port"]),
        "SIREN_ARCHIVE_HOST": "127.0.0.1",
        "SIREN_ARCHIVE_PORT": str(archive.dicom_port),
        "SPLUNK_HEC_URL": "",
    })
    log_path = os.path.join(work, "siren.log")
    process = ctx["processes"].start(
        [ctx["siren"], "serve", "-c", ctx["conf"]], log_path, env=env)

    def listening():
        with open(log_path, encoding="latin-1") as stream:
            match = re.search(r"serve\.listening tls_port=(\d+)",
                              stream.read())
        return match.group(1) if match else None
    port = wait_until(lambda: process.poll() is None and listening(),
                      STARTUP_TIMEOUT_S, 0.1)
    if not port:
        raise RuntimeError(f"siren serve -c did not start; {log_path}")
    return process, int(port), log_path, env


def mock_site(ctx, command, *args, key="site-a"):
    """stacks/mock/mock_site.py with the site's certificate."""
    pki = ctx["pki"]
    env = dict(os.environ,
               MOCK_GATEWAY_HOST="127.0.0.1",
               MOCK_GATEWAY_PORT=str(ctx["tls_port"]),
               MOCK_SITE_AET=ctx["site_aet"],
               MOCK_CALLED_AET=ctx["service"]["environment"]["SIREN_AET"],
               MOCK_TLS_KEY=pki.path(f"{key}.key"),
               MOCK_TLS_CHAIN=pki.path(f"{key}-chain.pem"),
               MOCK_TLS_CA=os.path.join(pki.ca_dir, "ca.pem"))
    script = os.path.join(ctx["source"], "stacks", "mock", "mock_site.py")
    return run([sys.executable, script, "--studies", "2", command, *args],
               env=env)


def check_deidentified(checks, ctx, planted):
    archive = ctx["archive"]
    ids = archive.instances()
    checks.expect(len(ids) == len(planted["files"]),
                  f"{len(ids)} instances in Orthanc, "
                  f"{len(planted['files'])} sent")
    for instance in ids:
        tags = json.loads(archive.get(f"/instances/{instance}/"
                                      "simplified-tags"))
        checks.expect(tags.get("PatientIdentityRemoved") == "YES",
                      f"{instance}: PatientIdentityRemoved "
                      f"{tags.get('PatientIdentityRemoved')!r}")
        checks.expect(tags.get("DeidentificationMethod", "")
                      .startswith("SIREN basic version 1"),
                      f"{instance}: method "
                      f"{tags.get('DeidentificationMethod')!r}")
        checks.expect(re.fullmatch(r"[A-Z2-7]{16}",
                                   tags.get("PatientID", "")),
                      f"{instance}: PatientID {tags.get('PatientID')!r}")
        content = archive.get(f"/instances/{instance}/file")
        leaked = [v for v in planted["values"] + planted["uids"]
                  if v.encode() in content]
        checks.expect(not leaked, f"{instance}: planted values in "
                                  f"Orthanc's file: {leaked}")


def scenario(checks, ctx):
    work = ctx["work"]
    code = subprocess.run(["sh", "-c", ctx["healthcheck"]],
                          env=ctx["gateway_env"], capture_output=True,
                          timeout=30).returncode
    checks.expect(code == 0, f"the image's HEALTHCHECK exits {code}")

    studies = os.path.join(work, "studies")
    status, output = mock_site(ctx, "generate", studies)
    checks.expect(status == 0, f"mock_site.py generate: {output}")
    with open(os.path.join(studies, "planted.json")) as stream:
        planted = json.load(stream)
    status, output = mock_site(ctx, "send", studies)
    checks.expect(status == 0, f"mock_site.py send (site A): {output}")

    # The revoked certificate: refused during the handshake.
    lost = os.path.join(work, "lost")
    os.makedirs(lost)
    shutil.copy(os.path.join(studies, planted["files"][0]), lost)
    status, output = mock_site(ctx, "send", lost, key="site-a-lost")
    checks.expect(status != 0, "a revoked certificate was accepted")
    with open(ctx["log_path"], encoding="latin-1") as stream:
        log = stream.read()
    checks.expect(re.search(r"security\.alert.*revoked", log),
                  "no security.alert naming the revoked certificate")

    archive = ctx["archive"]
    delivered = wait_until(lambda: len(archive.instances()) >=
                           len(planted["files"]), DELIVERY_TIMEOUT_S, 0.2)
    checks.expect(delivered, f"{len(archive.instances())} of "
                             f"{len(planted['files'])} in Orthanc")
    check_deidentified(checks, ctx, planted)

    # Only the gateway stores into the archive; its REST API wants a
    # password.
    before = len(archive.instances())
    status, output = run(["storescu", "-aet", ctx["site_aet"], "-aec",
                          "ORTHANC", "127.0.0.1", str(archive.dicom_port),
                          os.path.join(studies, planted["files"][0])])
    checks.expect(len(archive.instances()) == before,
                  "Orthanc stored a C-STORE that was not the gateway's")
    status, _ = archive.request("/system", password=False)
    checks.expect(status == 401, f"Orthanc without a password: {status}")

    with open(os.path.join(work, "audit.jsonl")) as stream:
        forwarded = [line for line in stream
                     if '"instance.forwarded"' in line]
    checks.expect(len(forwarded) == len(planted["files"]),
                  f"{len(forwarded)} instance.forwarded in the audit file")
    code = ctx["processes"].stop(ctx["gateway"])
    checks.expect(code == 0, f"siren serve exited {code} on SIGTERM")
    with open(ctx["log_path"], encoding="latin-1") as stream:
        report = sanitizer_report(stream.read())
    checks.expect(not report, f"sanitizer: {report}")


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--siren", required=True)
    parser.add_argument("--source", required=True,
                        help="the repository (stacks/, scripts/)")
    parser.add_argument("--work", required=True)
    return parser.parse_args()


def main():
    args = parse_arguments()
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        print(f"stack_smoke: missing {', '.join(missing)} "
              "(scripts/deps.sh test)")
        return 2
    source = os.path.abspath(args.source)
    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    checks, processes = Checks(), Processes()
    checks.scenario = "stack_smoke"
    try:
        env = stackfiles.source_env(os.path.join(source, "stacks",
                                                 "siren.env"))
        stack_file, stack, service = gateway_service(source, env)
        environment = service["environment"]
        ctx = {"source": source, "work": work, "processes": processes,
               "siren": os.path.abspath(args.siren), "service": service,
               "site_aet": environment["SIREN_SITE_A_AET"],
               "metrics_port": free_port(),
               "healthcheck": healthcheck_command(source)}
        ctx["conf"] = install_configs(stack_file, stack, service,
                                      os.path.join(work, "root"))
        ctx["pki"] = Pki(source, work, environment["SIREN_SITE_A_CN"])
        ctx["key"] = os.path.join(work, "pseudonym.key")
        with open(os.open(ctx["key"], os.O_WRONLY | os.O_CREAT, 0o600),
                  "w") as stream:
            stream.write(secrets.token_hex(32) + "\n")
        ctx["archive"] = Archive(processes, source, work)
        (ctx["gateway"], ctx["tls_port"], ctx["log_path"],
         ctx["gateway_env"]) = start_gateway(ctx)
        scenario(checks, ctx)
    except Exception:
        checks.fail("the test broke:\n" + traceback.format_exc())
    finally:
        processes.stop_all()
    if checks.failures:
        print(f"stack_smoke: {len(checks.failures)} check(s) failed "
              f"(logs in {work})")
        return 1
    print("stack_smoke: stack files run natively, mock site's data "
          "de-identified in Orthanc: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
