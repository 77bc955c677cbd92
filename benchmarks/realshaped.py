"""Large reports of real shape, built by replicating real files of the shared corpus.

    .venv/bin/python benchmarks/realshaped.py FORMAT FINDINGS OUT

(FORMAT: grype, trivy, nessus or cyclonedx.)

Minimal synthetic records flatter a parser several times over: a real Grype match carries
locations, CPEs, licences, related vulnerabilities and descriptions (about 1.7 KB each). So each
builder takes every record of one real corpus file, as the scanner wrote it, and writes copies of
it until the report holds the asked number of findings, renaming only what makes a copy distinct
(a package's name and version, a host's name and address, a workload's name). The output is
deterministic and written as a stream, so files of several GB cost little memory.

- ``grype``: ``grype/dd_grype_many_vulns.json`` (1,509 matches on one image); copy k renames
  every artifact ``<name>-rK`` / ``<version>.rK`` consistently (purl, CPEs, match details), so a
  copy is a new set of packages on the same scanned image.
- ``trivy``: a ``trivy k8s --format json`` cluster report (``Resources``-free legacy layout that
  ``trivy k8s`` wrote until 0.50: ``Vulnerabilities`` per workload) whose workloads each run the
  93-finding Debian image of ``trivy/dd_trivy_legacy_many_vulns.json``: one device per workload.
- ``nessus``: ``nessus/dd_nessus_v_unknown.xml`` (7 hosts, 296 report items); copy k renames
  each host (name, ``host-ip``, FQDN, NetBIOS name): many hosts of one network scan. Real
  Nessus scans are mostly informational: of those 296 items, 266 are severity 0 and 23 name no
  CVE, so only 7 become findings. For Nessus, FINDINGS counts report items, not findings (a
  Nessus file with 150,000 CVE findings of this shape would be about 20 GB).
- ``cyclonedx``: ``cyclonedx/dd_cdx_dd_1_15_0.xml`` (CycloneDX 1.2 with the vulnerability
  extension, 381 findings on 308 components of one image); copy k renames every component
  ``<name>-rK`` / ``<version>.rK`` inside one BOM.

The corpus is read from ``../shared/corpus`` beside the checkout (``REMEDIUM_CORPUS`` overrides).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

CORPUS = Path(
    os.environ.get("REMEDIUM_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "corpus")
)
SOURCES = {
    "grype": "grype/dd_grype_many_vulns.json",
    "trivy": "trivy/dd_trivy_legacy_many_vulns.json",
    "nessus": "nessus/dd_nessus_v_unknown.xml",
    "cyclonedx": "cyclonedx/dd_cdx_dd_1_15_0.xml",
}
SUFFIX = {"grype": ".json", "trivy": ".json", "nessus": ".nessus", "cyclonedx": ".xml"}
# The format name remedium's parser registry knows each by.
PARSER = {"grype": "grype", "trivy": "trivy", "nessus": "nessus", "cyclonedx": "cyclonedx"}


def source(fmt: str) -> Path:
    path = CORPUS / SOURCES[fmt]
    if not path.is_file():
        raise SystemExit(f"the corpus file {path} is missing: real-shaped inputs need ../shared")
    return path


def _copies(per_copy: int, findings: int) -> Iterator[tuple[int, int]]:
    """(copy number, how many of that copy's records to write) until ``findings`` are written."""
    copy, left = 0, findings
    while left > 0:
        yield copy, min(per_copy, left)
        left -= per_copy
        copy += 1


# --- Grype ---------------------------------------------------------------------------------


def _rename_package(package: Any, names: tuple[str, str], new: tuple[str, str]) -> Any:
    """A match-details package or CPE object with the artifact's name and version renamed."""
    if not isinstance(package, dict):
        return package
    package = dict(package)
    for key, old, value in (("name", names[0], new[0]), ("version", names[1], new[1])):
        for spelling in (key, key.capitalize(), "Product" if key == "name" else key):
            if package.get(spelling) == old:
                package[spelling] = value
    return package


def _rename_detail(detail: Any, names: tuple[str, str], new: tuple[str, str]) -> Any:
    """A match detail whose searched package is renamed (``searchedBy`` or, older,
    ``searchKey``)."""
    if not isinstance(detail, dict):
        return detail
    detail = dict(detail)
    for key in ("searchedBy", "searchKey"):
        searched = detail.get(key)
        if isinstance(searched, dict) and "package" in searched:
            detail[key] = {**searched, "package": _rename_package(searched["package"], names, new)}
    return detail


def _grype_copy(match: dict[str, Any], k: int) -> dict[str, Any]:
    if k == 0:
        return match
    artifact = dict(match["artifact"])
    names = (artifact.get("name", ""), artifact.get("version", ""))
    new = (f"{names[0]}-r{k}", f"{names[1]}.r{k}")
    artifact["name"], artifact["version"] = new
    if artifact.get("purl"):
        artifact["purl"] = artifact["purl"].replace(f"{names[0]}@{names[1]}", f"{new[0]}@{new[1]}")
    artifact["cpes"] = [
        cpe.replace(f":{names[0]}:{names[1]}:", f":{new[0]}:{new[1]}:")
        if isinstance(cpe, str)
        else _rename_package(cpe, names, new)
        for cpe in artifact.get("cpes") or []
    ]
    copied = {**match, "artifact": artifact}
    details = match.get("matchDetails")
    # Older Grype wrote one object; newer ones a list.
    if isinstance(details, list):
        copied["matchDetails"] = [_rename_detail(d, names, new) for d in details]
    elif details is not None:
        copied["matchDetails"] = _rename_detail(details, names, new)
    return copied


def _kept(records: list[Any], fixed: float) -> list[Any]:
    """``records`` less a share ``fixed`` of them, spread evenly (a rescan after some fixes)."""
    if not fixed:
        return records
    every = max(1, round(1 / fixed))
    return [record for index, record in enumerate(records) if index % every != every - 1]


def write_grype(out: TextIO, findings: int, fixed: float = 0.0) -> None:
    doc = json.loads(source("grype").read_text())
    matches = doc.pop("matches")
    out.write('{"matches": [')
    first = True
    for k, count in _copies(len(matches), findings):
        for match in _kept(matches[:count], fixed):
            out.write(("" if first else ",") + json.dumps(_grype_copy(match, k)))
            first = False
    out.write("]")
    for key, value in doc.items():
        out.write(f", {json.dumps(key)}: {json.dumps(value)}")
    out.write("}")


# --- Trivy (Kubernetes cluster report) -----------------------------------------------------


def write_trivy(out: TextIO, findings: int, fixed: float = 0.0) -> None:
    results = json.loads(source("trivy").read_text())
    image = results[0]
    vulnerabilities = image["Vulnerabilities"]
    out.write('{"ClusterName": "bench-cluster", "Vulnerabilities": [')
    for k, count in _copies(len(vulnerabilities), findings):
        workload = {
            "Namespace": f"team-{k % 40}",
            "Kind": "Deployment",
            "Name": f"service-{k}",
            "Results": [
                {
                    "Target": f"registry.example/service-{k}:1.{k % 7} (debian 10.8)",
                    "Class": "os-pkgs",
                    "Type": image.get("Type", "debian"),
                    "Vulnerabilities": _kept(vulnerabilities[:count], fixed),
                }
            ],
        }
        out.write(("" if k == 0 else ",") + json.dumps(workload))
    out.write('], "Misconfigurations": []}')


# --- Nessus ----------------------------------------------------------------------------------

_HOST = re.compile(r"<ReportHost name=\"([^\"]*)\">.*?</ReportHost>", re.DOTALL)
_ITEM = re.compile(r"<ReportItem\b")


def _rename_host(block: str, name: str, k: int, index: int) -> str:
    ip = f"10.{(k >> 8) & 255}.{k & 255}.{index + 1}"
    new = f"{name}-r{k}"
    block = block.replace(f'<ReportHost name="{name}">', f'<ReportHost name="{new}">', 1)
    block = re.sub(r'(<tag name="host-ip">)[^<]*', rf"\g<1>{ip}", block)
    block = re.sub(r'(<tag name="host-fqdn">)([^<.]*)', rf"\g<1>\g<2>-r{k}", block)
    block = re.sub(r'(<tag name="netbios-name">)[^<]*', rf"\g<1>{new.upper()}", block)
    return block


def write_nessus(out: TextIO, findings: int) -> None:
    text = source("nessus").read_text()
    hosts = list(_HOST.finditer(text))
    head, tail = text[: hosts[0].start()], text[hosts[-1].end() :]
    blocks = [(m.group(1), m.group(0), len(_ITEM.findall(m.group(0)))) for m in hosts]
    per_copy = sum(items for _, _, items in blocks)  # report items, see the module's doc
    out.write(head)
    written = 0
    for k, _count in _copies(per_copy, findings):
        for index, (name, block, items) in enumerate(blocks):
            if written >= findings:
                break
            out.write(_rename_host(block, name, k, index) + "\n")
            written += items
    out.write(tail)


# --- CycloneDX (1.2 XML with the vulnerability extension) -------------------------------------

_COMPONENTS = re.compile(r"(<components>)(.*)(</components>)", re.DOTALL)
_COMPONENT = re.compile(r"\n    <component\b.*?\n    </component>", re.DOTALL)
_NAME = re.compile(r"(<name>)([^<]*)(</name>)")
_VERSION = re.compile(r"(<version>)([^<]*)(</version>)")
_REF = re.compile(r'ref="([^"]*)"')


def write_cyclonedx(out: TextIO, findings: int) -> None:
    text = source("cyclonedx").read_text()
    match = _COMPONENTS.search(text)
    assert match is not None, "the CycloneDX source has no <components>"
    components = _COMPONENT.findall(match.group(2))
    per_copy = sum(c.count("<v:vulnerability ") for c in components)
    out.write(text[: match.start(2)])
    written = 0
    for k, _count in _copies(per_copy, findings):
        for component in components:
            if written >= findings:
                break
            copied = component
            if k:
                # Only the component's own name and version (the first of each): a copy is
                # another package (remedium keeps one weakness per product and vulnerability).
                copied = _NAME.sub(rf"\g<1>\g<2>-r{k}\g<3>", copied, count=1)
                copied = _VERSION.sub(rf"\g<1>\g<2>.r{k}\g<3>", copied, count=1)
                copied = _REF.sub(lambda m, k=k: f'ref="{m.group(1)}-r{k}"', copied)
            out.write(copied)
            written += copied.count("<v:vulnerability ")
    out.write("\n  " + text[match.end(2) :])


WRITERS: dict[str, Callable[[TextIO, int], None]] = {
    "grype": write_grype,
    "trivy": write_trivy,
    "nessus": write_nessus,
    "cyclonedx": write_cyclonedx,
}

# The builders that can leave a share of the findings out (``build(..., fixed=)``).
FIXABLE: dict[str, Callable[[TextIO, int, float], None]] = {
    "grype": write_grype,
    "trivy": write_trivy,
}


def build(fmt: str, findings: int, path: Path, fixed: float = 0.0) -> Path:
    """Write a ``fmt`` report of about ``findings`` findings (whole records) to ``path``.

    ``fixed`` (Grype and Trivy): leave out that share of the findings, spread evenly over the
    copies; the same report scanned again after those were fixed (``reimport.py``).
    """
    with path.open("w", encoding="utf-8", buffering=1 << 20) as out:
        if fixed:
            FIXABLE[fmt](out, findings, fixed)
        else:
            WRITERS[fmt](out, findings)
    return path


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in WRITERS:
        raise SystemExit(__doc__.split("\n\n")[1])
    written = build(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))
    print(f"{written}: {written.stat().st_size / 1e6:.0f} MB")
