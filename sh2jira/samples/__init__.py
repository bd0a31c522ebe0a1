"""Sample findings and the demo configuration shipped with sh2jira (modelled on real findings)."""
