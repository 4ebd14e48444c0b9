"""What an operator sees while `acceldoctor stress` runs: per device, rates now against the start, errors so far and
the device's own telemetry; a live table on a terminal, a line per interval in a log."""

import io

from rich.console import Console

from acceldoctor.cli.stress_display import StressDisplay


def _sample(t, tflops, wrong=0, telemetry=None):
    sample = {"t_s": t, "tflops": tflops, "wrong_elements": wrong, "nan_elements": 0,
              "workloads": {"gemm_fp32": {"iterations": 9, "rate": tflops, "unit": "TFLOP/s"},
                            "memory_soak": {"iterations": 1, "rate": 812.0, "unit": "GB/s"}}}
    if telemetry:
        sample["telemetry"] = telemetry
    return sample


def _console():
    return Console(file=io.StringIO(), width=200, force_terminal=False)


def test_a_log_gets_one_line_per_interval_with_rates_now_and_at_start_and_errors():
    console = _console()
    with StressDisplay(["cuda:0"], 60, console, live=False) as display:
        display.update("cuda:0", _sample(1, 600.0))
        display.update("cuda:0", _sample(2, 610.0))
        display.update("cuda:0", _sample(3, 450.0, wrong=3, telemetry={
            "temperature_c": 88, "power_w": 700.4, "clock_mhz": 1410, "throttle": ["hardware thermal slowdown"]}))
    lines = console.file.getvalue().splitlines()
    assert len(lines) == 3
    # "start" is the median of the first intervals, not the first alone
    assert "fp32 450 TFLOP/s (start 600)" in lines[2] and "memory 812 GB/s" in lines[2]
    assert "3 WRONG" in lines[2] and "88°C 700 W 1410 MHz throttled: hardware thermal slowdown" in lines[2]
    assert "0 errors" in lines[0] and "°C" not in lines[0]


def test_the_live_table_has_a_row_per_device_with_its_errors():
    console = Console(file=io.StringIO(), width=200, force_terminal=True)
    display = StressDisplay(["cuda:0", "cuda:1"], 60, console, live=True)
    with display:
        display.update("cuda:0", _sample(1, 600.0))
        display.update("cuda:1", _sample(1, 590.0, wrong=7))
    table = display._table()
    text = _console()
    text.print(table)
    rendered = text.file.getvalue()
    assert "cuda:0" in rendered and "cuda:1" in rendered and "7" in rendered
    assert "fp32: 590 TFLOP/s (start 590)" in rendered
