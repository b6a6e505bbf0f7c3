"""The known-defects file: the system's own defects that a suite's drills are expected to show.

Each entry is a defect *of the system under test* (Kugelpos), never a false alarm of
kugeldrill parked in a list: it names the finding that documents it, the drills that must
reproduce it, how it shows in a drill (a checker and its failure kind, optionally the fields
its examples carry or the words of an unknown's reason), and the evidence in the system's
own logs that must be there for a failure to count as this defect. A failure that matches
the signature but lacks the evidence is new.

```yaml
kugelpos: 33ef985            # the revision the defects were found on (another checkout: a note)
strict: false                # true: a known defect that did not reproduce fails the run (pytest's xfail_strict)
defects:
  - id: per-request-breaker
    title: cart builds its breaker per request, so it never opens
    finding: docs/findings.md#1
    scenarios: [kugelpos-sidecar-cut]
    checker: breaker         # a checker (breaker, duplicates, fanout, outcomes) or an expectation name
    kind: not_opened         # the checker's failure kind; `unknown` (needs `reason`); `failed` for an expectation
    where: {service: cart}   # every example of that kind must match (regular expressions)
    also: []                 # other failures the same defect causes (checker, kind, where, reason)
    evidence:
      - {log: cart, pattern: "Failed to publish event to topic-tranlog"}
      - {log: cart, pattern: "Circuit breaker OPEN", absent: true}
```
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kugeldrill.yamlfile import errors_of, parse_yaml, raise_problems, read_text, validate_model

KIND_UNKNOWN = "unknown"
KIND_FAILED = "failed"


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogEvidence(_Strict):
    """A line of the system's own log (the run folder's copy of `log`'s log) that must be there
    (or, with `absent`, must not): what makes a failure this defect rather than a look-alike."""

    # An app id (cart, report, sidecar-journal, ...), or a list: the lines of all of them count
    # together (a delivery lost by whichever subscriber's sidecar failed it).
    log: str | list[str] = Field(min_length=1)
    pattern: str = Field(min_length=1)
    absent: bool = False
    min_count: int = Field(default=1, ge=1)  # lines that must match (ignored with absent)

    _re = field_validator("pattern")(_regex)

    @property
    def logs(self) -> tuple[str, ...]:
        return (self.log,) if isinstance(self.log, str) else tuple(self.log)

    @property
    def names(self) -> str:
        """The log(s) as text: `cart`, or `sidecar-report / sidecar-journal`."""
        return " / ".join(self.logs)

    def describe(self) -> str:
        if self.absent:
            return f"no line of {self.names}'s log matches /{self.pattern}/"
        many = f"at least {self.min_count} lines" if self.min_count > 1 else "a line"
        return f"{many} of {self.names}'s log match /{self.pattern}/"


class Signature(_Strict):
    """How a defect shows in a drill: a checker's failure kind (or an expectation's), with the
    fields every example of that kind must carry and the words every unknown reason must have."""

    checker: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    where: dict[str, str] = Field(default_factory=dict)  # example field -> regular expression
    reason: str | None = None  # regular expression every unknown reason (or the observed text) must match

    @field_validator("where")
    @classmethod
    def _where_regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for field, pattern in value.items():
            try:
                re.compile(str(pattern))
            except re.error as exc:
                raise ValueError(f"where.{field}: not a valid regular expression: {exc}") from None
        return {k: str(v) for k, v in value.items()}

    _reason_re = field_validator("reason")(lambda v: v if v is None else _regex(v))

    @model_validator(mode="after")
    def _unknown_needs_reason(self) -> "Signature":
        if self.kind == KIND_UNKNOWN and not self.reason:
            raise ValueError("a signature whose kind is 'unknown' needs `reason`: an unknown counts as known only "
                             "when it is exactly this defect's symptom")
        return self

    def label(self) -> str:
        return f"{self.checker} {self.kind}"


class KnownDefect(Signature):
    """One defect of the system, as the drills show it: its main signature, `also` the other
    failures the same defect causes in the same drill (a lost event is missing in fan-out and
    a wrong figure in the report), and the evidence in the system's own logs."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=60)
    title: str = Field(min_length=1)
    finding: str = Field(min_length=1)  # where it is documented, e.g. docs/findings.md#5
    # The drills that must reproduce it. Empty: a defect no drill can trigger on purpose (a race);
    # it is recognised wherever it shows and never reported as not reproduced.
    scenarios: list[str] = Field(default_factory=list)
    also: list[Signature] = Field(default_factory=list)
    evidence: list[LogEvidence] = Field(min_length=1)

    @property
    def signatures(self) -> list[Signature]:
        return [Signature(checker=self.checker, kind=self.kind, where=self.where, reason=self.reason), *self.also]


class KnownDefects(_Strict):
    """The whole file."""

    kugelpos: str | None = None  # the revision (commit) the defects were found on
    strict: bool = False
    defects: list[KnownDefect] = Field(default_factory=list)
    path: str = Field(default="", exclude=True)

    @model_validator(mode="after")
    def _unique_ids(self) -> "KnownDefects":
        seen: set[str] = set()
        for defect in self.defects:
            if defect.id in seen:
                raise ValueError(f"defect id {defect.id!r} is listed twice")
            seen.add(defect.id)
        return self

    def get(self, defect_id: str) -> KnownDefect | None:
        return next((d for d in self.defects if d.id == defect_id), None)

    def revision_note(self, commit: str | None) -> str | None:
        """A note when the checkout is not the revision the defects were found on."""
        if not self.kugelpos or not commit:
            return None
        if commit.startswith(self.kugelpos) or self.kugelpos.startswith(commit):
            return None
        return (f"the known defects were found on Kugelpos {self.kugelpos}; this checkout is {commit[:12]}: "
                "a defect fixed since is reported as not reproduced")


NO_KNOWN_DEFECTS = KnownDefects()


EXAMPLE = "kugelpos-known.yaml"
HINT = ("each defect needs id, title, finding, scenarios, checker, kind and evidence (see kugeldrill/suite/known.py "
        "and kugelpos-known.yaml)")


def parse_known(text: str, source: str) -> KnownDefects:
    """Parse and validate a known-defects file; every problem named with file, line and field."""
    doc, problems = parse_yaml(text, source, "known-defects file", EXAMPLE)
    known = None
    if doc is not None and not errors_of(problems):
        known, found = validate_model(doc, KnownDefects, "known-defects file")
        problems += found
    raise_problems(f"known-defects file {source} is invalid:", problems, hint=HINT)
    assert known is not None
    return known.model_copy(update={"path": source})


def load_known(path: str | Path) -> KnownDefects:
    path = Path(path)
    text, problems = read_text(path, "known-defects file")
    raise_problems(f"cannot read known-defects file {path}:", problems, hint="pass --known FILE (e.g. kugelpos-known.yaml)")
    assert text is not None
    return parse_known(text, str(path))


def unlisted_scenarios(known: KnownDefects, scenarios: list[str]) -> list[str]:
    """Warnings for defects whose drills are not in the suite (they cannot be judged)."""
    names = set(scenarios)
    out = []
    for defect in known.defects:
        missing = [s for s in defect.scenarios if s not in names]
        if defect.scenarios and len(missing) == len(defect.scenarios):
            out.append(f"known defect {defect.id}: none of its drills ({', '.join(defect.scenarios)}) is in this run; "
                       "it is not judged")
    return out
