"""Compact storage of the two columns that repeat the same words on every row.

A resource's `conditions` (three standard conditions with fixed reasons and messages) and
an event's payload (a resource's whole REST view under fixed keys) were most of the
bytes of a database: about 520 of a resource row's 1,000, and 1,100 to 1,400 per event.

- Conditions, read for every row of every list page, are stored as text with their
  fixed words replaced by single control characters (`pack_words`, ~520 → ~130 bytes):
  restoring them is a few `str.replace` on the event loop (~3 µs). zlib would make them smaller
  still, but it releases the GIL on every call, and in a busy process each release lets
  another thread take the interpreter for up to milliseconds: measured on list pages,
  ~15 µs a row instead of ~2.
- Event payloads, read only when a stream resumes, are a BLOB: one version byte, then
  raw deflate against a preset dictionary of the words they repeat (`pack`, ~85 bytes
  plus what is particular to the resource, its spec above all).

The API serves the same text as before: `unpack` gives back exactly the stored JSON.
Rows written as plain JSON text (before these formats) are read unchanged, so no
migration rewrites them. A released table or dictionary is never edited (rows packed
with it must stay readable): a better one gets its own marker, and `unpack` keeps all.
"""

from __future__ import annotations

import zlib
from typing import Final

# Window bits: 4 KiB holds the dictionary and any row's own repeats; memory level 2
# keeps the compressor's set-up (done once per value) cheap: ~10 µs for an event.
_WBITS: Final = -12
_MEMLEVEL: Final = 2
_LEVEL: Final = 6

_V1: Final = 1
# Version 1's dictionary: an event and the conditions of each phase as no8sd writes them
# (the most frequent words last: deflate reaches the end of the dictionary most cheaply).
_DICTIONARY_V1: Final = (
    b'{"type":"Ready","status":"Unknown","reason":"Deleting","message":"Resource is being '
    b'deleted","lastTransitionTime":"2026-01-01T00:00:00.000000+00:00","observedGeneration":1},'
    b'{"type":"Reconciling","status":"False","reason":"Deleting","message":"Resource is being '
    b'deleted","lastTransitionTime":"2026-01-01T00:00:00.000000+00:00","observedGeneration":1}]'
    b'{"type":"Ready","status":"Unknown","reason":"ReconcileStarted","message":"Reconciliation '
    b'in progress","lastTransitionTime":"2026-01-01T00:00:00.000000+00:00",'
    b'"observedGeneration":1},{"type":"Reconciling","status":"True","reason":"ReconcileStarted",'
    b'"message":"Reconciliation has started","lastTransitionTime":'
    b'"2026-01-01T00:00:00.000000+00:00","observedGeneration":1}]'
    b'[{"type":"Ready","status":"False","reason":"ReconcileFailed","message":"Reconciliation '
    b'failed","lastTransitionTime":"2026-01-01T00:00:00.000000+00:00","observedGeneration":1},'
    b'{"type":"Reconciling","status":"False","reason":"ReconcileFailed","message":"",'
    b'"lastTransitionTime":"2026-01-01T00:00:00.000000+00:00","observedGeneration":1},'
    b'{"type":"Degraded","status":"True","reason":"ReconcileFailed","message":"Reconciliation '
    b'failed","lastTransitionTime":"2026-01-01T00:00:00.000000+00:00","observedGeneration":1}]'
    b'{"event_type":"CREATED","resource_id":1,"resource_name":"","resource_type_name":"",'
    b'"resource_type_version":"v1","timestamp":"2026-01-01T00:00:00.000000+00:00","actor":'
    b'"local","resource_data":{"id":1,"name":"","resource_type_name":"","resource_type_version":'
    b'"v1","action_plugin":"","status":"pending","status_message":null,"generation":1,'
    b'"observed_generation":0,"finalizers":[],"conditions":[],"created_at":'
    b'"2026-01-01T00:00:00.000000+00:00","updated_at":"2026-01-01T00:00:00.000000+00:00",'
    b'"last_reconcile_time":null,"spec":{},"metadata":{},"outputs":{},"retry_count":0,'
    b'"next_reconcile_time":"2026-01-01T00:00:00.000000+00:00","deleted_at":null}}'
    b'{"event_type":"RECONCILED","resource_id":1,"resource_name":"","resource_type_name":"",'
    b'"resource_type_version":"v1","timestamp":"2026-01-01T00:00:00.000000+00:00","actor":'
    b'"reconciler:","resource_data":{"id":1,"name":"","resource_type_name":"",'
    b'"resource_type_version":"v1","action_plugin":"","status":"ready","status_message":"",'
    b'"generation":1,"observed_generation":1,"finalizers":[],"conditions":'
    b'[{"type":"Ready","status":"True","reason":"ReconcileSuccess","message":"Resource '
    b'reconciled successfully","lastTransitionTime":"2026-01-01T00:00:00.000000+00:00",'
    b'"observedGeneration":1},{"type":"Reconciling","status":"False","reason":'
    b'"ReconcileComplete","message":"Reconciliation completed","lastTransitionTime":'
    b'"2026-01-01T00:00:00.000000+00:00","observedGeneration":1},{"type":"Degraded","status":'
    b'"False","reason":"NoErrors","message":"","lastTransitionTime":'
    b'"2026-01-01T00:00:00.000000+00:00","observedGeneration":1}]'
)
_DICTIONARIES: Final = {_V1: _DICTIONARY_V1}
_HEADER: Final = bytes([_V1])

