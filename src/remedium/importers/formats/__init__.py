"""One module per report format; each defines a class implementing ``ReportParser``."""
