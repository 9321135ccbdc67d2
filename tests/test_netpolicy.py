"""The SSRF policy: which resolved addresses a source may connect to."""

import ipaddress
import re

import pytest

from harvester.netpolicy import NetworkPolicy, parse_networks

BASE = NetworkPolicy()


@pytest.mark.parametrize("address,why", [
    ("127.0.0.1", "loopback"), ("127.1.2.3", "loopback"), ("::1", "loopback"),
    ("10.1.2.3", "a private range"), ("172.16.0.1", "a private range"),
    ("172.31.255.255", "a private range"), ("192.168.1.1", "a private range"),
    ("100.64.0.1", "carrier-grade NAT"), ("169.254.169.254", "link-local (cloud metadata)"),
    ("0.0.0.0", "'this network'"), ("224.0.0.1", "multicast"), ("239.255.255.250", "multicast"),
    ("255.255.255.255", "reserved"), ("fd00::1", "a private (unique local) range"),
    ("fe80::1", "link-local"), ("ff02::1", "multicast"), ("::", "the unspecified address"),
    # the metadata address and loopback hiding inside IPv6 forms
    ("::ffff:169.254.169.254", "link-local (cloud metadata)"),
    ("::ffff:a9fe:a9fe", "link-local (cloud metadata)"), ("::ffff:127.0.0.1", "loopback"),
    ("64:ff9b::a9fe:a9fe", "link-local (cloud metadata)"), ("2002:7f00:1::", "loopback"),
])
def test_private_and_special_addresses_are_refused(address, why):
    assert not BASE.permits(address)
    assert f"{address} ({why})" in BASE.refusal("h", [address])


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "172.32.0.1", "100.128.0.1",
                                     "2606:4700:4700::1111", "::ffff:93.184.216.34"])
def test_public_addresses_are_permitted(address):
    assert BASE.permits(address)


def test_a_source_may_reach_its_own_urls_network_and_allow_networks_widen():
    own = BASE.widened(["10.1.2.3"])
    assert own.permits("10.200.0.1") and not own.permits("192.168.0.1")
    assert not own.permits("127.0.0.1") and not own.permits("169.254.169.254")
    allowed = NetworkPolicy(parse_networks(("10.1.0.0/16",)))
    assert allowed.permits("10.1.9.9") and not allowed.permits("10.2.0.1")
    # an origin the operator's allow-list already covers widens nothing
    assert allowed.widened(["10.1.2.3"]) == allowed
    assert BASE.widened(["93.184.216.34"]) == BASE


def test_allow_networks_must_be_networks():
    with pytest.raises(ValueError, match=re.escape("'10.0.0.0/33' is not an IP network")):
        parse_networks(("10.0.0.0/33",))
    assert parse_networks((" 10.1.2.3/16 ",)) == (ipaddress.ip_network("10.1.0.0/16"),)
