"""Collect other robots.txt parsers' published test cases into ``robots_cases.jsonl`` (run by hand).

Sources (snapshots of public repositories; cases are restated as data, each with its origin and licence):
  scrapy/protego        tests/test_protego.py        BSD-3-Clause
  python/cpython        Lib/test/test_robotparser.py PSF-2.0   (as copied in andreburgaud/robotspy, MIT)
  Smerity/texting_robots src/test.rs                 MIT OR Apache-2.0
  temoto/robotstxt      robotstxt_test.go            MIT

    python tests/crawl/suites/collect.py /work/.mirror   # directory holding <owner>+<repo>/repo git mirrors

Only allow/deny verdicts are collected (a robots.txt body, a user agent, a URL, the suite's expected verdict),
then sorted (:func:`classify`) into what RFC 9309 decides (``"rfc": "decided"``, with the RFC's verdict in
``rfc_expected``) and what it leaves open (``"rfc": "open"``, with the reason).
"""

from __future__ import annotations

import ast
import contextlib
import json
import re
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).with_name("robots_cases.jsonl")


def _show(mirror: Path, repo: str, path: str) -> str:
    git = mirror / repo / "repo"
    return subprocess.run(
        ["git", "-C", str(git), "show", f"HEAD:{path}"], check=True, capture_output=True, text=True
    ).stdout


def _value(node: ast.AST, env: dict[str, object]) -> object:
    if isinstance(node, ast.Name):
        if node.id in env:
            return env[node.id]
        raise ValueError(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _value(node.left, env) + _value(node.right, env)  # type: ignore[operator]
    return ast.literal_eval(node)


def protego(src: str) -> list[dict]:
    cases: list[dict] = []
    tree = ast.parse(src)
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef) or not fn.name.startswith("test"):
            continue
        _protego_body(fn.body, fn.name, {}, {}, cases)
    return cases


def _protego_body(
    stmts: list[ast.stmt], fn_name: str, env: dict[str, object], parsers: dict[str, str], cases: list[dict]
) -> None:
    if True:  # one level kept so the statement walk below reads as it did inside the test function
        for st in stmts:
            if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name):
                name = st.targets[0].id
                v = st.value
                if (
                    isinstance(v, ast.Call)
                    and isinstance(v.func, ast.Attribute)
                    and v.func.attr == "parse"
                    and isinstance(v.func.value, ast.Name)
                    and v.func.value.id == "Protego"
                ):
                    arg = v.args[0] if v.args else next(k.value for k in v.keywords if k.arg == "content")
                    try:
                        parsers[name] = str(_value(arg, env))
                    except (ValueError, SyntaxError, TypeError):
                        parsers.pop(name, None)
                    continue
                try:
                    env[name] = _value(v, env)
                except (ValueError, SyntaxError, TypeError):
                    env.pop(name, None)
            elif isinstance(st, ast.Assert):
                test, expected = st.test, True
                if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
                    test, expected = test.operand, False
                if (
                    isinstance(test, ast.Call)
                    and isinstance(test.func, ast.Attribute)
                    and test.func.attr == "can_fetch"
                    and isinstance(test.func.value, ast.Name)
                    and test.func.value.id in parsers
                    and len(test.args) == 2
                ):
                    try:
                        url, agent = (_value(a, env) for a in test.args)
                    except (ValueError, SyntaxError, TypeError):
                        continue
                    cases.append(
                        {
                            "suite": "protego",
                            "test": fn_name,
                            "robots": parsers[test.func.value.id],
                            "agent": agent,
                            "url": url,
                            "expected": expected,
                        }
                    )
            elif isinstance(st, ast.With | ast.For | ast.If):
                _protego_body(st.body, fn_name, env, parsers, cases)


def cpython(src: str) -> list[dict]:
    cases: list[dict] = []
    tree = ast.parse(src)
    for cls in tree.body:
        if not isinstance(cls, ast.ClassDef):
            continue
        attrs: dict[str, object] = {}
        for st in cls.body:
            if isinstance(st, ast.Assign) and isinstance(st.targets[0], ast.Name):
                with contextlib.suppress(ValueError, SyntaxError):
                    attrs[st.targets[0].id] = ast.literal_eval(st.value)
        if "robots_txt" not in attrs:
            continue
        agent = attrs.get("agent", "test_robotparser")
        for key, expected in (("good", True), ("bad", False)):
            for item in attrs.get(key, []):  # type: ignore[union-attr]
                a, url = item if isinstance(item, tuple) else (agent, item)
                cases.append(
                    {
                        "suite": "cpython",
                        "test": cls.name,
                        "robots": attrs["robots_txt"],
                        "agent": a,
                        "url": "http://example.com" + url if url.startswith("/") else url,
                        "expected": expected,
                    }
                )
    return cases


_RUST_STR = re.compile(r'(?:b?r(#*)"(.*?)"\1)|(?:b?"((?:[^"\\]|\\.)*)")', re.S)


