"""Container entry point: secrets from files into the environment, then the command.

``SECRET_KEY_FILE`` and ``LIAISON_METRICS_TOKEN_FILE`` become ``SECRET_KEY`` and
``LIAISON_METRICS_TOKEN`` holding the file's content, so no secret sits in the compose file or
the image (the keyring and the audit signing key are files the application reads itself).
``DATABASE_PASSWORD_FILE``, ``DATABASE_MIGRATE_PASSWORD_FILE`` and ``REDIS_PASSWORD_FILE`` are
put into ``DATABASE_URL``, ``DATABASE_MIGRATE_URL`` and ``REDIS_URL`` (URL-quoted), which name
host, port and user only.

With ``LIAISON_ALLOW_OWN_ADDRESSES=1`` the container's own IP addresses join ``ALLOWED_HOSTS``:
Prometheus scrapes each replica by address (DNS service discovery), and Django refuses a Host
it does not know. Standard library only.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

FILE_SECRETS = ("SECRET_KEY", "LIAISON_METRICS_TOKEN")
URL_PASSWORDS = {
    "DATABASE_PASSWORD_FILE": "DATABASE_URL",
    # The owner role's connection, for the migrate service only (docs/security.md).
    "DATABASE_MIGRATE_PASSWORD_FILE": "DATABASE_MIGRATE_URL",
    "REDIS_PASSWORD_FILE": "REDIS_URL",
}


def _read_secret(path: str, name: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        sys.exit(f"entrypoint: {name}={path} cannot be read: {exc.strerror}")


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` (quoted) in its authority, keeping the user if there is one."""
    parts = urlsplit(url)
    if not parts.hostname:
        sys.exit("entrypoint: a password file is set but its URL names no host")
    user = quote(parts.username or "", safe="")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{user}:{quote(password, safe='')}@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def own_addresses() -> list[str]:
    try:
        return sorted(set(socket.gethostbyname_ex(socket.gethostname())[2]))
    except OSError:
        return []


def resolve(environ: dict[str, str]) -> dict[str, str]:
    env = dict(environ)
    if environ.get("LIAISON_ALLOW_OWN_ADDRESSES") == "1":
        hosts = [h for h in environ.get("ALLOWED_HOSTS", "").split(",") if h]
        hosts += [address for address in own_addresses() if address not in hosts]
        env["ALLOWED_HOSTS"] = ",".join(hosts)
    for target in FILE_SECRETS:
        name = f"{target}_FILE"
        if not environ.get(name):
            continue
        if environ.get(target):
            sys.exit(f"entrypoint: set {target} or {name}, not both")
        env[target] = _read_secret(environ[name], name)
    for name, url_name in URL_PASSWORDS.items():
        if environ.get(name):
            url = environ.get(url_name)
            if not url:
                sys.exit(f"entrypoint: {name} is set but {url_name} is not")
            env[url_name] = with_password(url, _read_secret(environ[name], name))
    multiproc = env.get("PROMETHEUS_MULTIPROC_DIR")
    if multiproc:
        # A fresh directory per container start: files left by earlier processes would be
        # added to the new ones' counters.
        shutil.rmtree(multiproc, ignore_errors=True)
        os.makedirs(multiproc, mode=0o700, exist_ok=True)
    return env


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("entrypoint: no command given")
    env = resolve(dict(os.environ))
    os.execvpe(argv[0], argv, env)  # noqa: S606 (the container command, as given)


if __name__ == "__main__":
    main(sys.argv[1:])
