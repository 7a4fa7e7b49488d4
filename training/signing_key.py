"""The key central training signs bundles with, and ``shelfcast keygen`` that makes one.

The private key is a PEM file outside any bundle: ``--signing-key`` / ``SHELFCAST_SIGNING_KEY``,
by default ``var/keys/bundle-signing.key``. The first training run without one creates the pair
at the default location and says so; the public half (``.pub`` beside it) is what every gateway
is given (``[model] public_key`` / ``SHELFCAST_MODEL_PUBLIC_KEY``).

    shelfcast keygen                              # var/keys/bundle-signing.key and .pub
    shelfcast keygen --out /secure/shelfcast.key  # and /secure/shelfcast.pub

>>> public_key_path(Path("var/keys/bundle-signing.key")).as_posix()
'var/keys/bundle-signing.pub'
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from models.bundle import BundleError
from models.bundle_signing import Signer, generate_key_pair

ENV = "SHELFCAST_SIGNING_KEY"
DEFAULT_SIGNING_KEY = Path("var/keys/bundle-signing.key")


def public_key_path(private: Path) -> Path:
    """The public key's file beside a private key: same name, ``.pub``."""
    return Path(private).with_suffix(".pub")


def signing_key_path(path: str | os.PathLike[str] | None = None, env=None) -> Path:
    """The private key training uses: ``path``, else ``$SHELFCAST_SIGNING_KEY``, else the default."""
    env = os.environ if env is None else env
    return Path(path or env.get(ENV) or DEFAULT_SIGNING_KEY)


def _gateway_hint(public: Path) -> str:
    return f"give {public} to gateways ([model] public_key or SHELFCAST_MODEL_PUBLIC_KEY)"


def signer_for(
    path: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None = None,
    say: Callable[[str], None] = print,
) -> Signer:
    """The signer for ``path`` (else ``$SHELFCAST_SIGNING_KEY``, else the default file).

    Only the default key is created when absent (with a line saying where); a key named
    explicitly must exist, so a typo never silently signs with a new key no gateway trusts.
    """
    env = os.environ if env is None else env
    chosen = path or env.get(ENV) or None
    key = signing_key_path(path, env)
    if not key.exists():
        if chosen:
            raise BundleError(
                f"signing key {key} does not exist; create it with `shelfcast keygen --out {key}`"
            )
        generate_key_pair(key, public_key_path(key))
        say(
            f"created bundle signing key {key} (keep it off gateways); {_gateway_hint(public_key_path(key))}"
        )
    return Signer.from_file(key)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        default=str(DEFAULT_SIGNING_KEY),
        help=f"private key file to create (default {DEFAULT_SIGNING_KEY}); the public key goes "
        "beside it as .pub",
    )


def run(args: argparse.Namespace) -> int:
    """``shelfcast keygen``: a new Ed25519 key pair for signing bundles."""
    private = Path(args.out)
    try:
        generate_key_pair(private, public_key_path(private))
    except FileExistsError as err:
        print(f"shelfcast keygen: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"shelfcast keygen: cannot write {private}: {err.strerror}", file=sys.stderr)
        return 1
    print(f"private key {private} (training signs with it: --signing-key or {ENV})")
    print(f"public key {public_key_path(private)}: {_gateway_hint(public_key_path(private))}")
    return 0
