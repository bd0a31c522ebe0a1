"""Local stand-ins for AWS Security Hub and Jira that the unmodified boto3 and jira clients talk to.

They follow the documented behaviour of the real services (see ../shared/FACTS.md in the development tree),
including limits and quirks, so that sh2jira can be tested, demonstrated and tried without either service.
"""
