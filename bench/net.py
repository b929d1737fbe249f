#!/usr/bin/python3
"""net.py - C-STORE SCP throughput and CPU per instance: `siren serve`
against DCMTK's storescp, both fed by DCMTK's storescu, in one run.
Started by bench/run.sh (`bench/run.sh net` runs only this); see
docs/PERFORMANCE.md for how to read it.

Servers (each writes every instance as a file into a fresh folder under
OUT/scratch-net/, on the same disk as the inputs):
  SIREN           siren serve --dir D --port 0 --bind 127.0.0.1
                  (fsyncs each file, renames it, fsyncs the folder, then
                  answers Success; a thread per association)
  storescp        storescp --fork -dhl -pdu 131072 -od D PORT
                  (DCMTK; does not fsync; a process per association; -dhl
                  skips its reverse DNS lookup of each peer)
  storescp+fsync  the same, with an LD_PRELOAD shim (FSYNC_SHIM below,
                  built into OUT/) that makes fclose() of a file open for
                  writing fflush and fsync it and fsync its folder.
                  storescp closes each file before it sends the C-STORE
                  response, so this is SIREN's durability at the same point
                  of the exchange. storescp has no fsync option; its
                  -xcr 'sync "#p/#f" "#p"' -xs comes nearest, but runs
                  after the response and costs a fork and two execs (sh,
                  sync) per instance, more CPU than the fsync itself.
Both accept P-DATA PDUs of up to 128 KiB (SIREN's default --max-pdu;
storescp's default is 16 KiB, so -pdu raises it to match). The DCMTK
tools run with TCP_NODELAY=1 in the environment, which makes DCMTK 3.6.x
set TCP_NODELAY on its sockets (off by default since 3.6.2); SIREN always
sets it.

Scenarios, on the CT series of COUNT instances (tests/tools/gen_series,
shared with data_core.py in OUT/ctCOUNT):
  1 sender    one storescu sends all files on one association
  N senders   N storescu processes at once, each sending its own 1/N of
              the files (contiguous slices) on one association each

Method: for every run a fresh server starts (untimed) on an empty folder,
after sync(); the wall time runs from starting the storescu processes to
the last one exiting; then the server is stopped. A run counts only if
every storescu exits 0 and the folder holds COUNT files of at least the
pixel data's size (a failing run must not look like a fast one); the
warm-up run of each server also checks that each file's last 64 KiB
(pixel data) matches an input's. Rounds run the servers in an order that
rotates from round to round. A time ratio is storescp's time / SIREN's
time in the same round: above 1 means SIREN is faster.

CPU: the server runs under a reaper (this script with --reap, a child
subreaper), so the time of processes the server forks (storescp --fork
children) is counted even if the server never waits for them. CPU of a
run = user and system time of the server and everything it forked
(getrusage(RUSAGE_CHILDREN) in the reaper after the server exits) minus
the server's own from /proc/PID/stat just before the senders start
(start-up, e.g. DCMTK loading its dictionary, is not counted), divided by
the instances received. Kernel work done on a process's behalf by other
threads (writeback of files nobody fsyncs, by the kernel's flusher) is
not in any server's time.
"""

import ctypes
import datetime
import hashlib
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # leave no bench/__pycache__ behind
import data_core  # noqa: E402  (shared helpers, same folder)
from data_core import fail, log

MIB = 1 << 20
PIXEL_BYTES = 512 * 512 * 2       # per CT instance from gen_series
MAX_PDU = 131072                  # SIREN's default --max-pdu
AE = "SIREN"
START_TIMEOUT_S = 20
RUN_TIMEOUT_S = 600


# ---- the reaper (a process of its own: net.py --reap LOG -- ARGV) ---------

