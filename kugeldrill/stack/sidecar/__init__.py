"""The Dapr-compatible sidecar of the stand-in (one per app, like daprd).

Python API::

    from kugeldrill.stack.sidecar import SidecarOptions, SidecarThread
    sc = SidecarThread(SidecarOptions(app_id="cart", dapr_http_port=p, app_port=q,
                                      resources_path=dir)).start()
    ...
    sc.stop()

Process: `python -m stack.sidecar --app-id cart --dapr-http-port P --app-port Q --resources-path DIR`.
See README.md in this folder for what is and is not implemented.
"""

from kugeldrill.stack.sidecar.runtime import Sidecar, SidecarOptions

__all__ = ["Sidecar", "SidecarOptions", "SidecarThread"]


def __getattr__(name: str):
    if name == "SidecarThread":  # imported lazily: uvicorn is not needed to read resources
        from kugeldrill.stack.sidecar.server import SidecarThread

        return SidecarThread
    raise AttributeError(name)
