"""What goes into a support bundle: each item one small function returning Items (bytes to store) or Skipped (why
not). A collector never raises for a missing tool, file or permission: it says so in a Skipped, for the manifest.
Redaction is not done here (but for environment variables, whose names decide) but where the bundle is written."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import platform
import re
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from acceldoctor import __version__
from acceldoctor.bundle.redact import redact_env_value, redact_text
from acceldoctor.messages import describe_exception
from acceldoctor.report.model import REPORT_SCHEMA

MAX_REPORTS = 20
MAX_REPORT_BYTES = 50 << 20

ENV_PREFIXES = ("CUDA_", "NCCL_", "NVIDIA_", "CUBLAS_", "CUDNN_", "HCCL_", "ASCEND_", "HIP_", "ROCR_", "ROCM_", "HSA_",
                "MIOPEN_", "RCCL_", "TORCH_", "TORCHELASTIC_", "TORCHINDUCTOR_", "PYTORCH_", "TRITON_", "OMP_", "KMP_",
                "MKL_", "GLOO_", "MASTER_", "ZE_", "SYCL_", "ONEAPI_", "CCL_", "I_MPI_", "FI_", "UCX_", "OMPI_",
                "SLURM_")
ENV_NAMES = frozenset({"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "NODE_RANK", "ROLE_RANK",
                       "LD_LIBRARY_PATH", "LD_PRELOAD", "PATH", "PYTHONPATH", "CUDA_VISIBLE_DEVICES", "CONDA_PREFIX",
                       "VIRTUAL_ENV", "LANG", "LC_ALL", "TZ"})
DRIVER_FILES = ("/proc/driver/nvidia/version", "/usr/local/Ascend/driver/version.info", "/opt/rocm/.info/version",
                "/sys/module/amdgpu/version", "/sys/module/nvidia/version")


@dataclass
class Item:
    name: str  # path inside the bundle's folder
    data: bytes
    kind: str = "text"  # "text": redacted as text; "json": string by string
    source: str | None = None
    note: str | None = None
    counts: Counter = field(default_factory=Counter)  # redactions the collector made itself


@dataclass
class Skipped:
    name: str
    reason: str
    source: str | None = None


Collected = list[Item | Skipped]


def _json(value) -> bytes:
    return (json.dumps(value, indent=2, default=str) + "\n").encode()


def env_is_relevant(name: str) -> bool:
    return name in ENV_NAMES or name.startswith(ENV_PREFIXES)


def collect_environment(environ: Mapping[str, str]) -> Collected:
    """The variables that steer the accelerator stack; values of secret-looking names withheld."""
    counts: Counter = Counter()
    lines = []
    names = sorted(n for n in environ if env_is_relevant(n))
    for name in names:
        value = redact_env_value(name, environ[name], counts)
        lines.append(f"{name}={value.replace(chr(92), chr(92) * 2).replace(chr(10), chr(92) + 'n')}\n")
    header = f"# {len(names)} of {len(environ)} environment variables (those that steer the accelerator stack)\n"
    return [Item("environment.txt", (header + "".join(lines)).encode("utf-8", errors="surrogateescape"),
                 counts=counts)]


def collect_pip_freeze() -> Collected:
    """Every installed distribution as name==version, like `pip freeze`, without running pip."""
    seen: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            seen.setdefault(re.sub(r"[-_.]+", "-", name).lower(), f"{name}=={dist.version}")
    return [Item("pip-freeze.txt", "".join(seen[k] + "\n" for k in sorted(seen)).encode(), source="importlib.metadata")]


def discover_devices():
    """(DeviceInfo list, HostInfo). The bundle runs it guarded (build.guarded): what it raises (no torch, a broken
    vendor runtime) is handed to collect_devices and collect_versions in its place, and noted by them."""
    from acceldoctor.devices.discovery import list_devices
    from acceldoctor.devices.versions import host_info

    return list_devices(), host_info()


def collect_devices(inventory) -> Collected:
    """The inventory as `acceldoctor devices --json` gives it; `inventory` is discover_devices' result or error."""
    if isinstance(inventory, BaseException):
        return [Skipped("devices.json", f"device discovery failed: {describe_exception(inventory, where=True)}")]
    found, host = inventory
    return [Item("devices.json", _json({"host": host.model_dump(), "devices": [d.model_dump() for d in found]}),
                 kind="json", source="acceldoctor devices --json")]


def _read_small(path: str, limit: int = 4096) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(limit).strip()
    except OSError:
        return None


