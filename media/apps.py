import warnings

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MediaConfig(AppConfig):
    name = "media"
    verbose_name = _("Media")

    def ready(self) -> None:
        # HEIC/HEIF photos from iPhones open in Pillow through libheif (decode only).
        import pi_heif
        from django.conf import settings
        from PIL import Image

        pi_heif.register_heif_opener()
        # The decompression-bomb guard: our own pixel limit, and its warning is an error, process-wide.
        Image.MAX_IMAGE_PIXELS = settings.REFUNDCHAT_UPLOAD_MAX_IMAGE_PIXELS
        warnings.simplefilter("error", Image.DecompressionBombWarning)
