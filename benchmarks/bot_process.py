"""Running the real bot as a separate process against a fake platform, for the benchmarks that
need ``askdesk serve`` exactly as an operator starts it (crash suite, end-to-end concurrency)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from benchmarks.common import ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bot_env(workdir: Path, index_dir: Path, kb_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    """The environment of one bot process: this machine's, minus any platform or askdesk settings,
    plus the benchmark's own paths and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TELEGRAM_", "ASKDESK_"))}
    env.update({
        "ASKDESK_DB_PATH": str(workdir / "askdesk.db"), "ASKDESK_INDEX_DIR": str(index_dir),
        "ASKDESK_KB_DIR": str(kb_dir), "ASKDESK_CACHE_DIR": str(ROOT / ".askdesk" / "cache"),
        "ASKDESK_LOG_LEVEL": "INFO", "PYTHONPATH": str(ROOT),
    })
    env.update(extra)
    return env


def start_bot(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``askdesk ARGS`` in its own session, its output appended to ``log``."""
    handle = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "bots.cli", *args], cwd=ROOT, env=env, stdout=handle,
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop_bot(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> None:
    """Send ``sig`` and wait for the process; kill it when it takes more than a minute."""
    if proc.poll() is None:
        os.kill(proc.pid, sig)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def sample_index(workdir: Path) -> tuple[Path, Path]:
    """Build the bundled sample knowledge base's index once (``askdesk index build``); (index, KB) folders."""
    kb_dir, index_dir = ROOT / "sample_kb", workdir / "index"
    if not index_dir.exists():
        env = bot_env(workdir, index_dir, kb_dir, {})
        subprocess.run([sys.executable, "-m", "bots.cli", "index", "build", "--quiet"], cwd=ROOT, env=env, check=True)
    return index_dir, kb_dir
