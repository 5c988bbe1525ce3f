"""oso-gateway: secure pupil-dossier transfer gateway modelled on OSO."""

from oso_gateway.errors import GatewayError, LocalError, RemoteError

__version__ = "0.1.0"

__all__ = ["GatewayError", "LocalError", "RemoteError", "__version__"]
