#!/usr/bin/python3
"""ingest.py - the gateway end to end: `siren serve -c examples/siren.conf`
(DICOM-TLS listener, spool, de-identification with basic.policy,
forwarding to a real Orthanc) fed by DCMTK's storescu +tls, against the
same storescu sending straight to Orthanc over DICOM-TLS and to storescp
+tls, in one run; then the gateway's peak memory with many associations
and with one large instance. Started by bench/run.sh (`bench/run.sh
ingest` runs only this); see docs/PERFORMANCE.md for how to read it.
The servers' plumbing is bench/net.py's and bench/tls.py's, Orthanc is
tests/integration/tls_orthanc.py's Orthanc class, the gateway's
environment is tests/integration/service_e2e.py's.

PKI: tests/integration/tls_orthanc.py's Pki (pki.py's throwaway PKI plus a
certificate for Orthanc, CN=orthanc.siren.test, signed by the
intermediate) into OUT/pki-ingest on every run. No CRLs anywhere.

Every sender is bench/tls.py's storescu: storescu -aet SITEA -aec SIREN
+tls site-a.key site-a-chain.pem +py +cf ca-bundle.pem 127.0.0.1 PORT
FILES (TCP_NODELAY=1 in its environment), the same command line for all
targets. Targets, each fresh for every run (untimed start, empty
folders, sync() before the run):
  gateway        siren serve -c examples/siren.conf with SIREN_SPOOL (an
                 empty folder), SIREN_TLS_PORT, SIREN_TLS_CERT
                 (server-chain.pem), SIREN_TLS_KEY, SIREN_SITES_CA
                 (ca-bundle.pem), SIREN_CRL= (none), SIREN_PLAIN_PORT= (no
                 plain listener), SIREN_PSEUDONYM_KEY (a fresh 0600 key
                 file), SIREN_ARCHIVE_PORT/AET (the Orthanc below, plain
                 DICOM on loopback: the example's `tls off`),
                 SIREN_AUDIT_FILE (a file in the run's folder),
                 SIREN_METRICS_PORT (a free port). Site A (SITEA,
                 CN=site-a.example.org) is de-identified with
                 examples/policies/basic.policy; processors 0 (one a core),
                 2 forwarding connections, as the example says. A fresh
                 Orthanc without TLS is its archive.
  Orthanc        a fresh Orthanc (Debian's) with DicomTlsEnabled, its
                 certificate, trusting ca-bundle.pem, client certificate
                 required (tls_orthanc.Orthanc with its PKI) and
                 DicomCheckCalledAet false (so the one storescu command
                 line serves: it calls SIREN).
  storescp       bench/tls.py's storescp --fork -dhl -pdu 131072 +tls ...
                 -od D PORT (no fsync), and
  storescp+fsync the same with bench/net.py's fsync shim.
Both Orthancs are tls_orthanc.Orthanc's configuration (Orthanc --verbose,
no compression, SQLite index, storage in the run's folder on the same
disk as the inputs).

Times run from starting storescu to: its exit (acknowledged: every
C-STORE answered) and, for the two Orthanc targets, the first poll of
Orthanc's REST /statistics (every POLL_S, one kept-alive HTTP
connection) that counts all instances (delivered). For storescp the
time is bench/tls.py's run_store's. A run counts only if storescu exits
0, the archive ends up with exactly the instances sent (storescp: its
folder holds them), nothing is left in the gateway's spool and no
instance was quarantined (a NAME.reason in quarantine/ without its
instance is counted and reported: a processor's race, every instance
having been delivered); the warm-up run of each target also compares the last
64 KiB (pixel data) of every instance Orthanc holds (or storescp wrote)
with the inputs', and for the gateway checks that Orthanc's instances
are de-identified (PatientIdentityRemoved YES, basic.policy's stamp, no
original SOP Instance UID). Then ROUNDS rounds, the four targets in an
order that rotates. Ratios are per round, median and range:
  gateway ack / storescp          storescp time / gateway acknowledged
  gateway ack / storescp+fsync    the same, like-for-like durability
  gateway delivery / Orthanc      Orthanc delivered / gateway delivered
  gateway ack / Orthanc ack       Orthanc acknowledged / gateway ack'd
(above 1: the gateway is faster). CPU: the gateway's and Orthanc's user +
system time (/proc/PID/stat, all threads) from just before storescu
starts to the poll that finds the run settled (below); storescp's as in
bench/tls.py (with what it forks, to its exit). The gateway is stopped
only once settled: Orthanc holds every instance and the spool's
received/ and outgoing/ are empty, i.e. the forwarder has had Orthanc's
answers (Orthanc counts an instance before it answers; a forwarder that
timed out and sends again would still be busy). The forwarder's retries
(forward.retry lines in the gateway's log) are counted and reported.

Memory (the gateway alone, the same set-up and checks):
  N associations   N storescu processes at once (--associations, 32 as
                   examples/siren.conf's max-associations), each with its
                   own slice of the CT series on its own TLS association;
                   MEM_ROUNDS runs.
  large instance   one Enhanced CT file of --size-mib MiB of pixel data
                   (gen_series multiframe, OUT/enhanced_ct_NNNNf.dcm as
                   bench/data_core.py makes it; skipped with a message if
                   the disk has less than LARGE_FREE_GIB GiB free);
                   LARGE_ROUNDS runs, each followed by the same storescu
                   straight to a fresh TLS Orthanc for reference.
Peak RSS is VmHWM of /proc/PID/status when the last instance is in
Orthanc; RssAnon, RssFile and Threads are the largest seen by sampling
/proc/PID/status at every poll.
"""

