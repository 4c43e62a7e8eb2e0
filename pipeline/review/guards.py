"""The review server's guards: which requests it serves at all (Host, Origin, the session's token), the
headers every answer carries, and the check that a file to serve lies inside OUT. Pure; the handler in
``server`` applies them to each request."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import quote

HOST = "127.0.0.1"
TOKEN_HEADER = "X-Review-Token"
TOKEN_PARAM = "token"


def allowed_hosts(port: int) -> frozenset[str]:
    """The Host headers of requests for this server: the loopback address as served (and localhost,
    which a person may type); a name that resolves here only by a rebinding trick is not among them."""
    return frozenset({f"{HOST}:{port}", f"localhost:{port}"})


def allowed_origins(port: int) -> frozenset[str]:
    return frozenset(f"http://{host}" for host in allowed_hosts(port))


# Every answer: no other site frames the page, and the page loads nothing but its own files.
SECURITY_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
)


def token_matches(given: str | None, token: str) -> bool:
    """Whether a request carries this session's token (compared in constant time; any bytes)."""
    if given is None:
        return False
    return secrets.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode("utf-8"))


def page_address(port: int, token: str) -> str:
    """The address `hearing review` prints and opens: the page, with the session's token."""
    return f"http://{HOST}:{port}/?{TOKEN_PARAM}={quote(token, safe='')}"


def inside(path: Path, root: Path) -> Path | None:
    """``path`` with every link resolved, if it lies inside ``root`` (itself resolved); else None."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):  # a loop of links
        return None
    return resolved if resolved.is_relative_to(root) else None


class Outside(Exception):
    """A file to serve that is not inside OUT once its links are resolved, or not a regular file."""

    def __init__(self, path: Path, why: str = "leads out of the output folder") -> None:
        super().__init__(f"{path}: {why}")
        self.path = path
