"""The HTTP face of a store gateway: FastAPI over a running edge runtime (see ``api.app``)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("shelfcast")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0+unknown"
