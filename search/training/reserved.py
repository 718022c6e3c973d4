"""The dev split: training-source documents reserved for choosing between readers, never trained on.

``tests/fixtures/techdocs_dev/`` asks its questions about these documents (paths relative to the
folder ``scripts/make-techqa-sources`` writes). Every training file refuses or leaves them out:
``written`` raises on a pair about one, and ``written --add`` drops generated articles of them.
"""

from __future__ import annotations

import re

__all__ = ["RESERVED", "is_reserved"]

RESERVED = re.compile(
    r"^(?:man/(?:util-linux|iproute2|rsync|curl|openssh-client)/"
    r"|python/[a-dA-D]"
    r"|debian-policy/(?:policy-ch-binary\.html|policy-ch-files\.html|policy-ch-docs\.html"
    r"|policy-ch-sharedlibs\.html|copyright-format-1\.0\.txt|menu-policy\.txt)$)"
)


def is_reserved(path: str) -> bool:
    """Whether a document (its path under the sources folder; ``#n`` copies included) is reserved."""
    return RESERVED.match(path.split("#", 1)[0].lstrip("./")) is not None
