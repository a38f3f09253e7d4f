"""``serve``: the editor in the browser."""

from __future__ import annotations

import argparse

from ..errors import UsageError
from .common import _add_device_arg, _add_model_args, _add_runtime_arg, _pipeline


def _parser_serve(sub) -> None:
    sv = sub.add_parser("serve", help="the interactive editor in the browser (offline, local)",
                        epilog="examples:\n  style-transformer serve            # then open http://127.0.0.1:7860\n"
                               "  style-transformer serve --checkpoint model.safetensors --editing editing/ --port 8000",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=int, default=7860)
    _add_model_args(sv)
    sv.add_argument("--editing", help="editing folder (default with the shipped encoder: the shipped one)")
    sv.add_argument("--max-upload-mb", type=float, default=10.0, help="uploads larger than this are refused")
    _add_device_arg(sv)
    _add_runtime_arg(sv)


def _cmd_serve(args: argparse.Namespace) -> int:
    from ..web import EditorApp, make_server

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be in 0..65535, got {args.port}")
    pipe = _pipeline(args, editing=args.editing)
    app = EditorApp(pipe, max_upload_mb=args.max_upload_mb)
    try:
        server = make_server(app, args.host, args.port)
    except OSError as e:
        raise UsageError(f"cannot listen on {args.host}:{args.port} ({e.strerror or e})") from None
    host, port = server.server_address[:2]
    print(f"serving the editor on http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


# command -> (parser builder, handler)
COMMANDS = {
    "serve": (_parser_serve, _cmd_serve),
}
