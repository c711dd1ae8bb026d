"""Orders and their variants: ``/v1/orders`` and ``/v1/variants`` routes, their queries,
their schemas and the row-to-schema views."""
