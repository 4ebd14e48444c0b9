"""Device telemetry during `acceldoctor stress`: temperature, power, clocks, throttling, ECC, Xid events and health.

Light to import (no torch, vendor libraries only when a reader opens), since the watching process imports it.
The judge of the readings, `stability.telemetry`, is in `acceldoctor.devices.telemetry.events`.
"""

from acceldoctor.devices.telemetry.base import TelemetrySample, TelemetrySource
from acceldoctor.devices.telemetry.readers import open_telemetry

__all__ = ["TelemetrySample", "TelemetrySource", "open_telemetry"]
