"""REST request bodies as TF Serving's JSON reads them (NaN, Infinity, integers past 64 bits), each parsed once.

Small bodies go through orjson, which is fast but stops at NaN, Infinity and
numbers past a double, and reads integers past 64 bits as floats (so that
-2**63 - 1 would pass as -2**63). A body with a run of 19 digits goes to the
standard library instead, and so does one where orjson stops at NaN,
Infinity or a huge number; any other syntax error is the answer.

Large bodies are parsed in a worker thread by `parse_large`, and a thread
alone does not keep the event loop responsive: orjson or numpy converting a
whole 16 MB body is one call that holds the interpreter for seconds (most of
it in garbage collections over millions of young lists). So `parse_large`
walks the top-level object and its arrays (`instances`, `inputs`, `examples`
and the columns of an `inputs` object) one element at a time with the
standard library's C scanner, turns each numeric element into a numpy array
at once, and checks between elements whether the request is still wanted.
No call holds the interpreter longer than one element takes, and no large
graph of Python lists stays alive for the collector to walk.
"""

from __future__ import annotations

import json
import re
import threading

import numpy as np
import orjson

from components.serve.errors import RequestError

INLINE_BYTES = 64 << 10  # up to this size a body is parsed on the event loop: a thread hop costs more
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_STANDARD_ONLY = re.compile(rb"NaN|Infinity|-Infinity|-?[0-9]")  # what orjson refuses and json reads
_LONG_NUMBER = re.compile(rb"[0-9]{19}")  # may be an integer past 64 bits


def parse(body: bytes):
    """A small body: orjson, or the standard library where orjson would stop at or change a number."""
    if not _LONG_NUMBER.search(body):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as e:
            if not any(_STANDARD_ONLY.match(body, at) for at in (e.pos, e.pos - 1) if at >= 0):
                raise RequestError(f"request body: not valid JSON ({e.msg} at byte {e.pos})") from None
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RequestError(f"request body: not valid JSON ({e})") from None
    except RecursionError:
        raise RequestError("request body: nested too deeply to read") from None


def parse_large(body: bytes, cancelled: threading.Event):
    """A large body, element by element; stops (RequestError) once `cancelled` is set."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RequestError(f"request body: not UTF-8 ({e})") from None
    reader = _Reader(text, cancelled)
    if text[reader.skip():reader.at + 1] != "{":
        raise RequestError("request body: expected a JSON object")
    try:
        value = reader.value(0)
        if reader.skip() != len(text):
            raise reader.error("extra data after the JSON value")
        return value
    except (json.JSONDecodeError, StopIteration, IndexError) as e:
        position = e.pos if isinstance(e, json.JSONDecodeError) else e.value if isinstance(e, StopIteration) \
            else len(text)
        raise RequestError(f"request body: not valid JSON (at character {position})") from None
    except RecursionError:
        raise RequestError("request body: nested too deeply to read") from None


class _Reader:
    def __init__(self, text: str, cancelled: threading.Event):
        self.text, self.at, self.cancelled = text, 0, cancelled
        self.scan = json.JSONDecoder().scan_once

    def skip(self) -> int:
        self.at = _WHITESPACE.match(self.text, self.at).end()
        return self.at

    def error(self, what: str) -> RequestError:
        return RequestError(f"request body: not valid JSON ({what} at character {self.at})")

    def expect(self, char: str) -> None:
        if self.text[self.skip()] != char:
            raise self.error(f"expected {char!r}")
        self.at += 1

    def value(self, depth: int):
        """The value at the cursor: walked into for the body's object, an object in it, and their arrays;
        else scanned whole."""
        char = self.text[self.skip()]
        if char == "{" and depth < 2:
            return self.object(depth)
        if char == "[":
            return self.array()
        value, self.at = self.scan(self.text, self.at)
        return value

    def object(self, depth: int) -> dict:
        self.at += 1
        result = {}
        if self.text[self.skip()] == "}":
            self.at += 1
            return result
        while True:
            if self.text[self.skip()] != '"':
                raise self.error("expected a key")
            key, self.at = self.scan(self.text, self.at)
            self.expect(":")
            result[key] = self.value(depth + 1)
            char = self.text[self.skip()]
            self.at += 1
            if char == "}":
                return result
            if char != ",":
                raise self.error("expected ',' or '}'")

    def array(self) -> list:
        self.at += 1
        items = []
        if self.text[self.skip()] == "]":
            self.at += 1
            return items
        while True:
            if len(items) % 256 == 0 and self.cancelled.is_set():
                raise RequestError("request body: parsing stopped, the request timed out")
            element, self.at = self.scan(self.text, self.skip())
            items.append(_compact(element))
            char = self.text[self.skip()]
            self.at += 1
            if char == "]":
                return items
            if char != ",":
                raise self.error("expected ',' or ']'")


def _compact(element):
    """A list of numbers as one numpy array (no Python lists left for the collector); anything else as it is."""
    if isinstance(element, dict):
        return {key: _compact(value) for key, value in element.items()}
    if isinstance(element, list):
        try:
            array = np.asarray(element)
        except (ValueError, TypeError, RecursionError):  # ragged or too deep: the conversion names the input
            return element
        if array.dtype.kind in "biuf":
            return array
    return element
