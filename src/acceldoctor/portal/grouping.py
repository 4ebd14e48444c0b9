"""Events and their fingerprints: how uploads become problems, as error trackers group exceptions.

Every failing result (fail, timeout, crash), explain finding, unrecognized error group and divergent comparison is
an event. Its fingerprint is the sha256 of (kind, key, device model, normalized message), where the key is the check
id, the error entry id, or the comparison's first divergent call, and the message goes through NORMALIZERS: small
pure functions, each replacing one kind of variable part (an address, a path, a device index, a number...) with a
placeholder, so that the same failure on another node, device or day gets the same fingerprint.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from acceldoctor.explain.unrecognized import regex_step, strip_ansi
from acceldoctor.portal.documents import CompareUpload, ExplainUpload, ReportUpload
from acceldoctor.report.model import PROBLEM_STATUSES

Normalizer = Callable[[str], str]
MAX_TITLE_CHARS = 500


replace_timestamps = regex_step(
    "replace_timestamps", r"\d{4}-\d{2}-\d{2}[-T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?", "<TIME>")
replace_uuids = regex_step(
    "replace_uuids", r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "<UUID>", re.IGNORECASE)
replace_pci_addresses = regex_step(
    "replace_pci_addresses", r"\b(?:[0-9a-f]{4}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\b", "<PCI>", re.IGNORECASE)
replace_ip_addresses = regex_step("replace_ip_addresses", r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b", "<IP>")
replace_hex = regex_step("replace_hex", r"\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*\d)[0-9a-f]{12,}\b", "<HEX>",
                            re.IGNORECASE)
replace_paths = regex_step("replace_paths", r"(?:(?<=\s)|(?<=^)|(?<=[\"'(=:]))(?:~?/[\w.@+-]+)+/?", "<PATH>")
# cuda:3, npu:0, rank 5, GPU 2, device #1, rank3: which device or rank failed is where, not what.
replace_device_indices = regex_step(
    "replace_device_indices",
    r"\b((?:cuda|npu|xpu|hpu|mps|cpu|gpu|rank|device|card|chip|node)\s?[:#]?\s?)\d+\b", r"\1<N>", re.IGNORECASE)
# nvidia3, mlx5_0, davinci2: device files and adapters named with their index.
replace_device_names = regex_step(
    "replace_device_names", r"\b(nvidia|davinci|renderD|mlx\d+_|hfi1_)\d+\b", r"\1<N>", re.IGNORECASE)
replace_durations = regex_step(
    "replace_durations",
    r"(?<![\w.])\d+(?:\.\d+)?\s?(?:ns|us|µs|ms|seconds?|secs?|s|minutes?|mins?|m|hours?|h)\b", "<DURATION>")
_NUMBER = re.compile(r"(\b(?:xid|errno|code|signal|sig|status|(?:cuda|hip|nccl|hccl|acl|ze)\s+error)\b\s*[:=#]?\s*)?"
                     r"(?<![\w.<])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", re.IGNORECASE)


def replace_numbers(text: str) -> str:
    """Numbers become <NUM>, but not an error's integer code: `Xid 79` (fell off the bus) and `Xid 48` (an ECC
    error), `exit code 137` and `exit code 1`, `CUDA error 700` are different failures (a "relative error 0.01" is a
    measurement, and goes)."""
    def replace(found: re.Match) -> str:
        number = found.group(0)[len(found.group(1) or ""):]
        keep = found.group(1) and not any(c in number for c in ".eE")
        return found.group(0) if keep else (found.group(1) or "") + "<NUM>"

    return _NUMBER.sub(replace, text)
collapse_whitespace = regex_step("collapse_whitespace", r"\s+", " ")

NORMALIZERS: tuple[Normalizer, ...] = (
    strip_ansi, replace_timestamps, replace_uuids, replace_pci_addresses, replace_ip_addresses, replace_hex,
    replace_paths, replace_device_indices, replace_device_names, replace_durations, replace_numbers,
    collapse_whitespace)


def normalize_message(text: str, normalizers: tuple[Normalizer, ...] = NORMALIZERS) -> str:
    for normalize in normalizers:
        text = normalize(text)
    return text.strip()[:MAX_TITLE_CHARS]


def fingerprint(kind: str, key: str, device_model: str, title: str) -> str:
    return hashlib.sha256("\x1f".join((kind, key, device_model, title)).encode()).hexdigest()


@dataclass(frozen=True)
class EventDraft:
    """An event before it is stored: what it is (the fingerprint's parts) and where it happened."""

    kind: str  # result, finding, unrecognized, divergence
    key: str
    device_model: str
    title: str  # the normalized message
    message: str  # the message as it was
    device: str | None = None
    software: str = ""

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.kind, self.key, self.device_model, self.title)


def _device_kind(device: str) -> str:
    """`cuda:3` -> `cuda`: the model when the report does not say (a rank on another host)."""
    return device.split(":", 1)[0]


def software_of(report: ReportUpload, device: str | None) -> str:
    """The versions that matter for a problem on this device: torch, the vendor stack, the device's driver."""
    parts = [f"torch {report.host.torch}"] if report.host.torch else []
    parts += [f"{name} {version}" for name, version in sorted(report.host.stack.items())]
    for info in report.devices:
        if info.id == device:
            parts += [f"{what} {value}" for what, value in (("driver", info.driver_version),
                                                             ("runtime", info.runtime_version)) if value]
    return ", ".join(dict.fromkeys(parts))[:1000]


def report_events(report: ReportUpload) -> Iterator[EventDraft]:
    models = {device.id: device.name for device in report.devices}
    for result in report.results:
        if result.status not in PROBLEM_STATUSES:
            continue
        model = models.get(result.device) if result.host in (None, report.host.hostname) else None
        title = normalize_message(f"{result.status.value}: {result.message}")
        yield EventDraft("result", result.check, model or _device_kind(result.device), title, result.message,
                         result.device, software_of(report, result.device))


def explain_events(document: ExplainUpload) -> Iterator[EventDraft]:
    # A known error is one problem whatever its excerpt says: the entry id and title identify it.
    for finding in document.findings:
        yield EventDraft("finding", finding.id, "", normalize_message(finding.title), finding.excerpt or finding.title)
    for group in document.unrecognized:
        title = normalize_message(group.template)
        yield EventDraft("unrecognized", "unrecognized", "", title, group.examples[0] if group.examples else title)


def compare_events(document: CompareUpload) -> Iterator[EventDraft]:
    first = document.first_divergence
    if document.equivalent or not first:
        return
    key = normalize_message(str(first.get("module_or_op") or first.get("key") or "?"))
    runs = " vs ".join(f"{_device_kind(str(run.get('device', '?')))} {run.get('dtype', '?')}"
                       for _, run in sorted(document.runs.items()))
    verdict = str(first.get("verdict", ""))
    title = normalize_message(f"{first.get('direction', '')}: {key}")
    yield EventDraft("divergence", key[:255], runs[:255], title, verdict or title)


def events_of(document: ReportUpload | ExplainUpload | CompareUpload) -> list[EventDraft]:
    if isinstance(document, ExplainUpload):
        return list(explain_events(document))
    if isinstance(document, CompareUpload):
        return list(compare_events(document))
    return list(report_events(document))
