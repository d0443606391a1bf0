"""`make secrets`: write the `.env` file docker compose reads, with random secrets (mode 0600, git-ignored).

    python3 dashboard/cli/secrets_file.py [PATH]      # default: .env next to docker-compose.yml

Standard library only, so it runs before anything is installed. An existing file is never rewritten (its
CREDENTIALS_KEY decrypts what the database holds, its POSTGRES_PASSWORD is the one the database was made
with): only settings it lacks are added.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def generated_settings() -> dict[str, str]:
    return {
        "SECRET_KEY": secrets.token_hex(32),
        # a Fernet key is 32 random bytes, url-safe base64
        "CREDENTIALS_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "FACTORY_ENROLLMENT_TOKEN": secrets.token_urlsafe(32),
        "DASHBOARD_ADMIN_EMAIL": "admin@factoryfl.org",
        "DASHBOARD_ADMIN_PASSWORD": secrets.token_urlsafe(16),
        "DASHBOARD_API_TOKEN": secrets.token_urlsafe(32),
        "POSTGRES_PASSWORD": secrets.token_urlsafe(24),
    }


def read_env(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def write_secrets(path: Path) -> list[str]:
    """Create `path` (0600) or add the settings it lacks; the names of the settings written."""
    existing = read_env(path) if path.exists() else {}
    missing = {k: v for k, v in generated_settings().items() if k not in existing}
    if not missing:
        os.chmod(path, 0o600)
        return []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as fh:
        if not existing:
            fh.write("# FactoryFL secrets for docker compose, made by `make secrets`. Keep this file private;\n"
                     "# never commit it. Losing CREDENTIALS_KEY makes the stored plant logins unreadable.\n")
        fh.writelines(f"{key}={value}\n" for key, value in missing.items())
    os.chmod(path, 0o600)  # also when the file existed with a wider mode
    return list(missing)


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[2] / ".env"  # next to docker-compose.yml
    written = write_secrets(path)
    if written:
        log.info("wrote %s to %s (mode 0600); log in as %s with the DASHBOARD_ADMIN_PASSWORD in that file",
                 ", ".join(written), path, read_env(path)["DASHBOARD_ADMIN_EMAIL"])
    else:
        log.info("%s already holds every secret: nothing changed", path)
    return 0


if __name__ == "__main__":
    # this CLI's own lines on stdout, whatever a library later does to the root logger (opacus sets it)
    log.addHandler(logging.StreamHandler(sys.stdout))
    log.setLevel(logging.INFO)
    log.propagate = False
    sys.exit(main(sys.argv))
