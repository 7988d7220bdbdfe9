"""IP region from an offline range file (COMPLIANCE I2): labels, bisection, IPv6, bad files."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from passport import ipregion
from passport.ipregion import NoRegions, RangeFile, region_label, resolver
from xdb_testing import write_xdb

RANGES = """\
start_ip,end_ip,country,province
# a comment line
1.0.1.0,1.0.3.255,中国,福建省
36.96.0.0,36.223.255.255,中国,浙江省
58.14.0.0,58.14.255.255,中国,广西壮族自治区
59.152.0.0,59.152.255.255,中国,北京市
103.1.0.0,103.1.255.255,中国,香港特别行政区
126.0.0.0,126.255.255.255,日本,东京都
8.8.8.0,8.8.8.255,美国,
240e::,240e:ffff:ffff:ffff:ffff:ffff:ffff:ffff,中国,广东省
2001:4860::,2001:4860:ffff:ffff:ffff:ffff:ffff:ffff,United States,California
"""


@pytest.fixture()
def ranges(tmp_path) -> RangeFile:
    path = tmp_path / "regions.csv"
    path.write_text(RANGES, encoding="utf-8")
    return RangeFile(path)


@pytest.mark.parametrize(("ip", "region"), [
    ("36.96.0.0", "浙江"), ("36.150.1.2", "浙江"), ("36.223.255.255", "浙江"),  # both ends inclusive
    ("1.0.2.9", "福建"), ("58.14.3.4", "广西"), ("59.152.0.1", "北京"),
    ("103.1.2.3", "中国香港"), ("126.1.2.3", "日本"), ("8.8.8.8", "美国"),
    ("240e:3a1::1", "广东"), ("2001:4860:4860::8888", "United States"),
    ("::ffff:36.96.1.1", "浙江"),  # IPv4-mapped IPv6 is the IPv4 address
    ("36.95.255.255", "未知"), ("36.224.0.0", "未知"), ("9.9.9.9", "未知"), ("0.0.0.1", "未知"),
    ("2400:cb00::1", "未知"),
    ("127.0.0.1", "本机"), ("::1", "本机"),
    ("10.1.2.3", "局域网"), ("172.20.0.1", "局域网"), ("192.168.1.10", "局域网"), ("fd00::1", "局域网"),
    ("fe80::1", "局域网"),
    ("testclient", "未知"), ("", "未知"), (None, "未知"), ("1.2.3.4.5", "未知"),
])
def test_resolve(ranges, ip, region):
    assert ranges.resolve(ip) == region


def test_counts_every_range(ranges):
    assert len(ranges) == 9


@pytest.mark.parametrize(("country", "province", "label"), [
    ("中国", "浙江省", "浙江"), ("中国", "浙江", "浙江"), ("中国", "上海市", "上海"),
    ("中国", "内蒙古自治区", "内蒙古"), ("中国", "新疆维吾尔自治区", "新疆"), ("中国", "宁夏回族自治区", "宁夏"),
    ("中国", "西藏自治区", "西藏"), ("中国", "澳门特别行政区", "中国澳门"), ("中国", "台湾省", "中国台湾"),
    ("中国", "", "中国"), ("中国", "0", "中国"), ("CN", "Zhejiang", "Zhejiang"),
    (" 日本 ", "东京都", "日本"), ("", "", "未知"),
])
def test_region_label(country, province, label):
    assert region_label(country, province) == label


def test_without_a_file_only_local_addresses_are_known():
    nothing = resolver(None)
    assert isinstance(nothing, NoRegions)
    assert [nothing.resolve(ip) for ip in ("36.96.0.1", "127.0.0.1", "192.168.0.1", "x")] == [
        "未知", "本机", "局域网", "未知"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "message"), [
    ("1.0.0.0,1.0.0.255,中国,福建\n1.0.0.128,1.0.1.0,中国,浙江\n", "overlapping"),
    ("1.0.0.0,1.0.0.255,中国,福建\n2.0.0.9,2.0.0.1,中国,浙江\n", ":2: the range"),
    ("1.0.0.0,::1,中国,福建\n", ":1: the range"),
    ("1.0.0.0,1.0.0.255,中国,福建\nnot-an-ip,1.0.0.1,中国,浙江\n", ":2: not an IP address"),
    ("1.0.0.0,1.0.0.255\n", ":1: expected"),
])
def test_a_bad_file_is_refused_with_the_line(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        RangeFile(write(tmp_path, text))


def test_an_unreadable_file_leaves_regions_unknown(tmp_path):
    assert isinstance(resolver(tmp_path / "missing.csv"), NoRegions)
    assert isinstance(resolver(write(tmp_path, "x,y\n1,2\n")), NoRegions)
    xdb = tmp_path / "ip2region.xdb"
    xdb.write_bytes(b"\0" * 64)
    assert resolver(xdb).resolve("36.96.0.1") == "未知"


def test_the_file_is_read_once(tmp_path, monkeypatch):
    path = write(tmp_path, RANGES)
    first = resolver(path)
    monkeypatch.setattr(ipregion.RangeFile, "__init__", lambda *_: pytest.fail("read again"))
    assert resolver(path) is first


@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 5000)), max_size=30),
       st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=20))
def test_bisection_agrees_with_a_linear_scan(tmp_path_factory, spans, probes):
    rows, taken_until = [], -1
    for start, width in sorted(spans):
        start = max(start, taken_until + 1)
        end = min(start + width, 2**32 - 1)
        if start > end:
            continue
        rows.append((start, end, f"地区{len(rows)}"))
        taken_until = end
    path = tmp_path_factory.mktemp("ranges") / "ranges.csv"
    path.write_text("".join(f"{ipaddress.ip_address(s)},{ipaddress.ip_address(e)},{label},\n" for s, e, label in rows),
                    encoding="utf-8")
    loaded = RangeFile(path)
    for probe in probes + [s for s, _, _ in rows] + [e for _, e, _ in rows]:
        address = ipaddress.ip_address(probe)
        expected = next((label for s, e, label in rows if s <= probe <= e), "未知")
        if address.is_loopback:
            expected = "本机"
        elif any(address in ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                              "169.254.0.0/16")):
            expected = "局域网"
        assert loaded.resolve(str(address)) == expected


# --- ip2region xdb files (through the official py-ip2region binding) -----------------------------------

XDB_V4 = [("1.0.1.0", "1.0.3.255", "中国|0|福建省|福州市|电信"),  # ip2region 2.x region strings
          ("36.96.0.0", "36.223.255.255", "中国|浙江省|杭州市|电信"),  # 3.x: one field fewer
          ("58.14.0.0", "58.14.255.255", "中国|0|广西壮族自治区|0|0"),
          ("103.1.0.0", "103.1.255.255", "中国|0|香港|0|0"),
          ("126.0.0.0", "126.255.255.255", "日本|0|东京都|0|0"),
          ("8.8.8.0", "8.8.8.255", "美国|0|0|0|Level3"),
          ("9.0.0.0", "9.0.0.255", "0|0|0|0|0")]
XDB_V6 = [("240e::", "240e:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "中国|广东省|0|电信"),
          ("2001:4860::", "2001:4860:ffff:ffff:ffff:ffff:ffff:ffff", "United States|California|0|Google")]


@pytest.fixture()
def xdb_v4(tmp_path):
    return write_xdb(tmp_path / "ip2region_v4.xdb", XDB_V4)


@pytest.mark.parametrize(("ip", "region"), [
    ("1.0.2.9", "福建"), ("36.96.0.0", "浙江"), ("36.150.1.2", "浙江"), ("36.223.255.255", "浙江"),
    ("58.14.3.4", "广西"), ("103.1.2.3", "中国香港"), ("126.1.2.3", "日本"), ("8.8.8.8", "美国"),
    ("9.0.0.7", "未知"), ("36.95.255.255", "未知"), ("36.224.0.0", "未知"), ("200.1.1.1", "未知"),
    ("::ffff:36.96.1.1", "浙江"), ("127.0.0.1", "本机"), ("10.1.2.3", "局域网"),
    ("240e:3a1::1", "未知"),  # an IPv4 file knows no IPv6 address
    ("testclient", "未知"), (None, "未知"),
])
def test_xdb_v4_resolves_through_the_binding(xdb_v4, ip, region):
    loaded = resolver.__wrapped__(xdb_v4)
    assert isinstance(loaded, ipregion.XdbFile)
    assert loaded.resolve(ip) == region


def test_xdb_v6(tmp_path):
    loaded = ipregion.XdbFile(write_xdb(tmp_path / "v6.xdb", XDB_V6))
    assert loaded.resolve("240e:3a1::1") == "广东"
    assert loaded.resolve("2001:4860:4860::8888") == "United States"
    assert loaded.resolve("2400:cb00::1") == "未知"
    assert loaded.resolve("36.96.1.1") == "未知"


def test_a_broken_xdb_leaves_regions_unknown(tmp_path):
    bad = tmp_path / "broken.xdb"
    bad.write_bytes(b"\x09\x00" + b"\x00" * 100)
    assert isinstance(resolver.__wrapped__(bad), NoRegions)
    csv_named = tmp_path / "regions.xdb"
    csv_named.write_text(RANGES, encoding="utf-8")  # a CSV file under the xdb name is not read as CSV
    assert isinstance(resolver.__wrapped__(csv_named), NoRegions)


@pytest.mark.parametrize(("found", "label"), [
    ("中国|0|浙江省|杭州市|电信", "浙江"), ("中国|浙江省|杭州市|电信", "浙江"), ("中国|0|0|0|0", "中国"),
    ("中国|0|澳门|0|0", "中国澳门"), ("美国|0|0|0|0", "美国"), ("0|0|0|0|0", "未知"), ("", "未知"),
])
def test_xdb_labels(found, label):
    assert ipregion.xdb_label(found) == label