def _rust_unescape(body: str) -> str:
    # Rust: "\<newline><whitespace>" is a line continuation; the usual escapes otherwise.
    body = re.sub(r"\\\n\s*", "", body)
    out = bytearray()
    i = 0
    raw = body.encode("utf-8")
    while i < len(raw):
        c = raw[i]
        if c == 0x5C and i + 1 < len(raw):
            n = chr(raw[i + 1])
            if n == "x":
                out.append(int(raw[i + 2 : i + 4], 16))
                i += 4
                continue
            if n == "u":
                end = raw.index(b"}", i)
                out += chr(int(raw[i + 3 : end], 16)).encode("utf-8")
                i = end + 1
                continue
            out += {"n": b"\n", "r": b"\r", "t": b"\t", "\\": b"\\", '"': b'"', "0": b"\0", "'": b"'"}[n]
            i += 2
            continue
        out.append(c)
        i += 1
    return out.decode("utf-8", "surrogateescape")


def texting_robots(src: str) -> list[dict]:
    cases: list[dict] = []
    for m in re.finditer(r"fn (test_\w+)\(\) \{(.*?)\n    \}\n", src, re.S):
        name, body = m.group(1), m.group(2)
        strings: dict[str, str] = {}
        robot: tuple[str, str] | None = None
        pos = 0
        stmt = re.compile(
            r"let (\w+)(?::\s*&\[u8\])?\s*=\s*(" + _RUST_STR.pattern + r")\s*;"
            r"|let (?:mut )?r = Robot::new\(\s*\"([^\"]*)\"\s*,\s*(&?\w+)(?:\.as_bytes\(\))?\s*\)"
            r"|assert!\(\s*(!?)\s*r\.allowed\(\s*\"((?:[^\"\\]|\\.)*)\"\s*\)\s*\)"
            r"|assert_eq!\(\s*r\.allowed\(\s*\"((?:[^\"\\]|\\.)*)\"\s*\)\s*,\s*(true|false)\s*\)",
            re.S,
        )
        while True:
            s = stmt.search(body, pos)
            if s is None:
                break
            pos = s.end()
            if s.group(1):
                lit = _RUST_STR.fullmatch(s.group(2).strip())
                if lit is None:
                    continue
                strings[s.group(1)] = lit.group(3) if lit.group(3) is not None else lit.group(2)
                if lit.group(3) is not None:
                    strings[s.group(1)] = _rust_unescape(lit.group(3))
            elif s.group(6) is not None:
                var = s.group(7).lstrip("&")
                robot = (s.group(6), strings[var]) if var in strings else None
            elif robot is not None and s.group(9) is not None:
                cases.append(_rust_case(name, robot, s.group(9), s.group(8) != "!"))
            elif robot is not None and s.group(10) is not None:
                cases.append(_rust_case(name, robot, s.group(10), s.group(11) == "true"))
    return cases


def _rust_case(test: str, robot: tuple[str, str], path: str, expected: bool) -> dict:
    path = _rust_unescape(path)
    url = path if "://" in path else "http://example.com" + (path if path.startswith("/") else "/" + path)
    return {
        "suite": "texting_robots",
        "test": test,
        "robots": robot[1],
        "agent": robot[0],
        "url": url,
        "expected": expected,
    }


def temoto(src: str) -> list[dict]:
    cases: list[dict] = []
    const_rx = r'const (\w+)\s*=\s*("(?:[^"\\]|\\.)*"|`[^`]*`)'
    consts = {m.group(1): _go_string(m.group(2)) for m in re.finditer(const_rx, src)}
    for m in re.finditer(r"func (Test\w+)\(t \*testing\.T\) \{(.*?)\n\}\n", src, re.S):
        name, body = m.group(1), m.group(2)
        robots = None
        for s in re.finditer(
            r'FromString\(\s*("(?:[^"\\]|\\.)*"|`[^`]*`|\w+)\s*\)'
            r'|expectAccess\(t, r, (true|false), "((?:[^"\\]|\\.)*)", "((?:[^"\\]|\\.)*)"\)',
            body,
        ):
            if s.group(1):
                lit = s.group(1)
                robots = consts.get(lit) if lit[0] not in '"`' else _go_string(lit)
            elif robots is not None:
                cases.append(
                    {
                        "suite": "temoto",
                        "test": name,
                        "robots": robots,
                        "agent": s.group(4),
                        "url": "http://example.com" + s.group(3),
                        "expected": s.group(2) == "true",
                    }
                )
    return cases


def _go_string(lit: str) -> str:
    if lit.startswith("`"):
        return lit[1:-1]
    # A Go interpreted string reads like a Python bytes literal (\\xHH are bytes, then UTF-8 decoded).
    body = "".join(c if ord(c) < 128 else "".join(f"\\x{b:02x}" for b in c.encode()) for c in lit[1:-1])
    return ast.literal_eval('b"' + body + '"').decode("utf-8", "surrogateescape")


_KNOWN_KEYS = {"user-agent", "allow", "disallow", "sitemap"}
_IDENTIFIER = re.compile(r"[A-Za-z_-]+")
_TYPO_KEY = re.compile(r"(user[ -]?agent|dis+al+ow|disalow|diasllow|disallaw)")

