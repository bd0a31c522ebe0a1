"""Ledger backends behind `ledger.Ledger`: SQLite (`sqlite.py`: one process, one volume) and
DynamoDB (several replicas on one shared table). The core never knows which one runs: `app.open_ledger` picks it
from `ledger.backend`."""
