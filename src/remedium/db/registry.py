"""Imports every feature's models so that ``Base.metadata`` knows every table.

Add a feature's ``models`` module here when it gains tables.
"""

from remedium.audit import models as audit_models
from remedium.auth import models as auth_models
from remedium.common import models as common_models
from remedium.connectors import models as connectors_models
from remedium.db.base import Base
from remedium.defender import models as defender_models
from remedium.exceptions import models as exceptions_models
from remedium.importers import models as importers_models
from remedium.intel import models as intel_models
from remedium.inventory import models as inventory_models
from remedium.jobs import models as jobs_models
from remedium.recommendations import models as recommendations_models
from remedium.remediation import models as remediation_models
from remedium.scoring import models as scoring_models

__all__ = [
    "Base",
    "audit_models",
    "auth_models",
    "common_models",
    "connectors_models",
    "defender_models",
    "exceptions_models",
    "importers_models",
    "intel_models",
    "inventory_models",
    "jobs_models",
    "recommendations_models",
    "remediation_models",
    "scoring_models",
]

metadata = Base.metadata
