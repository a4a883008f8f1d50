"""harvit: Human Activity Recognition with Vision Transformers on signal images.

Wearable IMU windows are turned into images on the device (GASF, GADF, MTF, recurrence,
spectrogram) and classified by a timm encoder with an MLP head.
"""

from harvit.utils.errors import HarvitError

__version__ = "0.1.0"
__all__ = ["HarvitError", "__version__"]
