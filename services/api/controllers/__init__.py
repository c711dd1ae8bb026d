"""HTTP controllers, one per resource; each handler parses, calls one function, returns."""

from services.api.controllers.admin import FailedJobController
from services.api.controllers.events import OrderEventsController
from services.api.controllers.media import MediaController
from services.api.controllers.orders import OrderController
from services.api.controllers.share import ShareController
from services.api.controllers.share_page import SharePageController
from services.api.controllers.system import SystemController
from services.api.controllers.variants import VariantController

__all__ = [
    "CONTROLLERS",
    "FailedJobController",
    "MediaController",
    "OrderController",
    "OrderEventsController",
    "ShareController",
    "SharePageController",
    "SystemController",
    "VariantController",
]

CONTROLLERS = (
    OrderController,
    OrderEventsController,
    VariantController,
    ShareController,
    SharePageController,
    MediaController,
    FailedJobController,
    SystemController,
)