import datetime
import hashlib
import http.client
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings

sys.dont_write_bytecode = True  # leave no bench/__pycache__ behind
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import data_core  # noqa: E402  (shared helpers, same folder)
import net  # noqa: E402
import tls  # noqa: E402
import tls_orthanc  # noqa: E402  (Orthanc, Pki, Processes)
from data_core import fail, log  # noqa: E402

import pydicom  # noqa: E402  (Debian's python3-pydicom, as the tests)

MIB = 1 << 20
GIB = 1 << 30
CONFIG = "examples/siren.conf"
POLICY_STAMP = "SIREN basic version 1"
POLL_S = 0.025
DELIVERY_TIMEOUT_S = 600
MEM_ROUNDS = 3
LARGE_ROUNDS = 2
LARGE_FREE_GIB = 5
TAIL_BYTES = 65536
SAMPLED = ("VmRSS", "RssAnon", "RssFile", "RssShmem", "Threads")


# ---- processes --------------------------------------------------------------

class Context:
    """What every run needs; live holds the servers running now so that
    they are stopped whatever happens."""

    def __init__(self, args, work):
        self.siren = os.path.abspath(os.path.join(args.build, "gateway",
                                                  "siren"))
        self.config = os.path.abspath(CONFIG)
        self.work = work
        self.checks = tls_orthanc.Checks()
        self.processes = tls_orthanc.Processes()
        self.live = []
        pki_dir = os.path.join(args.out, "pki-ingest")
        data_core.remove_folder(pki_dir)
        made = tls_orthanc.Pki(os.path.abspath("tests/integration/pki.py"),
                               os.path.abspath(pki_dir))
        self.orthanc_pki = made
        self.pki = tls.Pki(made.dir)
        self.key = os.path.join(work, "pseudonym.key")
        with open(os.open(self.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                          0o600), "w") as f:
            f.write(os.urandom(32).hex())

    def stop_all(self):
        for running in list(self.live):
            try:
                running.reaper.terminate()
                running.reaper.wait(timeout=20)
            except Exception:
                running.reaper.kill()
        self.live.clear()
        self.processes.stop_all()


