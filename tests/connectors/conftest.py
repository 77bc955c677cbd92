"""Connector fixtures, defined in ``connector_harness`` so test modules can import its helpers."""

from tests.support.connector_harness import client, graph, harness, jira, servicenow, webhook

__all__ = ["client", "graph", "harness", "jira", "servicenow", "webhook"]
