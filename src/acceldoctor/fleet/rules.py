"""The rules `acceldoctor diagnose` applies, as data (data/diagnose_rules.yaml), with their schema check."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from acceldoctor.baseline.rules import BaselineDataError
from acceldoctor.datafiles import load_validated_yaml, read_data_file

DIAGNOSE_RULES_SCHEMA = "acceldoctor.diagnose_rules/1"


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="Named in every finding the rule makes.")
    severity: Literal["warn", "fail"] = Field(
        description="fail flags a defective node (diagnose exits 1); warn is reported only.")
    description: str = Field(min_length=20, description="What the rule catches and why, in plain words.")


class StatusRule(_Rule):
    kind: Literal["status"]
    statuses: list[Literal["fail", "error", "timeout", "crash", "warn"]] = Field(min_length=1)


class ThresholdRule(_Rule):
    kind: Literal["threshold"]
    check: str = Field(min_length=1, description="A check id or glob, e.g. 'performance.*'.")
    metric: str = Field(min_length=1, description="A metric name or glob, e.g. '*efficiency'.")
    dtype: str | None = Field(default=None, description="Only this dtype; any when absent.")
    below: float | None = None
    above: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> ThresholdRule:
        if (self.below is None) == (self.above is None):
            raise ValueError("a threshold rule needs exactly one of `below` and `above`")
        return self


class BaselineRule(_Rule):
    kind: Literal["baseline"]
    fail_drop: float = Field(gt=0, le=10, description="Worse than the baseline by more than this: `severity`.")
    warn_drop: float = Field(gt=0, le=10, description="Worse than the baseline by more than this: warn.")
    noise_multiple: float = Field(3.0, ge=0, description="Widen the limits to this many robust standard "
                                  "deviations of the baseline values.")

    @model_validator(mode="after")
    def _ordered(self) -> BaselineRule:
        if self.warn_drop > self.fail_drop:
            raise ValueError(f"warn_drop {self.warn_drop} is above fail_drop {self.fail_drop}")
        return self


class OutlierRule(_Rule):
    kind: Literal["outlier"]
    mad_multiple: float = Field(gt=0, description="Robust standard deviations (1.4826 x MAD) from the median.")
    min_change: float = Field(ge=0, lt=1, description="And at least this share worse than the median.")
    min_group: int = Field(ge=3, description="Fewer devices than this in a group: no fleet to compare with.")


Rule = Annotated[StatusRule | ThresholdRule | BaselineRule | OutlierRule, Field(discriminator="kind")]


class DiagnoseRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: Literal["acceldoctor.diagnose_rules/1"] = Field(alias="schema")
    about: str = Field(min_length=20, description="Why the limits are what they are: the noise measured.")
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> DiagnoseRules:
        ids = [r.id for r in self.rules]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"rule id(s) listed twice: {', '.join(repeated)}")
        return self




def _read(text: str, label: str) -> DiagnoseRules:
    return load_validated_yaml(text, label, DiagnoseRules, BaselineDataError, schema=DIAGNOSE_RULES_SCHEMA,
                               not_it="a diagnose rules file")


@cache
def _packaged() -> DiagnoseRules:
    text = resources.files("acceldoctor.data").joinpath("diagnose_rules.yaml").read_text(encoding="utf-8")
    return _read(text, "data/diagnose_rules.yaml")


def load_diagnose_rules(path: Path | None = None) -> DiagnoseRules:
    """The packaged rules, or those in `path`; a one-line BaselineDataError when they do not validate."""
    if path is None:
        return _packaged()
    return _read(read_data_file(path, BaselineDataError, "rules file"), str(path))


def _conditions(rule: Rule) -> str:
    if isinstance(rule, StatusRule):
        return "a check ended in " + " or ".join(f"`{s}`" for s in rule.statuses)
    if isinstance(rule, ThresholdRule):
        bound = f"below {rule.below:g}" if rule.below is not None else f"above {rule.above:g}"
        dtype = f" ({rule.dtype})" if rule.dtype else ""
        return f"`{rule.check}` metric `{rule.metric}`{dtype} {bound}"
    if isinstance(rule, BaselineRule):
        return (f"worse than the baseline by over {rule.fail_drop:.0%} ({rule.warn_drop:.0%}: warn), limits widened "
                f"to {rule.noise_multiple:g} robust SDs of the baseline values")
    return (f"over {rule.mad_multiple:g} robust SDs and over {rule.min_change:.0%} worse than the median of its group "
            f"(same model and software, at least {rule.min_group} devices)")


def rules_markdown(rules: DiagnoseRules) -> str:
    """The docs page of the packaged rules (docs/diagnose_rules.md)."""
    lines = ["# Fleet diagnosis rules", "",
             "Generated from `data/diagnose_rules.yaml`, the rules `acceldoctor diagnose REPORT...` applies unless "
             "`--rules FILE` gives others (same schema). A `fail` finding marks its node defective and makes "
             "diagnose exit 1; a `warn` finding is reported only.", "",
             "| rule | kind | severity | flags a device when | why |", "|---|---|---|---|---|"]
    for rule in rules.rules:
        lines.append(f"| `{rule.id}` | {rule.kind} | {rule.severity} | {_conditions(rule)} | "
                     f"{' '.join(rule.description.split())} |")
    lines += ["", "## How the limits were chosen", "", " ".join(rules.about.split()), ""]
    return "\n".join(lines)