def start_orthanc(ctx, folder, with_tls):
    archive = tls_orthanc.Orthanc(
        ctx.checks, ctx.processes, folder, "orthanc",
        pki=ctx.orthanc_pki if with_tls else None,
        extra_config={"DicomCheckCalledAet": False})
    archive.wait_started()
    return archive


def stop_orthanc(ctx, archive):
    archive.stop()
    if ctx.checks.failures:
        fail(ctx.checks.failures[-1])


def gateway_server(ctx, spool_parent, archive):
    """net.Server for siren serve -c CONFIG: `env` sets the variables and
    execs siren (the pid stays), the TLS port is the one net.Server picks;
    a new metrics port on every try."""
    audit = os.path.join(spool_parent, "audit.jsonl")

    def argv(spool, port):
        return ["env", "SIREN_AET=SIREN", f"SIREN_SPOOL={spool}",
                "SIREN_SPOOL_QUOTA=0", "SIREN_USER=",
                f"SIREN_TLS_PORT={port}", "SIREN_PLAIN_PORT=",
                f"SIREN_TLS_CERT={ctx.pki.server_chain}",
                f"SIREN_TLS_KEY={ctx.pki.server_key}",
                f"SIREN_SITES_CA={ctx.pki.ca}", "SIREN_CRL=",
                "SIREN_SITE_A_CN=site-a.example.org",
                f"SIREN_SITE_A_AET={tls.CALLING_AE}",
                f"SIREN_PSEUDONYM_KEY={ctx.key}",
                "SIREN_ARCHIVE_HOST=127.0.0.1",
                f"SIREN_ARCHIVE_PORT={archive.dicom_port}",
                f"SIREN_ARCHIVE_AET={tls_orthanc.ORTHANC_AET}",
                "SIREN_ARCHIVE_TLS=off",
                f"SIREN_AUDIT_FILE={audit}",
                f"SIREN_METRICS_PORT={net.free_port()}",
                ctx.siren, "serve", "-c", ctx.config]
    return net.Server("gateway", argv, port_from_log=False)


# ---- watching a run ---------------------------------------------------------

def proc_status(pid):
    """The SAMPLED fields and VmHWM of /proc/PID/status, in bytes (Threads
    as a count)."""
    found = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in SAMPLED or key == "VmHWM":
                    parts = value.split()
                    found[key] = int(parts[0]) * (1024 if len(parts) > 1
                                                  else 1)
    except OSError:
        pass
    return found


class Poller:
    """Orthanc's instance count over one kept-alive HTTP connection."""

    def __init__(self, archive):
        self.archive = archive
        self.conn = http.client.HTTPConnection("127.0.0.1",
                                               archive.http_port, timeout=60)

    def count(self):
        self.conn.request("GET", "/statistics")
        answer = self.conn.getresponse()
        body = answer.read()
        if answer.status != 200:
            fail(f"Orthanc /statistics: HTTP {answer.status}")
        return int(json.loads(body)["CountInstances"])

    def close(self):
        self.conn.close()


def spool_empty(spool):
    """No instance in the gateway's received/ or outgoing/ (the forwarder
    removes a file once the archive has answered for it)."""
    for stage in ("received", "outgoing"):
        try:
            if os.listdir(os.path.join(spool, stage)):
                return False
        except FileNotFoundError:
            pass
    return True


