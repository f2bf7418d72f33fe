"""What ``--hosts`` installs on a host: a wheel of this very arnisd and its dependencies' wheels
for the host's platform.

arnisd's wheel is made here from the package this process runs (an installed copy or a
checkout alike, no build tool needed); its digest names the host's venv, so a host that holds
the same code reuses it and a changed arnisd is installed beside it. Dependency wheels come
from ``pip download`` (this machine's package index access, or only ``--wheel-dir``), for the
host's Python and platform tags, and are kept in the cache per platform.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import logging
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import arnisd
from arnisd.errors import UserError

log = logging.getLogger("arnisd.service.host_bundle")

_PACKAGE_SUFFIXES = (".py", ".html")
_PACKAGE_FOLDERS = (("service", "static"),)     # shipped whole: the page's scripts, Leaflet


class BundleError(UserError):
    """Wheels for a host could not be had; the message says which and why."""


def arnisd_version() -> str:
    try:
        return importlib.metadata.version("arnisd")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def _package_files() -> list[tuple[str, Path]]:
    root = Path(arnisd.__file__).resolve().parent
    return sorted((f"arnisd/{p.relative_to(root).as_posix()}", p) for p in root.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts
                  and (p.suffix in _PACKAGE_SUFFIXES
                       or p.relative_to(root).parts[:2] in _PACKAGE_FOLDERS))


def code_digest() -> str:
    """A digest of arnisd's code and requirements: the name of its install on a host."""
    digest = hashlib.sha256()
    for name, path in _package_files():
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update("\n".join(requirements()).encode())
    return digest.hexdigest()[:16]


def venv_name() -> str:
    return f"venv-{arnisd_version()}-{code_digest()}"


def requirements() -> list[str]:
    """arnisd's own requirements (no extras)."""
    try:
        required = importlib.metadata.requires("arnisd") or []
    except importlib.metadata.PackageNotFoundError:
        raise BundleError("arnisd's requirements are unknown (it is not installed in this "
                          "Python): install it with pip first") from None
    return sorted(r for r in required if "extra ==" not in r)


def build_arnisd_wheel(folder: Path) -> Path:
    """``arnisd-VERSION-py3-none-any.whl`` of the running package, in ``folder``."""
    version = arnisd_version()
    folder = folder / code_digest()
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"arnisd-{version}-py3-none-any.whl"
    if wheel.exists():
        return wheel
    info = f"arnisd-{version}.dist-info"
    metadata = "Metadata-Version: 2.1\nName: arnisd\nVersion: " + version + "\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requirements())
    wheel_file = "Wheel-Version: 1.0\nGenerator: arnisd\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    records = []
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        entries = [(name, path.read_bytes()) for name, path in _package_files()]
        entries += [(f"{info}/METADATA", metadata.encode()), (f"{info}/WHEEL", wheel_file.encode()),
                    (f"{info}/entry_points.txt", b"[console_scripts]\narnisd = arnisd.cli:main\n")]
        for name, data in entries:
            archive.writestr(name, data)
            sha = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append(f"{name},sha256={sha},{len(data)}")
        archive.writestr(f"{info}/RECORD", "\n".join(records + [f"{info}/RECORD,,"]) + "\n")
    tmp.replace(wheel)
    return wheel


@dataclass(frozen=True, slots=True)
class HostPlatform:
    """What a host's probe said about its Python: version and platform tags for wheels."""

    python: tuple[int, int]
    platform_tags: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"cp{self.python[0]}{self.python[1]}-{self.platform_tags[0]}"


def host_platform(probe: dict) -> HostPlatform:
    """The wheel tags a host accepts, from its probe (Linux glibc, macOS, Windows)."""
    python = (int(probe["python"][0]), int(probe["python"][1]))
    machine = probe["machine"].lower()
    plat = probe["platform"]
    if plat.startswith("linux"):
        machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
        libc, libc_version = probe["libc"]
        if libc != "glibc":
            raise BundleError(f"its C library ({libc or 'unknown'}) has no wheels here; "
                              "only glibc Linux hosts are supported")
        minor = int(libc_version.split(".")[1])
        tags = [f"manylinux_2_{m}_{machine}" for m in range(minor, 16, -1)]
        tags += [f"manylinux2014_{machine}", f"linux_{machine}"]
    elif plat.startswith("macosx"):
        major = int((probe["mac"] or "11").split(".")[0])
        arch = "arm64" if machine == "arm64" else "x86_64"
        versions = [f"{v}_0" for v in range(major, 10, -1)] + [f"10_{m}" for m in range(15, 8, -1)]
        tags = [f"macosx_{v}_{a}" for v in versions for a in (arch, "universal2")]
    elif plat.startswith("win"):
        tags = [plat.replace("-", "_")]
    else:
        raise BundleError(f"no wheels for its platform {plat}")
    return HostPlatform(python, tuple(tags))


def dependency_wheels(target: HostPlatform, cache_dir: Path,
                      wheel_dir: Path | None = None) -> list[Path]:
    """Wheels of arnisd's requirements for ``target``, downloaded once into the cache."""
    folder = cache_dir / "wheels" / target.key
    complete = folder / ".complete"
    wanted = "\n".join(requirements())
    if complete.is_file() and complete.read_text(encoding="utf-8") == wanted:
        return sorted(folder.glob("*.whl"))
    folder.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
            "--dest", str(folder), "--python-version", f"{target.python[0]}.{target.python[1]}",
            "--implementation", "cp"]
    for tag in target.platform_tags:
        argv += ["--platform", tag]
    if wheel_dir is not None:
        argv += ["--no-index", "--find-links", str(wheel_dir)]
    log.info("downloading wheels for %s", target.key)
    done = subprocess.run(argv + requirements(), capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["pip download failed"])[-1]
        raise BundleError(f"no wheels of arnisd's requirements for {target.key}: {last}")
    complete.write_text(wanted, encoding="utf-8")
    return sorted(folder.glob("*.whl"))


def write_wheels(folder: Path, cache_dir: Path, wheel_dir: Path | None = None) -> list[Path]:
    """arnisd's wheel and its dependencies' for this machine, copied into ``folder`` (what
    the container image is built from, with no network in the build)."""
    import shutil

    from arnisd.service.host_setup_script import platform_facts
    wheels = [build_arnisd_wheel(cache_dir / "arnisd-wheels")]
    wheels += dependency_wheels(host_platform(platform_facts()), cache_dir, wheel_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("arnisd-*.whl"):
        old.unlink()
    return [Path(shutil.copy(wheel, folder / wheel.name)) for wheel in wheels]


def main(argv: list[str]) -> int:
    """``python -m arnisd.service.host_bundle DIR [--wheel-dir WHEELS]``: ``write_wheels``."""
    import argparse

    from arnisd.job import user_cache_dir
    parser = argparse.ArgumentParser(prog="python -m arnisd.service.host_bundle",
                                     description="write arnisd's wheel and its dependencies' "
                                                 "for this machine into DIR")
    parser.add_argument("folder", type=Path, metavar="DIR")
    parser.add_argument("--wheel-dir", type=Path, metavar="WHEELS",
                        help="take the dependencies' wheels from WHEELS only")
    args = parser.parse_args(argv)
    try:
        wheels = write_wheels(args.folder, user_cache_dir(), args.wheel_dir)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(wheels)} wheels in {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
