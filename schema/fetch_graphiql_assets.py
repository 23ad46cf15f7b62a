#!/usr/bin/env python3
"""Fetch the pinned GraphiQL browser assets with the ordinary npm client.

Reads ``schema/graphiql_assets.json`` (exact versions, the registry's ``dist.integrity`` of each
tarball and the files to take from it), runs ``npm pack NAME@VERSION`` into a temporary
directory, checks each tarball's sha512 against the pin and each extracted file's SRI hash, and
installs only the listed files into ``--dest`` (default ``var/graphiql/``) as
``NAME@VERSION/PATH`` plus a ``manifest.json``.  Third-party code is never written into the
repository's tracked tree.

Idempotent: when the manifest in ``--dest`` matches the pins and every file verifies, it exits
at once without running npm.

Exit codes: 0 success (or, without ``--strict``, npm/registry unavailable: one warning line, the
gateway then falls back to the CDN); 1 verification or other error (integrity mismatch is
always fatal); 2 usage / bad pin file; 3 npm missing or registry unreachable with ``--strict``.

Stdlib only; the only network traffic is npm talking to its configured registry.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PINS = Path(__file__).resolve().with_name("graphiql_assets.json")
DEFAULT_DEST = REPO_ROOT / "var" / "graphiql"
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3

# npm error codes that mean "cannot reach the registry" rather than "the pins are wrong".
NETWORK_CODES = frozenset(
    {
        "ENOTFOUND",
        "EAI_AGAIN",
        "ECONNREFUSED",
        "ECONNRESET",
        "ETIMEDOUT",
        "ESOCKETTIMEDOUT",
        "ENETUNREACH",
        "ENETDOWN",
        "EHOSTUNREACH",
        "EPROTO",
        "ERR_SOCKET_TIMEOUT",
        "ERR_SOCKET_CONNECTION_TIMEOUT",
        "FETCH_ERROR",
        "ECONNABORTED",
        "SELF_SIGNED_CERT_IN_CHAIN",
        "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
        "E407",
        "E502",
        "E503",
        "E504",
    }
)


class PinError(Exception):
    """The pin file is malformed."""


class IntegrityError(Exception):
    """A tarball or file does not match its pinned hash."""


class UnavailableError(Exception):
    """npm is missing or the registry cannot be reached."""


def log(msg: str) -> None:
    print(f"fetch_graphiql_assets: {msg}", file=sys.stderr)


# --------------------------------------------------------------------------- pins / manifest


def load_pins(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PinError(f"cannot read pin file {path}: {exc}") from exc
    packages = data.get("packages")
    if not isinstance(packages, list) or not packages:
        raise PinError(f"{path}: 'packages' must be a non-empty list")
    for pkg in packages:
        for key in ("name", "version", "integrity", "files"):
            if key not in pkg:
                raise PinError(f"{path}: package entry {pkg!r} lacks {key!r}")
        if not str(pkg["integrity"]).startswith("sha512-"):
            raise PinError(f"{pkg['name']}: integrity must be a sha512-... SRI string")
        version = str(pkg["version"])
        if not version[:1].isdigit() or any(c in version for c in "^~<>=* |x"):
            raise PinError(f"{pkg['name']}: version {version!r} is not an exact version")
        for f in pkg["files"]:
            rel = str(f.get("path", ""))
            if not rel or rel.startswith("/") or ".." in Path(rel).parts:
                raise PinError(f"{pkg['name']}: bad file path {rel!r}")
    return packages


def local_path(pkg: dict[str, Any], rel: str) -> str:
    return f"{pkg['name']}@{pkg['version']}/{rel}"


def expected_manifest(pins: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "packages": [
            {
                "name": p["name"],
                "version": p["version"],
                "integrity": p["integrity"],
                "files": [
                    {
                        "path": f["path"],
                        "local": local_path(p, f["path"]),
                        **({"sri": f["sri"]} if f.get("sri") else {}),
                    }
                    for f in p["files"]
                ],
            }
            for p in pins
        ],
    }


def sri(data: bytes, algo: str) -> str:
    return f"{algo}-" + base64.b64encode(hashlib.new(algo, data).digest()).decode("ascii")


def check_sri(data: bytes, expected: str) -> bool:
    algo = expected.split("-", 1)[0]
    if algo not in ("sha256", "sha384", "sha512"):
        return False
    return sri(data, algo) == expected


def installed_ok(dest: Path, pins: list[dict[str, Any]]) -> bool:
    """True when dest's manifest equals the pins and every listed file verifies."""
    try:
        manifest = json.loads((dest / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    manifest.pop("generated_by", None)
    if manifest != expected_manifest(pins):
        return False
    for pkg in pins:
        for f in pkg["files"]:
            target = dest / local_path(pkg, f["path"])
            try:
                data = target.read_bytes()
            except OSError:
                return False
            if f.get("sri") and not check_sri(data, f["sri"]):
                return False
    return True


# --------------------------------------------------------------------------- npm


def npm_error_code(output: str) -> str | None:
    """Pull an npm error code out of --json output or the plain 'npm error code X' lines."""
    start = output.find("{")
    if start != -1:
        try:
            err = json.loads(output[start:]).get("error", {})
            if isinstance(err, dict) and err.get("code"):
                return str(err["code"])
        except ValueError:
            pass
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in ("npm", "npm ERR!") and "code" in parts[1:3]:
            return parts[-1]
    for code in NETWORK_CODES:
        if code in output:
            return code
    return None


def npm_pack(npm: str, spec: str, tmp: Path) -> Path:
    cmd = [
        npm,
        "pack",
        spec,
        "--pack-destination",
        str(tmp),
        "--json",
        "--ignore-scripts",
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        "--no-update-notifier",
        "--fetch-retries=1",
        "--fetch-retry-mintimeout=2000",
        "--fetch-retry-maxtimeout=10000",
        "--fetch-timeout=60000",
    ]
    env = dict(os.environ, npm_config_loglevel="error")
    try:
        proc = subprocess.run(
            cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=300, check=False
        )
    except FileNotFoundError as exc:
        raise UnavailableError(f"npm not runnable: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise UnavailableError(f"npm pack {spec} timed out") from exc
    if proc.returncode != 0:
        both = proc.stdout + "\n" + proc.stderr
        code = npm_error_code(both)
        if code in NETWORK_CODES:
            raise UnavailableError(f"registry unreachable while packing {spec} ({code})")
        tail = " | ".join(line for line in proc.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"npm pack {spec} failed (exit {proc.returncode}, code {code}): {tail}")
    try:
        info = json.loads(proc.stdout)[0]
        tarball = tmp / info["filename"]
    except (ValueError, LookupError, TypeError) as exc:
        raise RuntimeError(f"unexpected npm pack output for {spec}: {proc.stdout[:200]!r}") from exc
    if not tarball.is_file():
        raise RuntimeError(f"npm pack {spec} reported {tarball} but it does not exist")
    return tarball


def extract(pkg: dict[str, Any], tarball: Path, staging: Path) -> None:
    data = tarball.read_bytes()
    actual = sri(data, "sha512")
    if actual != pkg["integrity"]:
        raise IntegrityError(
            f"INTEGRITY MISMATCH for {pkg['name']}@{pkg['version']}: "
            f"pinned {pkg['integrity']}, got {actual}"
        )
    wanted = {f"package/{f['path']}": f for f in pkg["files"]}
    found: set[str] = set()
    with tarfile.open(tarball, mode="r:gz") as tar:
        for member in tar:
            if member.name not in wanted:
                continue
            if not member.isfile():
                raise IntegrityError(f"{pkg['name']}: {member.name} is not a regular file")
            fobj = tar.extractfile(member)
            if fobj is None:
                raise IntegrityError(f"{pkg['name']}: cannot read {member.name}")
            content = fobj.read()
            spec = wanted[member.name]
            if spec.get("sri") and not check_sri(content, spec["sri"]):
                raise IntegrityError(
                    f"INTEGRITY MISMATCH for {pkg['name']}@{pkg['version']}/{spec['path']}: "
                    f"pinned {spec['sri']}, got {sri(content, spec['sri'].split('-', 1)[0])}"
                )
            target = staging / local_path(pkg, spec["path"])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            found.add(member.name)
    missing = sorted(set(wanted) - found)
    if missing:
        raise IntegrityError(f"{pkg['name']}@{pkg['version']}: tarball lacks {missing}")


def install(staging: Path, dest: Path, pins: list[dict[str, Any]]) -> None:
    """Move verified files from staging into dest, then write the manifest last (atomically)."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / MANIFEST_NAME).unlink(missing_ok=True)
    # Remove stale installs of the pinned packages (any version), then move the new ones in.
    for pkg in pins:
        name = Path(pkg["name"])
        for old in (dest / name.parent).glob(f"{name.name}@*"):
            if old.is_dir():
                shutil.rmtree(old)
    for child in staging.iterdir():
        target = dest / child.name
        if target.is_dir() and not child.name.startswith("@"):
            shutil.rmtree(target)
        if child.name.startswith("@") and target.is_dir():  # scope dir: merge
            for sub in child.iterdir():
                shutil.move(str(sub), str(target / sub.name))
        else:
            shutil.move(str(child), str(target))
    manifest = expected_manifest(pins)
    manifest["generated_by"] = "schema/fetch_graphiql_assets.py"
    tmp_manifest = dest / (MANIFEST_NAME + ".tmp")
    tmp_manifest.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    tmp_manifest.replace(dest / MANIFEST_NAME)


def fetch(pins: list[dict[str, Any]], dest: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise UnavailableError("npm not found on PATH")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="graphiql-assets-") as tmpdir:
        tmp = Path(tmpdir)
        packs = tmp / "packs"
        staging = tmp / "staging"
        packs.mkdir()
        staging.mkdir()
        for pkg in pins:
            spec = f"{pkg['name']}@{pkg['version']}"
            tarball = npm_pack(npm, spec, packs)
            extract(pkg, tarball, staging)
        install(staging, dest, pins)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="output directory")
    parser.add_argument("--pins", type=Path, default=DEFAULT_PINS, help="pin file")
    parser.add_argument(
        "--strict", action="store_true", help="fail (exit 3) if npm/registry is unavailable"
    )
    parser.add_argument("--force", action="store_true", help="re-fetch even if up to date")
    args = parser.parse_args(argv)
    dest: Path = args.dest.resolve()

    try:
        pins = load_pins(args.pins)
    except PinError as exc:
        log(f"error: {exc}")
        return EXIT_USAGE

    if not args.force and installed_ok(dest, pins):
        log(f"up to date in {dest}")
        return EXIT_OK

    try:
        fetch(pins, dest)
    except UnavailableError as exc:
        if args.strict:
            log(f"error: {exc}")
            return EXIT_UNAVAILABLE
        print(
            f"WARNING: GraphiQL assets not fetched ({exc}); the gateway will use the public CDN.",
            file=sys.stderr,
        )
        return EXIT_OK
    except IntegrityError as exc:
        log(f"error: {exc}")
        return EXIT_ERROR
    except (RuntimeError, OSError, tarfile.TarError) as exc:
        log(f"error: {exc}")
        return EXIT_ERROR

    if not installed_ok(dest, pins):
        log(f"error: post-install verification failed in {dest}")
        return EXIT_ERROR
    names = ", ".join(f"{p['name']}@{p['version']}" for p in pins)
    log(f"installed {names} into {dest}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
