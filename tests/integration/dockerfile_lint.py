#!/usr/bin/python3
"""dockerfile_lint.py - the basics of stacks/Dockerfile, read as text:

  - every base image pinned: a tag that is not "latest" and a sha256
    digest (ARG defaults are followed; a stage built FROM another stage
    is fine);
  - the last stage (the default target, the gateway) and every other
    stage that no COPY --from takes files out of (an image of its own,
    like mock-site) switch to a USER that is not root (name or uid 0);
  - no secrets baked in: no COPY/ADD of keys, certificates, .env files
    or a secrets folder, no ENV or ARG that looks like a password,
    token, key or secret, no private key block anywhere in the file;
  - the gateway stage has a HEALTHCHECK asking /healthz and its
    ENTRYPOINT runs `siren serve -c /etc/siren/siren.conf` (exec form).
  - .dockerignore at the top keeps build trees, keys and .git out of
    the build context;
  - with --siren PROGRAM (a siren built on this Debian 12 machine, as the
    build stage builds it), the gateway stage's apt-get install list
    brings every shared library the program links: each library `ldd`
    resolves belongs (`dpkg -S`) to a listed package, to one they depend
    on, or to the slim base (the required packages and apt); the
    sanitizers' runtimes of a test build are left out. The image's
    own `ldd` check would stop `docker build` on a missing one; this
    finds it where there is no Docker engine.

Usage: dockerfile_lint.py [--siren PROGRAM] [DOCKERFILE [WORK]] (default:
stacks/Dockerfile of the repository this script is in). With WORK, the
lint first proves itself on copies of the Dockerfile with one fault each
(a moving or unpinned base, root, a baked password, a copied key, no
health check, another entry point and, with --siren, a runtime library
left out), written there. Exit status 0 clean, 1 findings.
"""

import json
import os
import re
import subprocess
import sys

import stackfiles

SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE|API_?KEY|"
                         r"_KEY$|^KEY$)", re.IGNORECASE)
SECRET_FILE = re.compile(r"(\.key|\.pem|\.p12|\.pfx|\.crt|\.env|id_rsa|"
                         r"secrets?/|\.crl)(\s|$|/)", re.IGNORECASE)
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
IGNORED_IN_CONTEXT = ("build", ".git", "*.key", "*.pem")


def expand(text, args):
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?",
                  lambda m: args.get(m.group(1), m.group(0)), text)


def check_base(findings, stage, args, stage_names):
    base = expand(stage.base, args)
    if base in stage_names:
        return
    image = base.split("@")[0]
    name_tag = image.rsplit("/", 1)[-1]
    if ":" not in name_tag:
        findings.append(f"FROM {base}: no tag")
    elif name_tag.endswith(":latest"):
        findings.append(f"FROM {base}: the tag 'latest' moves")
    if not DIGEST.search(base):
        findings.append(f"FROM {base}: not pinned by a sha256 digest")


def user_of(stage):
    users = [rest for keyword, rest in stage.instructions if keyword == "USER"]
    return users[-1].split(":")[0] if users else None


def check_secrets(findings, stage):
    label = stage.name or stage.base
    for keyword, rest in stage.instructions:
        if keyword in ("ENV", "ARG"):
            for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)(?:=|\s|$)",
                                   rest)[:1] + \
                    re.findall(r"\s([A-Za-z_][A-Za-z0-9_]*)=", rest):
                if SECRET_NAME.search(name):
                    findings.append(f"[{label}] {keyword} {name}: a secret "
                                    "in the image (mount it instead)")
        if keyword in ("COPY", "ADD"):
            sources = [w for w in rest.split() if not w.startswith("--")]
            for source in sources[:-1]:
                if SECRET_FILE.search(source + " "):
                    findings.append(f"[{label}] {keyword} {source}: looks "
                                    "like a key, certificate or secret")


def check_gateway(findings, stage):
    instructions = dict(stage.instructions)
    health = instructions.get("HEALTHCHECK", "")
    if "/healthz" not in health or "CMD" not in health:
        findings.append("gateway stage: no HEALTHCHECK ... CMD asking "
                        "/healthz")
    entry = instructions.get("ENTRYPOINT")
    try:
        words = json.loads(entry) if entry else None
    except ValueError:
        words = None
    if not words or os.path.basename(words[0]) != "siren" or \
            words[1:] != ["serve", "-c", "/etc/siren/siren.conf"]:
        findings.append(f"gateway stage: ENTRYPOINT {entry!r} is not the "
                        "exec form of siren serve -c /etc/siren/siren.conf")


