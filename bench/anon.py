#!/usr/bin/python3
"""anon.py - de-identification throughput: `siren apply` under
examples/policies/basic.policy against DCMTK's dcmodify and GDCM's
gdcmanon doing a comparable job on the same CT series, in one run.
Started by bench/run.sh (`bench/run.sh anon` runs only this); see
docs/PERFORMANCE.md for how to read it.

Input: the CT series of COUNT instances (tests/tools/gen_series, shared
with data_core.py in OUT/ctCOUNT: 512x512x16 bit, a header of about 90
attributes with fake patient, study, staff and institution data, two
nested sequences and a private block of 3 elements). Each tool is ONE
process for the whole series, single-threaded:

  SIREN           siren apply --policy examples/policies/basic.policy -q
                  -o D INPUT_DIR   (key: a fresh 32-byte one, made with
                  openssl rand -hex 32, in SIREN_PSEUDONYM_KEY)
  dcmodify        dcmodify @ARGS, ARGS holding -nb -imt, the edits of
                  dcmtk_edits() and the COUNT files; dcmodify rewrites
                  files in place, so before each run (untimed) the inputs
                  are copied afresh into D and sync()ed (on disk, as real
                  inputs are): the copy is excluded from the time, not
                  subtracted from it
  dcmodify cached the same, with copies made after the sync(): still in
                  the page cache, never on disk, so that rewriting them
                  frees no disk blocks (which on a file system mounted
                  with `discard` waits for the disk: see PERFORMANCE.md)
  gdcmanon        gdcmanon --dumb (the edits of gdcm_edits()) -i INPUT_DIR
                  -o D
  gdcmanon -e     gdcmanon -e -c CERT -i INPUT_DIR -o D: GDCM's own PS3.15
                  Basic Profile, which needs a certificate to encrypt the
                  original values into the Encrypted Attributes Sequence
                  (a throwaway self-signed RSA 2048 one, made per run)

The edits of dcmodify and gdcmanon --dumb are what SIREN's basic policy
does to these inputs (listed below: REMOVE, EMPTY, REPLACE, NEW_UIDS,
INSERT), as far as each tool can: the Study, Series and Frame of
Reference UIDs get one new value each for the whole series (the series
stays one series; SIREN's are keyed HMACs); dcmodify gives every file a
new SOP Instance UID (-gin), gdcmanon --dumb cannot (a value for each
file would need a process for each file) and keeps it.

Method: a warm-up run of each tool (inputs in the page cache), whose
outputs are checked: COUNT files, each ending in the pixel data of an
input, and for the first instance the number of attributes that SIREN
changes or removes that the tool left as they were ("left", in the
table). Then ROUNDS rounds; each runs every tool once, in an order that
rotates from round to round. Before each run the output folder is made
(or filled with the copies, for dcmodify) and sync() is called (for
dcmodify cached, before the copy); after it the folder is deleted; none
of that is timed. bench/runner.c runs each
command: wall time of the process and its peak RSS. A speed ratio is the
tool's time / SIREN's time in the same round: the median of the rounds'
ratios (with their range); above 1 means SIREN is faster.
"""

import datetime
import hashlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import uuid

sys.dont_write_bytecode = True  # leave no bench/__pycache__ behind
import data_core  # noqa: E402  (shared helpers, same folder)
from data_core import fail, log  # noqa: E402
from net import ct_series  # noqa: E402

MIB = 1 << 20
POLICY = "examples/policies/basic.policy"

# ---- the job: what basic.policy does to a gen_series CT instance ----------
# (the warm-up compares each tool's output with SIREN's: targets_from_siren,
# left_as_input)

# Removed, with everything nested in them.
REMOVE = ["0008,0081", "0008,1030", "0008,103E", "0008,1040", "0008,1050",
          "0010,0021", "0010,1002", "0010,1010", "0010,1020", "0010,1030",
          "0010,1040", "0010,2154", "0010,21B0", "0020,4000", "0040,0244",
          "0040,0245", "0040,0253", "0040,0275"]
# The private block (SIREN removes every private attribute).
PRIVATE_GROUP, PRIVATE_CREATOR = "0009", "SIREN SYNTHETIC PHI"
PRIVATE_ELEMENTS = ["1001", "1002", "1003"]
# Kept with an empty value.
EMPTY = ["0008,0020", "0008,0022", "0008,0030", "0008,0032", "0008,0050",
         "0008,0090", "0010,0010", "0010,0030", "0010,0040", "0020,0010"]
