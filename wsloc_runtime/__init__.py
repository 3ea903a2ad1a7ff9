"""wsloc_runtime: weakly-supervised localization of manipulated image regions.

Runs on onnxruntime, numpy and OpenCV only; never imports TensorFlow or torch.
"""

__version__ = "0.1.0"

from .errors import InvalidImageError, ModelContractError, ModelNotFoundError, UnknownNameError, WslocError
from .imageio import load_image

__all__ = [
    "__version__",
    "InvalidImageError",
    "ModelContractError",
    "ModelNotFoundError",
    "UnknownNameError",
    "WslocError",
    "load_image",
]