def check_context(findings, dockerfile):
    top = os.path.dirname(os.path.dirname(os.path.abspath(dockerfile)))
    path = os.path.join(top, ".dockerignore")
    if not os.path.exists(path):
        findings.append(".dockerignore: missing at the top of the "
                        "repository (the build context)")
        return
    with open(path) as stream:
        text = stream.read()
    for pattern in IGNORED_IN_CONTEXT:
        if pattern not in text:
            findings.append(f".dockerignore: does not leave out {pattern}")


def installed_packages(stage):
    """The packages the stage's `apt-get install` lines name."""
    names = []
    for keyword, rest in stage.instructions:
        if keyword != "RUN":
            continue
        for command in rest.split("&&"):
            words = command.split()
            if "apt-get" in words and "install" in words:
                after = words[words.index("install") + 1:]
                names += [w for w in after if not w.startswith("-")]
    return names


_PACKAGES = {}


def packages_here():
    """{installed package: (its dependencies, whether debian:12-slim holds
    it: required or essential)}, read once with one dpkg-query."""
    if not _PACKAGES:
        listing = subprocess.run(
            ["dpkg-query", "-W", "-f",
             "${Package}\t${Essential}\t${Priority}\t${Depends}, "
             "${Pre-Depends}\n"],
            capture_output=True, text=True, check=True).stdout
        for line in listing.splitlines():
            name, essential, priority, depends = line.split("\t")
            needs = [clause.strip().split(" ")[0].split(":")[0]
                     for clause in re.split(r"[,|]", depends)]
            _PACKAGES[name] = ([n for n in needs if n],
                               essential == "yes" or priority == "required")
    return _PACKAGES


def with_dependencies(packages):
    """packages and everything they depend on, as installed here (every
    alternative of an "a | b" dependency counts)."""
    known = packages_here()
    seen, todo = set(), list(packages)
    while todo:
        package = todo.pop()
        if package in seen:
            continue
        seen.add(package)
        todo += known.get(package, ([], False))[0]
    return seen


def slim_base():
    """What debian:12-slim holds: the required packages and apt."""
    return [name for name, (_, base) in packages_here().items() if base] + \
        ["apt"]


def owners_of(paths):
    """{path: installed package holding it} for those paths dpkg knows
    (under merged /usr it knows one of /lib/... and /usr/lib/...)."""
    spellings = {}
    for path in paths:
        for p in {path, os.path.realpath(path)}:
            for q in (p, p[4:] if p.startswith("/usr/") else "/usr" + p):
                spellings[q] = path
    result = subprocess.run(["dpkg", "-S"] + sorted(spellings),
                            capture_output=True, text=True)
    owners = {}
    for line in result.stdout.splitlines():
        package, _, where = line.partition(": ")
        if where in spellings:
            owners[spellings[where]] = package.split(":")[0]
    return owners


def linked_libraries(program):
    """{library path: name} of what ldd resolves for program."""
    out = subprocess.run(["ldd", program], capture_output=True, text=True,
                         check=True).stdout
    found = {}
    for line in out.splitlines():
        match = re.match(r"\s*(\S+) => (/\S+)", line)
        if match:
            found[match.group(2)] = match.group(1)
    return found


# The sanitizers' runtimes: linked by the ASan build the suite runs
# under, never by the Release build the image makes.
SANITIZER_RUNTIME = re.compile(r"^lib(a|ub|l|t|hwa)san\.so")


def check_runtime_libraries(findings, stage, program):
    present = with_dependencies(installed_packages(stage) + slim_base())
    libraries = {path: name for path, name in
                 linked_libraries(program).items()
                 if not SANITIZER_RUNTIME.match(name)}
    owners = owners_of(libraries)
    for path, name in sorted(libraries.items()):
        owner = owners.get(path)
        if owner is None:
            findings.append(f"gateway stage: {name} ({path}) comes from no "
                            "Debian package")
        elif owner not in present:
            findings.append(f"gateway stage: {name} is in package {owner}, "
                            "which the runtime apt-get install list does "
                            "not bring")


