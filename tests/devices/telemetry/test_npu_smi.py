"""Ascend telemetry from `npu-smi` output: recorded outputs for the parsing, a fake `npu-smi` on PATH for the rest.

The recorded outputs in data/ follow npu-smi's own print formats ("\\t%-30s : %s") and published outputs of
Ascend 910B hosts.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from acceldoctor.devices.telemetry import open_telemetry
from acceldoctor.devices.telemetry.npu_smi import (
    error_codes,
    open_npu_smi,
    parse_npu_chip_map,
    parse_npu_smi_fields,
    sample_from_npu_smi,
)

DATA = Path(__file__).parent / "data"

# As posted from a 910B host, with the blank lines lost: the NPU's temperature still comes before the MCU's.
COMMON_WITHOUT_BLANK_LINES = """\
NPU ID                         : 0
Chip Count                     : 1
Chip ID                        : 0
Memory Usage Rate(%)           : 6
HBM Usage Rate(%)              : 0
Aicore Usage Rate(%)           : 0
Aicore Freq(MHZ)               : 1000
Aicore curFreq(MHZ)            : 1000
Aicore Count                   : 32
Temperature(C)                 : 46
NPU Real-time Power(W)         : 69.0
Chip Name                      : mcu
Temperature(C)                 : 48
"""


def text(name: str) -> str:
    return (DATA / name).read_text()


def test_common_output_gives_the_npu_chip_readings_not_the_mcu():
    sample = sample_from_npu_smi(parse_npu_smi_fields(text("npu-smi-info-t-common-910b.txt")))
    assert sample.temperature_c == 67  # the MCU block's 40 C comes later and does not replace it
    assert sample.power_w == pytest.approx(331.1)
    assert sample.clock_mhz == 1650  # the clock now, not the rated 1800
    assert sample_from_npu_smi(parse_npu_smi_fields(COMMON_WITHOUT_BLANK_LINES)).temperature_c == 46


def test_a_card_with_two_chips_reads_the_chip_asked_for():
    output = text("npu-smi-info-t-common-2chips.txt")
    second = sample_from_npu_smi(parse_npu_smi_fields(output, chip=1))
    assert (second.temperature_c, second.clock_mhz) == (61, 1500)
    assert sample_from_npu_smi(parse_npu_smi_fields(output)).temperature_c == 55


def test_health_and_its_error_codes():
    alarm = parse_npu_smi_fields(text("npu-smi-info-t-health-alarm.txt"))
    assert sample_from_npu_smi({}, health=alarm).health == "Alarm"
    assert error_codes(alarm) == ["80E18005", "80CB8009"]
    ok = parse_npu_smi_fields(text("npu-smi-info-t-health-ok.txt"))
    assert sample_from_npu_smi({}, health=ok).health == "OK" and error_codes(ok) == []
    assert sample_from_npu_smi({}, health={"Healthy": "OK"}).health == "OK"  # older npu-smi's wording


def test_ecc_counts_since_driver_load_not_over_the_chips_life():
    sample = sample_from_npu_smi({}, ecc=parse_npu_smi_fields(text("npu-smi-info-t-ecc-clean.txt")))
    assert (sample.ecc_corrected, sample.ecc_uncorrected) == (3, 0)


def test_the_chip_map_names_each_logic_id_by_card_and_chip():
    chips = parse_npu_chip_map(text("npu-smi-info-m-910b.txt"))
    assert chips[5] == (5, 0) and len(chips) == 8  # the MCU rows have no logic id


def fake_npu_smi(tmp_path: Path, outputs: dict[str, str], hang: str = "") -> Path:
    """An `npu-smi` that prints outputs[<type>-<card>] for `info -t <type> -i <card> ...`, and `info-m` for `info -m`.
    An unknown card fails as npu-smi does; the `hang` type never answers."""
    for name, content in outputs.items():
        (tmp_path / f"{name}.txt").write_text(content)
    script = tmp_path / "bin" / "npu-smi"
    script.parent.mkdir()
    script.write_text(f"""#!/bin/sh
D='{tmp_path}'
if [ "$2" = "-m" ]; then cat "$D/info-m.txt"; exit 0; fi
if [ "$3" = "{hang}" ]; then exec sleep 30; fi
if [ ! -f "$D/$3-$5.txt" ]; then echo "Error: device $5 does not exist." >&2; exit 1; fi
cat "$D/$3-$5.txt"
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script.parent


def test_npu_readings_through_the_command_follow_ascend_rt_visible_devices(tmp_path, monkeypatch):
    outputs = {"info-m": text("npu-smi-info-m-910b.txt"), "common-5": text("npu-smi-info-t-common-910b.txt"),
               "health-5": text("npu-smi-info-t-health-alarm.txt"), "ecc-5": text("npu-smi-info-t-ecc-clean.txt")}
    monkeypatch.setenv("PATH", str(fake_npu_smi(tmp_path, outputs)) + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("ASCEND_RT_VISIBLE_DEVICES", "4,5")
    source, how = open_telemetry("npu:1")  # the second visible NPU: logic id 5, card 5 on this host
    assert source is not None and source.name == "npu-smi" and "npu-smi" in how
    first = source.read().as_dict()
    assert first["temperature_c"] == 67 and first["health"] == "Alarm" and first["ecc_corrected"] == 3
    assert first["xid"] == ["80E18005", "80CB8009"]
    second = source.read().as_dict()  # at once: health and ECC are read only every SLOW_EVERY_S
    assert second["temperature_c"] == 67 and "health" not in second and "xid" not in second
    source.slow_every_s = 0
    assert source.read().xid == []  # the same codes are not news twice


def test_a_hung_npu_smi_leaves_that_reading_absent(tmp_path, monkeypatch):
    outputs = {"info-m": "", "common-0": text("npu-smi-info-t-common-910b.txt")}
    monkeypatch.setenv("PATH", str(fake_npu_smi(tmp_path, outputs, hang="health")) + os.pathsep + os.environ["PATH"])
    source, _ = open_npu_smi(0, timeout_s=0.5)
    reading = source.read().as_dict()
    assert reading["temperature_c"] == 67 and "health" not in reading and "xid" not in reading


def test_an_npu_that_npu_smi_does_not_know_is_a_plain_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(fake_npu_smi(tmp_path, {"info-m": ""})) + os.pathsep + os.environ["PATH"])
    source, reason = open_telemetry("npu:3")
    assert source is None and "npu-smi info -t common -i 3" in reason and "does not exist" in reason


def test_without_npu_smi_the_reason_says_where_it_comes_from(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    source, reason = open_telemetry("npu:0")
    assert source is None and "npu-smi was not found" in reason and "Ascend driver" in reason