# Given a dummy value (the Patient ID: SIREN's is a keyed hash).
REPLACE = [("0008,0012", "19000101"), ("0008,0013", "000000"),
           ("0008,0021", "19000101"), ("0008,0023", "19000101"),
           ("0008,0031", "000000"), ("0008,0033", "000000"),
           ("0008,0080", "ANONYMIZED"), ("0008,1010", "ANONYMIZED"),
           ("0008,1070", "ANONYMIZED"), ("0018,1000", "ANONYMIZED"),
           ("0018,1030", "ANONYMIZED"), ("0010,0020", "ANON000000000001")]
# Study, Series, Frame of Reference: one new UID each for the series.
NEW_UIDS = ["0020,000D", "0020,000E", "0020,0052"]
# Added (de-identification method, as PS3.15 asks).
INSERT = [("0012,0062", "YES"),
          ("0012,0063", "Basic Application Confidentiality Profile"),
          ("0028,0303", "REMOVED")]


def dcmtk_edits(uids):
    """dcmodify's options, one per line of its @ARGS file (DCMTK splits
    at white space outside double quotes)."""
    lines = ["-nb", "-imt"]
    lines += [f"-ea ({tag})" for tag in REMOVE]
    lines.append("-ep")                        # all private attributes
    lines += [f"-ma ({tag})=" for tag in EMPTY]
    lines += [f'-ma "({tag})={value}"' for tag, value in REPLACE]
    lines += [f"-m ({tag})={uid}" for tag, uid in zip(NEW_UIDS, uids)]
    lines.append("-gin")                       # SOP Instance UID, file meta
    lines += [f'-i "({tag})={value}"' for tag, value in INSERT]
    lines.append("-i (0012,0064)[0].(0008,0100)=113100")
    lines.append("-i (0012,0064)[0].(0008,0102)=DCM")
    lines.append('-i "(0012,0064)[0].(0008,0104)=Basic Application '
                 'Confidentiality Profile"')
    return lines


def gdcm_edits(uids):
    """gdcmanon --dumb's options (it cannot make a sequence: no code
    sequence; nor a UID per file)."""
    argv = []
    for tag in REMOVE:
        argv += ["--remove", tag]
    for element in PRIVATE_ELEMENTS:
        argv += ["--remove", f"{PRIVATE_GROUP},{element},{PRIVATE_CREATOR}"]
    argv += ["--remove", f"{PRIVATE_GROUP},0010"]
    for tag in EMPTY:
        argv += ["--empty", tag]
    for tag, value in REPLACE + list(zip(NEW_UIDS, uids)) + INSERT:
        argv += ["--replace", f"{tag}={value}"]
    return argv


# ---- tools ------------------------------------------------------------------

class Tool:
    def __init__(self, name, argv, copies=None):
        self.name = name
        self.argv = argv        # with OUT standing for the output folder
        # Works in place on copies of the inputs: "synced" (copied, then
        # sync()), "cached" (sync(), then copied); None: no copies.
        self.copies = copies

    def command(self, folder):
        return [folder if a == "OUT" else a for a in self.argv]


def run_tool(runner, tool, folder, inputs, env):
    """One timed run into a fresh folder: (seconds, peak RSS bytes). The
    folder is left for the caller."""
    data_core.remove_folder(folder)
    os.makedirs(folder)
    if tool.copies == "cached":
        os.sync()
    if tool.copies:
        for path in inputs:
            shutil.copyfile(path, os.path.join(folder, os.path.basename(path)))
    if tool.copies != "cached":
        os.sync()
    line = "\t".join(tool.command(folder)) + "\n"
    done = subprocess.run([runner], input=line, capture_output=True,
                          text=True, env=env)
    if done.returncode != 0:
        fail(f"{tool.name}: {done.stderr.strip()}")
    seconds, rss = done.stdout.split()
    return float(seconds), int(rss)


def make_secrets(folder):
    """The pseudonym key for SIREN and the certificate for gdcmanon -e,
    fresh for this run."""
    key = os.path.join(folder, "pseudonym.key")
    old = os.umask(0o077)
    try:
        with open(key, "w") as f:
            subprocess.run(["openssl", "rand", "-hex", "32"], stdout=f,
                           check=True)
    finally:
        os.umask(old)
    cert = os.path.join(folder, "gdcm-cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", os.path.join(folder, "gdcm-key.pem"),
                    "-out", cert, "-days", "1", "-subj", "/CN=siren-bench"],
                   check=True, capture_output=True)
    return key, cert


