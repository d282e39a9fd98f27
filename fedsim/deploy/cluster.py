"""A real Flower federation on 127.0.0.1: one ``flower-superlink`` and N ``flower-supernode``s.

:class:`FlowerCluster` starts the processes on free loopback ports, keeps everything Flower
writes (``config.toml``, installed apps, logs, certificates) under one directory used as
``FLWR_HOME``, drives runs through the ``flwr`` CLI and stops every process it started, also
on Ctrl-C, on failure and at interpreter exit.

Facts about flwr 1.42 this relies on (measured on that version):

* The SuperLink serves Fleet, Control and Runtime APIs on one HTTP port (``--host/--port``);
  each SuperNode needs its own ``--port`` for its local Runtime API.
* The SuperLink and SuperNodes launch ``flower-superexec`` and the app processes *by name*,
  so ``PATH`` must contain the directory of the flwr scripts. ``flower-superexec`` starts its
  own session, so killing our process groups alone would miss it: cleanup also sweeps every
  process carrying this cluster's marker variable in its environment.
* Runtime dependency installation (``uv sync`` against PyPI, gigabytes) is on by default in
  the SuperLink; it is switched off here by flag and by environment.
* ``flwr run`` exits 0 even when the ServerApp fails, so a run's outcome is read from
  ``flwr list --run-id``; a run that cannot finish is ended with ``flwr stop``.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from fedsim.deploy.ports import LOOPBACK, free_port, require_free_port
from fedsim.deploy.tls import TlsFiles, make_certificates
from fedsim.errors import FedsimError

__all__ = ["CONNECTION", "FlowerCluster", "RunStatus", "flower_bin_dir", "processes_with_marker"]

CONNECTION = "fedsim"
# Resolved here, not in the forked child, where loading a library is not safe.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
_MARKER = "FEDSIM_FLOWER_CLUSTER"
_START_TIMEOUT_S = 30.0
_STOP_GRACE_S = 5.0


@dataclass(frozen=True)
class RunStatus:
    """A run's status as the SuperLink reports it, e.g. ``finished:completed``."""

    status: str
    details: str = ""

    @property
    def finished(self) -> bool:
        return self.status.startswith("finished")

    @property
    def completed(self) -> bool:
        return self.status == "finished:completed"


def flower_bin_dir() -> Path:
    """The directory holding ``flower-superlink`` and friends; prefers this interpreter's."""
    here = Path(sys.executable).parent
    if (here / "flower-superlink").exists():
        return here
    found = shutil.which("flower-superlink")
    if found is None:
        raise FedsimError(
            f"flwr is not installed: flower-superlink is neither next to {sys.executable} nor on PATH; "
            "install it with pip install 'fedsim[flower]'"
        )
    return Path(found).parent


def processes_with_marker(marker: str) -> list[int]:
    """Live (non-zombie) processes whose environment carries ``FEDSIM_FLOWER_CLUSTER=marker``."""
    needle = f"{_MARKER}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # exited meanwhile, or not ours to read
            continue
        if state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


