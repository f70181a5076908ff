"""One party of SecretFlow's PSI (``spu.psi``), run as its own process by ``piguard.joint.sf_psi`` (a name
that keeps this directory, first on the worker's sys.path, from shadowing ``spu``).

It imports nothing from piguard: it runs under whatever interpreter has ``spu`` installed (``spu`` pins
numpy<2, so it usually lives in a venv of its own). Configuration arrives as JSON on stdin; the report
is written to the file the configuration names. The link between the two workers is brpc over mutual TLS
with the session certificates piguard's signed handshake exchanged.
"""

import json
import sys
import time


def _modules():  # type: ignore[no-untyped-def]
    """spu's two extension modules. Loaded directly when possible: ``import spu`` imports JAX first,
    seconds of start-up a PSI run does not need."""
    import importlib.machinery
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("spu")  # locates the package without running its __init__
    if spec is not None and spec.submodule_search_locations:
        base = Path(next(iter(spec.submodule_search_locations)))
        loaded = {}
        for name in ("libspu", "libpsi"):
            files = [
                f
                for f in base.glob(name + ".*")
                if f.suffix in importlib.machinery.EXTENSION_SUFFIXES
                or f.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
            ]
            if not files:
                break
            mspec = importlib.util.spec_from_file_location(name, files[0])
            if mspec is None or mspec.loader is None:
                break
            mod = importlib.util.module_from_spec(mspec)
            mspec.loader.exec_module(mod)
            loaded[name] = mod
        else:
            return loaded["libspu"].link, loaded["libpsi"]
    import spu.libspu.link as link
    import spu.psi as psi

    return link, psi


def main() -> int:
    cfg = json.loads(sys.stdin.read())
    link, psi = _modules()

    desc = link.Desc()
    desc.id = cfg["session"]
    for i, addr in enumerate(cfg["parties"]):
        desc.add_party(f"party{i}", addr)
    desc.recv_timeout_ms = int(cfg.get("recv_timeout_ms", 600_000))
    desc.connect_retry_times = int(cfg.get("connect_retry_times", 60))
    desc.connect_retry_interval_ms = 500
    desc.http_max_payload_size = 64 * 1024 * 1024
    desc.enable_ssl = True
    for opts in (desc.client_ssl_opts, desc.server_ssl_opts):
        opts.cert.certificate_path = cfg["cert"]
        opts.cert.private_key_path = cfg["key"]
        opts.verify.verify_depth = 1
        opts.verify.ca_file_path = cfg["peer_cert"]
    t0 = time.perf_counter()
    lctx = link.create_brpc(desc, int(cfg["rank"]))
    conf = psi.PsiProtocolConfig()
    conf.protocol = getattr(psi.PsiProtocol, cfg["protocol"])
    if cfg["protocol"] == "PROTOCOL_ECDH":
        conf.ecdh_params.curve = psi.EllipticCurveType.CURVE_25519
    conf.receiver_rank = 0
    conf.broadcast_result = False
    exe = psi.PsiExecuteConfig()
    exe.protocol_conf = conf
    exe.input_params = psi.InputParams()
    exe.input_params.path = cfg["input"]
    exe.input_params.selected_keys = ["key"]
    exe.input_params.keys_unique = True
    exe.output_params = psi.OutputParams()
    exe.output_params.path = cfg["output"]
    exe.output_params.disable_alignment = True
    report = psi.psi_execute(exe, lctx)
    # psi_execute has returned: the result is complete. Report it before the link is torn down (brpc's
    # TLS teardown can abort the process when the peer leaves first; that must not void a finished run).
    with open(cfg["report"], "w") as fh:
        json.dump(
            {
                "original_count": report.original_count,
                "intersection_count": report.intersection_count,
                "seconds": round(time.perf_counter() - t0, 3),
            },
            fh,
        )
    lctx.barrier()  # both parties are done before either stops the link
    lctx.stop_link()
    return 0


if __name__ == "__main__":
    sys.exit(main())
