"""Private model implementations; use :func:`victims.models.create`."""
