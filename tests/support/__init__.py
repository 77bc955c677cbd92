"""Test support: fake external systems, the throwaway PostgreSQL cluster, signing in, and the
one test-organisation builder with its named scenarios (``tests.support.orgs``)."""
