"""Fingerprints: the normalizing pipeline, one pure function per kind of variable part."""

from __future__ import annotations

import pytest

from acceldoctor.portal import grouping
from acceldoctor.portal.documents import CompareUpload, ExplainUpload
from acceldoctor.portal.grouping import events_of, normalize_message

from .conftest import failing, make_report
from .test_ingest import OOM_FINDING, compare_document, explain_document
from .test_ops import _parsed


@pytest.mark.parametrize(("normalize", "text", "expected"), [
    (grouping.strip_ansi, "\x1b[31mfail\x1b[0m", "fail"),
    (grouping.replace_timestamps, "at 2026-01-02T03:04:05.123Z", "at <TIME>"),
    (grouping.replace_uuids, "job 123e4567-e89b-12d3-a456-426614174000", "job <UUID>"),
    (grouping.replace_pci_addresses, "GPU 0000:3b:00.0 fell off", "GPU <PCI> fell off"),
    (grouping.replace_ip_addresses, "peer 10.0.0.12:29500 reset", "peer <IP> reset"),
    (grouping.replace_hex, "address 0x7ffe12ab, deadbeef00112233", "address <HEX>, <HEX>"),
    (grouping.replace_paths, "see /var/log/train/rank3.log", "see <PATH>"),
    (grouping.replace_device_indices, "cuda:3, npu:0, rank 5, GPU 2, device #1, rank3",
     "cuda:<N>, npu:<N>, rank <N>, GPU <N>, device #<N>, rank<N>"),
    (grouping.replace_durations, "hung after 60 s, 150ms, 2.5 seconds, 10m", "hung after <DURATION>, <DURATION>, "
     "<DURATION>, <DURATION>"),
    (grouping.replace_numbers, "element (3, 17) off by 4.5e-3 (12%) in float16", "element (<NUM>, <NUM>) off by "
     "<NUM> (<NUM>%) in float16"),
    # an error's code says which error it is
    (grouping.replace_numbers, "Xid 79 on GPU, Xid: 48, exit code 137, CUDA error 700, signal 9 after 3 tries",
     "Xid 79 on GPU, Xid: 48, exit code 137, CUDA error 700, signal 9 after <NUM> tries"),
    (grouping.replace_numbers, "relative error 0.015 (12 ULPs), error 3, status 1.5e-3",
     "relative error <NUM> (<NUM> ULPs), error <NUM>, status <NUM>"),
    (grouping.replace_device_names, "nvidia3 missing, port mlx5_0 down, davinci2", "nvidia<N> missing, port mlx5_<N> "
     "down, davinci<N>"),
    (grouping.collapse_whitespace, "a  \t b\n c", "a b c"),
])
def test_each_normalizer(normalize, text, expected):
    assert normalize(text) == expected


def test_the_pipeline_keeps_dtypes_and_check_words():
    message = "float16 matmul on cuda:3 off by 4096 ULPs at element (3, 17) after 12.5 s; see /tmp/x.log"
    assert normalize_message(message) == ("float16 matmul on cuda:<N> off by <NUM> ULPs at element (<NUM>, <NUM>) "
                                          "after <DURATION>; see <PATH>")


def _prints(document) -> set[str]:
    return {e.fingerprint for e in events_of(document)}


def test_the_same_failure_elsewhere_has_the_same_fingerprint():
    a = _parsed(make_report("a", results=[failing(device="cuda:0")]))
    b = _parsed(make_report("b", results=[failing(device="cuda:1", message=failing()[3].replace("17", "99"))]))
    assert _prints(a) == _prints(b) and len(_prints(a)) == 1


def test_check_model_and_message_each_make_a_different_fingerprint():
    base = _prints(_parsed(make_report(results=[failing()])))
    assert base != _prints(_parsed(make_report(results=[failing("correctness.softmax")])))
    assert base != _prints(_parsed(make_report(results=[failing()], model="Other")))
    assert base != _prints(_parsed(make_report(results=[failing(message="NaN in the output")])))


def test_explain_findings_group_by_entry_whatever_the_excerpt():
    one = ExplainUpload.model_validate(explain_document(OOM_FINDING))
    other = ExplainUpload.model_validate(explain_document({**OOM_FINDING, "excerpt": "Tried to allocate 9 GiB"}))
    assert _prints(one) == _prints(other)


def test_only_a_divergent_comparison_is_an_event():
    assert events_of(CompareUpload.model_validate(compare_document(equivalent=True))) == []
    [event] = events_of(CompareUpload.model_validate(compare_document()))
    assert (event.kind, event.key) == ("divergence", "layers.3.attn")  # a qualified name is an identifier
