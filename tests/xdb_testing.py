"""A small ip2region xdb writer for the tests (structure 3.0, IPv4 or IPv6), after the layout of the
official maker: header (256 bytes), vector index (256 × 256 × 8: the first and last segment of each
first-two-bytes prefix), region strings, then the segment index. Segments never cross a /16 (the
vector index's unit), as the maker splits them. Written into a test's tmp_path, never committed."""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

HEADER, VECTOR = 256, 256 * 256 * 8


def _split(start: int, end: int, bits: int) -> list[tuple[int, int]]:
    """[start, end] cut where the first two bytes change."""
    shift = bits - 16
    out = []
    while start <= end:
        block_end = min(end, ((start >> shift) << shift) | ((1 << shift) - 1))
        out.append((start, block_end))
        start = block_end + 1
    return out


def write_xdb(path: Path, ranges: list[tuple[str, str, str]]) -> Path:
    """``ranges``: (start_ip, end_ip, region string) of one IP version, not overlapping."""
    first = ipaddress.ip_address(ranges[0][0])
    version, bits = first.version, first.max_prefixlen
    size = 14 if version == 4 else 38
    data = bytearray()
    pointers: dict[str, tuple[int, int]] = {}
    base = HEADER + VECTOR
    segments = []
    for start_ip, end_ip, region in sorted(ranges, key=lambda r: int(ipaddress.ip_address(r[0]))):
        if region not in pointers:
            raw = region.encode()
            pointers[region] = (base + len(data), len(raw))
            data += raw
        start, end = int(ipaddress.ip_address(start_ip)), int(ipaddress.ip_address(end_ip))
        segments.extend((a, b, pointers[region]) for a, b in _split(start, end, bits))
    index_start = base + len(data)
    vector = bytearray(VECTOR)
    index = bytearray()
    for number, (a, b, (ptr, length)) in enumerate(segments):
        here = index_start + number * size
        if version == 4:
            index += struct.pack("<IIHI", a, b, length, ptr)
        else:
            index += a.to_bytes(16, "big") + b.to_bytes(16, "big") + struct.pack("<HI", length, ptr)
        prefix = a >> (bits - 16)
        slot = (prefix >> 8) * 256 * 8 + (prefix & 0xFF) * 8
        if struct.unpack_from("<I", vector, slot)[0] == 0:
            struct.pack_into("<I", vector, slot, here)
        struct.pack_into("<I", vector, slot + 4, here)  # the last segment of the prefix, inclusive
    header = bytearray(HEADER)
    index_end = index_start + (len(segments) - 1) * size
    struct.pack_into("<HHIIIHH", header, 0, 3, 1, 1_700_000_000, index_start, index_end, version, 4)
    path.write_bytes(bytes(header) + bytes(vector) + bytes(data) + bytes(index))
    return path
