# sh2jira container: `sh2jira run` against the config mounted at /etc/sh2jira/config.yaml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SH2JIRA_CONFIG=/etc/sh2jira/config.yaml \
    SH2JIRA_METRICS_PORT=9464 SH2JIRA_METRICS_HOST=0.0.0.0
WORKDIR /app
COPY pyproject.toml README.md ./
COPY sh2jira ./sh2jira
RUN pip install --no-cache-dir . \
 && useradd --system --uid 10001 --home-dir /var/lib/sh2jira --create-home sh2jira \
 && mkdir -p /etc/sh2jira && chown sh2jira /var/lib/sh2jira

# The ledger lives on a volume so it survives restarts; point ledger.path at /var/lib/sh2jira/ledger.sqlite3.
VOLUME ["/var/lib/sh2jira"]
USER sh2jira
EXPOSE 9464
# /healthz turns 503 when no cycle has succeeded for 3 intervals + 5 minutes (containers run with --once
# report unhealthy by design: use the exit code there).
HEALTHCHECK --interval=30s --timeout=5s --start-period=2m CMD ["sh2jira", "healthcheck"]
ENTRYPOINT ["sh2jira"]
CMD ["run"]