# Below this size a value is stored as plain TEXT: "[]" and short lists gain nothing.
_SMALL: Final = 48


def pack(text: str) -> str | bytes:
    """The stored form of a JSON text: packed when that pays, else the text itself."""
    if len(text) < _SMALL:
        return text
    packer = zlib.compressobj(_LEVEL, zlib.DEFLATED, _WBITS, _MEMLEVEL,
                              zlib.Z_DEFAULT_STRATEGY, _DICTIONARY_V1)
    return _HEADER + packer.compress(text.encode()) + packer.flush()


# Version 1 of the word format: the text starts with _WORDS_V1, and each control
# character \x01..\x19 stands for the phrase at its position. JSON text never holds a raw
# control character (they are escaped inside strings), so the mapping is exact both ways.
# Released tables are never edited: a new one gets its own start character.
_WORDS_V1: Final = "\x1f"
_PHRASES_V1: Final = (
    '{"type":"Ready","status":"', '{"type":"Reconciling","status":"',
    '{"type":"Degraded","status":"', '","reason":"', '","message":"',
    '","lastTransitionTime":"', '","observedGeneration":', "Resource reconciled successfully",
    "Reconciliation completed", "Reconciliation in progress", "Reconciliation has started",
    "Reconciliation failed", "Resource is being deleted", "ReconcileSuccess",
    "ReconcileComplete", "ReconcileStarted", "ReconcileFailed", "NoErrors", "Deleting",
    "True", "False", "Unknown", "+00:00", '{"type":"', '","status":"',
)
_TO_WORDS: Final = tuple((phrase, chr(i + 1)) for i, phrase in enumerate(_PHRASES_V1))
_FROM_WORDS_V1: Final = tuple((token, phrase) for phrase, token in _TO_WORDS)


def pack_words(text: str) -> str:
    """The stored form of a JSON text whose words repeat on every row (conditions)."""
    if len(text) < _SMALL:
        return text
    for phrase, token in _TO_WORDS:  # longest, most specific phrases first
        text = text.replace(phrase, token)
    return _WORDS_V1 + text


def unpack(stored: str | bytes) -> str:
    """The JSON text of a stored value (TEXT as it is, or with its words restored; a
    packed BLOB inflated)."""
    if isinstance(stored, str):
        if stored[:1] == _WORDS_V1:
            # A chain of replace() beats one translate() with a dict of strings: ~3 µs
            # against ~9 for a ready resource's three conditions.
            text = stored[1:]
            for token, phrase in _FROM_WORDS_V1:
                if token in text:
                    text = text.replace(token, phrase)
            return text
        return stored
    dictionary = _DICTIONARIES.get(stored[0]) if stored else None
    if dictionary is None:
        raise ValueError("stored value in an unknown packed format")
    # A whole stream: decompress() gives everything, no flush() needed.
    return zlib.decompressobj(_WBITS, zdict=dictionary).decompress(stored[1:]).decode()
