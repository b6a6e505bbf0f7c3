"""Component audit: what real Dapr will do with a folder of component files.

Kugelpos' components look right and are not: `databaseIndex` is ignored (everything in
Redis DB 0), the documented shared `consumerID` would break fan-out, a bare-number
`processingTimeout` is milliseconds, and under Dapr >= 1.17 a failed delivery with no
Resiliency retry and no dead-letter topic is acknowledged and lost. The audit reads the
files the way Dapr does and reports each such finding with the fix.
"""

from kugeldrill.audit.model import Finding, Severity
from kugeldrill.audit.run import audit_directory

__all__ = ["Finding", "Severity", "audit_directory"]