# ---- checks -----------------------------------------------------------------

def tail_digest(path):
    return hashlib.sha1(data_core.tail(path)).hexdigest()


def outputs_of(folder):
    return sorted(os.path.join(folder, n) for n in os.listdir(folder)
                  if n.endswith(".dcm"))


def check_outputs(tool, folder, inputs, input_tails):
    """COUNT files, each ending as one of the inputs (the pixel data is
    last): a failing run must not look like a fast one."""
    outputs = outputs_of(folder)
    if len(outputs) != len(inputs):
        fail(f"{tool.name}: {len(outputs)} files in {folder}, expected "
             f"{len(inputs)}")
    tails = sorted(tail_digest(p) for p in outputs)
    if tails != input_tails:
        fail(f"{tool.name}: outputs in {folder} do not end with the inputs' "
             f"pixel data")


def flatten(ds, prefix=()):
    """{tag path: (VR, value text)} of every element at every depth but
    the pixel data."""
    elements = {}
    for el in ds:
        path = prefix + (int(el.tag),)
        if el.VR == "SQ":
            elements[path] = ("SQ", len(el.value))
            for index, item in enumerate(el.value):
                elements.update(flatten(item, path + (index,)))
        elif el.tag != 0x7FE00010:
            elements[path] = (el.VR, str(el.value))
    return elements


def first_instance(folder):
    """The flattened output of the instance numbered 1."""
    import pydicom
    for path in outputs_of(folder):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if str(ds.get("InstanceNumber", "")) == "1":
            return flatten(ds)
    fail(f"{folder}: no instance numbered 1")


def path_name(path):
    return "".join(f"{'.' if i else ''}({t >> 16:04X},{t & 0xFFFF:04X})"
                   if i % 2 == 0 else f"[{t}]" for i, t in enumerate(path))


def targets_from_siren(original, siren):
    """The elements SIREN removes or changes (Specific Character Set
    aside: SIREN writes UTF-8, nothing identifying)."""
    return {path: value for path, value in original.items()
            if siren.get(path) != value and path[0] != 0x00080005}


def left_as_input(targets, output):
    """Which targets the output still holds unchanged, non-empty."""
    return sorted(path for path, value in targets.items()
                  if output.get(path) == value and value[1] not in ("", 0))


# ---- reporting --------------------------------------------------------------

def tool_version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True)
        first = (out.stdout or out.stderr).split("\n")[0]
        return first.replace("$Date$", "").strip().strip("$").strip()
    except OSError:
        return "unknown"


def report(results, args, started, input_bytes):
    tools = results["tools"]
    ours = tools[0].name
    times = results["times"]
    lines = []
    add = lines.append
    add(f"Run {started:%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs "
        f"({data_core.cpu_model()}), Linux {platform.release()}; "
        f"{tool_version(['dcmodify', '--version'])}; "
        f"{tool_version(['gdcmanon', '--version'])}; "
        f"SIREN {data_core.git_revision()}; {args.rounds} rounds; "
        f"`bench/run.sh anon --rounds {args.rounds} --count {args.count}`.")
    add("")
    add(f"| Tool | ms/inst | inst/s | MiB/s | {ours}/tool speed | "
        f"peak RSS | left of {results['target_count']} |")
    add("|---|---:|---:|---:|---:|---:|---:|")
    for tool in tools:
        median_s = statistics.median(times[tool.name])
        if tool.name == ours:
            ratio = "1"
        else:
            ratios = [t / o for t, o in zip(times[tool.name], times[ours])]
            ratio = (f"**{statistics.median(ratios):.2f}** "
                     f"({min(ratios):.2f}-{max(ratios):.2f})")
        add(f"| {tool.name} | {median_s * 1000 / args.count:.2f} | "
            f"{args.count / median_s:.0f} | "
            f"{input_bytes / MIB / median_s:.0f} | {ratio} | "
            f"{results['rss'][tool.name] / MIB:.1f} MiB | "
            f"{len(results['left'][tool.name])} |")
    return "\n".join(lines) + "\n"


# ---- main -------------------------------------------------------------------