def reap_main(log_path, argv):
    """Runs ARGV as a child with stderr to LOG, as a child subreaper;
    prints the child's pid, then, when everything it started has exited,
    the user and system CPU seconds of all of them. SIGTERM is passed on
    to the child."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_child_subreaper = 36
    if libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) != 0:
        fail("prctl(PR_SET_CHILD_SUBREAPER) failed")
    with open(log_path, "wb") as err, open(os.devnull, "wb") as null:
        pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=[
            (os.POSIX_SPAWN_DUP2, null.fileno(), 0),
            (os.POSIX_SPAWN_DUP2, null.fileno(), 1),
            (os.POSIX_SPAWN_DUP2, err.fileno(), 2)])
    print(pid, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGTERM))
    status = 0
    while True:
        try:
            done, st = os.wait()
        except ChildProcessError:
            break
        if done == pid:
            status = st
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"{usage.ru_utime:.6f} {usage.ru_stime:.6f}", flush=True)
    if os.WIFSIGNALED(status):
        code = 128 + os.WTERMSIG(status)
        sys.exit(0 if os.WTERMSIG(status) == signal.SIGTERM else code)
    sys.exit(os.WEXITSTATUS(status))


# ---- servers ----------------------------------------------------------------

def dcmtk_env():
    return dict(os.environ, TCP_NODELAY="1")


def proc_cpu_seconds(pid):
    """(utime, stime) of a live process (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def listening(port):
    """Whether some socket listens on TCP port (IPv4 or IPv6)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[3] == "0A" and \
                            int(cols[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except OSError:
            pass
    return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One kind of server; start() returns a Running one."""

    def __init__(self, name, make_argv, port_from_log):
        self.name = name
        self.make_argv = make_argv    # (folder, port) -> argv
        self.port_from_log = port_from_log

    def start(self, folder, log_path):
        """Starts the server and waits until it listens. A port we pick
        (storescp) can be taken by someone else before the server binds
        it: then a few more tries with other ports."""
        for _ in range(5):
            running = self.try_start(folder, log_path)
            if running:
                return running
        fail(f"{self.name} exited at start: {read_text(log_path)}")

    def try_start(self, folder, log_path):
        port = 0 if self.port_from_log else free_port()
        argv = self.make_argv(folder, port)
        reaper = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--reap", log_path,
             "--"] + argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
            text=True, env=dcmtk_env())
        pid = int(reaper.stdout.readline())
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if reaper.poll() is not None:
                reaper.communicate()
                if self.port_from_log:
                    fail(f"{self.name} exited at start: "
                         f"{read_text(log_path)}")
                return None
            if self.port_from_log:
                found = re.search(r"serve\.listening port=(\d+)",
                                  read_text(log_path))
                if found:
                    port = int(found.group(1))
                    break
            elif listening(port):
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                reaper.kill()
                fail(f"{self.name} did not listen within {START_TIMEOUT_S} s:"
                     f" {read_text(log_path)}")
            time.sleep(0.01)
        return Running(self, reaper, pid, port, log_path)


