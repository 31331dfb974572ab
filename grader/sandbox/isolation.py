"""What student code runs inside: a scratch folder, an allow-listed environment, an isolation
backend, and a process tree that is torn down completely when the run ends.

Isolation backends (`--isolation`):
- `namespace`: bubblewrap (`bwrap`) runs the notebook in new user, PID, network, IPC and UTS
  namespaces: no network but loopback, no view of the runner's other processes (and so of
  their environments and tokens), the whole file system read-only except the run's scratch
  folder, a private /tmp, a minimal /dev (plus the NVIDIA devices), and no capabilities.
  When the run ends, its PID namespace ends, and every process in it. A grader running as
  root runs student code as `nobody` (65534): a real unprivileged user, not root mapped into a
  user namespace, so root-only files of the runner stay unreadable.
- `user`: no namespaces, but a grader running as root runs student code as `nobody`, with
  no new privileges: for containers that may not create namespaces (Gradescope's). What it
  must not read (graders, the private split, the grades) has to be closed to other users by
  the file system's permissions; the grader refuses to run a notebook where one is not.
- `none`: the same user and file system as the grader; only the allow-listed environment,
  the limits and the process-tree sweep. For trusted code, or machines without bubblewrap.
- `auto` (default): `namespace` when bubblewrap works here, else `none` (the report says so).
See docs/SECURITY.md for what each guarantees and how to set up a runner.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import os
import shutil
import signal
import site
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import GraderError
from grader.sandbox.disk import ScratchQuota
from grader.sandbox.limits import Enforcer, Limits
from grader.sandbox.processes import parent_death_signal

# Passed through to the kernel when set; everything else (tokens, CI secrets, cloud
# credentials, the grader's own settings) is dropped. An allow-list, never a deny-list.
PASSED_THROUGH = (
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "CUDA_HOME",
    "LD_LIBRARY_PATH",
    "OMP_NUM_THREADS",
    "OMP_WAIT_POLICY",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
)


@dataclass(frozen=True)
class Scratch:
    """The folders of one run. `student/` (with `work`, `home`, `capture` and `output` in it) is
    handed to student code: the only place it may write, with room beside its working folder
    for the `../data` tutorials write to. The folder itself and `run/` stay the grader's: there
    the grader writes the runner's input, its logs and the programs it evaluates, where the
    notebook can neither write nor swap anything. With a `quota`, the whole folder is at most
    that big (grader.sandbox.disk)."""

    root: Path
    quota: ScratchQuota | None = field(default=None, compare=False)

    @property
    def student(self) -> Path:  # everything student code may write, and nothing else
        return self.root / "student"

    @property
    def work(self) -> Path:  # the kernel's working directory, with ./data staged in it
        return self.student / "work"

    @property
    def home(self) -> Path:
        return self.student / "home"

    @property
    def capture(self) -> Path:  # what the capture cell hands over
        return self.student / "capture"

    @property
    def output(self) -> Path:  # what the runner hands over: the executed notebook
        return self.student / "output"

    @property
    def run(self) -> Path:  # the grader's: the runner's input, the logs, programs to evaluate
        return self.root / "run"

    @classmethod
    def create(cls, disk_mb: int | None = None, mount: bool = True) -> Scratch:
        """A new scratch folder; with `disk_mb`, a quota (its own file system where `mount` and
        the machine allow it, else a watchdog)."""
        root = Path(tempfile.mkdtemp(prefix="grader-")).resolve()
        quota = ScratchQuota.create(root, disk_mb, mount) if disk_mb else None
        scratch = cls(root, quota)
        for folder in (
            scratch.work, scratch.home, scratch.capture, scratch.output, scratch.run,
            scratch.home / "tmp",
        ):  # fmt: skip
            folder.mkdir(parents=True, exist_ok=True)
        # Enterable by the sandbox user (who must reach its own folders and read the runner's
        # input), writable by the grader alone.
        for folder in (root, scratch.run):
            folder.chmod(0o711)
        return scratch

    def discard_notebook_files(self) -> None:
        """Remove what the notebook left once its run is over, but for what it hands over (the
        executed notebook and the capture): the grader's copies of the programs it evaluates
        must find room even when the notebook filled the quota."""
        kept = {self.capture.name, self.output.name}
        try:
            with os.scandir(self.student) as entries:
                left = [Path(entry.path) for entry in entries if entry.name not in kept]
        except OSError:
            left = []
        for path in left:
            _remove_tree(path)

    def remove(self) -> None:
        if self.quota is not None:
            self.quota.release()  # unmounting takes every file of the run with it
        _remove_tree(self.root)


def _remove_tree(folder: Path) -> None:
    """Delete `folder`, also where the notebook made folders read-only, never through a link:
    each folder is opened without following links and opened up through its descriptor, so a
    link the notebook left (to /usr/lib, say, or in place of a folder) never changes a file
    of the runner. A link is removed as a link."""
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode):
        with contextlib.suppress(OSError):
            folder.unlink()
        return
    _open_up(str(folder), None)
    shutil.rmtree(folder, ignore_errors=True)


def _open_up(name: str, parent: int | None) -> None:
    """chmod 0700 the folder `name` (relative to the descriptor `parent`) and every real folder
    under it, through descriptors opened with O_NOFOLLOW."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    except OSError:
        return
    try:
        children: list[str] = []
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o700)
            with os.scandir(fd) as entries:
                children = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
        for child in children:
            _open_up(child, fd)
    finally:
        os.close(fd)


