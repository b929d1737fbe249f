#!/usr/bin/python3
"""tls.py - DICOM-TLS: C-STORE SCP throughput and CPU per instance over
TLS, and new TLS connections per second: `siren serve` (its DICOM-TLS
listener) against DCMTK's storescp +tls, in one run. Started by
bench/run.sh (`bench/run.sh tls` runs only this); see docs/PERFORMANCE.md
for how to read it. The method, the helpers and the plain servers are
bench/net.py's; only the TLS parts are here.

PKI: tests/integration/pki.py makes a throwaway one into OUT/pki-tls on
every run (RSA 2048 leaves, RSA 3072 root and intermediate). Both servers
present server-chain.pem (leaf + intermediate) with server.key, trust
ca-bundle.pem (root + intermediate) for clients and require a client
certificate; every client presents site-a-chain.pem with site-a.key
(CN=site-a.example.org) and trusts ca-bundle.pem. No CRLs on either side.

Servers (as in net.py, each writing every instance into a fresh folder):
  SIREN           siren serve --dir D --tls-port PORT --bind 127.0.0.1
                  --tls-cert server-chain.pem --tls-key server.key
                  --sites-ca ca-bundle.pem
                  --site 'site-a|cn:site-a.example.org|SITEA'
                  (profile bcp195, the default: TLS 1.2/1.3, ECDHE, AEAD
                  only, server preference; no session resumption)
  storescp        storescp --fork -dhl -pdu 131072 +tls server.key
                  server-chain.pem +py +cf ca-bundle.pem -rc -od D PORT
                  (+py: DCMTK's non-downgrading BCP 195 profile, its
                  default; -rc: a client certificate is required and
                  verified, its default, given explicitly)
  storescp+fsync  the same with net.py's fsync shim (LD_PRELOAD)
The senders are storescu -aet SITEA +tls site-a.key site-a-chain.pem +py
+cf ca-bundle.pem (SITEA: the calling AE title SIREN binds to the site's
certificate). TCP_NODELAY as in net.py: SIREN sets it, the DCMTK tools
get TCP_NODELAY=1 in their environment.

Part 1, C-STORE over TLS: net.py's scenarios and method unchanged (1 and
N storescu senders on the CT series, a fresh server per run, warm-up runs
that check the pixel data, rounds in rotating order, CPU of the server and
what it forks through the reaper).

Part 2, new connections per second: CLIENTS processes of this script
(--connect-loop) each open connections one after another, for SECONDS,
from a common start instant, against a fresh SIREN or storescp (no fsync
variant: nothing is stored). One connection: TCP connect (TCP_NODELAY), a
full TLS handshake with a client certificate (Python's ssl module on the
system OpenSSL; offers TLS 1.2 and 1.3, key share P-256 like storescu;
no session resumption), then A-ASSOCIATE-RQ for Verification, A-ASSOCIATE-AC,
A-RELEASE-RQ, A-RELEASE-RP, close. The association is how the client
knows that the server has verified its certificate: in TLS 1.3 the client
sends its certificate in its last flight and the server answers nothing
at the TLS level, so a handshake alone "completes" at the client before
the server has checked anything. A connection counts only when the
A-ASSOCIATE-AC and the A-RELEASE-RP came back; any failure fails the run.
Rate = connections / (last one's end - start instant); server CPU = its
(and its children's) user + system time from the start instant to its
exit, divided by the connections.

Negotiated parameters: protocol and cipher suite as storescu reports them
(storescu -d, one file, before the warm-up) and as the Python client sees
them; key exchange group, server signature, session tickets and whether
the server names the CAs it accepts from an openssl s_client probe that
offers storescu's groups (P-256 first).
"""

import datetime
import json
import os
import platform
import re
import shutil
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # leave no bench/__pycache__ behind
import data_core  # noqa: E402  (shared helpers, same folder)
import net  # noqa: E402
from data_core import fail, log  # noqa: E402

AE = net.AE                       # called AE title on both servers
CALLING_AE = "SITEA"
SITE = f"site-a|cn:site-a.example.org|{CALLING_AE}"
START_DELAY_S = 1.0               # workers start together after this
CONNECT_TIMEOUT_S = 10
PROBE_GROUPS = "P-256:P-384:P-521"  # storescu's offer starts so
TICKET_WAIT_S = 0.5


