import json

import httpx


def test_probe(legacy_url, native_url):
    probes = json.load(open("/tmp/probes.json"))
    with httpx.Client(timeout=30) as c:
        for m, p, b in probes:
            for name, base in (("L", legacy_url), ("N", native_url)):
                try:
                    r = c.request(
                        m,
                        base + p.replace("{S}", name),
                        content=None if b is None else b.replace("{S}", name).encode("utf-8", "surrogatepass"),
                        headers={"Content-Type": "application/json"} if b is not None else {},
                    )
                    print(name, m, p[:80], r.status_code, r.content[:400])
                except Exception as e:
                    print(name, m, p[:80], "EXC", e)
                    c = httpx.Client(timeout=30)
