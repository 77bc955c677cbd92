"""What follows a change of inventory or intelligence (application service)."""
