"""Helpers shared by the tests: real Redis, real lcq serve, real rq workers."""