class Running:
    def __init__(self, server, reaper, pid, port, log_path):
        self.server, self.reaper, self.pid = server, reaper, pid
        self.port, self.log_path = port, log_path

    def stop(self):
        """Stops the server; returns (user, system) CPU seconds of it and
        its descendants over their whole life."""
        self.reaper.send_signal(signal.SIGTERM)
        try:
            out, _ = self.reaper.communicate(timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.reaper.kill()
            fail(f"{self.server.name} did not stop on SIGTERM")
        if self.reaper.returncode != 0 or not out.strip():
            fail(f"{self.server.name} ended with status "
                 f"{self.reaper.returncode}: {read_text(self.log_path)}")
        user, system = out.split()[-2:]
        return float(user), float(system)


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


# Built by shim_path(); made for storescp, which writes each received
# instance through stdio (OFFile) and closes it before answering.
FSYNC_SHIM = r"""/* fsync_on_close.so - made by bench/net.py, not part of the
 * product: fclose() of a regular file open for writing first flushes and
 * fsyncs it, then fsyncs its folder. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int fclose(FILE *f)
{
    static int (*real_fclose)(FILE *);
    if (!real_fclose)
        real_fclose = (int (*)(FILE *))dlsym(RTLD_NEXT, "fclose");
    int fd = f ? fileno(f) : -1;
    int flags = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
    struct stat st;
    if (flags >= 0 && (flags & O_ACCMODE) != O_RDONLY &&
        fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        fflush(f) == 0 && fsync(fd) == 0) {
        char link[64], path[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t len = readlink(link, path, sizeof path - 1);
        if (len > 0) {
            path[len] = '\0';
            int dir = open(dirname(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dir >= 0) {
                fsync(dir);
                close(dir);
            }
        }
    }
    return real_fclose(f);
}
"""


def shim_path(out_dir):
    """OUT/fsync_on_close.so, (re)built when FSYNC_SHIM changes."""
    source = os.path.join(out_dir, "fsync_on_close.c")
    library = os.path.join(out_dir, "fsync_on_close.so")
    if read_text(source) != FSYNC_SHIM or not os.path.exists(library):
        with open(source, "w") as f:
            f.write(FSYNC_SHIM)
        cc = os.environ.get("CC", "cc")
        built = subprocess.run([cc, "-O2", "-std=c11", "-Wall", "-Wextra",
                                "-shared", "-fPIC", "-o", library, source,
                                "-ldl"], capture_output=True, text=True)
        if built.returncode != 0:
            fail(f"building {library}: {built.stderr.strip()}")
    return os.path.abspath(library)


def servers(siren, shim):
    storescp = ["storescp", "--fork", "-dhl", "-aet", AE,
                "-pdu", str(MAX_PDU)]
    return [
        Server("SIREN", lambda d, p: [siren, "serve", "--dir", d, "--port",
                                     str(p), "--bind", "127.0.0.1",
                                     "--aet", AE, "--max-pdu", str(MAX_PDU)],
               port_from_log=True),
        Server("storescp", lambda d, p: storescp + ["-od", d, str(p)],
               port_from_log=False),
        # env execs storescp in the same process: the pid stays.
        Server("storescp+fsync",
               lambda d, p: ["env", f"LD_PRELOAD={shim}"] + storescp +
               ["-od", d, str(p)], port_from_log=False),
    ]


# ---- one run ----------------------------------------------------------------

def send(port, slices):
    """Runs one storescu per slice of files, all at once; returns (wall
    seconds from the first start to the last exit, None), or (None, the
    first failing storescu's messages)."""
    env = dcmtk_env()
    logs = [tempfile.TemporaryFile() for _ in slices]
    started = time.monotonic()
    procs = [subprocess.Popen(["storescu", "-aec", AE, "127.0.0.1", str(port)]
                              + files, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=err, env=env)
             for files, err in zip(slices, logs)]
    failed = None
    for p, err in zip(procs, logs):
        try:
            p.wait(timeout=RUN_TIMEOUT_S)
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


def received(folder):
    """The finished files in folder (SIREN's .incoming-* temporaries and
    any other dot file excluded)."""
    return sorted(os.path.join(folder, n) for n in os.listdir(folder)
                  if not n.startswith("."))


def tail_digest(path):
    return hashlib.sha1(data_core.tail(path)).hexdigest()


def run_once(server, inputs, slices, folder, verify=False):
    """One timed run; returns (seconds, (user, system) CPU seconds of the
    server during the run)."""
    data_core.remove_folder(folder)
    os.makedirs(folder)
    os.sync()
    log_path = folder + ".log"
    running = server.start(folder, log_path)
    cpu_before = proc_cpu_seconds(running.pid)
    seconds, error = send(running.port, slices)
    cpu_total = running.stop()
    if error:
        fail(f"{server.name}: storescu failed: {error}\n"
             f"server log: {read_text(log_path)[-2000:]}")
    files = received(folder)
    if len(files) != len(inputs):
        fail(f"{server.name}: {len(files)} files in {folder}, sent "
             f"{len(inputs)}")
    small = [p for p in files if os.path.getsize(p) < PIXEL_BYTES]
    if small:
        fail(f"{server.name}: {small[0]} has {os.path.getsize(small[0])} "
             f"bytes, less than the pixel data")
    leftovers = [n for n in os.listdir(folder) if n.startswith(".")]
    if leftovers:
        fail(f"{server.name}: left {leftovers[0]} in {folder}")
    if verify:
        want = sorted(tail_digest(p) for p in inputs)
        if sorted(tail_digest(p) for p in files) != want:
            fail(f"{server.name}: the files in {folder} do not end like the "
                 f"inputs (pixel data differs)")
    data_core.remove_folder(folder)
    os.remove(log_path)
    return seconds, (cpu_total[0] - cpu_before[0],
                     cpu_total[1] - cpu_before[1])


# ---- data -------------------------------------------------------------------

def ct_series(gen_series, out_dir, count):
    """The series data_core.py uses (same folder), made if missing."""
    os.makedirs(out_dir, exist_ok=True)
    ct_dir = os.path.join(out_dir, f"ct{count}")
    if not os.path.isdir(ct_dir):
        need = 2 * count * PIXEL_BYTES + 256 * MIB
        free = shutil.disk_usage(out_dir).free
        if free < need:
            fail(f"{out_dir}: {free // MIB} MiB free, {need // MIB} MiB "
                 f"needed")
        partial = ct_dir + ".partial"
        data_core.remove_folder(partial)
        log(f"generating {count} CT instances into {ct_dir}")
        subprocess.run([gen_series, "ct", partial, str(count)], check=True)
        os.rename(partial, ct_dir)
    return sorted(os.path.join(ct_dir, n) for n in os.listdir(ct_dir)
                  if n.endswith(".dcm"))


def split(files, parts):
    """parts contiguous slices of files, sizes differing by at most one."""
    size, extra = divmod(len(files), parts)
    slices, start = [], 0
    for i in range(parts):
        end = start + size + (i < extra)
        slices.append(files[start:end])
        start = end
    return slices


# ---- reporting --------------------------------------------------------------

def dcmtk_version():
    try:
        out = subprocess.run(["storescp", "--version"], capture_output=True,
                             text=True).stdout
        return out.split("\n")[0].strip().strip("$").strip()
    except OSError:
        return "unknown"


def ratio_cell(values):
    return (f"**{statistics.median(values):.2f}** "
            f"({min(values):.2f}-{max(values):.2f})")


def cpu_cell(rounds):
    """The (user, system) ms of the median round by total:
    "TOTAL (USER + SYS)"."""
    user, system = sorted(rounds, key=sum)[(len(rounds) - 1) // 2]
    return f"{user + system:.2f} ({user:.2f} + {system:.2f})"


def report(results, args, started, input_bytes):
    ours, theirs, theirs_fsync = (s.name for s in results["servers"])
    lines = []
    add = lines.append
    add(f"Run {started:%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs "
        f"({data_core.cpu_model()}), Linux {platform.release()}; "
        f"{dcmtk_version()}; SIREN {data_core.git_revision()}; "
        f"{args.rounds} rounds; `bench/run.sh net --rounds {args.rounds} "
        f"--count {args.count} --senders {args.senders}`.")
    add("")
    add(f"| Senders | {ours} inst/s | {ours} MiB/s | {theirs} inst/s | "
        f"{theirs} MiB/s | {theirs}/{ours} time | {theirs_fsync} inst/s | "
        f"{theirs_fsync}/{ours} time |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|")
    for scenario in results["scenarios"]:
        r = results[scenario]
        base = r["times"][ours]
        row = [scenario]
        for name in (ours, theirs, theirs_fsync):
            median_s = statistics.median(r["times"][name])
            row.append(f"{args.count / median_s:.0f}")
            if name != theirs_fsync:
                row.append(f"{input_bytes / MIB / median_s:.0f}")
            if name != ours:
                row.append(ratio_cell([t / o for t, o in
                                       zip(r["times"][name], base)]))
        add("| " + " | ".join(row) + " |")
    add("")
    add(f"| Senders | {ours} CPU ms/inst | {theirs} CPU ms/inst | "
        f"{theirs}/{ours} CPU | {theirs_fsync} CPU ms/inst |")
    add("|---|---:|---:|---:|---:|")
    for scenario in results["scenarios"]:
        r = results[scenario]
        per = {n: [(u * 1000 / args.count, s * 1000 / args.count)
                   for u, s in r["cpu"][n]] for n in r["cpu"]}
        totals = {n: [u + s for u, s in per[n]] for n in per}
        ratios = [t / o for t, o in zip(totals[theirs], totals[ours])]
        add(f"| {scenario} | {cpu_cell(per[ours])} | "
            f"{cpu_cell(per[theirs])} | {ratio_cell(ratios)} | "
            f"{cpu_cell(per[theirs_fsync])} |")
    return "\n".join(lines) + "\n"


# ---- main -------------------------------------------------------------------

def main():
    parser = data_core.bench_parser(__doc__, 5)
    parser.add_argument("--count", type=int, default=200,
                        help="instances in the CT series")
    parser.add_argument("--senders", type=int, default=8,
                        help="storescu processes in the parallel scenario")
    parser.add_argument("--size-mib", type=int,
                        help="data_core.py's option, accepted and ignored so "
                        "that bench/run.sh can pass one set of options")
    args = parser.parse_args()
    if args.rounds < 1 or args.count < 1 or args.senders < 1:
        fail("--rounds, --count and --senders must be >= 1")
    if args.senders > args.count:
        fail("--senders: at most --count")
    for tool in ("storescu", "storescp"):
        if not shutil.which(tool):
            fail(f"{tool} not found: apt-get install dcmtk")
    siren = os.path.join(args.build, "gateway", "siren")
    gen_series = os.path.join(args.build, "tests", "gen_series")
    for path in (siren, gen_series):
        if not os.access(path, os.X_OK):
            fail(f"{path} is missing: run 'make build' first")
    kind = data_core.build_type(args.build)
    if kind != "Release":
        log(f"warning: {args.build} is a {kind} build, not Release")

    started = datetime.datetime.now(datetime.timezone.utc)
    inputs = ct_series(gen_series, args.out, args.count)
    if len(inputs) != args.count:
        fail(f"{len(inputs)} files in {args.out}/ct{args.count}, expected "
             f"{args.count}: rm -rf it to regenerate")
    input_bytes = sum(os.path.getsize(p) for p in inputs)
    kinds = servers(os.path.abspath(siren), shim_path(args.out))
    scratch = os.path.join(args.out, "scratch-net")
    data_core.remove_folder(scratch)
    os.makedirs(scratch)
    folders = {s.name: os.path.abspath(os.path.join(scratch, s.name))
               for s in kinds}
    scenarios = {"1": split(inputs, 1),
                 str(args.senders): split(inputs, args.senders)}
    results = {"servers": kinds, "scenarios": list(scenarios)}

    for scenario, slices in scenarios.items():
        label = f"{scenario} sender{'s' if scenario != '1' else ''}"
        log(f"{label}: warm-up")
        for server in kinds:
            run_once(server, inputs, slices, folders[server.name],
                     verify=True)
        times = {s.name: [] for s in kinds}
        cpu = {s.name: [] for s in kinds}
        for round_index in range(args.rounds):
            shift = round_index % len(kinds)
            for server in kinds[shift:] + kinds[:shift]:
                seconds, cpu_s = run_once(server, inputs, slices,
                                          folders[server.name])
                times[server.name].append(seconds)
                cpu[server.name].append(cpu_s)
            log(f"{label}: round {round_index + 1}/{args.rounds}: " +
                ", ".join(f"{n} {times[n][-1]:.2f}s cpu {sum(cpu[n][-1]):.2f}s"
                          for n in times))
        results[scenario] = {"times": times, "cpu": cpu}
    shutil.rmtree(scratch, ignore_errors=True)

    text = report(results, args, started, input_bytes)
    with open(os.path.join(args.out, "net.md"), "w") as f:
        f.write(text)
    print(text, end="")


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--reap" and sys.argv[3] == "--":
        reap_main(sys.argv[2], sys.argv[4:])
    else:
        main()
