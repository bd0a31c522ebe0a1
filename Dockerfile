# sh2jira container: `sh2jira run` against the config mounted at /etc/sh2jira/config.yaml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SH2JIRA_CONFIG=/etc/sh2jira/config.yaml
WORKDIR /app
COPY pyproject.toml README.md ./
COPY sh2jira ./sh2jira
RUN pip install --no-cache-dir . \
 && useradd --system --uid 10001 --home-dir /var/lib/sh2jira --create-home sh2jira \
 && mkdir -p /etc/sh2jira && chown sh2jira /var/lib/sh2jira

# The ledger lives on a volume so it survives restarts; point ledger.path at /var/lib/sh2jira/ledger.sqlite3.
VOLUME ["/var/lib/sh2jira"]
USER sh2jira
ENTRYPOINT ["sh2jira"]
CMD ["run"]