def send_and_watch(ctx, port, slices, archive, count, watch_pid=None,
                   spool=None):
    """Starts one storescu +tls per slice, all at once; returns
    (acknowledged seconds, delivered seconds, settled seconds,
    {field: largest sample}). A thread waits for the senders (exact exit
    time); this thread polls Orthanc every POLL_S and samples watch_pid's
    /proc status. Settled: with spool, the first poll after delivery that
    finds the spool empty (the gateway has had Orthanc's answers), else
    the delivery."""
    env = net.dcmtk_env()
    logs = [tempfile.TemporaryFile() for _ in slices]
    poller = Poller(archive)
    peaks = {}
    done = {}
    started = time.monotonic()
    procs = [subprocess.Popen(tls.storescu(ctx.pki, port, files),
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=err, env=env)
             for files, err in zip(slices, logs)]

    def wait_senders():
        for p in procs:
            p.wait()
        done["ack"] = time.monotonic() - started

    waiter = threading.Thread(target=wait_senders, daemon=True)
    waiter.start()
    delivered = settled = None
    try:
        while True:
            if watch_pid:
                for key, value in proc_status(watch_pid).items():
                    peaks[key] = max(peaks.get(key, 0), value)
            if delivered is None and poller.count() >= count:
                delivered = time.monotonic() - started
            if delivered is not None and settled is None and \
                    (spool is None or spool_empty(spool)):
                settled = time.monotonic() - started
            if settled is not None:
                if "ack" in done:
                    break
            elif "ack" in done and any(p.returncode for p in procs):
                break
            if time.monotonic() - started > DELIVERY_TIMEOUT_S:
                break
            time.sleep(POLL_S)
    finally:
        poller.close()
        for p in procs:
            if p.poll() is None:
                p.kill()
        waiter.join()
    failed = None
    for p, err in zip(procs, logs):
        if p.returncode != 0 and failed is None:
            err.seek(0)
            failed = (f"storescu exit status {p.returncode}: " +
                      err.read().decode(errors="replace").strip()[-2000:])
        err.close()
    if failed:
        fail(failed)
    if settled is None:
        fail(f"Orthanc did not get {count} instances (or the gateway did "
             f"not empty its spool) within {DELIVERY_TIMEOUT_S} s")
    return done["ack"], delivered, settled, peaks


# ---- checks -----------------------------------------------------------------

def tail_digest_bytes(content):
    return hashlib.sha1(content[-TAIL_BYTES:]).hexdigest()


def check_archive(archive, inputs, what, deidentified, verify):
    """Orthanc holds exactly len(inputs) instances; with verify, each ends
    like one of the inputs and (deidentified) carries basic.policy's
    stamp and no original UID."""
    ids = sorted(archive.instances())
    if len(ids) != len(inputs):
        fail(f"{what}: Orthanc holds {len(ids)} instances, sent "
             f"{len(inputs)}")
    if not verify:
        return
    want = sorted(net.tail_digest(p) for p in inputs)
    got = sorted(tail_digest_bytes(archive.get(f"/instances/{i}/file",
                                               raw=True)) for i in ids)
    if got != want:
        fail(f"{what}: Orthanc's instances do not end like the inputs "
             f"(pixel data differs)")
    if deidentified:
        for i in ids[:3]:
            tags = archive.get(f"/instances/{i}/simplified-tags")
            method = tags.get("DeidentificationMethod", "")
            if tags.get("PatientIdentityRemoved") != "YES" or \
                    not method.startswith(POLICY_STAMP):
                fail(f"{what}: Orthanc's instance {i} is not stamped by "
                     f"basic.policy: {method!r}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            uid = str(pydicom.dcmread(inputs[0], stop_before_pixels=True)
                      .SOPInstanceUID)
        if archive.lookup(uid):
            fail(f"{what}: the original SOP Instance UID {uid} is in Orthanc")


def check_spool(spool, what):
    """Nothing left in received/ or outgoing/, no instance quarantined or
    failed; returns the stray NAME.reason files in quarantine/ whose
    instance is not there (a processor that took an instance another one
    had already done: see docs/PERFORMANCE.md), which are reported, not
    failed on, since every instance was delivered."""
    stray = []
    for stage in ("received", "outgoing", "quarantine", "failed"):
        folder = os.path.join(spool, stage)
        left = os.listdir(folder) if os.path.isdir(folder) else []
        if stage == "quarantine":
            stray = [n for n in left if n.endswith(".reason") and
                     n[:-len(".reason")] not in left]
            left = [n for n in left if n not in stray]
        if left:
            fail(f"{what}: {len(left)} files left in {folder}, e.g. "
                 f"{left[0]}")
    if stray:
        log(f"{what}: {len(stray)} stray .reason files in quarantine/ "
            f"without their instance: "
            f"{net.read_text(os.path.join(spool, 'quarantine', stray[0]))}"
            .strip())
    return len(stray)