def collect_versions(inventory) -> Collected:
    """The whole stack: acceldoctor, Python, OS and kernel, torch and vendor libraries, drivers."""
    uname = platform.uname()
    info: dict = {
        "acceldoctor": __version__, "python": sys.version, "python_executable": sys.executable,
        "platform": platform.platform(), "kernel": uname.release, "kernel_version": _read_small("/proc/version"),
        "uname": {"system": uname.system, "node": uname.node, "release": uname.release, "version": uname.version,
                  "machine": uname.machine},
    }
    if isinstance(inventory, BaseException):
        info["host_error"] = describe_exception(inventory)
    else:
        found, host = inventory
        info["host"] = host.model_dump()
        info["devices"] = [{"id": d.id, "name": d.name, "driver_version": d.driver_version,
                            "runtime_version": d.runtime_version} for d in found]
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch_build"] = {"version": torch.__version__, "git_version": getattr(torch.version, "git_version", None),
                               "cuda": torch.version.cuda, "hip": getattr(torch.version, "hip", None),
                               "debug": getattr(torch.version, "debug", None)}
    info["driver_files"] = {p: text for p in DRIVER_FILES if (text := _read_small(p)) is not None}
    collected: Collected = [Item("versions.json", _json(info), kind="json")]
    if torch is not None:
        with contextlib.suppress(Exception):  # private API; its absence costs only this file
            config = torch.__config__.show() + "\n" + torch.__config__.parallel_info()
            collected.append(Item("torch-config.txt", config.encode(), source="torch.__config__.show()"))
    return collected


_SCHEMA_HEAD = re.compile(rb'"schema"\s*:\s*"' + re.escape(REPORT_SCHEMA.encode()) + rb'"')


def is_report(path: Path) -> bool:
    """A JSON file whose top-level `schema` is acceldoctor.report/1 (cheap test of the head first)."""
    try:
        if path.stat().st_size > MAX_REPORT_BYTES:
            return False
        with path.open("rb") as f:
            if not _SCHEMA_HEAD.search(f.read(4096)):
                return False
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and document.get("schema") == REPORT_SCHEMA


def find_reports(folder: Path, limit: int = MAX_REPORTS) -> list[Path]:
    """The `limit` most recent acceldoctor reports among *.json in `folder` (not below it)."""
    def mtime(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0

    found = []
    for path in sorted((p for p in folder.glob("*.json") if p.is_file()), key=mtime, reverse=True):
        if is_report(path):
            found.append(path)
            if len(found) == limit:
                break
    return found


def unique_name(name: str, taken: set[str]) -> str:
    """`name`, or `name` with -2, -3... before its extension when a member has it already."""
    stem, dot, ext = name.rpartition(".") if "." in name.rsplit("/", 1)[-1] else (name, "", "")
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}-{n}{dot}{ext}"
    taken.add(candidate)
    return candidate


def collect_reports(given: list[Path] | None, cwd: Path) -> Collected:
    """The reports named with --report; without any, the most recent ones in the current folder."""
    paths = list(given) if given else find_reports(cwd)
    if not paths:
        return [Skipped("reports/", f"no acceldoctor report (*.json of schema {REPORT_SCHEMA}) in {cwd}")]
    collected: Collected = []
    taken: set[str] = set()
    for path in paths:
        name = unique_name(f"reports/{path.name}", taken)
        try:
            if not path.is_file():
                raise IsADirectoryError(21, "not a file") if path.is_dir() else FileNotFoundError(2, "no such file")
            if path.stat().st_size > MAX_REPORT_BYTES:
                collected.append(Skipped(name, "larger than 50 MiB", str(path)))
                continue
            data = path.read_bytes()
        except OSError as exc:
            collected.append(Skipped(name, exc.strerror or str(exc), str(path)))
            continue
        try:
            json.loads(data)
            kind = "json"
        except ValueError:
            kind = "text"  # a report cut short by a killed run is still worth a look
        collected.append(Item(name, data, kind=kind, source=str(path)))
    return collected


def collect_explain(log_files: list[Path]) -> Collected:
    """`acceldoctor explain` over the given logs: what went wrong, why, what to do."""
    if not log_files:
        return [Skipped("explain.json", "no logs given")]
    from acceldoctor.explain.knowledge import load_knowledge_base
    from acceldoctor.explain.report import explain_exit_code, explain_json
    from acceldoctor.explain.rootcause import find_root_cause
    from acceldoctor.explain.scan import scan
    from acceldoctor.explain.unrecognized import normalize

    result = scan(log_files, load_knowledge_base())
    if not result.files:
        return [Skipped("explain.json", "no log could be read")]
    root = find_root_cause(result.findings, result.ranks_seen)
    code = explain_exit_code(result)
    note = (f"exit code {code}: {len(result.findings)} finding(s), "
            f"{len(result.unrecognized.templates)} unrecognized error template(s)")
    document = json.loads(explain_json(result, root, code))
    for group in document.get("unrecognized", []):
        # A template is its first line normalized (numbers to <NUM>...), which can cut a token below the length
        # its shape needs: make it again from the line redacted.
        if group.get("examples") and redact_text(group["examples"][0]) != group["examples"][0]:
            group["template"] = normalize(redact_text(group["examples"][0]))
    return [Item("explain.json", _json(document), kind="json", note=note)]
