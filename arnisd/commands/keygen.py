"""`arnisd keygen --output DIR [--name NAME]`: write a CURVE key pair for a coordinator or worker.

Writes ``DIR/NAME.key`` (the public key, 0644: copy it to the other side) and
``DIR/NAME.key_secret`` (0600: stays on this machine, named by ``curve_secret_key_file``).
Existing files are kept unless ``--force``. Prints both paths and the public key.
"""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "keygen"
HELP = "write a CURVE key pair (NAME.key public, NAME.key_secret private) for encrypted clusters"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", type=Path, required=True, metavar="DIR",
                   help="folder for the key files (created if missing)")
    p.add_argument("--name", default="arnisd",
                   help="base name of the files (default: arnisd), e.g. the machine's name")
    p.add_argument("--force", action="store_true", help="replace existing key files of that name")


def run(args) -> int:
    from arnisd.cluster.security import generate_keypair, load_public_key
    public_path, secret_path = generate_keypair(args.output, args.name, args.force)
    public_key = load_public_key(str(public_path)).decode("ascii")
    print(f"public key:  {public_path}  (copy to the other machines)")
    print(f"secret key:  {secret_path}  (mode 0600; keep it on this machine)")
    print(f"public key text: {public_key}")
    return 0
