"""stackfiles.py - reading stacks/ the way `docker stack deploy` does,
for stacks_config.py and stack_smoke.py: the example env file sourced by
sh, the compose files parsed (PyYAML) and their values interpolated with
the compose rules (${VAR}, ${VAR:-default}, ${VAR-default}, $$), and
the Dockerfile split into stages and instructions.
"""

import os
import re
import subprocess

import yaml

INTERPOLATION = re.compile(
    r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:(?P<op>:?-)(?P<default>[^}]*))?\})")


def source_env(env_file):
    """The variables env_file sets when sh sources it (nothing
    inherited: it runs under env -i)."""
    folder = os.path.dirname(os.path.abspath(env_file))
    done = subprocess.run(
        ["env", "-i", "sh", "-c", '. "$1" && env -0', "sh",
         os.path.abspath(env_file)],
        capture_output=True, cwd=folder, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"sourcing {env_file} failed: "
                           f"{done.stderr.decode(errors='replace')}")
    env = {}
    for entry in done.stdout.split(b"\0"):
        if b"=" in entry:
            name, value = entry.decode().split("=", 1)
            env[name] = value
    for noise in ("PWD", "SHLVL", "_", "OLDPWD"):
        env.pop(noise, None)
    return env


def interpolate(value, env, unset):
    """value with every ${...} replaced; the names used without a
    default and not set in env are added to unset."""
    def replace(match):
        if match.group(0) == "$$":
            return "$"
        name, op = match.group("name"), match.group("op")
        if op == ":-":
            return env.get(name) or match.group("default")
        if op == "-":
            return env.get(name, match.group("default"))
        if not env.get(name):
            unset.add(name)
        return env.get(name, "")
    return INTERPOLATION.sub(replace, value)


def interpolate_tree(node, env, unset):
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env, unset)
                for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(value, env, unset) for value in node]
    if isinstance(node, str):
        return interpolate(node, env, unset)
    return node


def load_stack(path, env):
    """(the stack file as docker would see it, the variables it uses
    without a default that env leaves unset or empty)."""
    with open(path) as stream:
        raw = yaml.safe_load(stream)
    unset = set()
    return interpolate_tree(raw, env, unset), unset


def stack_path(stack_file, path):
    """A `file:` of a stack file, relative to the stack file's folder."""
    return os.path.normpath(os.path.join(
        os.path.dirname(os.path.abspath(stack_file)), path))


class Stage:
    def __init__(self, base, name):
        self.base = base
        self.name = name
        self.instructions = []     # (KEYWORD, arguments as written)


def dockerfile_stages(path):
    """(global ARG defaults, [Stage]) of a Dockerfile: continuation
    lines joined, comments dropped."""
    with open(path) as stream:
        text = stream.read()
    logical, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    if pending:
        logical.append(pending)
    args, stages = {}, []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) >= 3 and \
                words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif not stages and keyword == "ARG":
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip().strip('"')
        elif stages:
            stages[-1].instructions.append((keyword, rest))
    return args, stages
