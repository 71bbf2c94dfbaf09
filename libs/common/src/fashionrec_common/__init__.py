"""Infrastructure shared by every fashionrec service (no domain code here)."""

from fashionrec_common.logging import configure_logging
from fashionrec_common.settings import ServiceSettings

__all__ = ["ServiceSettings", "configure_logging"]
