"""``piguard robots ROBOTS_FILE USER_AGENT URL...``: RFC 9309 verdicts, one ``allow URL`` / ``disallow URL``
line per URL, from piguard's own parser (the one the crawler uses)."""

from __future__ import annotations

from pathlib import Path

import typer

from piguard._fs import read_regular_bytes
from piguard.crawl.robots import RobotsTxt, product_token


def robots(
    robots_file: Path = typer.Argument(..., help="A robots.txt file ('-' reads standard input)."),
    user_agent: str = typer.Argument(..., help="Crawler user agent; its product token is matched."),
    urls: list[str] = typer.Argument(..., help="URLs to check."),
    explain: bool = typer.Option(False, "--explain", help="Add the deciding rule and its line number."),
) -> None:
    """Say whether USER_AGENT may fetch each URL under ROBOTS_FILE (RFC 9309, Google's verdicts)."""
    try:
        stdin = str(robots_file) == "-"
        body = typer.get_binary_stream("stdin").read() if stdin else read_regular_bytes(robots_file)
    except OSError as exc:
        typer.echo(f"piguard robots: cannot read {robots_file}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    parsed = RobotsTxt(body)
    agent = product_token(user_agent) or user_agent
    for url in urls:
        v = parsed.verdict(agent, url)
        line = f"{'allow' if v.allowed else 'disallow'} {url}"
        if explain:
            rule = (
                f"line {v.rule.line}: {'allow' if v.rule.allow else 'disallow'} {v.rule.pattern}"
                if v.rule
                else "no rule"
            )
            line += f"\t# {v.group} group, {rule}"
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.command("robots")(robots)