# ---- PKI --------------------------------------------------------------------

class Pki:
    """The files of tests/integration/pki.py's output that we use."""

    def __init__(self, folder):
        def path(name):
            return os.path.abspath(os.path.join(folder, name))
        self.ca = path("ca-bundle.pem")
        self.server_chain, self.server_key = (path("server-chain.pem"),
                                              path("server.key"))
        self.client_chain, self.client_key = (path("site-a-chain.pem"),
                                              path("site-a.key"))
        self.client_leaf = path("site-a.pem")


def make_pki(out_dir):
    folder = os.path.join(out_dir, "pki-tls")
    data_core.remove_folder(folder)
    made = subprocess.run([sys.executable, "tests/integration/pki.py",
                           folder], capture_output=True, text=True)
    if made.returncode != 0:
        fail(f"tests/integration/pki.py: {made.stderr.strip()}")
    return Pki(folder)


# ---- servers and senders ----------------------------------------------------

def servers(siren, shim, pki):
    """SIREN, storescp, storescp+fsync on DICOM-TLS. SIREN's TLS port is
    picked here as storescp's (its log says tls_port=, net.Server reads
    port= from the log for the plain listener only)."""
    storescp = ["storescp", "--fork", "-dhl", "-aet", AE,
                "-pdu", str(net.MAX_PDU),
                "+tls", pki.server_key, pki.server_chain, "+py",
                "+cf", pki.ca, "-rc"]
    return [
        net.Server("SIREN", lambda d, p: [
            siren, "serve", "--dir", d, "--tls-port", str(p),
            "--bind", "127.0.0.1", "--aet", AE,
            "--max-pdu", str(net.MAX_PDU),
            "--tls-cert", pki.server_chain, "--tls-key", pki.server_key,
            "--sites-ca", pki.ca, "--site", SITE], port_from_log=False),
        net.Server("storescp", lambda d, p: storescp + ["-od", d, str(p)],
                   port_from_log=False),
        net.Server("storescp+fsync",
                   lambda d, p: ["env", f"LD_PRELOAD={shim}"] + storescp +
                   ["-od", d, str(p)], port_from_log=False),
    ]


def storescu(pki, port, files, debug=False):
    return (["storescu"] + (["-d"] if debug else []) +
            ["-aet", CALLING_AE, "-aec", AE,
             "+tls", pki.client_key, pki.client_chain, "+py", "+cf", pki.ca,
             "127.0.0.1", str(port)] + files)


