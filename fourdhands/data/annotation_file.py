"""Reading a dataset's annotation file (JSON or YAML) with the one-line errors a user
needs: the file named, and what is wrong with it; or streaming a large JSON file's
entries (:func:`stream_annotation`, ``ijson``) so that memory holds one entry at a time."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from ..errors import UserError


def read_annotation(path: Path, expect: type = object, layout: str = ""):
    """The parsed contents of ``path`` (``.yml`` / ``.yaml`` as YAML, anything else as
    JSON). UserError when it is missing (``layout``, if given, says what the reader
    expects to find), unreadable, not valid, or not an ``expect`` (e.g. ``list``)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"{path}: missing" + (f" ({layout})" if layout else "")) from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    try:
        if path.suffix.lower() in (".yml", ".yaml"):
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, expect):
        raise UserError(f"{path}: expected a {expect.__name__}, found a {type(data).__name__}")
    return data


def stream_annotation(path: Path, prefix: str, kv: bool = False, layout: str = ""):
    """The items (or key-value pairs, ``kv``) under ``prefix`` of a JSON file (ijson's
    prefixes: ``"item"`` for a top-level list's entries, ``""`` with ``kv`` for a top-level
    dict's), one at a time. UserError naming the file when it is missing (``layout`` says
    what the reader expects) or not valid JSON."""
    import ijson

    path = Path(path)
    try:
        with open(path, "rb") as fh:
            parse = ijson.kvitems if kv else ijson.items
            yield from parse(fh, prefix, use_float=True)
    except FileNotFoundError:
        raise UserError(f"{path}: missing" + (f" ({layout})" if layout else "")) from None
    except ijson.JSONError as e:
        raise UserError(f"{path}: not valid JSON ({str(e).splitlines()[0] if str(e) else 'truncated'})") from None
