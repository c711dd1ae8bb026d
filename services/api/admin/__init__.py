"""Operators' view of the dead-letter table: ``/v1/admin/failed-jobs`` routes, queries, schemas."""
