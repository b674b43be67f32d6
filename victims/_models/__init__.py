"""Private model implementations; use :func:`ntga.victims.models.create`."""
