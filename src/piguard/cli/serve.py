"""``piguard serve``: the data-subject portal, the staff dashboard and the rights API (uvicorn)."""

from __future__ import annotations

import os

import typer

from piguard.cli.consent import LEDGER_OPT, ledger_url


def serve(
    ledger: str = LEDGER_OPT,
    stores: str = typer.Option(None, "--stores", help="stores.yaml: where people's data lives."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port", min=0, max=65535),
    outbox: str = typer.Option(None, "--outbox", help="Write each one-time code to DIR/<request id>.txt."),
    smtp: str = typer.Option(
        None, "--smtp", help="Send codes by e-mail: smtp://host:port[?from=..&starttls=1]."
    ),
    signing_key: str = typer.Option(
        None, "--signing-key", help="The controller's Ed25519 key (.key, mode 0600) that signs receipts."
    ),
    key_file: str = typer.Option(None, "--key-file", help="The ledger's pseudonym key file."),
    reports: str = typer.Option(None, "--reports", help="Directory of data-map and check reports for staff."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Server processes."),
    secure_cookies: bool = typer.Option(
        False, "--secure-cookies", help="Mark cookies Secure (behind HTTPS; the default suits 127.0.0.1)."
    ),
) -> None:
    """Serve the portal (/), the staff dashboard (/staff) and the API (/api/v1, /openapi.json)."""
    try:
        import uvicorn

        from piguard.web.config import ENV, ConfigError, ServeConfig, build_service
    except ImportError as exc:
        typer.echo(f"piguard serve: needs the web extra (pip install 'piguard[web]'): {exc.name}", err=True)
        raise typer.Exit(2) from None
    cfg = ServeConfig(
        ledger_url(ledger), stores, outbox, smtp, signing_key, key_file, reports, secure_cookies
    )
    try:
        svc = build_service(cfg)  # fail here, with the option named, not inside a worker
    except ConfigError as exc:
        typer.echo(f"piguard serve: {exc}", err=True)
        raise typer.Exit(2) from None
    if svc.delivery is None:
        typer.echo("piguard serve: no --outbox or --smtp: people cannot receive codes", err=True)
    svc.ledger.close()
    os.environ[ENV] = cfg.to_env()
    typer.echo(f"piguard serve: http://{host}:{port}/ (staff: /staff, API: /openapi.json)", err=True)
    uvicorn.run(
        "piguard.web.config:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        server_header=False,
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
