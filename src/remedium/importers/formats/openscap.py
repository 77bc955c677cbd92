"""OpenSCAP / SCAP results: XCCDF 1.1 and 1.2 result documents and ARF result data streams.

- every (non-abstract) ``Rule`` becomes a :class:`ConfigurationCheckRecord`: its id, title,
  description, fix text, a weight from its XCCDF severity and a category guessed from its id, its
  groups' ids and its title (see ``_CATEGORY_WORDS``);
- every ``TestResult`` target becomes a device (``target``, first non-loopback ``target-address``);
- every ``rule-result`` pass/fixed/fail becomes a :class:`ConfigurationResultRecord`; the other
  results (notapplicable, notchecked, notselected, informational, error, unknown) are skipped.

Plain OVAL results documents carry no XCCDF rule results and are refused with that reason.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import IO

from remedium.importers.formats._xmlstream import (
    Element,
    child,
    child_text,
    children,
    local,
    os_platform,
    peek,
    text,
    walk,
)
from remedium.importers.records import (
    ConfigurationCheckRecord,
    ConfigurationResultRecord,
    DeviceRecord,
    ImportRecord,
    ReportError,
    ReportInfo,
    SkippedRecord,
)

_WEIGHT = {"info": 1.0, "low": 3.0, "medium": 5.0, "high": 8.0}
_COMPLIANT = {"pass": True, "fixed": True, "fail": False}
# First match wins: the words are searched in the rule id, its groups' ids and its title.
_CATEGORY_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Accounts",
        (
            "account",
            "password",
            "passwd",
            "login",
            "logon",
            "user",
            "pam",
            "sudo",
            "shadow",
            "faillock",
        ),
    ),
    (
        "Network",
        (
            "network",
            "firewall",
            "iptables",
            "nftables",
            "ipv4",
            "ipv6",
            "wireless",
            "bluetooth",
            "tcp",
            "sysctl_net",
            "interface",
            "snmp",
            "finger",
        ),
    ),
    (
        "SecurityControls",
        (
            "audit",
            "selinux",
            "apparmor",
            "aide",
            "crypto",
            "fips",
            "antivirus",
            "integrity",
            "logging",
            "rsyslog",
            "syslog",
            "gpgcheck",
            "banner",
            "encrypt",
        ),
    ),
    (
        "Application",
        (
            "httpd",
            "apache",
            "nginx",
            "ftp",
            "ssh",
            "postfix",
            "sendmail",
            "samba",
            "nfs",
            "dns",
            "bind",
            "xinetd",
            "telnet",
            "rsh",
            "cups",
            "ldap",
            "mail",
            "web",
            "database",
        ),
    ),
)


class OpenSCAPParser:
    """XCCDF results and ARF result data streams (OpenSCAP and other SCAP scanners)."""

    name = "openscap"

    def sniff(self, head: bytes, filename: str) -> bool:
        """True for an XCCDF Benchmark/TestResult, an ARF collection or an OVAL results document."""
        return (
            b"http://checklists.nist.gov/xccdf/" in head
            or b"asset-report-collection" in head
            or b"<oval_results" in head
        )

    def parse(self, stream: IO[bytes], filename: str) -> tuple[ReportInfo, Iterator[ImportRecord]]:
        """Stream configuration checks, devices and configuration results."""
        head, stream = peek(stream)
        if b"<oval_results" in head and b"checklists.nist.gov/xccdf" not in head:
            raise ReportError(
                "an OVAL results document has no XCCDF rule results; "
                "import the XCCDF results or the ARF "
                "file that `oscap xccdf eval --results/--results-arf` writes",
                where="oval_results",
                filename=filename,
            )
        if not (b"checklists.nist.gov/xccdf" in head or b"asset-report-collection" in head):
            raise ReportError("not an XCCDF results or ARF document", filename=filename)
        source = "openscap" if b"OpenSCAP" in head or b"open-scap" in head else "xccdf"
        info = ReportInfo(format=self.name, source=source)
        return info, _Reader(filename).records(stream)


class _Reader:
    """The state of one pass over an XCCDF/ARF document."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.groups: list[str] = []
        self.benchmark = ""
        self.checks_seen: set[str] = set()
        self.devices_seen: set[str] = set()
        self.test_result = ""
        self.target: dict[str, list[str]] = {}
        self.device_ref = ""

    def records(self, stream: IO[bytes]) -> Iterator[ImportRecord]:
        end_tags = frozenset(
            {"Rule", "rule-result", "target", "target-address", "target-facts", "platform"}
        )
        starts = frozenset({"Benchmark", "Group", "TestResult"})
        closes = frozenset({"Group", "TestResult"})
        for event, element in walk(
            stream, self.filename, end_tags=end_tags, start_tags=starts, close_tags=closes
        ):
            name = local(element.tag)
            if event == "start":
                self._start(name, element)
            elif event == "close":
                if name == "Group" and self.groups:
                    self.groups.pop()
                elif name == "TestResult":
                    if not self.device_ref:
                        yield from self._device()
                    self.test_result = ""
            elif name == "Rule":
                yield from self._check(element)
            elif name == "rule-result":
                if not self.test_result:
                    continue  # a rule-result outside a TestResult is not a result of a scan
                if not self.device_ref:
                    yield from self._device()
                yield self._result(element)
            elif self.test_result:
                self.target.setdefault(name, []).append(_fact_text(element))

    def _start(self, name: str, element: Element) -> None:
        if name == "Benchmark":
            self.benchmark = element.get("id", "")
        elif name == "Group":
            self.groups.append(element.get("id", ""))
        elif name == "TestResult":
            self.test_result = element.get("id", "") or "TestResult"
            self.target = {}
            self.device_ref = ""

    def _check(self, rule: Element) -> Iterator[ImportRecord]:
        rule_id = rule.get("id", "").strip()
        where = f"Rule {rule_id or '?'}"
        if not rule_id:
            raise ReportError("Rule without an id", where=where, filename=self.filename)
        if rule.get("abstract", "").lower() in ("1", "true"):
            yield SkippedRecord("abstract rule (a template for other rules)", where)
            return
        if rule_id in self.checks_seen:
            return
        self.checks_seen.add(rule_id)
        title = _plain(child_text(rule, "title")) or rule_id
        yield ConfigurationCheckRecord(
            configuration_id=rule_id,
            name=title,
            category=_category(rule_id, self.groups, title),
            weight=_WEIGHT.get(rule.get("severity", "").lower(), 5.0),
            sub_category=self.groups[-1] if self.groups else "",
            description=_plain(_all_text(child(rule, "description"))),
            remediation=_plain(_all_text(child(rule, "fixtext"))),
            benchmarks=(self.benchmark,) if self.benchmark else (),
        )

    def _device(self) -> Iterator[ImportRecord]:
        target = (self.target.get("target") or [""])[0]
        addresses = [a for a in self.target.get("target-address", []) if a]
        ref = target or (addresses[0] if addresses else "") or self.test_result
        self.device_ref = ref
        if ref in self.devices_seen:
            return
        self.devices_seen.add(ref)
        platform = (self.target.get("platform") or [""])[0]
        yield DeviceRecord(
            device_ref=ref,
            name=target or ref,
            ip_address=_first_routable(addresses),
            os_platform=os_platform(platform.replace(":", " ")) if platform else "",
        )

    def _result(self, element: Element) -> ImportRecord:
        rule_id = element.get("idref", "").strip()
        where = f"TestResult {self.test_result} / rule-result {rule_id or '?'}"
        if not rule_id:
            raise ReportError("rule-result without an idref", where=where, filename=self.filename)
        outcome = child_text(element, "result").lower()
        if outcome not in _COMPLIANT:
            return SkippedRecord(f"rule result {outcome or 'missing'}", where)
        return ConfigurationResultRecord(
            device_ref=self.device_ref, configuration_id=rule_id, is_compliant=_COMPLIANT[outcome]
        )


def _category(rule_id: str, groups: list[str], title: str) -> str:
    haystack = " ".join([rule_id, *groups, title]).lower()
    for category, words in _CATEGORY_WORDS:
        if any(re.search(rf"(?<![a-z]){re.escape(word)}", haystack) for word in words):
            return category
    return "OS"


def _fact_text(element: Element) -> str:
    if local(element.tag) == "platform":
        idref: str = element.get("idref", "")
        return idref.strip()
    if local(element.tag) == "target-facts":
        return " ".join(text(fact) for fact in children(element, "fact"))
    return text(element)


def _first_routable(addresses: list[str]) -> str:
    for address in addresses:
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            continue
        if not (parsed.is_loopback or parsed.is_unspecified or parsed.is_link_local):
            return str(parsed)
    return ""


def _all_text(element: Element | None) -> str:
    return "".join(element.itertext()) if element is not None else ""


def _plain(value: str) -> str:
    return " ".join(value.split())