def main():
    parser = data_core.bench_parser(__doc__, 5, runner=True)
    parser.add_argument("--count", type=int, default=200,
                        help="instances in the CT series")
    parser.add_argument("--size-mib", type=int,
                        help="data_core.py's option, accepted and ignored so "
                        "that bench/run.sh can pass one set of options")
    args = parser.parse_args()
    if args.rounds < 1 or args.count < 1:
        fail("--rounds and --count must be >= 1")
    for tool, package in (("dcmodify", "dcmtk"), ("gdcmanon", "libgdcm-tools"),
                          ("openssl", "openssl")):
        if not shutil.which(tool):
            fail(f"{tool} not found: apt-get install {package}")
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
    input_dir = os.path.dirname(inputs[0])
    input_bytes = sum(os.path.getsize(p) for p in inputs)
    scratch = os.path.join(args.out, "scratch-anon")
    data_core.remove_folder(scratch)
    os.makedirs(scratch)
    key, cert = make_secrets(scratch)
    env = dict(os.environ, SIREN_PSEUDONYM_KEY=os.path.abspath(key))
    folders = {}
    uids = [f"2.25.{uuid.uuid4().int}" for _ in NEW_UIDS]

    dcmodify_args = {}
    for name in ("dcmodify", "dcmodify cached"):
        folders[name] = os.path.join(scratch, name.replace(" ", "-"))
        dcmodify_args[name] = os.path.join(scratch, f"{name}.args"
                                           .replace(" ", "-"))
        with open(dcmodify_args[name], "w") as f:
            f.write("\n".join(dcmtk_edits(uids)) + "\n")
            for path in inputs:
                f.write(os.path.join(folders[name], os.path.basename(path)) +
                        "\n")
    tools = [
        Tool("SIREN", [siren, "apply", "--policy", POLICY, "-q", "-o", "OUT",
                       input_dir]),
        Tool("dcmodify", ["dcmodify", "@" + dcmodify_args["dcmodify"]],
             copies="synced"),
        Tool("dcmodify cached",
             ["dcmodify", "@" + dcmodify_args["dcmodify cached"]],
             copies="cached"),
        Tool("gdcmanon", ["gdcmanon", "--dumb"] + gdcm_edits(uids) +
             ["-i", input_dir, "-o", "OUT"]),
        Tool("gdcmanon -e", ["gdcmanon", "-e", "-c", cert, "-i", input_dir,
                             "-o", "OUT"]),
    ]
    for tool in tools:
        folders.setdefault(tool.name, os.path.join(
            scratch, tool.name.replace(" ", "-")))

    import pydicom
    original = flatten(pydicom.dcmread(inputs[0], stop_before_pixels=True))
    input_tails = sorted(tail_digest(p) for p in inputs)
    log("warm-up")
    left = {}
    targets = None
    for tool in tools:
        run_tool(args.runner, tool, folders[tool.name], inputs, env)
        check_outputs(tool, folders[tool.name], inputs, input_tails)
        output = first_instance(folders[tool.name])
        if targets is None:          # SIREN first: its changes set the job
            targets = targets_from_siren(original, output)
        left[tool.name] = left_as_input(targets, output)
        if left[tool.name]:
            log(f"{tool.name} leaves {len(left[tool.name])} of the "
                f"{len(targets)} attributes SIREN changes as they were: " +
                " ".join(path_name(p) for p in left[tool.name]))
        data_core.remove_folder(folders[tool.name])

    times = {t.name: [] for t in tools}
    rss = {t.name: 0 for t in tools}
    for round_index in range(args.rounds):
        shift = round_index % len(tools)
        for tool in tools[shift:] + tools[:shift]:
            seconds, peak = run_tool(args.runner, tool, folders[tool.name],
                                     inputs, env)
            data_core.remove_folder(folders[tool.name])
            times[tool.name].append(seconds)
            rss[tool.name] = max(rss[tool.name], peak)
        log(f"round {round_index + 1}/{args.rounds}: " +
            ", ".join(f"{n} {times[n][-1]:.3f}s" for n in times))
    shutil.rmtree(scratch, ignore_errors=True)

    results = {"tools": tools, "times": times, "rss": rss, "left": left,
               "target_count": len(targets)}
    text = report(results, args, started, input_bytes)
    with open(os.path.join(args.out, "anon.md"), "w") as f:
        f.write(text)
    print(text, end="")


if __name__ == "__main__":
    main()
