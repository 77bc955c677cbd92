"""Imports every feature's models so that ``Base.metadata`` knows every table.

Add a feature's ``models`` module here when it gains tables.
"""

from remedium.db.base import Base
from remedium.importers import models as importers_models
from remedium.intel import models as intel_models
from remedium.inventory import models as inventory_models
from remedium.recommendations import models as recommendations_models
from remedium.scoring import models as scoring_models

__all__ = [
    "Base",
    "importers_models",
    "intel_models",
    "inventory_models",
    "recommendations_models",
    "scoring_models",
]

metadata = Base.metadata
