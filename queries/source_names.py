"""What names a site's dataset, checked without loading any data library: `named_spec` splits a
data argument NAME=FILE_OR_URL and `SourceError` is the error of a source (`queries.sources`), so
that a command line can refuse a bad argument before it starts anything.
"""

from __future__ import annotations

import re
from pathlib import Path

from queries.errors import SchemaError


class SourceError(SchemaError):
    """A dataset cannot be reached or read; names the dataset and where it lives, never a password."""


DATASET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
"""A dataset's name as a query's FROM can write it."""


def named_spec(text: str) -> tuple[str | None, str]:
    """A data argument's (name, file or URL): NAME=FILE_OR_URL names the dataset (FROM NAME),
    anything else is (None, text). An existing file whose name holds '=' is the file; a URL's
    own '=' (?table=...) follows its '://'. SourceError for a NAME that is no SQL name."""
    head, sep, rest = text.partition("=")
    if not sep or "://" in head or "/" in head or "\\" in head or Path(text).exists():
        return None, text
    if not DATASET_NAME.match(head):
        raise SourceError(f"bad dataset name {head!r} in {text!r}: a name is letters, digits and _, "
                          "not starting with a digit (NAME=FILE_OR_URL)")
    if not rest:
        raise SourceError(f"no file or URL after {head}= in {text!r} (NAME=FILE_OR_URL)")
    return head, rest
