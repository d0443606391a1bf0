"""A throwaway PostgreSQL cluster on a free loopback port, started and stopped by the test."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

from factoryfl_testing.harness import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run `make system-deps`")
    return found[-1]


class PostgresCluster:
    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.data = root / "pgdata"
        self.user = None
        if os.geteuid() == 0:  # initdb refuses to run as root: use Debian's postgres account
            self.user = "postgres"

    def _run(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        if self.user:
            args = ["runuser", "-u", self.user, "--", *args]
        return subprocess.run(args, check=True, capture_output=True, text=True, timeout=120, **kwargs)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/factoryfl"

    def start(self) -> "PostgresCluster":
        self.root.mkdir(parents=True, exist_ok=True)
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chmod(self.root, 0o777)
            for parent in self.root.parents:  # the postgres account must be able to reach the folder
                if str(parent) in ("/", "/tmp"):
                    break
                os.chmod(parent, os.stat(parent).st_mode | 0o711)
            self.data.mkdir(exist_ok=True)
            os.chown(self.data, pw.pw_uid, pw.pw_gid)
        self._run([_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        self._run([_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.data / "server.log"), "-w", "start", "-o",
                   f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"])
        deadline = time.time() + 30
        while True:
            try:
                self._run([shutil.which("psql") or "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                           "-c", "CREATE DATABASE factoryfl"])
                return self
            except subprocess.CalledProcessError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            args = [_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
            subprocess.run((["runuser", "-u", self.user, "--"] if self.user else []) + args, timeout=60,
                           capture_output=True)