def kernel_env(scratch: Scratch) -> dict[str, str]:
    """The whole environment student code sees."""
    env = {key: os.environ[key] for key in PASSED_THROUGH if key in os.environ}
    home = scratch.home
    env.update(
        PATH=os.pathsep.join(
            [str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
        ),
        HOME=str(home),
        TMPDIR=str(home / "tmp"),
        LANG=env.get("LANG", "C.UTF-8"),
        PYTHONNOUSERSITE="1",
        PYTHONUNBUFFERED="1",
        IPYTHONDIR=str(home / ".ipython"),
        JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
        JUPYTER_DATA_DIR=str(home / ".local/share/jupyter"),
        JUPYTER_RUNTIME_DIR=str(home / ".local/share/jupyter/runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        MPLCONFIGDIR=str(home / ".config/matplotlib"),
        TORCH_HOME=str(scratch.work / ".torch"),
        # No index for pip, and a dead proxy for everything else: a `!pip install` or a
        # download fails at once with a clear message instead of hanging on a runner
        # that has no internet.
        PIP_NO_INDEX="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        http_proxy="http://127.0.0.1:9",
        https_proxy="http://127.0.0.1:9",
        NO_PROXY="",
    )
    python_path = forwarded_python_path()
    if python_path:
        env["PYTHONPATH"] = os.pathsep.join(python_path)
    # OpenMP threads spin while they wait for work: on a shared CPU (grader batch, a busy
    # runner) thousands of small steps then take 10-20 times longer. Passive waiting costs
    # nothing measurable on big tensors.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


@functools.cache
def bubblewrap_works() -> bool:
    """Whether `bwrap` is installed and may create namespaces on this machine."""
    return _bubblewrap_runs(*_IN_USER_NAMESPACE, ["true"])


def _bubblewrap_runs(unshare: list[str], capabilities: list[str], command: list[str]) -> bool:
    """Whether bubblewrap, with these namespaces and capabilities, can run `command` here."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False
    probe = [
        bwrap,
        *unshare,
        "--ro-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        *capabilities,
        "--",
        *command,
    ]
    try:
        return subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def resolve_isolation(requested: str) -> str:
    if requested == "auto":
        return "namespace" if bubblewrap_works() else "none"
    if requested == "user":
        if os.geteuid() != 0:
            raise GraderError(
                "--isolation user runs the notebook as the user nobody, which only a grader "
                "running as root can do; run the grader as root, or use --isolation namespace"
            )
        closed = [path for path in _needed_outside_scratch() if not _open_to_nobody(path)]
        if closed:
            raise GraderError(
                f"--isolation user runs the notebook as the user nobody, who cannot read "
                f"{closed[0]} (the grader's Python or its packages): install them where every "
                "user may read them (not under /root), or use --isolation namespace"
            )
    if requested == "namespace" and not bubblewrap_works():
        raise GraderError(
            "--isolation namespace needs bubblewrap, which is missing or may not create "
            "namespaces here (apt-get install bubblewrap; in a container, allow user "
            "namespaces); or pass --isolation none for trusted code"
        )
    return requested


# Who student code runs as when the grader is root (`namespace` backend): nobody/nogroup.
SANDBOX_UID = SANDBOX_GID = 65534

# Run inside the namespaces, as root with only CAP_SETUID and CAP_SETGID: become nobody for
# good (setuid from root clears every capability; bubblewrap's no_new_privs keeps it so), then
# exec the real command.
_DROP_PRIVILEGES = (
    "import ctypes, os, sys\n"
    # PR_SET_NO_NEW_PRIVS: no set-uid program (su, a runner's helper) gives any of it back.
    "ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0)\n"
    "os.setgroups([]); os.setgid(int(sys.argv[2])); os.setuid(int(sys.argv[1]))\n"
    "try: os.execv(sys.argv[3], sys.argv[3:])\n"
    "except OSError as e: sys.exit(f'the sandbox cannot run {sys.argv[3]} as nobody: {e.strerror}')"
)


# The namespaces and capabilities bubblewrap gives each way of running: as the grader's own
# user, in a user namespace; or, for a root grader, without one, keeping only what it takes
# to become nobody. In a user namespace that root creates, uid 0 (or any uid) inside is root
# outside, and can read every root-owned file; so root builds the namespaces and the command
# then becomes a real unprivileged user (_DROP_PRIVILEGES).
_IN_USER_NAMESPACE = (["--unshare-all"], ["--cap-drop", "ALL"])
_AS_NOBODY = (
    ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"],
    ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"],
)


def _as_nobody(command: list[str]) -> list[str]:
    drop = [sys.executable, "-I", "-c", _DROP_PRIVILEGES, str(SANDBOX_UID), str(SANDBOX_GID)]
    return [*drop, *command]


def drops_privileges(isolation: str) -> bool:
    """Whether student code runs as `nobody` rather than as the grader's own user."""
    if isolation == "user":
        return True  # resolve_isolation made sure the grader is root
    return isolation == "namespace" and os.geteuid() == 0 and root_can_drop_privileges()


@functools.cache
def root_can_drop_privileges() -> bool:
    """Whether root may build the namespaces without a user namespace and then become nobody.
    That needs CAP_SYS_ADMIN, which root lacks in an unprivileged container: there the
    sandbox falls back to a user namespace (root inside, no capabilities; the report says
    which)."""
    true = shutil.which("true")
    return true is not None and _bubblewrap_runs(*_AS_NOBODY, _as_nobody([true]))


def isolate(
    command: list[str], isolation: str, scratch: Scratch, cwd: Path, hidden: tuple[Path, ...] = ()
) -> list[str]:
    """`command`, wrapped in the isolation backend; `hidden` folders look empty inside."""
    if isolation == "none":
        return command
    if isolation == "user":  # the machine's own file system and processes, as nobody
        return _as_nobody(command)
    drop = drops_privileges(isolation)
    unshare, capabilities = _AS_NOBODY if drop else _IN_USER_NAMESPACE
    if drop:
        command = _as_nobody(command)
    needed = _needed(scratch)
    remounted = [p for p in needed if p != scratch.root and _under_private_mounts(p)]
    wrapper = [
        shutil.which("bwrap"),
        *unshare,
        "--die-with-parent",
        "--new-session",
        "--ro-bind",
        "/",
        "/",
        *(_reachable_for_nobody(needed, scratch) if drop else []),
        "--dev",
        "/dev",
        # POSIX semaphores and shared memory, which DataLoader workers (num_workers=2, as in
        # Colab's and PyTorch's tutorials) need: writable for nobody too, private to the run.
        "--perms",
        "1777",
        "--tmpfs",
        "/dev/shm",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
        # What the sandbox needs that the three mounts above cover (a virtual environment in a
        # clone under /tmp, say) is mounted back, read-only, after them.
        *_mount_back(remounted, _maskable(hidden, scratch)),
        # The scratch folder is read-only but for the folders handed over: whoever student code
        # runs as, the grader's own files there stay the grader's.
        "--ro-bind",
        str(scratch.root),
        str(scratch.root),
        "--bind",
        str(scratch.student),
        str(scratch.student),
        *capabilities,
        "--chdir",
        str(cwd),
    ]
    for device in sorted(glob.glob("/dev/nvidia*")) + ["/dev/dri"]:  # CUDA keeps working
        wrapper += ["--dev-bind-try", device, device]
    return [*wrapper, "--", *command]


# Mounted fresh inside the sandbox, hiding what the machine has there.
PRIVATE_MOUNTS = (Path("/tmp"), Path("/dev"), Path("/proc"))


def _under_private_mounts(path: Path) -> bool:
    return any(path == mount or mount in path.parents for mount in PRIVATE_MOUNTS)


def _mount_back(paths: list[Path], hidden: list[Path] = ()) -> list[str]:
    """bubblewrap arguments that mount `paths` back, read-only, into the fresh mounts, then
    cover each `hidden` folder with an empty one; the folders above them that bubblewrap makes
    in the fresh mounts (for root alone) are made enterable, so hidden folders look empty to
    student code whatever its user, wherever they are."""
    arguments: list[str] = []
    made: set[Path] = set()

    def enterable_parents(path: Path) -> None:
        for folder in reversed(path.parents):
            if _under_private_mounts(folder) and folder not in {*PRIVATE_MOUNTS, *made}:
                arguments.extend(["--perms", "0755", "--dir", str(folder)])
                made.add(folder)

    for path in paths:
        enterable_parents(path)
        arguments += ["--ro-bind", str(path), str(path)]
    for folder in hidden:
        enterable_parents(folder)
        arguments += ["--tmpfs", str(folder)]
    return arguments


def _needed(scratch: Scratch) -> list[Path]:
    """What student code needs to reach: Python (the interpreter as named and as resolved, its
    prefixes), every folder on the grader's own sys.path, this package, the scratch folder."""
    return [*_needed_outside_scratch(), scratch.root]


def _needed_outside_scratch() -> list[Path]:
    executable = Path(sys.executable).absolute()
    prefixes = {Path(prefix).resolve() for prefix in (sys.prefix, sys.base_prefix)}
    paths = {executable.parent, executable.resolve().parent, *prefixes, *search_path()}
    paths.add(Path(__file__).resolve().parents[1])  # this package
    paths -= {Path("/")}
    # Nested paths need only the outermost; mounting both would only repeat it.
    return sorted(p for p in paths if not any(q in p.parents for q in paths))


def search_path() -> list[Path]:
    """The folders on this process's sys.path (what the grader imports from), less the current
    folder, which may be a classroom checkout the notebook must not see."""
    cwd = Path.cwd().resolve()
    found = []
    for entry in sys.path:
        if not entry or not os.path.isabs(entry):
            continue
        path = Path(entry).resolve()
        if path != cwd and path.exists() and path not in found:
            found.append(path)
    return found


def python_module(module: str, *arguments: str) -> list[str]:
    """The command that runs `python -m module arguments` for the grader inside the sandbox,
    with neither the folder it starts in (`-P`) nor a user site (`-s`) on sys.path: nothing the
    notebook wrote, in its working folder or its home, can stand in for a module that process
    imports, however late it imports it. The search path is the grader's own, as passed on in
    PYTHONPATH by kernel_env, which the notebook cannot change."""
    if sys.version_info >= (3, 11):
        return [sys.executable, "-P", "-s", "-m", module, *arguments]
    # Python 3.10 has no -P: `-c` puts the working folder first on sys.path, the bootstrap
    # takes it off, then runs the module as -m would.
    return [sys.executable, "-s", "-c", _RUN_MODULE, module, *arguments]


_RUN_MODULE = (
    "import runpy, sys; del sys.path[0]; "
    "runpy.run_module(sys.argv.pop(1), run_name='__main__', alter_sys=True)"
)


def forwarded_python_path() -> list[str]:
    """Folders a Python started in the sandbox would not find by itself: $PYTHONPATH's, and the
    user's site-packages (the sandbox has another $HOME and no user site). Passed on through
    PYTHONPATH, so that student code imports the packages the grader does."""
    cwd = Path.cwd().resolve()
    entries = [e for e in os.environ.get("PYTHONPATH", "").split(os.pathsep) if e]
    if site.ENABLE_USER_SITE and site.USER_SITE and site.USER_SITE in sys.path:
        entries.append(site.USER_SITE)
    kept = []
    for entry in entries:
        path = Path(entry).resolve()
        if os.path.isabs(entry) and path.is_dir() and path != cwd and str(path) not in kept:
            kept.append(str(path))
    return kept


def _traversable_by_nobody(folder: Path) -> bool:
    stat = folder.stat()
    return bool(
        stat.st_mode & 0o001
        or (stat.st_uid == SANDBOX_UID and stat.st_mode & 0o100)
        or (stat.st_gid == SANDBOX_GID and stat.st_mode & 0o010)
    )


def _open_to_nobody(path: Path) -> bool:
    """Whether `nobody` may reach `path` and read it (list it, for a folder), by the mode bits
    of it and every folder above it. ACLs are not read: an entry naming nobody on a folder
    whose group bits allow it would open what this calls closed (docs/SECURITY.md, `user`)."""
    try:
        if not all(_traversable_by_nobody(folder) for folder in path.parents):
            return False
        info = path.stat()
    except OSError:
        return False
    wanted = 0o005 if stat.S_ISDIR(info.st_mode) else 0o004
    if info.st_uid == SANDBOX_UID:
        return info.st_mode & (wanted << 6) == wanted << 6
    if info.st_gid == SANDBOX_GID:
        return info.st_mode & (wanted << 3) == wanted << 3
    return info.st_mode & wanted == wanted


def _closed_to_nobody(folder: Path) -> bool:
    """Whether `nobody` can reach nothing in `folder`: it, or a folder above it, may not be
    entered."""
    try:
        return not all(_traversable_by_nobody(p) for p in (folder, *folder.parents))
    except OSError:
        return True  # gone, or not ours to look at: nothing to reach


def _reachable_for_nobody(needed: list[Path], scratch: Scratch) -> list[str]:
    """bubblewrap arguments that let `nobody` reach what it needs under a folder it may not
    enter (Python installed under /root, say): that folder becomes an empty tmpfs, and only
    what is needed is mounted back into it (read-only; the scratch folder is bound later)."""
    arguments: list[str] = []
    made: set[Path] = set()
    for path in needed:
        closed = next(
            (folder for folder in reversed(path.parents) if not _traversable_by_nobody(folder)),
            None,
        )
        if closed is None:
            continue
        if closed not in made:
            arguments += ["--perms", "0755", "--tmpfs", str(closed)]
            made.add(closed)
        for folder in reversed(path.parents):
            if closed in folder.parents and folder not in made:
                arguments += ["--perms", "0755", "--dir", str(folder)]
                made.add(folder)
        if path != scratch.root:
            arguments += ["--ro-bind", str(path), str(path)]
    return arguments


def _hand_over(scratch: Scratch) -> None:
    """Give the folders student code may write (`Scratch.student`; not the files in them: the
    staged data stays the grader's, read-only) to `nobody`. The scratch folder itself and
    `run/` stay root's, so nothing there can be swapped. Their group stays root's, with full
    rights: bubblewrap, root without capabilities until the command drops them, must still
    enter them. Links are never followed."""
    for _folder, _subfolders, _files, fd in os.fwalk(scratch.student, follow_symlinks=False):
        os.fchown(fd, SANDBOX_UID, -1)
        os.fchmod(fd, os.fstat(fd).st_mode | 0o770)


def _maskable(hidden: tuple[Path, ...], scratch: Scratch) -> list[Path]:
    """The folders to hide, less any that holds what the sandbox itself needs to run."""
    needed = _needed(scratch)
    masked = []
    for folder in hidden:
        folder = Path(folder).resolve()
        if (
            folder.is_dir()
            and folder != Path("/")
            and not any(path == folder or folder in path.parents for path in needed)
        ):
            masked.append(folder)
    return masked


class Sandbox:
    """How student code runs in one grading: its scratch folder, environment, isolation backend
    and limits. The notebook's runner and the model-evaluation worker both start here."""

    def __init__(
        self, scratch: Scratch, isolation: str, limits: Limits, hidden: tuple[Path, ...] = ()
    ):
        self.scratch = scratch
        self.isolation = isolation
        self.limits = limits
        self.hidden = hidden  # folders student code must not read: graders, private data
        self.enforcer = Enforcer(limits)
        self._handed_over = False

    def spawn(self, command: list[str], cwd: Path, **popen) -> subprocess.Popen:
        """Start `command` in the sandbox, from the grader's main thread: the sandbox gets
        SIGTERM when the grader ends, however it ends (the runner then kills its kernel's
        tree; bubblewrap's --die-with-parent turns it into SIGKILL of the whole namespace)."""
        if drops_privileges(self.isolation) and not self._handed_over:
            if self.isolation == "user":
                self._require_closed()
            _hand_over(self.scratch)  # once, before any student code ran
            self._handed_over = True
        die_with_parent = parent_death_signal(signal.SIGTERM)

        def preexec() -> None:
            die_with_parent()
            self.enforcer.preexec()

        return subprocess.Popen(
            isolate(command, self.isolation, self.scratch, cwd, self.hidden),
            env=kernel_env(self.scratch),
            cwd=cwd,
            start_new_session=True,
            preexec_fn=preexec,
            **popen,
        )

    def require_hidden(self, folder: Path, what: str) -> None:
        """Raise GraderError unless `folder` (in `hidden`) looks empty to student code: a
        folder holding the interpreter or the grader itself cannot be covered."""
        folder = Path(folder).resolve()
        if self.isolation == "none":
            return
        if self.isolation == "user":
            if not _closed_to_nobody(folder):
                raise GraderError(_open_message(folder, what))
            return
        if folder in _maskable((folder,), self.scratch):
            return
        holds = [p for p in _needed(self.scratch) if p == folder or folder in p.parents]
        if holds:
            raise GraderError(
                f"{what} is in {folder}, which also holds what the sandbox needs to run "
                f"({holds[0]}), so the notebook could read it: keep the data set in a folder of "
                "its own and pass that as --data-dir"
            )

    def _require_closed(self) -> None:
        """`user` isolation hides nothing: every folder student code must not read has to be
        closed to other users already (the Gradescope bundle's setup.sh closes its own)."""
        for folder in _maskable(self.hidden, self.scratch):
            if not _closed_to_nobody(folder):
                raise GraderError(_open_message(folder, "a folder the notebook must not read"))

    def within_limits(self, root_pid: int) -> bool:
        """The watchdogs, for what no cgroup or file system enforces: False (and the run's
        process tree killed, for memory and processes) once the run is over a limit."""
        if not self.enforcer.check(root_pid):
            return False
        quota = self.scratch.quota
        if quota is not None and not quota.within():
            self.enforcer.tripped = "disk"
            return False
        return True

    def out_of_disk(self) -> bool:
        """Did the notebook use up its scratch quota?"""
        quota = self.scratch.quota
        return self.enforcer.tripped == "disk" or (quota is not None and quota.full())

    def describe(self) -> str:
        limits = self.limits
        user = ""
        if self.isolation == "user":
            user = " as user nobody, without namespaces"
        elif self.isolation == "namespace" and os.geteuid() == 0:
            user = (
                " as user nobody"
                if drops_privileges(self.isolation)
                else " as root in a user namespace, without capabilities"
            )
        quota = self.scratch.quota
        disk = f"; {quota.megabytes:,} MB of disk ({quota.mechanism})" if quota else ""
        return (
            f"{self.isolation} isolation{user}; at most {limits.memory_mb:,} MB of memory, "
            f"{limits.processes} processes, files of {limits.file_size_mb:,} MB "
            f"({self.enforcer.mechanism}){disk}"
        )

    def close(self) -> None:
        self.enforcer.close()


def _open_message(folder: Path, what: str) -> str:
    return (
        f"{what} is in {folder}, which the user nobody may enter, and --isolation user hides "
        f"nothing by itself: close it to other users (chmod o-rx {folder}), or use "
        "--isolation namespace"
    )
