"""sh2jira: AWS Security Hub findings to Jira issues, kept in sync both ways."""

__version__ = "0.1.0"