def large_size(archive):
    ids = list(archive.instances())
    return archive.get(f"/instances/{ids[0]}").get("FileSize", 0) \
        if len(ids) == 1 else 0


# ---- one run of each kind ---------------------------------------------------

def cpu_since(pid, before):
    user, system = net.proc_cpu_seconds(pid)
    return user - before[0], system - before[1]


def run_gateway(ctx, inputs, slices, tag, verify=False):
    """One run through the gateway; returns a dict: ack, delivered
    (seconds), cpu and orthanc_cpu ((user, system) seconds), hwm (bytes),
    peaks (largest samples)."""
    folder = os.path.join(ctx.work, tag)
    data_core.remove_folder(folder)
    os.makedirs(folder)
    archive = start_orthanc(ctx, folder, with_tls=False)
    spool = os.path.join(folder, "spool")
    log_path = os.path.join(folder, "serve.log")
    os.sync()
    running = gateway_server(ctx, folder, archive).start(spool, log_path)
    ctx.live.append(running)
    gw_before = net.proc_cpu_seconds(running.pid)
    or_before = net.proc_cpu_seconds(archive.process.pid)
    ack, delivered, settled, peaks = send_and_watch(
        ctx, running.port, slices, archive, len(inputs),
        watch_pid=running.pid, spool=spool)
    result = {"ack": ack, "delivered": delivered, "settled": settled,
              "cpu": cpu_since(running.pid, gw_before),
              "orthanc_cpu": cpu_since(archive.process.pid, or_before),
              "hwm": proc_status(running.pid).get("VmHWM", 0),
              "peaks": peaks}
    running.stop()
    ctx.live.remove(running)
    result["retries"] = net.read_text(log_path).count(" forward.retry ")
    result["stray"] = check_spool(spool, "gateway")
    check_archive(archive, inputs, "gateway", True, verify)
    if len(inputs) == 1:
        result["size"] = large_size(archive)
    stop_orthanc(ctx, archive)
    data_core.remove_folder(folder)
    return result


def run_orthanc(ctx, inputs, slices, tag, verify=False):
    """One run straight to Orthanc over DICOM-TLS; the same dict (no
    gateway fields)."""
    folder = os.path.join(ctx.work, tag)
    data_core.remove_folder(folder)
    os.makedirs(folder)
    archive = start_orthanc(ctx, folder, with_tls=True)
    os.sync()
    or_before = net.proc_cpu_seconds(archive.process.pid)
    ack, delivered, _, _ = send_and_watch(ctx, archive.dicom_port, slices,
                                          archive, len(inputs))
    result = {"ack": ack, "delivered": delivered,
              "orthanc_cpu": cpu_since(archive.process.pid, or_before)}
    check_archive(archive, inputs, "Orthanc", False, verify)
    stop_orthanc(ctx, archive)
    data_core.remove_folder(folder)
    return result


def run_storescp(ctx, server, inputs, slices, tag, verify=False):
    seconds, cpu = tls.run_store(server, ctx.pki, inputs, slices,
                                 os.path.join(ctx.work, tag), verify=verify)
    return {"ack": seconds, "cpu": cpu}


# ---- reporting --------------------------------------------------------------

def median(values):
    return statistics.median(values)


def cpu_ms(results, key, count):
    """ "TOTAL (USER + SYS)" ms per instance of the median round."""
    per = [(u * 1000 / count, s * 1000 / count)
           for u, s in (r[key] for r in results)]
    return net.cpu_cell(per)


def met(value, target):
    return "**met**" if value >= target else "**not met**"


