"""The embedded AWS: moto's server with the local stand-ins of ``devstack.moto_cognito`` installed.

``python -m devstack.moto_server -H 127.0.0.1 -p 4566`` takes moto.server's own arguments.
"""
from __future__ import annotations

from moto.server import main

from devstack import moto_cognito

if __name__ == "__main__":
    moto_cognito.install()
    main()
