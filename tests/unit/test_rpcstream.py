"""The streaming XML-RPC parser agrees with xmlrpc.client, item by item, at any chunking."""

from __future__ import annotations

import xmlrpc.client
from typing import Any

import pytest

from bandersnatch.errors import NoXmlRpc, UpstreamError
from bandersnatch.formats.serial import MAX_SERIAL, is_serial
from bandersnatch.upstream.rpcstream import describe, iter_items


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def answer(value: int | str | list[Any] | dict[str, Any]) -> bytes:
    return xmlrpc.client.dumps((value,), methodresponse=True, allow_none=True).encode()


@pytest.mark.parametrize("size", [1, 7, 64, 1 << 20])
def test_struct_members_stream_out_as_pairs(size: int) -> None:
    listing = {"Alpha-Lib": 105, "beta": 7, "zope.interface": 2**30 + 5, "ünïcode": 1}
    assert dict(iter_items(chunked(answer(listing), size))) == listing


@pytest.mark.parametrize("size", [3, 1 << 20])
def test_array_rows_stream_out_whole(size: int) -> None:
    rows = [["beta", "0.5", 1700000000, "new release", 106], ["x", None, 1, "remove project", 107]]
    assert list(iter_items(chunked(answer(rows), size))) == rows


def test_untyped_value_is_a_string_and_nested_structs_are_kept() -> None:
    body = (b"<?xml version='1.0'?><methodResponse><params><param><value><array><data>"
            b"<value>plain</value><value><struct><member><name>k</name><value><i4>3</i4></value>"
            b"</member></struct></value><value><boolean>1</boolean></value>"
            b"</data></array></value></param></params></methodResponse>")
    assert list(iter_items([body])) == ["plain", {"k": 3}, True]


def test_scalar_answer_yields_itself() -> None:
    assert list(iter_items([answer(4242)])) == [4242]


def test_fault_raises_with_its_message() -> None:
    body = xmlrpc.client.dumps(xmlrpc.client.Fault(1, "rate limited"), methodresponse=True).encode()
    with pytest.raises(UpstreamError, match="rate limited"):
        list(iter_items([body]))


@pytest.mark.parametrize("body", [
    b"<methodResponse><params>",  # truncated
    b"not xml at all",
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
    b"<methodResponse><params><param><value>&b;</value></param></params></methodResponse>",
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    b"<methodResponse><params><param><value>&e;</value></param></params></methodResponse>",
])
def test_malformed_truncated_or_dtd_answers_are_refused(body: bytes) -> None:
    with pytest.raises(UpstreamError):
        list(iter_items([body]))


@pytest.mark.parametrize("body", [
    b"", b'{"message": "not here"}', b"\x00\x01 binary", b"<?xml version='1.0'?><rss><channel/></rss>",
    b"<html><body>\x1b[2J</body></html>",
])
def test_a_body_that_is_no_xmlrpc_answer_at_all_says_so(body: bytes) -> None:
    with pytest.raises(NoXmlRpc, match="not an XML-RPC answer") as refused:
        list(iter_items([body]))
    assert "\x1b" not in str(refused.value)


@pytest.mark.parametrize("body", [
    b"<methodResponse><params>", b"<methodResponse><params><param><value><int>x</int></value>",
    xmlrpc.client.dumps(xmlrpc.client.Fault(1, "rate limited"), methodresponse=True).encode(),
])
def test_an_xmlrpc_answer_cut_short_malformed_or_a_fault_is_not_taken_for_no_xmlrpc(body: bytes) -> None:
    with pytest.raises(UpstreamError) as refused:
        list(iter_items(chunked(body, 5)))
    assert not isinstance(refused.value, NoXmlRpc)


def scalar_answer(xml: bytes) -> bytes:
    return b"<methodResponse><params><param><value>" + xml + b"</value></param></params></methodResponse>"


@pytest.mark.parametrize("xml", [
    b"<int>abc</int>", b"<int></int>", b"<i4>1_000</i4>", "<int>\u0663</int>".encode(),
    b"<i8>" + b"9" * 20 + b"</i8>",
    b"<double>zz</double>", b"<base64>abc</base64>", b"<boolean>yes</boolean>",
])
def test_a_malformed_scalar_is_refused_with_its_escaped_text(xml: bytes) -> None:
    with pytest.raises(UpstreamError, match="malformed <"):
        list(iter_items([scalar_answer(xml)]))


@pytest.mark.parametrize(("xml", "value"), [
    (b"<int> 42 </int>", 42), (b"<i4>-7</i4>", -7), (b"<i8>+9223372036854775807</i8>", 2**63 - 1),
    (b"<boolean>0</boolean>", False), (b"<double>1.5</double>", 1.5), (b"<base64>aGk=\n</base64>", b"hi"),
])
def test_well_formed_scalars_still_parse(xml: bytes, value: object) -> None:
    assert list(iter_items([scalar_answer(xml)])) == [value]


def test_the_serial_bound_is_an_xmlrpc_int() -> None:
    assert MAX_SERIAL == 2**31 - 1
    assert is_serial(0) and is_serial(MAX_SERIAL)
    assert not any(is_serial(v) for v in (MAX_SERIAL + 1, -1, True, "5", 5.0, None))


def test_describe_never_formats_a_container() -> None:
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    assert describe(deep) == "an array of 1"
    assert describe({"a": deep}) == "a struct of 1 member(s)"
    assert describe("x\x1b[2J") == "'x\\x1b[2J'"
    assert describe(True) == "the boolean true"
