"""The query language: parser -> frozen IR -> plan (local pushdown + MPC) -> executor -> results."""
