"""A script written the way Microsoft's Defender for Endpoint API samples are: plain HTTP calls
with a bearer token and OData options against api.securitycenter.microsoft.com.

The test runs it unchanged but for BASE_URL and TOKEN (test_sample_script.py).
"""

import gzip
import json
import sys

import httpx

BASE_URL = "https://api.securitycenter.microsoft.com"
TOKEN = "<your AAD token>"

headers = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "Authorization": "Bearer " + TOKEN,
}


def get(url, **params):
    response = httpx.get(url, headers=headers, params=params or None, timeout=60)
    response.raise_for_status()
    return response.json()


def get_all(url, **params):
    """Follow @odata.nextLink until the collection ends."""
    data = get(url, **params)
    items = list(data["value"])
    while "@odata.nextLink" in data:
        data = get(data["@odata.nextLink"])
        items.extend(data["value"])
    return items


report = {}

machines = get(
    BASE_URL + "/api/machines",
    **{
        "$filter": "healthStatus eq 'Active' and lastSeen gt 2018-08-01Z",
        "$select": "id,computerDnsName,osPlatform,exposureLevel,machineTags",
    },
)["value"]
report["machines"] = sorted(m["computerDnsName"] for m in machines)

vulnerable = {}
for machine in machines:
    vulns = get(BASE_URL + "/api/machines/" + machine["id"] + "/vulnerabilities")["value"]
    software = get(BASE_URL + "/api/machines/" + machine["id"] + "/software")["value"]
    recs = get(BASE_URL + "/api/machines/" + machine["id"] + "/recommendations")["value"]
    if vulns:
        vulnerable[machine["computerDnsName"]] = {
            "cves": sorted(v["id"] for v in vulns),
            "software": sorted(s["name"] for s in software),
            "recommendations": len(recs),
        }
report["vulnerable"] = vulnerable

rows = get_all(BASE_URL + "/api/machines/SoftwareVulnerabilitiesByMachine", pageIndex=1, pageSize=2)
report["assessment_rows"] = len(rows)
report["critical_rows"] = sum(1 for r in rows if r["vulnerabilitySeverityLevel"] == "Critical")

export = get(BASE_URL + "/api/machines/SoftwareVulnerabilitiesExport", sasValidHours=1)
lines = 0
for url in export["exportFiles"]:
    blob = httpx.get(url, timeout=60)
    blob.raise_for_status()
    lines += sum(1 for line in gzip.decompress(blob.content).splitlines() if line.strip())
report["export_lines"] = lines

exploitable = get(
    BASE_URL + "/api/recommendations", **{"$filter": "publicExploit eq true", "$top": "10"}
)["value"]
report["exploitable_recommendations"] = sorted(r["id"] for r in exploitable)

tagged = get(BASE_URL + "/api/machines/findbytag", tag="VIP", useStartsWithFilter="false")["value"]
report["vip"] = [m["computerDnsName"] for m in tagged]

body = json.dumps({"DeviceValue": "High"})
response = httpx.post(
    BASE_URL + "/api/machines/" + machines[0]["id"] + "/setDeviceValue",
    headers=headers,
    content=body,
    timeout=60,
)
report["set_device_value"] = response.status_code

score = get(BASE_URL + "/api/exposureScore")
report["has_score"] = isinstance(score["score"], float)

json.dump(report, sys.stdout, sort_keys=True)