class FlowerCluster:
    """One SuperLink and ``supernodes`` SuperNodes on loopback, as a context manager.

    Parameters
    ----------
    home : Path
        ``FLWR_HOME`` for every process and CLI call (config.toml, apps, logs, certificates).
    supernodes : int
        Number of SuperNodes; node ``i`` gets ``node_config(i)`` as its ``--node-config``.
    tls : bool (default: False)
        Run the SuperLink and the SuperNodes' Runtime APIs over TLS with a throwaway CA.
    superlink_port : int | None (default: None)
        Fixed SuperLink port; ``None`` picks a free one.
    node_config : callable | None (default: None)
        Maps a node index to its node config; default ``partition-id=i num-partitions=N``.
    external_superlink : str | None (default: None)
        ``host:port`` of a SuperLink (and SuperNodes) started elsewhere, e.g. by docker
        compose: nothing is started or stopped, the cluster only drives runs there.
    """

    def __init__(
        self,
        home: Path,
        supernodes: int,
        *,
        tls: bool = False,
        superlink_port: int | None = None,
        node_config: Callable[[int], Mapping[str, int | float | str]] | None = None,
        external_superlink: str | None = None,
    ) -> None:
        if supernodes < 1:
            raise FedsimError(f"--supernodes must be at least 1, got {supernodes}")
        if tls and external_superlink:
            raise FedsimError("--tls makes its own throwaway certificates; it cannot be combined with --superlink")
        self.home = Path(home).resolve()
        self.supernodes = supernodes
        self.tls = tls
        self._requested_port = superlink_port
        self._node_config = node_config or (lambda i: {"partition-id": i, "num-partitions": supernodes})
        self.external = external_superlink
        self.marker = uuid.uuid4().hex
        self.port = 0
        self.certs: TlsFiles | None = None
        self.superlink: subprocess.Popen[bytes] | None = None
        self.nodes: list[subprocess.Popen[bytes] | None] = []
        self._bin: Path | None = None
        self._env: dict[str, str] = {}

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> FlowerCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        return self.external or f"{LOOPBACK}:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def env(self) -> dict[str, str]:
        """The environment of every Flower process and ``flwr`` call of this cluster."""
        return dict(self._env)

    def start(self) -> None:
        """Start the SuperLink, wait until it listens, then start the SuperNodes."""
        self._bin = flower_bin_dir()
        self.home.mkdir(parents=True, exist_ok=True)
        if self.external:
            self._env = self._make_env()
            self._write_connection()
            return
        self.port = (
            require_free_port(self._requested_port, what="SuperLink port")
            if self._requested_port
            else free_port()
        )
        self.log_dir.mkdir(exist_ok=True)
        if self.tls:
            self.certs = make_certificates(self.home / "tls")
        self._env = self._make_env()
        self._write_connection()
        atexit.register(self.stop)

        self.superlink = self._spawn("superlink", ["flower-superlink", *self._superlink_args()])
        self._wait_listening(self.superlink, "superlink")
        for i in range(self.supernodes):
            self.nodes.append(self._spawn(f"supernode-{i}", ["flower-supernode", *self._supernode_args(i)]))

    def stop(self) -> None:
        """Stop every process this cluster started (SIGTERM, then SIGKILL); idempotent."""
        atexit.unregister(self.stop)
        procs = [p for p in [*self.nodes, self.superlink] if p is not None]
        for proc in procs:
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE_S
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        # Detached helpers (flower-superexec and the apps it launched) get the same treatment.
        stragglers = processes_with_marker(self.marker)
        for pid in stragglers:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE_S
        while stragglers and time.monotonic() < deadline:
            time.sleep(0.1)
            stragglers = processes_with_marker(self.marker)
        for pid in stragglers:
            _signal(pid, signal.SIGKILL)
        self.nodes = [None] * len(self.nodes)
        self.superlink = None

    def kill_supernode(self, index: int, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to SuperNode ``index``'s process group (fault injection)."""
        proc = self.nodes[index]
        if proc is None:
            return
        _signal_group(proc.pid, sig)
        proc.wait()
        self.nodes[index] = None

    @property
    def _bin_dir(self) -> Path:
        """The folder of the flwr executables (known once the cluster started)."""
        if self._bin is None:
            raise FedsimError("the Flower cluster is not started (use it as a context manager or call start())")
        return self._bin

    # ------------------------------------------------------------------ runs
    def flwr(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run ``flwr ARGS`` against this cluster's FLWR_HOME."""
        return subprocess.run(
            [str(self._bin_dir / "flwr"), *args], env=self._env, capture_output=True, text=True, timeout=timeout
        )

    def submit(self, app_dir: Path, run_config: Path | None = None) -> int:
        """Start the Flower App in ``app_dir``; returns the run id (does not wait)."""
        args = ["run", str(app_dir), CONNECTION, "--format", "json"]
        if run_config is not None:
            args += ["--run-config", str(run_config)]
        res = self.flwr(*args, timeout=120.0)
        payload = _last_json(res.stdout)
        if res.returncode != 0 or not payload.get("run-id"):
            raise FedsimError(f"flwr run {app_dir} failed: {_one_line(res.stdout + res.stderr)}")
        return int(payload["run-id"])

    def status(self, run_id: int) -> RunStatus:
        res = self.flwr("list", CONNECTION, "--run-id", str(run_id), "--format", "json")
        runs = _last_json(res.stdout).get("runs") or []
        if res.returncode != 0 or not runs:
            raise FedsimError(f"flwr list --run-id {run_id} failed: {_one_line(res.stdout + res.stderr)}")
        return RunStatus(str(runs[0].get("status", "")), str(runs[0].get("status-details") or ""))

    def stop_run(self, run_id: int) -> None:
        self.flwr("stop", str(run_id), CONNECTION)

    def logs(self, run_id: int) -> str:
        return self.flwr("log", str(run_id), CONNECTION, "--show").stdout

    def wait(
        self,
        run_id: int,
        *,
        timeout: float,
        poll_s: float = 10.0,
        ready: Callable[[], bool] | None = None,
        on_tick: Callable[[], None] | None = None,
    ) -> RunStatus:
        """Wait for the run to finish; past ``timeout`` seconds ``flwr stop`` it and raise.

        Each status query is a ``flwr list`` call (seconds of CPU on a busy machine), so the
        status is read every ``poll_s`` seconds, and at once when ``ready()`` says the app
        has written its results. ``on_tick`` runs twice a second (progress display). A run
        that ends other than ``finished:completed`` raises a one-line FedsimError carrying
        the SuperLink's status details.
        """
        deadline = time.monotonic() + timeout
        next_query = 0.0
        while True:
            if on_tick is not None:
                on_tick()
            now = time.monotonic()
            if now >= next_query or (ready is not None and ready()):
                status = self.status(run_id)
                if status.finished:
                    break
                next_query = time.monotonic() + poll_s
            if now > deadline:
                self.stop_run(run_id)
                raise FedsimError(
                    f"Flower run {run_id} did not finish within {timeout:.0f} s (status {status.status}); "
                    "it was stopped with flwr stop"
                )
            time.sleep(0.5)
        if not status.completed:
            raise FedsimError(
                f"Flower run {run_id} ended as {status.status}: {_one_line(status.details) or 'no details'}"
            )
        return status

    # ------------------------------------------------------------------ internals
    def _make_env(self) -> dict[str, str]:
        env = dict(os.environ)
        fedsim_root = str(Path(__file__).resolve().parents[2])  # the folder holding the fedsim package
        env.update(
            {
                "PATH": os.pathsep.join([str(self._bin), env.get("PATH", "")]),
                # The apps import fedsim: make it the same fedsim as the caller's.
                "PYTHONPATH": os.pathsep.join(p for p in [fedsim_root, env.get("PYTHONPATH", "")] if p),
                "FLWR_HOME": str(self.home),
                "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
                "FLWR_TELEMETRY_ENABLED": "0",
                "FLWR_DISABLE_UPDATE_CHECK": "1",
                # SuperExec polls for new tasks every second by default; 0.1 s saves up to a
                # second per message on each side.
                "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "0.1",
                "PYTHONUNBUFFERED": "1",
                _MARKER: self.marker,
            }
        )
        return env

    def _write_connection(self) -> None:
        security = (
            f'root-certificates = "{self.certs.ca_cert}"' if self.certs is not None else "insecure = true"
        )
        (self.home / "config.toml").write_text(
            f'[superlink]\ndefault = "{CONNECTION}"\n\n'
            f'[superlink.{CONNECTION}]\naddress = "{self.address}"\n{security}\n'
        )

    def _tls_args(self) -> list[str]:
        if self.certs is None:
            return ["--insecure"]
        return [
            "--ssl-certfile", str(self.certs.server_cert),
            "--ssl-keyfile", str(self.certs.server_key),
            "--ssl-ca-certfile", str(self.certs.ca_cert),
        ]

    def _superlink_args(self) -> list[str]:
        return [
            *self._tls_args(),
            "--host", LOOPBACK,
            "--port", str(self.port),
            "--disable-runtime-dependency-installation",
        ]

    def _supernode_args(self, index: int) -> list[str]:
        link = ["--insecure"] if self.certs is None else ["--root-certificates", str(self.certs.ca_cert)]
        runtime = [] if self.certs is None else self._tls_args()
        config = " ".join(f"{k}={_toml_value(v)}" for k, v in self._node_config(index).items())
        return [
            *link,
            *runtime,
            "--superlink", self.address,
            "--host", LOOPBACK,
            "--port", str(free_port()),
            "--node-config", config,
        ]

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        try:
            return subprocess.Popen(
                [str(self._bin_dir / argv[0]), *argv[1:]],
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # own process group: one signal reaches it and its children
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()

    def _wait_listening(self, proc: subprocess.Popen[bytes], name: str) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise FedsimError(
                    f"flower-{name} exited with code {proc.returncode} at start: "
                    f"{_last_line(self.log_dir / f'{name}.log')} (log: {self.log_dir / f'{name}.log'})"
                )
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.5)
                if sock.connect_ex((LOOPBACK, self.port)) == 0:
                    return
            time.sleep(0.1)
        raise FedsimError(f"flower-{name} did not listen on {self.address} within {_START_TIMEOUT_S:.0f} s")


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when this process dies, even by SIGKILL (Linux).

    Cleanup code cannot run when the caller is killed outright (a test runner's timeout, say);
    the kernel's parent-death signal still stops the SuperLink and SuperNodes, and their
    SuperExecs exit when their parent does.
    """
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def _toml_value(value: int | float | str) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def _last_json(text: str) -> dict:
    """The last line of ``text`` that parses as a JSON object (flwr prints banners before it)."""
    start = text.find("{")
    if start >= 0:
        try:
            return json.loads(text[start:])
        except json.JSONDecodeError:
            pass
    for line in reversed(text.splitlines()):
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return {}


def _one_line(text: str) -> str:
    return " ".join(text.split())[-400:]


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""
