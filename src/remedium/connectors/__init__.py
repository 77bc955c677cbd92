"""Ticketing connectors: Intune (Microsoft Graph), Jira, ServiceNow and a signed webhook.

Each sits behind :class:`remedium.connectors.base.TicketConnector`, is listed in
:mod:`remedium.connectors.registry`, takes its ``httpx.Client`` from the caller and never touches
the database. Failures are :mod:`remedium.connectors.errors`, sorted into transient (retry) and
permanent (needs an administrator).
"""
