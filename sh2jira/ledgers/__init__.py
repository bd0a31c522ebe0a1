"""Ledger backends behind `ledger.Ledger`: SQLite (one process, one volume; still `sh2jira/ledger.py`) and
DynamoDB (several replicas on one shared table). The core never knows which one runs: `app.open_ledger` picks it
from `ledger.backend`."""