def lint(dockerfile, program=None):
    findings = []
    with open(dockerfile) as stream:
        if "PRIVATE KEY-----" in stream.read():
            findings.append("a private key block in the Dockerfile")
    args, stages = stackfiles.dockerfile_stages(dockerfile)
    if not stages:
        return ["no FROM"]
    names = {s.name for s in stages if s.name}
    copied_from = set()
    for stage in stages:
        for keyword, rest in stage.instructions:
            match = re.search(r"--from=(\S+)", rest)
            if keyword == "COPY" and match:
                copied_from.add(match.group(1))
    for index, stage in enumerate(stages):
        check_base(findings, stage, args, names)
        check_secrets(findings, stage)
        is_image = index == len(stages) - 1 or stage.name not in copied_from
        if is_image:
            user = user_of(stage)
            if user is None or user in ("root", "0"):
                findings.append(f"[{stage.name or stage.base}] runs as "
                                f"root (USER {user})")
    for name, value in args.items():
        if SECRET_NAME.search(name):
            findings.append(f"ARG {name}: a secret in the build")
    check_gateway(findings, stages[-1])
    if program:
        check_runtime_libraries(findings, stages[-1], program)
    check_context(findings, dockerfile)
    return findings


# Faults put into a copy of the Dockerfile, each of which the lint must
# find: (what, text to replace, replacement, words in the finding).
FAULTS = (
    ("a moving base", re.compile(r"debian:12-slim@sha256:[0-9a-f]{64}"),
     "debian:latest", "latest"),
    ("an unpinned base", re.compile(r"@sha256:[0-9a-f]{64}"), "",
     "digest"),
    ("root", re.compile(r"^USER siren:siren$", re.M), "", "root"),
    ("a baked password", re.compile(r"^EXPOSE 2762$", re.M),
     "EXPOSE 2762\nENV ORTHANC_PASSWORD=orthanc", "secret"),
    ("a copied key", re.compile(r"^EXPOSE 2762$", re.M),
     "EXPOSE 2762\nCOPY stacks/server.key /etc/siren/", "key"),
    ("no health check", re.compile(r"^HEALTHCHECK .*?\|\| exit 1$",
                                   re.M | re.S), "", "HEALTHCHECK"),
    ("another entry point", re.compile(r'"serve", "-c"'), '"serve", "--dir"',
     "ENTRYPOINT"),
)
# With --siren: a library the program links, left out of the runtime list.
LIBRARY_FAULT = ("a runtime library left out",
                 re.compile(r"(?<=\s)libcharls2 "), "", "libcharls")


def self_test(dockerfile, work, program=None):
    """The lint finds each fault of FAULTS (and with program,
    LIBRARY_FAULT) in a copy of dockerfile; returns what it missed."""
    with open(dockerfile) as stream:
        text = stream.read()
    missed = []
    os.makedirs(os.path.join(work, "stacks"), exist_ok=True)
    with open(os.path.join(work, ".dockerignore"), "w") as stream:
        stream.write("\n".join(IGNORED_IN_CONTEXT) + "\n")
    faults = FAULTS + ((LIBRARY_FAULT,) if program else ())
    for what, pattern, replacement, word in faults:
        faulty, count = pattern.subn(replacement, text)
        path = os.path.join(work, "stacks", "Dockerfile")
        with open(path, "w") as stream:
            stream.write(faulty)
        findings = lint(path, program)
        if count == 0 or not any(word.lower() in f.lower()
                                 for f in findings):
            missed.append(f"{what} (replaced {count}, findings {findings})")
    return missed


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    argv = sys.argv[1:]
    program = None
    if argv[:1] == ["--siren"] and len(argv) >= 2:
        program, argv = argv[1], argv[2:]
    dockerfile = argv[0] if argv else \
        os.path.join(here, "..", "..", "stacks", "Dockerfile")
    work = argv[1] if len(argv) > 1 else None
    if work:
        for miss in self_test(dockerfile, work, program):
            print(f"FAIL self-test: the lint missed {miss}")
            return 1
    findings = lint(dockerfile, program)
    for finding in findings:
        print(f"FAIL {dockerfile}: {finding}")
    if findings:
        print(f"dockerfile_lint: {len(findings)} finding(s)")
        return 1
    print(f"dockerfile_lint: {dockerfile}: pinned bases, non-root users, "
          "no secrets, health check, entry point"
          f"{', runtime libraries' if program else ''}: clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