def report(res, mem, args, started, input_bytes, loads, ended):
    lines = []
    add = lines.append
    n = args.count
    mib = input_bytes / MIB
    add(f"Run {started:%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs "
        f"({data_core.cpu_model()}), Linux {platform.release()}; "
        f"{net.dcmtk_version()}; {tls.openssl_version()}; "
        f"{orthanc_version()}; SIREN {data_core.git_revision()}; "
        f"{args.rounds} rounds; {(ended - started).seconds // 60} min; "
        f"load average (1 min) {min(loads):.1f} to {max(loads):.1f} "
        f"during the run; `bench/run.sh ingest --rounds {args.rounds} "
        f"--count {n} --associations {args.associations} "
        f"--size-mib {args.size_mib}`.")
    add("")
    add(f"Ingest of the CT series ({n} instances, {mib:.0f} MiB) by one "
        f"storescu +tls:")
    add("")
    add("| Target | acknowledged inst/s | MiB/s | in Orthanc inst/s | "
        "server CPU ms/inst | Orthanc CPU ms/inst |")
    add("|---|---:|---:|---:|---:|---:|")
    for name in res["order"]:
        r = res[name]
        ack = median([x["ack"] for x in r])
        row = [name, f"{n / ack:.0f}", f"{mib / ack:.0f}"]
        if "delivered" in r[0]:
            row.append(f"{n / median([x['delivered'] for x in r]):.0f}")
        else:
            row.append("-")
        row.append(cpu_ms(r, "cpu", n) if "cpu" in r[0] else "-")
        row.append(cpu_ms(r, "orthanc_cpu", n) if "orthanc_cpu" in r[0]
                   else "-")
        add("| " + " | ".join(row) + " |")
    add("")
    gw = res["gateway"]
    lag = median([r["settled"] - r["delivered"] for r in gw])
    add(f"Gateway: settled (spool empty) {lag * 1000:.0f} ms after "
        f"delivery (median); forward retries in all "
        f"{len(gw)} rounds: {sum(r['retries'] for r in gw)}; stray "
        f"quarantine reasons: {sum(r['stray'] for r in gw)}; peak RSS "
        f"{max(r['hwm'] for r in gw) / MIB:.1f} MiB.")
    add("")
    ratios = [
        ("gateway acknowledged / storescp", "storescp", "ack", "ack", 1.0),
        ("gateway acknowledged / storescp+fsync", "storescp+fsync", "ack",
         "ack", None),
        ("gateway delivered / Orthanc direct delivered", "Orthanc",
         "delivered", "delivered", 0.9),
        ("gateway acknowledged / Orthanc direct acknowledged", "Orthanc",
         "ack", "ack", None),
    ]
    add("| Rate ratio (above 1: the gateway is faster) | median (range) | "
        "target |")
    add("|---|---:|---|")
    for label, other, ours_key, theirs_key, target in ratios:
        values = [t[theirs_key] / o[ours_key]
                  for t, o in zip(res[other], gw)]
        cell = net.ratio_cell(values)
        goal = (f">= {target:.1f}: {met(median(values), target)}"
                if target else "-")
        add(f"| {label} | {cell} | {goal} |")
    add("")
    add(f"Gateway memory (target: peak RSS under {args.rss_target_mib} "
        f"MiB):")
    add("")
    add("| Scenario | runs | peak RSS (VmHWM) | RssAnon | RssFile | threads "
        "| acknowledged s | in Orthanc s | forward retries | stray "
        "quarantine reasons | target |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for label, runs in mem:
        if not runs:
            add(f"| {label} | 0 | skipped | | | | | | | | |")
            continue
        if "hwm" not in runs[0]:
            add(f"| {label} | {len(runs)} | - | - | - | - | "
                f"{median([r['ack'] for r in runs]):.2f} | "
                f"{median([r['delivered'] for r in runs]):.2f} | - | - | "
                f"- |")
            continue
        hwm = max(r["hwm"] for r in runs)
        peak = {k: max(r["peaks"].get(k, 0) for r in runs) for k in SAMPLED}
        add(f"| {label} | {len(runs)} | {hwm / MIB:.1f} MiB | "
            f"{peak['RssAnon'] / MIB:.1f} MiB | "
            f"{peak['RssFile'] / MIB:.1f} MiB | {peak['Threads']} | "
            f"{median([r['ack'] for r in runs]):.2f} | "
            f"{median([r['delivered'] for r in runs]):.2f} | "
            f"{sum(r['retries'] for r in runs)} | "
            f"{sum(r['stray'] for r in runs)} | "
            f"{met(args.rss_target_mib * MIB, hwm + 1)} |")
    return "\n".join(lines) + "\n"


def orthanc_version():
    try:
        out = subprocess.run(["Orthanc", "--version"], capture_output=True,
                             text=True).stdout
        return out.split("\n")[0].strip()
    except OSError:
        return "Orthanc unknown"


# ---- main -------------------------------------------------------------------

def large_instance(gen_series, out_dir, size_mib):
    """OUT/enhanced_ct_NNNNf.dcm (bench/data_core.py's name), made if
    missing; None (and a message) if the disk is too full."""
    frames = size_mib * MIB // data_core.FRAME_BYTES
    path = os.path.join(out_dir, f"enhanced_ct_{frames}f.dcm")
    free = shutil.disk_usage(out_dir).free
    need = LARGE_FREE_GIB * GIB + (0 if os.path.exists(path)
                                   else frames * data_core.FRAME_BYTES)
    if free < need:
        log(f"large instance skipped: {free // MIB} MiB free in {out_dir}, "
            f"{need // MIB} MiB needed (the spool holds it twice, Orthanc "
            f"once)")
        return None
    if not os.path.exists(path):
        log(f"generating {path} ({frames} frames)")
        subprocess.run([gen_series, "multiframe", path, str(frames)],
                       check=True)
    return os.path.abspath(path)


def main():
    parser = data_core.bench_parser(__doc__, 5)
    parser.add_argument("--count", type=int, default=200,
                        help="instances in the CT series")
    parser.add_argument("--associations", type=int, default=32,
                        help="storescu processes in the memory scenario")
    parser.add_argument("--size-mib", type=int,
                        default=int(os.environ.get("SIREN_BENCH_SIZE_MIB",
                                                   1024)),
                        help="pixel data of the large instance; 0: skip it")
    parser.add_argument("--rss-target-mib", type=int, default=128)
    for ignored in ("--senders", "--clients", "--seconds"):
        parser.add_argument(ignored, help="another benchmark's option, "
                            "accepted and ignored so that bench/run.sh can "
                            "pass one set of options")
    args = parser.parse_args()
    if min(args.rounds, args.count, args.associations) < 1 or \
            args.size_mib < 0:
        fail("--rounds, --count and --associations must be >= 1")
    if args.associations > args.count:
        fail("--associations: at most --count")
    for tool in ("storescu", "storescp", "Orthanc", "openssl"):
        if not shutil.which(tool):
            fail(f"{tool} not found: apt-get install dcmtk orthanc openssl")
    siren = os.path.join(args.build, "gateway", "siren")
    gen_series = os.path.join(args.build, "tests", "gen_series")
    for path in (siren, gen_series):
        if not os.access(path, os.X_OK):
            fail(f"{path} is missing: run 'make build' first")
    kind = data_core.build_type(args.build)
    if kind != "Release":
        log(f"warning: {args.build} is a {kind} build, not Release")

    started = datetime.datetime.now(datetime.timezone.utc)
    loads = [os.getloadavg()[0]]
    inputs = [os.path.abspath(p) for p in
              net.ct_series(gen_series, args.out, args.count)]
    if len(inputs) != args.count:
        fail(f"{len(inputs)} files in {args.out}/ct{args.count}, expected "
             f"{args.count}: rm -rf it to regenerate")
    input_bytes = sum(os.path.getsize(p) for p in inputs)
    work = os.path.abspath(os.path.join(args.out, "scratch-ingest"))
    data_core.remove_folder(work)
    os.makedirs(work)
    ctx = Context(args, work)
    try:
        shim = net.shim_path(args.out)
        storescps = tls.servers(ctx.siren, shim, ctx.pki)[1:]
        runs = {
            "gateway": lambda v: run_gateway(ctx, inputs, [inputs],
                                             "gateway", v),
            "Orthanc": lambda v: run_orthanc(ctx, inputs, [inputs],
                                             "orthanc", v),
        }
        for server in storescps:
            runs[server.name] = (lambda s: lambda v: run_storescp(
                ctx, s, inputs, [inputs], s.name, v))(server)
        order = list(runs)
        res = {"order": order}
        log("ingest: warm-up")
        for name in order:
            r = runs[name](True)
            log(f"ingest: warm-up {name}: ack {r['ack']:.2f}s" +
                (f", delivered {r['delivered']:.2f}s" if "delivered" in r
                 else ""))
        for name in order:
            res[name] = []
        for round_index in range(args.rounds):
            shift = round_index % len(order)
            for name in order[shift:] + order[:shift]:
                res[name].append(runs[name](False))
            loads.append(os.getloadavg()[0])
            log(f"ingest: round {round_index + 1}/{args.rounds}: " +
                ", ".join(f"{n} {res[n][-1]['ack']:.2f}s" +
                          (f"/{res[n][-1]['delivered']:.2f}s"
                           if "delivered" in res[n][-1] else "")
                          for n in order) +
                f" (load {loads[-1]:.1f})")

        mem = []
        slices = net.split(inputs, args.associations)
        label = (f"{args.associations} TLS associations at once, "
                 f"{len(slices[-1])}-{len(slices[0])} instances each")
        many = []
        for i in range(MEM_ROUNDS):
            many.append(run_gateway(ctx, inputs, slices, "gateway-many",
                                    verify=(i == 0)))
            loads.append(os.getloadavg()[0])
            log(f"memory: {label}: run {i + 1}/{MEM_ROUNDS}: VmHWM "
                f"{many[-1]['hwm'] / MIB:.1f} MiB, ack "
                f"{many[-1]['ack']:.2f}s, delivered "
                f"{many[-1]['delivered']:.2f}s")
        mem.append((label, many))
        mem.append(("1 association, the CT series (the ingest runs above)",
                    res["gateway"]))
        large = large_instance(gen_series, args.out, args.size_mib) \
            if args.size_mib else None
        big, big_direct = [], []
        if large:
            size = os.path.getsize(large)
            for i in range(LARGE_ROUNDS):
                r = run_gateway(ctx, [large], [[large]], "gateway-large")
                if r["size"] < size - MIB:
                    fail(f"large instance: Orthanc stored {r['size']} "
                         f"bytes, sent {size}")
                big.append(r)
                d = run_orthanc(ctx, [large], [[large]], "orthanc-large")
                big_direct.append(d)
                loads.append(os.getloadavg()[0])
                log(f"memory: large instance: run {i + 1}/{LARGE_ROUNDS}: "
                    f"VmHWM {r['hwm'] / MIB:.1f} MiB, ack {r['ack']:.2f}s, "
                    f"delivered {r['delivered']:.2f}s; straight to Orthanc "
                    f"ack {d['ack']:.2f}s, delivered {d['delivered']:.2f}s")
        frames = args.size_mib * MIB // data_core.FRAME_BYTES
        mem.append((f"1 instance, {args.size_mib} MiB of pixel data "
                    f"(Enhanced CT, {frames} frames)", big))
        mem.append(("the same instance straight to Orthanc over DICOM-TLS "
                    "(reference, no gateway)", big_direct))
    finally:
        ctx.stop_all()
    shutil.rmtree(work, ignore_errors=True)
    ended = datetime.datetime.now(datetime.timezone.utc)
    text = report(res, mem, args, started, input_bytes, loads, ended)
    with open(os.path.join(args.out, "ingest.md"), "w") as f:
        f.write(text)
    print(text, end="")


if __name__ == "__main__":
    main()