# Cases whose suite expects what RFC 9309 rules out. Keyed by (suite, test, url); the value is the RFC's
# verdict and why. Every other decided case keeps its suite's expectation.
RFC_OVERRIDES: dict[tuple[str, str, str], tuple[bool, str]] = {
    ("protego", "test_special_symbols_dual_behaviour", "http://foo.bar/x/abc$"): (
        True,
        "RFC 9309 2.2.3: a final '$' anchors the rule, so 'disallow: /x/abc$' matches /x/abc only; "
        "the URL's '$' is a character (%24) that the rule does not reach",
    ),
    ("protego", "test_special_symbols_dual_behaviour", "http://foo.bar/x/abc%24"): (
        True,
        "RFC 9309 2.2.3: '/x/abc$' is anchored at /x/abc; /x/abc%24 is a longer path",
    ),
    ("texting_robots", "test_google_encoding", "http://foo.bar/foo/bar/baz"): (
        True,
        "RFC 9309 2.2.2: a percent-encoded unreserved character matches the character itself (its table: "
        "/foo/bar/%62%61%7A is matched as /foo/bar/baz); Google's parser compares the strings as written",
    ),
    ("temoto", "TestRobotstxtOrg", "http://example.com/path/page1.html"): (
        False,
        "RFC 9309 2.2.1: the product token is matched whole and case-insensitively; 'Google' is not "
        "'Googlebot', so the '*' group applies",
    ),
}


def _lines(robots: str) -> list[tuple[str | None, str, str]]:
    out = []
    for raw in re.split(r"\r\n|\r|\n", robots):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if ":" not in line:
            out.append((None, "", line))
            continue
        k, v = line.split(":", 1)
        out.append((k.strip().lower(), v.strip(), line))
    return out


def open_reason(case: dict) -> str | None:
    """Why RFC 9309 does not decide ``case`` (None when it does)."""
    robots, agent, url = case["robots"], case["agent"], case["url"]
    if agent != "*" and not _IDENTIFIER.fullmatch(agent):  # '*': any crawler the file does not name
        return "the crawler's name is not an RFC 9309 product token ([A-Za-z_-]+)"
    if not (url.startswith(("http://", "https://")) or url.startswith("/")):
        return "not an http(s) URL or absolute path"
    if any(ord(c) < 0x20 and c not in "\t\r\n" for c in robots):
        return "control characters inside lines (outside the RFC 9309 grammar)"
    seen_agent = False
    pending_agents = False  # user-agent lines seen with no rule yet
    for key, value, _line in _lines(robots):
        if key is None:
            return "a line without a colon (outside the RFC 9309 grammar)"
        if key not in _KNOWN_KEYS and _TYPO_KEY.fullmatch(key):
            return "a misspelled key (Google-style leniency, not RFC 9309)"
        if key == "user-agent":
            if value != "*" and not _IDENTIFIER.fullmatch(value):
                return "a user-agent value that is not a product token"
            seen_agent = pending_agents = True
        elif key in ("allow", "disallow"):
            if not seen_agent:
                return "rules before any user-agent line (outside any group)"
            if value and not value.startswith("/"):
                return "a rule path that does not start with '/' (RFC 9309 2.2.2 grammar)"
            pending_agents = False
        elif key != "sitemap" and pending_agents:
            return "another record between user-agent lines (RFC 9309 2.2.4 leaves its effect to the crawler)"
    path = re.sub(r"^https?://[^/?#]*", "", url) or "/"
    if re.search(r"allow:\s*\S*/index\.html?\b", robots, re.I) and path.endswith("/"):
        return "Google's index.html-is-the-directory rule (not RFC 9309)"
    return None


def classify(case: dict) -> dict:
    reason = open_reason(case)
    if reason is not None:
        return {**case, "rfc": "open", "reason": reason}
    override = RFC_OVERRIDES.get((case["suite"], case["test"], case["url"]))
    if override is not None:
        return {**case, "rfc": "decided", "rfc_expected": override[0], "reason": override[1]}
    return {**case, "rfc": "decided", "rfc_expected": case["expected"]}


def main() -> None:
    mirror = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/.mirror")
    sources = [
        (protego, "scrapy+protego", "tests/test_protego.py", "BSD-3-Clause"),
        (cpython, "andreburgaud+robotspy", "tests/test_robotparser.py", "PSF-2.0 (CPython test_robotparser)"),
        (texting_robots, "Smerity+texting_robots", "src/test.rs", "MIT OR Apache-2.0"),
        (temoto, "temoto+robotstxt", "robotstxt_test.go", "MIT"),
    ]
    seen: set[tuple] = set()
    rows = []
    for fn, repo, path, licence in sources:
        for c in fn(_show(mirror, repo, path)):
            key = (c["robots"], c["agent"], c["url"], c["expected"])
            if key in seen:
                continue
            seen.add(key)
            rows.append(classify({**c, "source": f"{repo.replace('+', '/')}:{path}", "licence": licence}))
    OUT.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    by: dict[str, dict[str, int]] = {}
    for r in rows:
        by.setdefault(r["suite"], {"decided": 0, "open": 0})[r["rfc"]] += 1
    print(json.dumps(by), len(rows))


if __name__ == "__main__":
    main()