def send(pki, port, slices):
    """net.send with storescu +tls: one storescu per slice, all at once;
    returns (wall seconds, None) or (None, the first failure)."""
    env = net.dcmtk_env()
    logs = [tempfile.TemporaryFile() for _ in slices]
    started = time.monotonic()
    procs = [subprocess.Popen(storescu(pki, port, files),
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=err, env=env)
             for files, err in zip(slices, logs)]
    failed = None
    for p, err in zip(procs, logs):
        try:
            p.wait(timeout=net.RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        if p.returncode != 0 and failed is None:
            err.seek(0)
            failed = (f"exit status {p.returncode}: " +
                      err.read().decode(errors="replace").strip())
    seconds = time.monotonic() - started
    for err in logs:
        err.close()
    return (None, failed) if failed else (seconds, None)


def run_store(server, pki, inputs, slices, folder, verify=False):
    """net.run_once over TLS: one timed run and its checks; returns
    (seconds, (user, system) CPU seconds of the server during the run)."""
    data_core.remove_folder(folder)
    os.makedirs(folder)
    os.sync()
    log_path = folder + ".log"
    running = server.start(folder, log_path)
    cpu_before = net.proc_cpu_seconds(running.pid)
    seconds, error = send(pki, running.port, slices)
    cpu_total = running.stop()
    if error:
        fail(f"{server.name}: storescu failed: {error}\n"
             f"server log: {net.read_text(log_path)[-2000:]}")
    files = net.received(folder)
    if len(files) != len(inputs):
        fail(f"{server.name}: {len(files)} files in {folder}, sent "
             f"{len(inputs)}")
    small = [p for p in files if os.path.getsize(p) < net.PIXEL_BYTES]
    if small:
        fail(f"{server.name}: {small[0]} has {os.path.getsize(small[0])} "
             f"bytes, less than the pixel data")
    leftovers = [n for n in os.listdir(folder) if n.startswith(".")]
    if leftovers:
        fail(f"{server.name}: left {leftovers[0]} in {folder}")
    if verify:
        want = sorted(net.tail_digest(p) for p in inputs)
        if sorted(net.tail_digest(p) for p in files) != want:
            fail(f"{server.name}: the files in {folder} do not end like the "
                 f"inputs (pixel data differs)")
    data_core.remove_folder(folder)
    os.remove(log_path)
    return seconds, (cpu_total[0] - cpu_before[0],
                     cpu_total[1] - cpu_before[1])


# ---- what each side negotiates ----------------------------------------------

def probe(server, pki, input_file, folder):
    """Starts the server, sends one file with storescu -d and probes it
    with openssl s_client; returns a dict of what was negotiated."""
    data_core.remove_folder(folder)
    os.makedirs(folder)
    log_path = folder + ".log"
    running = server.start(folder, log_path)
    try:
        done = subprocess.run(storescu(pki, running.port, [input_file],
                                       debug=True),
                              capture_output=True, text=True,
                              env=net.dcmtk_env(), timeout=60)
        if done.returncode != 0:
            fail(f"{server.name}: storescu -d failed: {done.stderr[-2000:]}")
        text = done.stdout + done.stderr
        found = {}
        for key, pattern in (("protocol", r"Protocol\s*:\s*(\S+)"),
                             ("cipher", r"Ciphersuite\s*:\s*([^,\n]+)")):
            m = re.search(pattern, text)
            found[key] = m.group(1).strip() if m else "?"
        # stdin stays open a moment so that TLS 1.3 session tickets,
        # sent after the handshake, arrive before s_client closes.
        s_client = subprocess.Popen(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{running.port}",
             "-groups", PROBE_GROUPS, "-cert", pki.client_leaf,
             "-cert_chain", pki.client_chain, "-key", pki.client_key,
             "-CAfile", pki.ca, "-verify_return_error"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        time.sleep(TICKET_WAIT_S)
        brief, _ = s_client.communicate(input="", timeout=60)
        found["tickets"] = brief.count("New Session Ticket arrived")
        for key, label in (("group", "Server Temp Key"),
                           ("signature", "Peer signature type"),
                           ("hash", "Peer signing digest")):
            m = re.search(label + r":\s*(.+)", brief)
            found[key] = m.group(1).strip() if m else "?"
        found["client_ca_names"] = \
            "Acceptable client certificate CA names" in brief
    finally:
        running.stop()
    data_core.remove_folder(folder)
    os.remove(log_path)
    return found


# ---- the connection client (a process of its own: --connect-loop) ----------

VERIFICATION = b"1.2.840.10008.1.1"
IMPLICIT_LE = b"1.2.840.10008.1.2"
APP_CONTEXT = b"1.2.840.10008.3.1.1.1"
IMPLEMENTATION_UID = b"1.2.826.0.1.3680043.9.7433.1"  # any valid UID


def item(item_type, content):
    return struct.pack(">BBH", item_type, 0, len(content)) + content


def pdu(pdu_type, body):
    return struct.pack(">BBI", pdu_type, 0, len(body)) + body


def associate_rq():
    """A-ASSOCIATE-RQ (PS3.8 9.3.2): Verification, implicit VR LE."""
    context = item(0x20, bytes([1, 0, 0, 0]) + item(0x30, VERIFICATION) +
                   item(0x40, IMPLICIT_LE))
    user = item(0x50, item(0x51, struct.pack(">I", 16384)) +
                item(0x52, IMPLEMENTATION_UID) + item(0x55, b"SIREN_BENCH"))
    return pdu(0x01, struct.pack(">HH", 1, 0) + AE.encode().ljust(16) +
               CALLING_AE.encode().ljust(16) + bytes(32) +
               item(0x10, APP_CONTEXT) + context + user)


RELEASE_RQ = pdu(0x05, bytes(4))


def read_exact(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed by the server")
        data += chunk
    return data


def read_pdu_type(sock):
    pdu_type, _, length = struct.unpack(">BBI", read_exact(sock, 6))
    read_exact(sock, length)
    return pdu_type


def client_context(pki):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(pki.ca)
    ctx.load_cert_chain(pki.client_chain, pki.client_key)
    # With OpenSSL 3 this sets the supported groups to P-256 alone, so
    # the key share is P-256 as storescu's and no server needs a
    # HelloRetryRequest (storescp does not take X25519).
    ctx.set_ecdh_curve("prime256v1")
    return ctx


def connect_once(ctx, port, rq):
    """One connection; returns the TLS (version, cipher)."""
    with socket.create_connection(("127.0.0.1", port),
                                  timeout=CONNECT_TIMEOUT_S) as raw:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(rq)
            answer = read_pdu_type(tls)
            if answer != 0x02:
                raise ConnectionError(f"A-ASSOCIATE answered with PDU type "
                                      f"{answer:#04x}, not A-ASSOCIATE-AC")
            tls.sendall(RELEASE_RQ)
            answer = read_pdu_type(tls)
            if answer != 0x06:
                raise ConnectionError(f"A-RELEASE-RQ answered with PDU type "
                                      f"{answer:#04x}, not A-RELEASE-RP")
            return tls.version(), tls.cipher()[0]


def connect_loop_main(pki_dir, port, start, end):
    """Waits for the monotonic instant start, connects one connection
    after another until end; prints a JSON line: count, the instant the
    last one ended, the TLS version and cipher (or the error)."""
    ctx = client_context(Pki(pki_dir))
    rq = associate_rq()
    time.sleep(max(0.0, start - time.monotonic()))
    count, last, version, cipher, error = 0, start, "", "", ""
    try:
        while time.monotonic() < end:
            version, cipher = connect_once(ctx, port, rq)
            count += 1
            last = time.monotonic()
    except (OSError, ssl.SSLError) as e:
        error = f"{type(e).__name__}: {e}"
    print(json.dumps({"count": count, "last": last, "version": version,
                      "cipher": cipher, "error": error}), flush=True)
    sys.exit(1 if error else 0)


def run_connections(server, pki, clients, seconds, folder):
    """One timed run of the connection clients against a fresh server;
    returns (connections, seconds, (user, system) CPU seconds, version,
    cipher)."""
    data_core.remove_folder(folder)
    os.makedirs(folder)
    log_path = folder + ".log"
    running = server.start(folder, log_path)
    start = time.monotonic() + START_DELAY_S
    end = start + seconds
    pki_dir = os.path.dirname(pki.ca)
    workers = [subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--connect-loop",
         pki_dir, str(running.port), repr(start), repr(end)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        for _ in range(clients)]
    time.sleep(max(0.0, start - time.monotonic()))
    cpu_before = net.proc_cpu_seconds(running.pid)
    reports = []
    for w in workers:
        out, _ = w.communicate(timeout=seconds + net.RUN_TIMEOUT_S)
        try:
            reports.append(json.loads(out.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            reports.append({"error": f"no report (exit status "
                                     f"{w.returncode})"})
    cpu_total = running.stop()
    errors = [r["error"] for r in reports if r.get("error")]
    if errors:
        fail(f"{server.name}: a connection failed: {errors[0]}\n"
             f"server log: {net.read_text(log_path)[-2000:]}")
    data_core.remove_folder(folder)
    os.remove(log_path)
    count = sum(r["count"] for r in reports)
    if count == 0:
        fail(f"{server.name}: no connection completed in {seconds} s")
    elapsed = max(r["last"] for r in reports) - start
    return (count, elapsed, (cpu_total[0] - cpu_before[0],
                             cpu_total[1] - cpu_before[1]),
            reports[0]["version"], reports[0]["cipher"])


# ---- reporting --------------------------------------------------------------

def openssl_version():
    return ssl.OPENSSL_VERSION


def report(store, conn, negotiated, args, started, input_bytes, kinds):
    lines = []
    add = lines.append
    add(f"Run {started:%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs "
        f"({data_core.cpu_model()}), Linux {platform.release()}; "
        f"{net.dcmtk_version()}; {openssl_version()}; "
        f"SIREN {data_core.git_revision()}; {args.rounds} rounds; "
        f"`bench/run.sh tls --rounds {args.rounds} --count {args.count} "
        f"--senders {args.senders} --clients {args.clients} "
        f"--seconds {args.seconds:g}`.")
    add("")
    add("C-STORE of the CT series over DICOM-TLS:")
    add("")
    # net.report's tables, without its first line (the plain run's).
    add(net.report(store, args, started, input_bytes).split("\n\n", 1)[1]
        .rstrip("\n"))
    add("")
    ours, theirs = kinds[0].name, kinds[1].name
    add(f"New TLS connections (handshake with client certificate, "
        f"A-ASSOCIATE, A-RELEASE), {args.seconds:g} s a run:")
    add("")
    add(f"| Clients | {ours} conn/s | {theirs} conn/s | {ours}/{theirs} "
        f"rate | {ours} CPU ms/conn | {theirs} CPU ms/conn | "
        f"{theirs}/{ours} CPU |")
    add("|---|---:|---:|---:|---:|---:|---:|")
    for scenario in conn["scenarios"]:
        r = conn[scenario]
        rates = {n: [c / s for c, s in r["runs"][n]] for n in r["runs"]}
        per = {n: [(u * 1000 / c, s * 1000 / c) for (u, s), (c, _) in
                   zip(r["cpu"][n], r["runs"][n])] for n in r["runs"]}
        totals = {n: [u + s for u, s in per[n]] for n in per}
        rate_ratios = [o / t for o, t in zip(rates[ours], rates[theirs])]
        cpu_ratios = [t / o for t, o in zip(totals[theirs], totals[ours])]
        add(f"| {scenario} | {statistics.median(rates[ours]):.0f} | "
            f"{statistics.median(rates[theirs]):.0f} | "
            f"{net.ratio_cell(rate_ratios)} | {net.cpu_cell(per[ours])} | "
            f"{net.cpu_cell(per[theirs])} | {net.ratio_cell(cpu_ratios)} |")
    add("")
    add("Negotiated (storescu -d; Python client; openssl s_client offering "
        f"{PROBE_GROUPS}):")
    add("")
    add("| Server | storescu: protocol, cipher | Python client: protocol, "
        "cipher | key exchange | server signature | session tickets | "
        "client CA names sent |")
    add("|---|---|---|---|---|---|---|")
    for name, n in negotiated.items():
        add(f"| {name} | {n['protocol']}, {n['cipher']} | "
            f"{n.get('py_version', '-')}, {n.get('py_cipher', '-')} | "
            f"{n['group']} | {n['signature']}, {n['hash']} | "
            f"{n['tickets']} | {'yes' if n['client_ca_names'] else 'no'} |")
    return "\n".join(lines) + "\n"


# ---- main -------------------------------------------------------------------

def main():
    parser = data_core.bench_parser(__doc__, 5)
    parser.add_argument("--count", type=int, default=200,
                        help="instances in the CT series")
    parser.add_argument("--senders", type=int, default=8,
                        help="storescu processes in the parallel scenario")
    parser.add_argument("--clients", type=int, default=4,
                        help="connection clients in the parallel scenario")
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="length of one connection run")
    parser.add_argument("--size-mib", type=int,
                        help="data_core.py's option, accepted and ignored so "
                        "that bench/run.sh can pass one set of options")
    args = parser.parse_args()
    if min(args.rounds, args.count, args.senders, args.clients) < 1 or \
            args.seconds <= 0:
        fail("--rounds, --count, --senders and --clients must be >= 1, "
             "--seconds > 0")
    if args.senders > args.count:
        fail("--senders: at most --count")
    for tool in ("storescu", "storescp", "openssl"):
        if not shutil.which(tool):
            fail(f"{tool} not found: apt-get install dcmtk openssl")
    siren = os.path.join(args.build, "gateway", "siren")
    gen_series = os.path.join(args.build, "tests", "gen_series")
    for path in (siren, gen_series):
        if not os.access(path, os.X_OK):
            fail(f"{path} is missing: run 'make build' first")
    kind = data_core.build_type(args.build)
    if kind != "Release":
        log(f"warning: {args.build} is a {kind} build, not Release")

    started = datetime.datetime.now(datetime.timezone.utc)
    inputs = net.ct_series(gen_series, args.out, args.count)
    if len(inputs) != args.count:
        fail(f"{len(inputs)} files in {args.out}/ct{args.count}, expected "
             f"{args.count}: rm -rf it to regenerate")
    input_bytes = sum(os.path.getsize(p) for p in inputs)
    pki = make_pki(args.out)
    kinds = servers(os.path.abspath(siren), net.shim_path(args.out), pki)
    scratch = os.path.join(args.out, "scratch-tls")
    data_core.remove_folder(scratch)
    os.makedirs(scratch)
    folders = {s.name: os.path.abspath(os.path.join(scratch, s.name))
               for s in kinds}

    negotiated = {}
    for server in kinds[:2]:
        negotiated[server.name] = probe(server, pki, inputs[0],
                                        folders[server.name])
        log(f"{server.name} negotiates: {negotiated[server.name]}")

    scenarios = {"1": net.split(inputs, 1),
                 str(args.senders): net.split(inputs, args.senders)}
    store = {"servers": kinds, "scenarios": list(scenarios)}
    for scenario, slices in scenarios.items():
        label = f"store, {scenario} sender{'s' if scenario != '1' else ''}"
        log(f"{label}: warm-up")
        for server in kinds:
            run_store(server, pki, inputs, slices, folders[server.name],
                      verify=True)
        times = {s.name: [] for s in kinds}
        cpu = {s.name: [] for s in kinds}
        for round_index in range(args.rounds):
            shift = round_index % len(kinds)
            for server in kinds[shift:] + kinds[:shift]:
                seconds, cpu_s = run_store(server, pki, inputs, slices,
                                           folders[server.name])
                times[server.name].append(seconds)
                cpu[server.name].append(cpu_s)
            log(f"{label}: round {round_index + 1}/{args.rounds}: " +
                ", ".join(f"{n} {times[n][-1]:.2f}s cpu {sum(cpu[n][-1]):.2f}s"
                          for n in times))
        store[scenario] = {"times": times, "cpu": cpu}

    pair = kinds[:2]  # nothing is stored: no fsync variant
    conn = {"scenarios": ["1", str(args.clients)]}
    for scenario in conn["scenarios"]:
        clients = int(scenario)
        label = f"connections, {clients} client{'s' if clients > 1 else ''}"
        log(f"{label}: warm-up")
        for server in pair:
            _, _, _, version, cipher = run_connections(
                server, pki, clients, min(1.0, args.seconds),
                folders[server.name])
            negotiated[server.name].update(py_version=version,
                                           py_cipher=cipher)
        runs = {s.name: [] for s in pair}
        cpu = {s.name: [] for s in pair}
        for round_index in range(args.rounds):
            shift = round_index % len(pair)
            for server in pair[shift:] + pair[:shift]:
                count, seconds, cpu_s, _, _ = run_connections(
                    server, pki, clients, args.seconds, folders[server.name])
                runs[server.name].append((count, seconds))
                cpu[server.name].append(cpu_s)
            log(f"{label}: round {round_index + 1}/{args.rounds}: " +
                ", ".join(f"{n} {runs[n][-1][0] / runs[n][-1][1]:.0f}/s "
                          f"cpu {sum(cpu[n][-1]) * 1000 / runs[n][-1][0]:.2f}"
                          f" ms" for n in runs))
        conn[scenario] = {"runs": runs, "cpu": cpu}
    shutil.rmtree(scratch, ignore_errors=True)

    text = report(store, conn, negotiated, args, started, input_bytes, kinds)
    with open(os.path.join(args.out, "tls.md"), "w") as f:
        f.write(text)
    print(text, end="")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--connect-loop":
        connect_loop_main(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]),
                          float(sys.argv[5]))
    else:
        main()
