"""IP region (IP 属地) of an address, from an offline range file (COMPLIANCE I2).

The province for mainland China (``浙江``), ``中国香港``/``中国澳门``/``中国台湾``, the country name
elsewhere; ``本机`` for loopback, ``局域网`` for private networks, ``未知`` when the address is in no
range or no file is configured (``PASSPORT_IP_REGION_FILE``).

The file is chosen by its extension:

- ``.xdb``: an ip2region xdb file (IPv4 or IPv6, structure 2.0 or 3.0), read once into memory and
  searched through the official ``py-ip2region`` binding. Its region strings are
  ``国家|区域|省份|城市|ISP`` (ip2region 2.x data) or ``国家|省份|城市|ISP`` (3.x data); ``0`` is
  unknown. An xdb file holds one IP version: addresses of the other are ``未知``.
- anything else: CSV, one range a line: ``start_ip,end_ip,country,province`` (IPv4 or IPv6, both ends
  inclusive, ranges must not overlap; ``#`` starts a comment), read once into sorted arrays and
  searched by bisection.
"""

from __future__ import annotations

import bisect
import csv
import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import structlog
from ip2region import searcher as xdb_searcher
from ip2region import util as xdb_util

log = structlog.get_logger("passport.ipregion")

UNKNOWN = "未知"
LOCAL_NETWORK = "局域网"
THIS_MACHINE = "本机"

_CHINA = frozenset({"中国", "CN", "China"})
_SPECIAL_REGIONS = {"香港": "中国香港", "澳门": "中国澳门", "台湾": "中国台湾"}
# Longest first: "广西壮族自治区" loses "壮族自治区", not just "自治区".
_PROVINCE_SUFFIXES = ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "省", "市")
_LOCAL_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "fc00::/7", "fe80::/10"))

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class IpRegionResolver(Protocol):
    def resolve(self, ip: str | None) -> str: ...


def region_label(country: str, province: str) -> str:
    """``中国,浙江省`` → ``浙江``; ``中国,香港`` → ``中国香港``; ``日本,东京都`` → ``日本``."""
    country, province = country.strip(), province.strip()
    if country not in _CHINA:
        return country or UNKNOWN
    for suffix in _PROVINCE_SUFFIXES:
        if province.endswith(suffix) and len(province) > len(suffix):
            province = province.removesuffix(suffix)
            break
    if not province or province == "0":
        return "中国"
    return _SPECIAL_REGIONS.get(province, province)


def parse_address(ip: str | None) -> Address | None:
    try:
        address = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _fixed(address: Address) -> str | None:
    if address.is_loopback:
        return THIS_MACHINE
    if any(address in network for network in _LOCAL_NETWORKS):
        return LOCAL_NETWORK
    return None


class NoRegions:
    """No range file: only loopback and private addresses are known."""

    def resolve(self, ip: str | None) -> str:
        address = parse_address(ip)
        return (_fixed(address) if address else None) or UNKNOWN


class RangeFile:
    """Ranges read once from a CSV file; each look-up is a bisection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        ranges: dict[int, list[tuple[int, int, str]]] = {4: [], 6: []}
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for number, row in enumerate(csv.reader(fh), start=1):
                if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
                    continue
                if number == 1 and parse_address(row[0]) is None:
                    continue  # a header line
                start, end, label = self._parse(row, number)
                ranges[start.version].append((int(start), int(end), label))
        self._starts: dict[int, list[int]] = {}
        self._ends: dict[int, list[int]] = {}
        self._labels: dict[int, list[str]] = {}
        for version, rows in ranges.items():
            rows.sort()
            for before, after in zip(rows, rows[1:], strict=False):
                if after[0] <= before[1]:
                    raise ValueError(f"{path}: overlapping ranges at {ipaddress.ip_address(after[0])}")
            self._starts[version] = [r[0] for r in rows]
            self._ends[version] = [r[1] for r in rows]
            self._labels[version] = [r[2] for r in rows]

    def _parse(self, row: list[str], number: int) -> tuple[Address, Address, str]:
        if len(row) < 3:
            raise ValueError(f"{self.path}:{number}: expected start_ip,end_ip,country,province")
        start, end = parse_address(row[0]), parse_address(row[1])
        if start is None or end is None:
            raise ValueError(f"{self.path}:{number}: not an IP address: {row[0].strip()!r} or {row[1].strip()!r}")
        if start.version != end.version or start > end:
            raise ValueError(f"{self.path}:{number}: the range {start} - {end} is empty or mixes IPv4 and IPv6")
        return start, end, region_label(row[2], row[3] if len(row) > 3 else "")

    def __len__(self) -> int:
        return sum(len(starts) for starts in self._starts.values())

    def resolve(self, ip: str | None) -> str:
        address = parse_address(ip)
        if address is None:
            return UNKNOWN
        fixed = _fixed(address)
        if fixed:
            return fixed
        value, starts = int(address), self._starts[address.version]
        index = bisect.bisect_right(starts, value) - 1
        if index >= 0 and value <= self._ends[address.version][index]:
            return self._labels[address.version][index]
        return UNKNOWN


class XdbFile:
    """An ip2region xdb file, held in memory (a look-up reads no file and is thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open("rb") as handle:
            xdb_util.verify(handle)
            header = xdb_util.load_header(handle)
            version = xdb_util.version_from_header(header)
            if version is None:
                raise ValueError(f"{path}: not an ip2region xdb file (IP version {header.ipVersion})")
            content = xdb_util.load_content(handle)
        self.ip_version = version.id
        self._searcher = xdb_searcher.new_with_buffer(version, content)

    def __len__(self) -> int:
        return 1

    def resolve(self, ip: str | None) -> str:
        address = parse_address(ip)
        if address is None:
            return UNKNOWN
        fixed = _fixed(address)
        if fixed:
            return fixed
        if address.version != self.ip_version:
            return UNKNOWN
        try:
            found = self._searcher.search(address.packed)
        except (ValueError, IndexError):
            return UNKNOWN
        return xdb_label(found)


def xdb_label(found: str) -> str:
    """``中国|0|浙江省|杭州市|电信`` (2.x) or ``中国|浙江省|杭州市|电信`` (3.x) → ``浙江``; ``美国|…`` → ``美国``."""
    parts = [part.strip() for part in (found or "").split("|")]
    if not parts or parts[0] in ("", "0"):
        return UNKNOWN
    province = parts[2] if len(parts) >= 5 else parts[1] if len(parts) > 1 else ""
    return region_label(parts[0], "" if province == "0" else province)


@lru_cache(maxsize=8)
def resolver(path: Path | None) -> IpRegionResolver:
    """The resolver for ``PASSPORT_IP_REGION_FILE``, loaded once per process.

    A file that cannot be read leaves regions unknown rather than failing the pages that show
    them; the warning names the file and the problem."""
    if path is None:
        return NoRegions()
    try:
        loaded: RangeFile | XdbFile = XdbFile(path) if path.suffix.lower() == ".xdb" else RangeFile(path)
    except (OSError, ValueError, IndexError, UnicodeDecodeError) as exc:
        log.warning("ip_region.unavailable", path=str(path), error=type(exc).__name__, detail=str(exc))
        return NoRegions()
    log.info("ip_region.loaded", path=str(path), ranges=len(loaded))
    return loaded


def resolve(settings, ip: str | None) -> str:
    return resolver(settings.ip_region_file).resolve(ip)
