"""`kubenova`: the user-side half of encrypted kubeconfig delivery.

    kubenova keygen --private-key me.key > me.pub        # an X25519 key pair
    kubectl get kubeconfigrequest ci -n acme-owner -o jsonpath='{.status.kubeconfig}' \\
      | kubenova decrypt --private-key me.key > kubeconfig
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .credentials.sealing import generate_keypair, open_sealed


def keygen(private_key: Path) -> int:
    if private_key.exists():
        print(f"error: {private_key} exists; refusing to overwrite a key", file=sys.stderr)
        return 1
    private, public = generate_keypair()
    fd = os.open(private_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(private)
    sys.stdout.write(public)
    return 0


def decrypt(private_key: Path, sealed: str) -> int:
    try:
        plaintext = open_sealed(sealed.strip(), private_key.read_bytes())
    except (ValueError, OSError) as exc:
        print(f"error: cannot decrypt: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    sys.stdout.write(plaintext.decode())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kubenova", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("keygen", help="make an X25519 key pair; prints the public key")
    gen.add_argument("--private-key", type=Path, required=True, help="where to write it (0600)")
    dec = sub.add_parser("decrypt", help="decrypt status.kubeconfig (read from stdin)")
    dec.add_argument("--private-key", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "keygen":
        return keygen(args.private_key)
    return decrypt(args.private_key, sys.stdin.read())


if __name__ == "__main__":
    sys.exit(main())
