"""The portfolio: every pipeline of a code location in one view, gathered from the registry, the endpoints, the
drift reports, the SLOs and the audit trail (``gather``), and rendered as Markdown and HTML (``render``)."""
