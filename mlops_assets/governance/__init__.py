"""Who did what to a pipeline's models, and can it be shown: the audit trail (its records, keys and anchors in
Dagster's event log), the alias history, the approvals recorded in the trail, and the reproduction of a version
from what it recorded."""
